// The audit witness: signed audit heads held on another organisation's node (proto
// sarloop/v1/witness.proto). The NCA witnesses every service; UKFIU witnesses the NCA. A service
// that rolls its database back, or has its log rewritten and re-signed, is caught by what the
// witness holds: the witness refuses a head that goes back, and `sarloopctl audit verify
// --witness` refuses a database that lacks the witnessed head.
#ifndef SARLOOP_COMMON_SERVER_WITNESS_H_
#define SARLOOP_COMMON_SERVER_WITNESS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/mutex.h"
#include "common/rpc/call.h"
#include "common/rpc/rpc.h"
#include "common/security/audit.h"
#include "common/storage/storage.h"
#include "sarloop/v1/config.pb.h"
#include "sarloop/v1/witness.grpc.pb.h"

namespace sarloop {

extern const Migration kWitnessMigration;

// The code of the peer that witnesses a service of `kind`: "UKFIU" for the NCA, "NCA" for the rest.
std::string WitnessOf(v1::ServiceKind kind);

// The witness's logic, reachable without a network.
class Witness {
 public:
  Witness(Database& db, Clock& clock) : db_(db), clock_(clock) {}

  // Takes `request` as the head of the service `call.identity` names (a service identity only).
  absl::StatusOr<v1::RecordAuditHeadResponse> Record(const Call& call,
                                                     const v1::RecordAuditHeadRequest& request);
  // The head witnessed for `service` (an identity URI): for that service itself, or an analyst.
  // NOT_FOUND when it never reported.
  absl::StatusOr<v1::GetAuditHeadResponse> Get(const Call& call, const std::string& service);

 private:
  Database& db_;
  Clock& clock_;
};

// The RPC edge of Witness.
class WitnessService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("RecordAuditHead", this, &WitnessService::RecordAuditHead);
    raw.Unary("GetAuditHead", this, &WitnessService::GetAuditHead);
  }
  static constexpr char kServiceName[] = "sarloop.v1.AuditWitness";

  WitnessService(Edge edge, Database& db, Clock& clock) : edge_(edge), witness_(db, clock) {}

  void RecordAuditHead(UnaryCall* ctx, const v1::RecordAuditHeadRequest* request,
                       v1::RecordAuditHeadResponse* response);
  void GetAuditHead(UnaryCall* ctx, const v1::GetAuditHeadRequest* request,
                    v1::GetAuditHeadResponse* response);

 private:
  const Edge edge_;
  Witness witness_;
};

// What the witness holds of a service's log, as the service last heard.
struct WitnessedHead {
  int64_t seq = 0;
  std::string hash;
};

// Whether `head`, past what the witness holds, must go to it now. Not while every entry past the
// witnessed one records a head this service took as another's witness: the NCA and UKFIU witness
// each other, and each would otherwise audit the other's report and report that, forever (a
// commit and a signed checkpoint in each, every two seconds of an idle chain). Such a tail still
// goes once `quiet_expired`, and any other entry, or a log that no longer holds the witnessed
// entry with its hash (a rollback), goes at once.
absl::StatusOr<bool> MustReportHead(Database& db, const WitnessedHead& witnessed,
                                    const SignedHead& head, bool quiet_expired);

// Sends a service's signed heads to its witness, one call at a time and never blocking the
// caller: a head that cannot be sent now is superseded by the next (the witness needs only the
// latest). It first asks the witness which head it holds, then sends each new head with the hash
// its own log has at that entry, so the witness can tell a continuation from a log
// rolled back and grown again. A refusal is logged as an error every time.
class WitnessReporter {
 public:
  // `quiet_limit`: how long a log that grew only by witnessing waits (MustReportHead).
  WitnessReporter(std::shared_ptr<grpc::Channel> channel, std::string witness_code,
                  std::string own_identity, Database& db, Clock& clock,
                  absl::Duration quiet_limit = absl::Minutes(10));
  ~WitnessReporter();
  void Report(const SignedHead& head, const std::string& public_key_pem);

 private:
  struct Pending;
  void Finished();

  std::unique_ptr<v1::AuditWitness::Stub> stub_;
  // Where the call runs, blocking: a client call through gRPC's callback API would start its
  // threads in the service's process (common/rpc/serving.h).
  const std::unique_ptr<Executor> caller_ = NewThreadPool(1);
  const std::string witness_code_;
  const std::string own_identity_;
  Database& db_;
  Clock& clock_;
  const absl::Duration quiet_limit_;
  std::atomic<bool> in_flight_{false};
  // What the witness holds: its entry (-1 until it has said) and that entry's hash. Written only by
  // the call in flight. A head is witnessed only when both match: a log rolled back and grown again
  // to the same length has the witnessed entry's number but not its hash.
  int64_t witnessed_seq_ = -1;
  std::string witnessed_hash_;
  // When the witness last took a head (or said which it holds); a tail of witnessing alone waits
  // `quiet_limit_` from here.
  absl::Time witnessed_at_ = absl::InfinitePast();
  // The call in flight, so that stopping need not wait out its deadline on an unreachable witness.
  Mutex mu_;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SERVER_WITNESS_H_
