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

}  // namespace sarloop
