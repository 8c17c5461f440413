// The RPC edge. Every sarloop method goes through Serve: it identifies the caller, runs the
// handler's body (thin: it calls logic that returns absl::Status), records the call in the audit
// log, and finishes it through the one place an internal status becomes a grpc::Status.
#ifndef SARLOOP_COMMON_RPC_H_
#define SARLOOP_COMMON_RPC_H_

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/admission.h"
#include "common/audit.h"
#include "common/call.h"
#include "common/clock.h"
#include "common/executor.h"
#include "common/fault.h"
#include "common/identity.h"
#include "common/metrics.h"
#include "common/status.h"

namespace sarloop {

inline grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                        const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// What every call passes: the bound on calls in flight (null: none, for unit tests), where calls
// are recorded, the service's database (null disables auditing, for unit tests), and where bodies
// run (null: on gRPC's thread, for unit tests).
struct Edge {
  Database* audit_db = nullptr;
  Clock* clock = nullptr;
  Admission* admission = nullptr;
  Executor* executor = nullptr;
  // Where calls are counted and timed (null: nowhere, for unit tests).
  Metrics* metrics = nullptr;
};

// A string field of `request` by name (request_id, referral_id), or "" when it has none.
std::string StringField(const google::protobuf::Message& request, const char* name);

// `body(const Call&)` returns absl::Status. The request's referral_id and request_id, if it has
// them, go into the audit entry and the call's log line. The body runs later on `edge.executor`,
// so it must own or point at what it uses: it may capture the request, response and service
// pointers by value, never the handler's locals by reference.
template <typename Body>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, const Edge& edge,
                                const char* method, const google::protobuf::Message& request,
                                Body body) {
  // Overload: refused before any work, and not audited (the audit write would be the very load
  // being shed); Admission counts the refusals.
  const absl::Time arrived = absl::Now();
  if (edge.admission != nullptr && edge.admission->Shed(ctx)) {
    if (edge.metrics != nullptr) {
      edge.metrics->ObserveRpc(method, absl::StatusCode::kResourceExhausted, absl::ZeroDuration());
    }
    return Finish(ctx, RetryLater(absl::StatusCode::kResourceExhausted,
                                  "server busy: too many calls in progress; retry later",
                                  absl::Milliseconds(250)));
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto run = [ctx, reactor, edge, method, arrived,
              referral_id = StringField(request, "referral_id").substr(0, 64),
              request_id = StringField(request, "request_id").substr(0, 64),
              body = std::move(body)]() {
    absl::StatusOr<Identity> id = PeerIdentity(*ctx);
    AuditEntry entry;
    entry.at = edge.clock->Now();
    entry.method = method;
    entry.referral_id = referral_id;
    absl::Status status = id.status();
    Call call;
    if (id.ok()) {
      call.identity = *id;
      call.actor = ActorOf(*ctx, *id);
      call.scope = absl::StrCat(method, "/", id->uri);
      entry.identity = id->uri;
      entry.user = call.actor.user();
    }
    AuditRecorder audit(edge.audit_db, entry);
    call.audit = &audit;
    if (id.ok()) status = body(static_cast<const Call&>(call));
    audit.Finish(status);
    // The effect is committed; the caller has not heard. Its retry (same request_id) must find it.
    fault::CrashPoint("rpc.before_reply");
    reactor->Finish(ToGrpcStatus(status));
    // Ids, codes and the field at fault only: request contents never reach a log, as they may
    // name people (tests/integration/log_privacy_test.sh plants names and scans every log).
    const std::string field = FieldOf(status);
    spdlog::log(status.ok() ? spdlog::level::debug : spdlog::level::info,
                "call {} {} referral={} request={} caller={}{}{}", method,
                absl::StatusCodeToString(status.code()), referral_id, request_id, entry.identity,
                field.empty() ? "" : " field=", field);
    if (edge.metrics != nullptr)
      edge.metrics->ObserveRpc(method, status.code(), absl::Now() - arrived);
  };
  if (edge.executor != nullptr) {
    edge.executor->Post(std::move(run));
  } else {
    run();
  }
  return reactor;
}

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_H_
