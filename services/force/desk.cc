#include "services/force/desk.h"

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/referral/referral_store.h"
#include "common/referral/rules.h"
#include "common/status.h"
#include "common/validation.h"

namespace sarloop::force {
namespace {

const Migration kMigrations[] = {kEventLogMigration, kReferralStoreMigration};
const Migration kMigrationsAfterAudit[] = {kHeldEventsMigration, kRequestDigestMigration};

// The actor of what the service does by itself (e.g. recording receipt).
v1::Actor ServiceActor(const std::string& code) {
  v1::Actor a;
  a.set_identity(absl::StrCat("spiffe://sarloop/force/", code));
  a.set_user("sarloop");
  return a;
}

}  // namespace

std::span<const Migration> DeskMigrations() { return kMigrations; }
std::span<const Migration> DeskMigrationsAfterAudit() { return kMigrationsAfterAudit; }

Desk::Desk(Database& db, Clock& clock, DeskOptions options, DeliveryWorker* worker,
           std::vector<std::string> peers)
    : db_(db),
      clock_(clock),
      options_(std::move(options)),
      outbox_(db, worker, std::move(peers)),
      mirror_(referral::Receiver{options_.code, false, false}, outbox_, ReferralStoreSaver(clock),
              clock) {}

std::vector<std::string> Desk::Destinations() const {
  std::vector<std::string> d = {referral::kUkfiuCode, kRegisterCode};
  if (!options_.unit.empty()) d.push_back(options_.unit);
  return d;
}

absl::StatusOr<v1::ListInboxResponse> Desk::Inbox(const v1::ListInboxRequest& request) {
  v1::ListInboxResponse response;
  RETURN_IF_ERROR(ReadReferralPage(db_, request.state(), "", request.page_size(),
                                   request.page_token(), response.mutable_referrals(),
                                   response.mutable_next_page_token()));
  return response;
}

absl::StatusOr<v1::GetForceReferralResponse> Desk::Get(const std::string& referral_id) {
  v1::GetForceReferralResponse response;
  RETURN_IF_ERROR(ReadReferralWithEvents(db_, referral_id, response.mutable_referral(),
                                         response.mutable_events()));
  return response;
}

absl::StatusOr<v1::ForceStepResponse> Desk::Step(const Call& call,
                                                 const google::protobuf::Message& request,
                                                 const std::string& request_id,
                                                 const std::string& referral_id, v1::EventType type,
                                                 const referral::Fill& fill) {
  return referral::Step<v1::ForceStepResponse>({db_, clock_, mirror_}, call, request, request_id,
                                               referral_id, type, fill);
}

absl::StatusOr<v1::ForceStepResponse> Desk::Acknowledge(const Call& call,
                                                        const v1::ForceStepRequest& request) {
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_ACKNOWLEDGED,
              [](v1::LifecycleEvent&, v1::Referral&) { return absl::OkStatus(); });
}

absl::StatusOr<v1::ForceStepResponse> Desk::StartResearch(const Call& call,
                                                          const v1::ForceStepRequest& request) {
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_RESEARCH_STARTED,
              [](v1::LifecycleEvent&, v1::Referral&) { return absl::OkStatus(); });
}

absl::StatusOr<v1::ForceStepResponse> Desk::Decline(const Call& call,
                                                    const v1::DeclineReferralRequest& request) {
  RETURN_IF_ERROR(CheckText("reason", request.reason(), 2000, true));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_DECLINED_BY_FORCE, [&](v1::LifecycleEvent& e, v1::Referral&) {
                e.set_reason(request.reason());
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::ForceStepResponse> Desk::Close(const Call& call,
                                                  const v1::CloseReferralRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome(), clock_.Now()));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_CLOSED_BY_FORCE,
              referral::OutcomeFill(request.outcome(), options_.code, /*finishes=*/true));
}

absl::StatusOr<v1::ForceStepResponse> Desk::UpdateOutcome(const Call& call,
                                                          const v1::UpdateOutcomeRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome(), clock_.Now()));
  // The force keeps its own tracks (conduct, vetting) while its unit holds the criminal one.
  return Step(
      call, request, request.request_id(), request.referral_id(), v1::EVENT_TYPE_OUTCOME_UPDATED,
      referral::OutcomeFill(request.outcome(), options_.code, /*finishes=*/false,
                            {v1::REFERRAL_STATE_UNDER_RESEARCH, v1::REFERRAL_STATE_HANDED_OVER,
                             v1::REFERRAL_STATE_JOINT_INVESTIGATION}));
}

absl::StatusOr<v1::ForceStepResponse> Desk::HandOver(const Call& call,
                                                     const v1::HandOverRequest& request) {
  RETURN_IF_ERROR(CheckText("notes", request.notes(), 20000, true));
  RETURN_IF_ERROR(referral::CheckDecision(request.thr(), request.priority()));
  if (options_.unit.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "force ", options_.code, " has no investigating unit configured; close the referral"));
  }
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_HANDED_OVER, [&](v1::LifecycleEvent& e, v1::Referral& r) {
                e.set_unit(options_.unit);
                e.set_priority(request.priority());
                *e.mutable_thr() = request.thr();
                r.mutable_package()->set_handover_notes(request.notes());
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::ForceStepResponse> Desk::ReportProgress(
    const Call& call, const v1::ReportProgressRequest& request) {
  return Step(
      call, request, request.request_id(), request.referral_id(), v1::EVENT_TYPE_PROGRESS_UPDATED,
      referral::ProgressFill(request.status(), request.note(),
                             {v1::REFERRAL_STATE_UNDER_RESEARCH, v1::REFERRAL_STATE_HANDED_OVER,
                              v1::REFERRAL_STATE_JOINT_INVESTIGATION}));
}

absl::Status Desk::Receive(Txn& txn, const Identity& peer, const v1::Envelope& env) {
  ASSIGN_OR_RETURN(referral::Receipt receipt, mirror_.Receive(txn, peer, env));
  if (receipt != referral::Receipt::kApplied || env.event().type() != v1::EVENT_TYPE_DISPATCHED) {
    return absl::OkStatus();
  }
  // A new referral: the service records that it has it.
  v1::LifecycleEvent received =
      NewEvent(v1::EVENT_TYPE_RECEIVED, env.event().referral_id(), options_.code, options_.code,
               ServiceActor(options_.code), clock_.Now());
  return mirror_.Produce(txn, received).status();
}

}  // namespace sarloop::force
