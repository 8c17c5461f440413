// The force's Single Point of Contact desk: its inbox of referrals and the steps DESIGN §3 allows
// a force (acknowledge, research, decline, close, hand over), plus what it takes in from ukfiu and
// from its unit. Pure logic over a Database; force_service is the gRPC layer.
//
// Every referral in this service is addressed to this force: a DISPATCHED envelope naming another
// organisation is rejected, so no other force's referral is ever stored here.
#ifndef SARLOOP_SERVICES_FORCE_DESK_H_
#define SARLOOP_SERVICES_FORCE_DESK_H_

#include <functional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "common/call.h"
#include "common/clock.h"
#include "common/identity.h"
#include "common/storage.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/force.pb.h"

namespace sarloop::force {

std::span<const Migration> DeskMigrations();

struct DeskOptions {
  // This force's code, e.g. "NFK".
  std::string code;
  // The unit it hands over to; empty when the force closes referrals itself.
  std::string unit;
};

class Desk {
 public:
  Desk(Database& db, Clock& clock, DeskOptions options);

  absl::StatusOr<v1::ListInboxResponse> Inbox(const v1::ListInboxRequest& request);
  absl::StatusOr<v1::GetForceReferralResponse> Get(const std::string& referral_id);

  // The steps. `call.actor` is who acts; `scope` keys request_id idempotency (method and caller).
  // INVALID_ARGUMENT names the field; NOT_FOUND for an unknown referral; FAILED_PRECONDITION
  // names the current state when the step is not allowed from it.
  absl::StatusOr<v1::ForceStepResponse> Acknowledge(const Call& call,
                                                    const v1::ForceStepRequest& request);
  absl::StatusOr<v1::ForceStepResponse> StartResearch(const Call& call,
                                                      const v1::ForceStepRequest& request);
  absl::StatusOr<v1::ForceStepResponse> Decline(const Call& call,
                                                const v1::DeclineReferralRequest& request);
  absl::StatusOr<v1::ForceStepResponse> Close(const Call& call,
                                              const v1::CloseReferralRequest& request);
  absl::StatusOr<v1::ForceStepResponse> HandOver(const Call& call,
                                                 const v1::HandOverRequest& request);

  // Applies one envelope from ukfiu or this force's unit, inside the delivery transaction.
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);

  // Destinations this service sends to (for the delivery worker).
  std::vector<std::string> Destinations() const;

 private:
  using Fill = std::function<absl::Status(v1::LifecycleEvent&, v1::Referral&)>;
  absl::StatusOr<v1::ForceStepResponse> Step(const Call& call, const std::string& request_id,
                                             const std::string& referral_id, v1::EventType type,
                                             const Fill& fill);
  absl::Status ReceiveDispatch(Txn& txn, const v1::Envelope& envelope);

  Database& db_;
  Clock& clock_;
  const DeskOptions options_;
};

}  // namespace sarloop::force

#endif  // SARLOOP_SERVICES_FORCE_DESK_H_
