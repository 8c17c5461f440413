#include "common/rpc/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "grpc/reflection/v1/reflection.pb.h"
#include "grpc/reflection/v1alpha/reflection.pb.h"

namespace sarloop {
namespace {

namespace rv1 = grpc::reflection::v1;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

void AddFileAndImports(const FileDescriptor* file, std::set<std::string>& seen,
                       rv1::FileDescriptorResponse* out) {
  if (!seen.insert(file->name()).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndImports(file->dependency(i), seen, out);
  }
}

void NotFound(rv1::ServerReflectionResponse& response, const std::string& message) {
  response.mutable_error_response()->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  response.mutable_error_response()->set_error_message(message);
}

}  // namespace

rv1::ServerReflectionResponse AnswerReflection(const rv1::ServerReflectionRequest& request,
                                               const std::vector<std::string>& services) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  rv1::ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  std::set<std::string> seen;
  const FileDescriptor* file = nullptr;
  switch (request.message_request_case()) {
    case rv1::ServerReflectionRequest::kListServices:
      for (const std::string& name : services) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      return response;
    case rv1::ServerReflectionRequest::kFileByFilename:
      file = pool->FindFileByName(request.file_by_filename());
      if (file == nullptr) NotFound(response, absl::StrCat("no file ", request.file_by_filename()));
      break;
    case rv1::ServerReflectionRequest::kFileContainingSymbol:
      file = pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        NotFound(response, absl::StrCat("no symbol ", request.file_containing_symbol()));
      }
      break;
    case rv1::ServerReflectionRequest::kFileContainingExtension: {
      const auto* type =
          pool->FindMessageTypeByName(request.file_containing_extension().containing_type());
      const auto* extension =
          type == nullptr ? nullptr
                          : pool->FindExtensionByNumber(
                                type, request.file_containing_extension().extension_number());
      if (extension == nullptr) {
        NotFound(response, "no such extension");
      } else {
        file = extension->file();
      }
      break;
    }
    case rv1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const auto* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        NotFound(response, absl::StrCat("no type ", request.all_extension_numbers_of_type()));
        return response;
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* out = response.mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* e : extensions) out->add_extension_number(e->number());
      return response;
    }
    default:
      response.mutable_error_response()->set_error_code(
          static_cast<int>(grpc::StatusCode::UNIMPLEMENTED));
      response.mutable_error_response()->set_error_message("unknown request");
      return response;
  }
  if (file != nullptr) AddFileAndImports(file, seen, response.mutable_file_descriptor_response());
  return response;
}

std::vector<std::shared_ptr<RawService>> ReflectionServices(std::vector<std::string> services) {
  // Naming a message of each links its file in (the protos are a static library), so that
  // reflection can describe every service it lists.
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::v1alpha::ServerReflectionRequest::descriptor();
  auto names = std::make_shared<const std::vector<std::string>>(std::move(services));
  std::vector<std::shared_ptr<RawService>> out;
  // v1alpha's messages are v1's under another package: the same bytes.
  for (const char* name :
       {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}) {
    auto raw = std::make_shared<RawService>(name);
    // One request at a time, answered before the next is read: a client cannot queue answers.
    raw->EachAnswered<rv1::ServerReflectionRequest, rv1::ServerReflectionResponse>(
        "ServerReflectionInfo", [names](const rv1::ServerReflectionRequest& request,
                                        rv1::ServerReflectionResponse* response) {
          *response = AnswerReflection(request, *names);
          return absl::OkStatus();
        });
    out.push_back(std::move(raw));
  }
  return out;
}

}  // namespace sarloop
