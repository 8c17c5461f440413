// The RPC edge. Every sarloop method goes through Serve: it identifies the caller, runs the
// handler's body (thin: it calls logic that returns absl::Status), records the call in the audit
// log, and finishes it through the one place an internal status becomes a grpc::Status.
#ifndef SARLOOP_COMMON_RPC_RPC_H_
#define SARLOOP_COMMON_RPC_RPC_H_

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/clock.h"
#include "common/base/fault.h"
#include "common/base/log_fields.h"
#include "common/base/metrics.h"
#include "common/base/status.h"
#include "common/rpc/admission.h"
#include "common/rpc/call.h"
#include "common/rpc/executor.h"
#include "common/rpc/request_checks.h"
#include "common/rpc/serving.h"
#include "common/security/audit.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"

namespace sarloop {

// What every call passes: the bound on calls in flight (null: none, for unit tests), where calls
// are recorded, the service's database (null disables auditing, for unit tests), and where bodies
// run (null: on the serving thread, for unit tests).
struct Edge {
  Database* audit_db = nullptr;
  Clock* clock = nullptr;
  Admission* admission = nullptr;
  Executor* executor = nullptr;
  // Where calls are counted and timed (null: nowhere, for unit tests).
  Metrics* metrics = nullptr;
  // Where ServeWrite's bodies run: as write jobs on this database's writer thread, answered from
  // its commit (null: as Serve runs them).
  Database* writer = nullptr;
};

// A string field of `request` by name (request_id, referral_id), or "" when it has none.
std::string StringField(const google::protobuf::Message& request, const char* name);

// Where a request's text and times are checked (common/rpc/request_checks.h).
enum class RequestChecks {
  // At the edge, before the body: a refusal refuses the call.
  kAtEdge,
  // By the body, item by item: for batches of peers' messages, where one bad envelope is refused
  // on its own and must not hold up the rest behind it.
  kByBody,
};

namespace internal {

// When the server is full, refuses the call and returns true.
bool Shed(UnaryCall* call, const Edge& edge, const char* method);

// One call from its arrival to its reply, shared by Serve and ServeWrite.
template <typename Body>
class CallRun {
 public:
  CallRun(UnaryCall* rpc, const Edge& edge, const char* method,
          const google::protobuf::Message& request, Body body, RequestChecks checks)
      : rpc_(rpc),
        ctx_(rpc->context()),
        edge_(edge),
        method_(method),
        arrived_(absl::Now()),
        // The request was parsed for this call alone and is handed on as const by convention;
        // the edge rewrites its text to NFC before anything reads it.
        checked_(checks == RequestChecks::kAtEdge
                     ? CleanRequest(const_cast<google::protobuf::Message&>(request))
                     : absl::OkStatus()),
        // Refused text may hold line breaks that would forge log lines: such ids are not logged.
        referral_id_(checked_.ok() ? StringField(request, "referral_id").substr(0, 64) : ""),
        request_id_(checked_.ok() ? StringField(request, "request_id").substr(0, 64) : ""),
        body_(std::move(body)) {}

  // Identifies the caller and checks the request: no database, so it may run on any thread.
  // With `prepare`, then runs prepare(call) when all is well so far, for the body's work that
  // needs no database. Its refusal is the call's answer, audited as the body's would be.
  template <typename Prepare>
  void Identify(Prepare&& prepare) {
    absl::StatusOr<Identity> id = PeerIdentity(*ctx_);
    entry_.at = edge_.clock->Now();
    entry_.method = method_;
    entry_.referral_id = referral_id_;
    status_ = id.status();
    if (id.ok()) {
      call_.identity = *id;
      call_.scope = absl::StrCat(method_, "/", id->uri);
      entry_.identity = id->uri;
      absl::StatusOr<v1::Actor> actor = ActingPerson(*ctx_, *id);
      if (actor.ok()) {
        call_.actor = *std::move(actor);
        entry_.user = call_.actor.user();
        status_ = checked_;
      } else {
        status_ = actor.status();
      }
    }
    if (status_.ok()) status_ = prepare(static_cast<const Call&>(call_));
    identified_ = true;
  }
  void Identify() {
    Identify([](const Call&) { return absl::OkStatus(); });
  }

  // Runs the body (identifying the caller first unless Identify did) and records the call in
  // the audit log.
  absl::Status Run() {
    if (!identified_) Identify();
    absl::Status status = status_;
    AuditRecorder audit(edge_.audit_db, entry_);
    call_.audit = &audit;
    if (status.ok()) status = body_(static_cast<const Call&>(call_));
    // Nothing is answered that the audit log does not hold: a call whose entry cannot be made
    // durable (a full disk) is refused, even a read, so no personal data leaves untraced.
    absl::Status audited = audit.Finish(status);
    if (status.ok() && !audited.ok()) {
      status = RetryLater(absl::StatusCode::kUnavailable,
                          "the call cannot be recorded in the audit log now; retry later",
                          absl::Seconds(5));
    }
    caller_ = entry_.identity;
    return status;
  }

