// How sarloopctl reaches a service: the global options, one mutual-TLS channel opened on first
// use, and unary calls that each carry a deadline and the acting user's metadata.
#ifndef SARLOOP_TOOLS_CTL_CLIENT_H_
#define SARLOOP_TOOLS_CTL_CLIENT_H_

#include <google/protobuf/message.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/status.h"
#include "tools/ctl/args.h"

namespace sarloop::ctl {

struct GlobalOptions {
  // host:port of the service; empty when neither --target nor SARLOOP_TARGET is set.
  std::string target;
  // Directory with cert.pem, key.pem and ca.pem; empty when neither --identity nor
  // SARLOOP_IDENTITY is set.
  std::string identity_dir;
  // Sent as x-sarloop-user on every call.
  std::string user;
  // Print the response as JSON instead of tables.
  bool json = false;
  // Deadline of each call, counted from its start.
  absl::Duration timeout = absl::Seconds(10);
  // Idempotency key for a mutating call: --request-id, or a fresh random one.
  std::string request_id;
};

// The global options from `args`, falling back to SARLOOP_TARGET, SARLOOP_IDENTITY and USER.
// Usage error for a malformed --timeout, --user or --request-id. A missing target or identity
// is reported only when a call needs them, so argument mistakes are found first.
absl::StatusOr<GlobalOptions> ReadGlobalOptions(const Args& args);

// Not thread-safe: sarloopctl makes its calls one after another.
class Session {
 public:
  explicit Session(GlobalOptions options) : options_(std::move(options)) {}

  const GlobalOptions& options() const { return options_; }

  // The channel, opened on the first call. Usage error when the target or identity is missing,
  // or a file of the identity directory cannot be read.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel();

  // Sets the deadline and the user metadata on a fresh context.
  void Prepare(grpc::ClientContext* context) const;
  // The same for a watch, which has no deadline.
  void PrepareWatch(grpc::ClientContext* context) const;

  // Usage error when the identity is a client system acting for people and no --user (or
  // SARLOOP_USER) names the person: the services refuse such calls, and every audit entry must
  // name someone. (A health check names no one.)
  absl::Status RequirePerson();

  // One unary call through a generated stub, e.g. Call(&v1::Force::Stub::Acknowledge, req, &resp).
  // Returns the status the server (or gRPC, e.g. DEADLINE_EXCEEDED) gave, or a usage error from
  // Channel().
  template <typename Stub, typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, Channel());
    RETURN_IF_ERROR(RequirePerson());
    Stub stub(channel);
    grpc::ClientContext context;
    Prepare(&context);
    NoteRequestId(request);
    return FromGrpcStatus((stub.*method)(&context, request, response));
  }

  // Whether a call made carried this run's request_id (a write the service may have carried out
  // even when the answer never came back).
  bool sent_request_id() const { return sent_request_id_; }

 private:
  GlobalOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  void NoteRequestId(const google::protobuf::Message& request) {
    const google::protobuf::FieldDescriptor* field =
        request.GetDescriptor()->FindFieldByName("request_id");
    if (field != nullptr && field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
        !field->is_repeated() &&
        request.GetReflection()->GetString(request, field) == options_.request_id) {
      sent_request_id_ = true;
    }
  }

  // The identity's URI when it is a client system acting for people (set by Channel()).
  std::string acts_for_people_;
  bool sent_request_id_ = false;
};

}  // namespace sarloop::ctl

#endif  // SARLOOP_TOOLS_CTL_CLIENT_H_
