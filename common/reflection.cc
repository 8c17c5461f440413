#include "common/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>

#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"

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

class Service final : public rv1::ServerReflection::CallbackService {
 public:
  void SetServiceNames(std::vector<std::string> names) {
    std::lock_guard lock(mu_);
    names_ = std::move(names);
  }
  std::vector<std::string> ServiceNames() const {
    std::lock_guard lock(mu_);
    return names_;
  }

  grpc::ServerBidiReactor<rv1::ServerReflectionRequest, rv1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext*) override {
    return new Stream(ServiceNames());
  }

 private:
  // One request at a time, answered before the next is read: a client cannot queue answers.
  class Stream final : public grpc::ServerBidiReactor<rv1::ServerReflectionRequest,
                                                      rv1::ServerReflectionResponse> {
   public:
    explicit Stream(std::vector<std::string> services) : services_(std::move(services)) {
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      response_ = AnswerReflection(request_, services_);
      StartWrite(&response_);
    }
    void OnWriteDone(bool ok) override {
      if (ok) {
        StartRead(&request_);
      } else {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the client went away"));
      }
    }
    void OnDone() override { delete this; }

   private:
    const std::vector<std::string> services_;
    rv1::ServerReflectionRequest request_;
    rv1::ServerReflectionResponse response_;
  };

  mutable std::mutex mu_;
  std::vector<std::string> names_;
};

class Impl final : public Reflection {
 public:
  std::vector<std::string> ServiceNames() const override { return service->ServiceNames(); }
  const std::shared_ptr<Service> service = std::make_shared<Service>();
};

// gRPC's way in to a server as it is built: InitServer registers the service, Finish learns the
// names of everything registered.
class Plugin final : public grpc::ServerBuilderPlugin {
 public:
  explicit Plugin(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::string name() override { return "sarloop_reflection_v1"; }
  void InitServer(grpc::ServerInitializer* si) override { si->RegisterService(impl_->service); }
  void Finish(grpc::ServerInitializer* si) override {
    impl_->service->SetServiceNames(*si->GetServiceList());
  }
  void ChangeArguments(const std::string&, void*) override {}
  bool has_sync_methods() const override { return false; }
  bool has_async_methods() const override { return false; }

 private:
  std::shared_ptr<Impl> impl_;
};

class Option final : public grpc::ServerBuilderOption {
 public:
  explicit Option(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<Plugin>(impl_));
  }

 private:
  std::shared_ptr<Impl> impl_;
};

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

std::shared_ptr<Reflection> Reflection::Install(grpc::ServerBuilder& builder) {
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // gRPC serves health without its descriptors; naming one links proto/grpc/health/v1 in, so both
  // reflection protocols can describe the health service they list.
  grpc::health::v1::HealthCheckRequest::descriptor();
  auto impl = std::make_shared<Impl>();
  builder.SetOption(std::make_unique<Option>(impl));
  return impl;
}

}  // namespace sarloop
