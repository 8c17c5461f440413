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
#include "common/call.h"
#include "common/clock.h"
#include "common/identity.h"
#include "common/storage.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/racu.pb.h"

namespace sarloop::racu {

std::span<const Migration> UnitMigrations();

struct UnitOptions {
  // This unit's code, e.g. "ERSOU".
  std::string code;
  // The forces it takes handovers from.
  std::set<std::string> served_forces;
};

class Unit {
 public:
  Unit(Database& db, Clock& clock, UnitOptions options);

  absl::StatusOr<v1::ListHandoversResponse> Inbox(const v1::ListHandoversRequest& request);
  absl::StatusOr<v1::GetHandoverResponse> Get(const std::string& referral_id);

  // NOT_FOUND for an unknown handover; FAILED_PRECONDITION naming the state for a wrong one.
  absl::StatusOr<v1::UnitStepResponse> Accept(const Call& call,
                                              const v1::AcceptHandoverRequest& request);
  absl::StatusOr<v1::UnitStepResponse> DeclineAssistance(
      const Call& call, const v1::DeclineAssistanceRequest& request);
  absl::StatusOr<v1::UnitStepResponse> RecordOutcome(const Call& call,
                                                     const v1::RecordOutcomeRequest& request);

  // Applies one envelope from a served force (HANDED_OVER with its package), or from ukfiu
  // (WITHDRAWN or REDIRECTED of a referral this unit holds).
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);

  // Every destination this unit sends to: UKFIU, NCA and the served forces.
  std::vector<std::string> Destinations() const;

 private:
  using Fill = std::function<void(v1::LifecycleEvent&, v1::Referral&)>;
  absl::StatusOr<v1::UnitStepResponse> Step(const Call& call, const std::string& request_id,
                                            const std::string& referral_id, v1::EventType type,
                                            const Fill& fill);

  absl::Status ReceiveEnding(Txn& txn, const v1::Envelope& envelope);

  Database& db_;
  Clock& clock_;
  const UnitOptions options_;
};

}  // namespace sarloop::racu

#endif  // SARLOOP_SERVICES_RACU_UNIT_H_
