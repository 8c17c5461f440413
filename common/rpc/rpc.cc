#include "common/rpc/rpc.h"

#include <google/protobuf/descriptor.h>

namespace sarloop {

std::string StringField(const google::protobuf::Message& request, const char* name) {
  const google::protobuf::FieldDescriptor* field = request.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr || field->is_repeated() ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    return "";
  }
  return request.GetReflection()->GetString(request, field);
}

namespace internal {

bool Shed(UnaryCall* call, const Edge& edge, const char* method) {
  if (edge.admission == nullptr || !edge.admission->Shed(call->context())) return false;
  if (edge.metrics != nullptr) {
    edge.metrics->ObserveRpc(method, absl::StatusCode::kResourceExhausted, absl::ZeroDuration());
  }
  call->Finish(ToGrpcStatus(RetryLater(absl::StatusCode::kResourceExhausted,
                                       "server busy: too many calls in progress; retry later",
                                       absl::Milliseconds(250))));
  return true;
}

}  // namespace internal
}  // namespace sarloop
