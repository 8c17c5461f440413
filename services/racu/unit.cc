#include "services/racu/unit.h"

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/referral/referral_store.h"
#include "common/referral/rules.h"
#include "common/referral/validation.h"

namespace sarloop::racu {
namespace {
const Migration kMigrations[] = {kEventLogMigration, kReferralStoreMigration};
const Migration kMigrationsAfterAudit[] = {kHeldEventsMigration,           kRequestDigestMigration,
                                           referral::kThreadsMigration,    kFeedMigration,
                                           kMessagingIndexesMigration,     kOpenReferralsMigration,
                                           kOpenReferralsByRangeMigration, kInboxBySenderMigration};
}  // namespace

std::span<const Migration> UnitMigrations() { return kMigrations; }
std::span<const Migration> UnitMigrationsAfterAudit() { return kMigrationsAfterAudit; }

Unit::Unit(Database& db, Clock& clock, UnitOptions options, DeliveryWorker* worker,
           std::vector<std::string> peers)
    : db_(db),
      clock_(clock),
      options_(std::move(options)),
      outbox_(db, worker, std::move(peers)),
      mirror_(referral::Receiver{options_.code, true, false}, outbox_, ReferralStoreSaver(clock),
              clock),
      threads_(db, clock, mirror_) {}

std::vector<std::string> Unit::Destinations() const {
  std::vector<std::string> d = {referral::kUkfiuCode, kRegisterCode};
  d.insert(d.end(), options_.served_forces.begin(), options_.served_forces.end());
  return d;
}

absl::StatusOr<v1::ListHandoversResponse> Unit::Inbox(const v1::ListHandoversRequest& request) {
  v1::ListHandoversResponse response;
  ASSIGN_OR_RETURN(
      ReferralListQuery query,
      StatesQuery(request.state(), request.states(), request.needs_action(),
                  {v1::REFERRAL_STATE_HANDED_OVER, v1::REFERRAL_STATE_JOINT_INVESTIGATION}));
  query.overdue = request.overdue();
  query.escalated = request.escalated();
  RETURN_IF_ERROR(ReadReferralPage(db_, query, clock_.Now(), request.page_size(),
                                   request.page_token(), response.mutable_referrals(),
                                   response.mutable_next_page_token()));
  return response;
}

absl::StatusOr<v1::GetHandoverResponse> Unit::Get(const std::string& referral_id) {
  v1::GetHandoverResponse response;
  RETURN_IF_ERROR(ReadReferralWithEvents(db_, referral_id, response.mutable_referral(),
                                         response.mutable_events()));
  return response;
}

absl::StatusOr<v1::UnitStepResponse> Unit::Step(const Call& call,
                                                const google::protobuf::Message& request,
                                                const std::string& request_id,
                                                const std::string& referral_id, v1::EventType type,
                                                const referral::Fill& fill) {
  return referral::Step<v1::UnitStepResponse>({db_, clock_, mirror_}, call, request, request_id,
                                              referral_id, type, fill);
}

absl::StatusOr<v1::UnitStepResponse> Unit::Accept(const Call& call,
                                                  const v1::AcceptHandoverRequest& request) {
  RETURN_IF_ERROR(referral::CheckDecision(request.thr(), request.priority()));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, [&](v1::LifecycleEvent& e, v1::Referral&) {
                e.set_priority(request.priority());
                *e.mutable_thr() = request.thr();
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::UnitStepResponse> Unit::DeclineAssistance(
    const Call& call, const v1::DeclineAssistanceRequest& request) {
  RETURN_IF_ERROR(CheckText("reason", request.reason(), 2000, true));
  RETURN_IF_ERROR(referral::CheckDecision(request.thr(), request.priority()));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_ASSISTANCE_DECLINED, [&](v1::LifecycleEvent& e, v1::Referral& r) {
                e.set_reason(request.reason());
                e.set_priority(request.priority());
                *e.mutable_thr() = request.thr();
                // Its organisation has nobody to look at it again: a senior manager reviews it.
                if (r.handed_over_on_receipt()) e.set_addressee_identity(options_.decline_reviewer);
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::UnitStepResponse> Unit::RecordOutcome(const Call& call,
                                                         const v1::RecordOutcomeRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome(), clock_.Now()));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_OUTCOME_RECORDED,
              referral::OutcomeFill(request.outcome(), options_.code, /*finishes=*/true));
}

absl::StatusOr<v1::UnitStepResponse> Unit::UpdateOutcome(
    const Call& call, const v1::UpdateUnitOutcomeRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome(), clock_.Now()));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_OUTCOME_UPDATED,
              referral::OutcomeFill(request.outcome(), options_.code, /*finishes=*/false,
                                    {v1::REFERRAL_STATE_JOINT_INVESTIGATION}));
}

absl::StatusOr<v1::UnitStepResponse> Unit::ReportProgress(
    const Call& call, const v1::ReportUnitProgressRequest& request) {
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_PROGRESS_UPDATED,
              referral::ProgressFill(request.status(), request.note(),
                                     {v1::REFERRAL_STATE_JOINT_INVESTIGATION}));
}

absl::Status Unit::Receive(Txn& txn, const Identity& peer, const v1::Envelope& env) {
  // The policy admits only the forces this unit serves (and ukfiu); checked here as well.
  if (peer.kind == "force" && !options_.served_forces.count(peer.org)) {
    return absl::PermissionDeniedError(
        absl::StrCat(peer.uri, ": unit ", options_.code, " does not serve ", peer.org));
  }
  return mirror_.Receive(txn, peer, env).status();
}

}  // namespace sarloop::racu
