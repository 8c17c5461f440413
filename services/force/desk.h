// The force's Single Point of Contact desk: its inbox of referrals and the steps the rules table
// gives the organisation a referral is addressed to (acknowledge, research, decline, close, hand
// over), plus what it takes in from ukfiu and from its unit, all through the referral layer
// (common/referral: one Step, one Mirror). Logic over a Database and a Clock; main.cc is the gRPC
// layer.
//
// Every referral in this service is addressed to this force: a DISPATCHED envelope naming another
// organisation is refused, so no other force's referral is ever stored here.
#ifndef SARLOOP_SERVICES_FORCE_DESK_H_
#define SARLOOP_SERVICES_FORCE_DESK_H_

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/messaging/messaging.h"
#include "common/reference/reference.h"
#include "common/referral/mirror.h"
#include "common/referral/step.h"
#include "common/referral/threads.h"
#include "common/rpc/call.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/force.pb.h"

namespace sarloop::force {

// The desk's schema: before the audit log, and after it (ServiceMigrations).
std::span<const Migration> DeskMigrations();
std::span<const Migration> DeskMigrationsAfterAudit();

struct DeskOptions {
  // This force's code, e.g. "NFK".
  std::string code;
  // The units it may hand over to, the default (used when a handover names none) first; empty
  // when the force closes referrals itself.
  std::vector<std::string> units;
  // Every referral is handed to units[0] as it arrives (no anti-corruption department of its
  // own: ServiceConfig.hand_over_on_receipt).
  bool hand_over_on_receipt = false;
  // The organisations a decline may name as the employer; null: the copy built into the binary.
  const ReferenceData* reference = nullptr;
};

class Desk {
 public:
  // `worker` (may be null in tests) is woken for what a committed step sends; `peers` are the
  // destinations the service has a peer for (empty: any).
  Desk(Database& db, Clock& clock, DeskOptions options, DeliveryWorker* worker = nullptr,
       std::vector<std::string> peers = {});

  absl::StatusOr<v1::ListInboxResponse> Inbox(const v1::ListInboxRequest& request);
  absl::StatusOr<v1::GetForceReferralResponse> Get(const std::string& referral_id);

  // The steps. `call.actor` is who acts; `call.scope` keys request_id idempotency (method and
  // caller). INVALID_ARGUMENT names the field; NOT_FOUND for an unknown referral;
  // FAILED_PRECONDITION names the current state when the step is not allowed from it.
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
  absl::StatusOr<v1::ForceStepResponse> UpdateOutcome(const Call& call,
                                                      const v1::UpdateOutcomeRequest& request);
  absl::StatusOr<v1::ForceStepResponse> ReportProgress(const Call& call,
                                                       const v1::ReportProgressRequest& request);
  absl::StatusOr<v1::ForceStepResponse> ReferToIopc(const Call& call,
                                                    const v1::ReferToIopcRequest& request);

  // Applies one envelope from ukfiu or this force's unit, inside the delivery transaction, as
  // the rules table allows (referral::Mirror::Receive); a new referral is recorded as RECEIVED.
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);

  // The destinations a force needs a peer for: UKFIU, the NCA, and its unit when it has one.
  std::vector<std::string> Destinations() const;

  // Requests for information with UKFIU and the units (threads.h).
  referral::Threads& threads() { return threads_; }

 private:
  absl::StatusOr<v1::ForceStepResponse> Step(const Call& call,
                                             const google::protobuf::Message& request,
                                             const std::string& request_id,
                                             const std::string& referral_id, v1::EventType type,
                                             const referral::Fill& fill);

  // An outcome step's Fill: the investigating body is this force, or the IOPC when it
  // investigates independently.
  referral::Fill OutcomeStep(const v1::Outcome& outcome, bool finishes,
                             std::vector<v1::ReferralState> holding = {}) const;

  Database& db_;
  Clock& clock_;
  const DeskOptions options_;
  Outbox outbox_;
  referral::Mirror mirror_;
  referral::Threads threads_;
};

}  // namespace sarloop::force

#endif  // SARLOOP_SERVICES_FORCE_DESK_H_
