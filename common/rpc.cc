#include "common/rpc.h"

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

grpc::ServerUnaryReactor* Shed(grpc::CallbackServerContext* ctx, const Edge& edge,
                               const char* method) {
  if (edge.admission == nullptr || !edge.admission->Shed(ctx)) return nullptr;
  if (edge.metrics != nullptr) {
    edge.metrics->ObserveRpc(method, absl::StatusCode::kResourceExhausted, absl::ZeroDuration());
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(RetryLater(absl::StatusCode::kResourceExhausted,
                                          "server busy: too many calls in progress; retry later",
                                          absl::Milliseconds(250))));
  return reactor;
}

}  // namespace internal
}  // namespace sarloop
