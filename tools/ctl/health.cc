#include "tools/ctl/health.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <future>

namespace sarloop::ctl {
namespace {

using google::protobuf::Message;

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

// grpc/health/v1/health.proto, the two messages Check uses.
constexpr char kHealthProto[] = R"pb(
  name: "sarloopctl/grpc_health_v1.proto"
  package: "grpc.health.v1"
  syntax: "proto3"
  message_type {
    name: "HealthCheckRequest"
    field { name: "service" json_name: "service" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
  message_type {
    name: "HealthCheckResponse"
    field {
      name: "status"
      json_name: "status"
      number: 1
      label: LABEL_OPTIONAL
      type: TYPE_ENUM
      type_name: ".grpc.health.v1.HealthCheckResponse.ServingStatus"
    }
    enum_type {
      name: "ServingStatus"
      value { name: "UNKNOWN" number: 0 }
      value { name: "SERVING" number: 1 }
      value { name: "NOT_SERVING" number: 2 }
      value { name: "SERVICE_UNKNOWN" number: 3 }
    }
  }
)pb";

// The pool and factory live for the whole run: messages made from them refer to both.
struct HealthTypes {
  google::protobuf::DescriptorPool pool;
  google::protobuf::DynamicMessageFactory factory{&pool};
  const google::protobuf::Descriptor* request = nullptr;
  const google::protobuf::Descriptor* response = nullptr;

  HealthTypes() {
    // A mistake in kHealthProto leaves the descriptors null; CheckHealth reports it.
    google::protobuf::FileDescriptorProto file;
    if (!google::protobuf::TextFormat::ParseFromString(kHealthProto, &file)) return;
    if (pool.BuildFile(file) == nullptr) return;
    request = pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest");
    response = pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse");
  }
};

// Built on first use and never destroyed, so no exit-time destructor races gRPC's threads.
HealthTypes& Types() {
  static HealthTypes* types = new HealthTypes();
  return *types;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Message>> CheckHealth(Session& session) {
  HealthTypes& types = Types();
  if (types.request == nullptr || types.response == nullptr) {
    return absl::InternalError("the built-in grpc.health.v1 description does not load");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, session.Channel());
  std::unique_ptr<Message> request(types.factory.GetPrototype(types.request)->New());
  std::unique_ptr<Message> response(types.factory.GetPrototype(types.response)->New());

  grpc::TemplatedGenericStub<Message, Message> stub(channel);
  grpc::ClientContext context;
  session.Prepare(&context);
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, kCheckMethod, grpc::StubOptions(), request.get(), response.get(),
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  RETURN_IF_ERROR(FromGrpcStatus(done.get_future().get()));
  return response;
}

std::string ServingStatusName(const Message& response) {
  const auto* field = response.GetDescriptor()->FindFieldByName("status");
  return response.GetReflection()->GetEnum(response, field)->name();
}

}  // namespace sarloop::ctl
