// An investigating unit (a RACU such as ERSOU, or the NCA's ACU): its inbox of handovers from the
// forces it serves, and its decisions: accept (joint investigation), decline assistance (the
// referral returns to the force; the register keeps the decline), record the outcome.
// Pure logic over a Database; the gRPC layer is in main.cc.
#ifndef SARLOOP_SERVICES_RACU_UNIT_H_
#define SARLOOP_SERVICES_RACU_UNIT_H_

#include <functional>
#include <set>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/messaging/messaging.h"
#include "common/referral/mirror.h"
#include "common/referral/step.h"
#include "common/referral/threads.h"
#include "common/rpc/call.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/racu.pb.h"

namespace sarloop::racu {

// The unit's schema: before the audit log, and after it (ServiceMigrations).
std::span<const Migration> UnitMigrations();
std::span<const Migration> UnitMigrationsAfterAudit();

struct UnitOptions {
  // This unit's code, e.g. "ERSOU".
  std::string code;
  // The forces it takes handovers from.
  std::set<std::string> served_forces;
  // Who a decline of a referral handed over on receipt is addressed to (ServiceConfig).
  std::string decline_reviewer = "spiffe://sarloop/oversight/NCA/senior-manager";
};

class Unit {
 public:
  // `worker` (may be null in tests) is woken for what a committed step sends; `peers` are the
  // destinations the service has a peer for (empty: any).
  Unit(Database& db, Clock& clock, UnitOptions options, DeliveryWorker* worker = nullptr,
       std::vector<std::string> peers = {});

  absl::StatusOr<v1::ListHandoversResponse> Inbox(const v1::ListHandoversRequest& request);
  absl::StatusOr<v1::GetHandoverResponse> Get(const std::string& referral_id);

  // NOT_FOUND for an unknown handover; FAILED_PRECONDITION naming the state for a wrong one.
  absl::StatusOr<v1::UnitStepResponse> Accept(const Call& call,
                                              const v1::AcceptHandoverRequest& request);
  absl::StatusOr<v1::UnitStepResponse> DeclineAssistance(
      const Call& call, const v1::DeclineAssistanceRequest& request);
  absl::StatusOr<v1::UnitStepResponse> RecordOutcome(const Call& call,
                                                     const v1::RecordOutcomeRequest& request);
  absl::StatusOr<v1::UnitStepResponse> UpdateOutcome(const Call& call,
                                                     const v1::UpdateUnitOutcomeRequest& request);
  absl::StatusOr<v1::UnitStepResponse> ReportProgress(const Call& call,
                                                      const v1::ReportUnitProgressRequest& request);

  // Applies one envelope, as the rules table allows (referral::Mirror::Receive): a handover from
  // a served force (with its package), that force's later decision on a referral this unit
  // declined, or UKFIU's withdrawal or redirection (held until the handover it follows arrives).
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);

  // Every destination this unit sends to: UKFIU, NCA and the served forces.
  std::vector<std::string> Destinations() const;

  // Requests for information with the forces it serves (threads.h).
  referral::Threads& threads() { return threads_; }

 private:
  absl::StatusOr<v1::UnitStepResponse> Step(const Call& call,
                                            const google::protobuf::Message& request,
                                            const std::string& request_id,
                                            const std::string& referral_id, v1::EventType type,
                                            const referral::Fill& fill);

  Database& db_;
  Clock& clock_;
  const UnitOptions options_;
  Outbox outbox_;
  referral::Mirror mirror_;
  referral::Threads threads_;
};

}  // namespace sarloop::racu

#endif  // SARLOOP_SERVICES_RACU_UNIT_H_