  // Answers the caller, once its effect is committed.
  void Reply(const absl::Status& status) {
    // The effect is committed; the caller has not heard. Its retry (same request_id) must find it.
    fault::CrashPoint("rpc.before_reply");
    rpc_->Finish(ToGrpcStatus(status, referral_id_));
    // Ids, codes and the field at fault only: request contents never reach a log, as they may
    // name people (tests/integration/log_privacy_test.sh plants names and scans every log).
    const absl::Duration latency = absl::Now() - arrived_;
    const spdlog::level::level_enum level =
        status.ok() ? spdlog::level::debug : spdlog::level::info;
    // Successful calls log at debug, off by default: their fields are not built per call then.
    if (spdlog::should_log(level)) {
      const std::string field = FieldOf(status);
      const std::string code = absl::StatusCodeToString(status.code());
      ScopedLogFields fields(
          {{"method", method_},
           {"code", code},
           {"caller", caller_},
           {"referral_id", referral_id_},
           {"request_id", request_id_},
           {"field", field},
           {"latency_ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(latency)), true}});
      spdlog::log(level, "call {} {} referral={} request={} caller={}{}{}", method_, code,
                  referral_id_, request_id_, caller_, field.empty() ? "" : " field=", field);
    }
    if (edge_.metrics != nullptr) edge_.metrics->ObserveRpc(method_, status.code(), latency);
  }

 private:
  UnaryCall* const rpc_;
  grpc::ServerContextBase* const ctx_;
  const Edge edge_;
  const char* const method_;
  const absl::Time arrived_;
  const absl::Status checked_;
  const std::string referral_id_;
  const std::string request_id_;
  Body body_;
  std::string caller_;
  // What Identify found, for Run.
  bool identified_ = false;
  AuditEntry entry_;
  Call call_;
  absl::Status status_;
};

}  // namespace internal

// `body(const Call&)` returns absl::Status. The request's referral_id and request_id, if it has
// them, go into the audit entry and the call's log line. The body runs later on `edge.executor`,
// so it must own or point at what it uses: it may capture the request, response and service
// pointers by value, never the handler's locals by reference.
template <typename Body>
void Serve(UnaryCall* rpc, const Edge& edge, const char* method,
           const google::protobuf::Message& request, Body body,
           RequestChecks checks = RequestChecks::kAtEdge) {
  // Overload: refused before any work, and not audited (the audit write would be the very load
  // being shed); Admission counts the refusals.
  if (internal::Shed(rpc, edge, method)) return;
  auto run = std::make_shared<internal::CallRun<Body>>(rpc, edge, method, request, std::move(body),
                                                       checks);
  if (edge.executor != nullptr) {
    edge.executor->Post([run] { run->Reply(run->Run()); });
  } else {
    run->Reply(run->Run());
  }
}

// Serve for calls that change state (they carry a request_id, or deliver messages). The body runs
// as a write job on `edge.writer` (Database::Submit): it shares a transaction and one COMMIT with
// the calls that arrived meanwhile, and its reply goes out from the writer (in a server, the
// serving thread, which hosts it) once that COMMIT has returned, never before. A body that
// succeeded is answered with the commit's error if the commit fails. It must not block on anything
// but the database. Without `edge.writer`, as Serve.
template <typename Body>
void ServeWrite(UnaryCall* rpc, const Edge& edge, const char* method,
                const google::protobuf::Message& request, Body body,
                RequestChecks checks = RequestChecks::kAtEdge) {
  if (edge.writer == nullptr) return Serve(rpc, edge, method, request, std::move(body), checks);
  if (internal::Shed(rpc, edge, method)) return;
  auto run = std::make_shared<internal::CallRun<Body>>(rpc, edge, method, request, std::move(body),
                                                       checks);
  run->Identify();  // who is calling is known from the connection: found here, not on the writer
  edge.writer->Submit([run]() -> Database::Completion {
    absl::Status status = run->Run();
    return [run, status](const absl::Status& commit) { run->Reply(status.ok() ? commit : status); };
  });
}

// ServeWrite with the body's work that needs no database done at the call's arrival, outside the
// batch's transaction: the caller is identified and `prepare(const Call&)` (returning
// absl::Status; it may fill what the body then reads) runs on the serving thread before the job is
// submitted; the body then runs in the writer's batch only if both passed. A refusal by either is
// still a job: the audit entry of a refused call commits like any other. `prepare` must not touch
// the database.
template <typename Prepare, typename Body>
void ServePreparedWrite(UnaryCall* rpc, const Edge& edge, const char* method,
                        const google::protobuf::Message& request, Prepare prepare, Body body) {
  if (edge.writer == nullptr) {
    return Serve(rpc, edge, method, request,
                 [prepare = std::move(prepare), body = std::move(body)](const Call& call) mutable {
                   RETURN_IF_ERROR(prepare(call));
                   return body(call);
                 });
  }
  if (internal::Shed(rpc, edge, method)) return;
  auto run = std::make_shared<internal::CallRun<Body>>(rpc, edge, method, request, std::move(body),
                                                       RequestChecks::kAtEdge);
  run->Identify(prepare);
  edge.writer->Submit([run]() -> Database::Completion {
    absl::Status status = run->Run();
    return [run, status](const absl::Status& commit) { run->Reply(status.ok() ? commit : status); };
  });
}

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_RPC_H_
