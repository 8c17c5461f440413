#include "services/force/desk.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/referral/referral_store.h"
#include "common/referral/rules.h"
#include "common/referral/validation.h"

namespace sarloop::force {
namespace {

const Migration kMigrations[] = {kEventLogMigration, kReferralStoreMigration};
const Migration kMigrationsAfterAudit[] = {kHeldEventsMigration,           kRequestDigestMigration,
                                           referral::kThreadsMigration,    kFeedMigration,
                                           kMessagingIndexesMigration,     kOpenReferralsMigration,
                                           kOpenReferralsByRangeMigration, kInboxBySenderMigration};

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
              clock),
      threads_(db, clock, mirror_) {}

std::vector<std::string> Desk::Destinations() const {
  std::vector<std::string> d = {referral::kUkfiuCode, kRegisterCode};
  d.insert(d.end(), options_.units.begin(), options_.units.end());
  return d;
}

absl::StatusOr<v1::ListInboxResponse> Desk::Inbox(const v1::ListInboxRequest& request) {
  v1::ListInboxResponse response;
  ASSIGN_OR_RETURN(ReferralListQuery query,
                   StatesQuery(request.state(), request.states(), request.needs_action(),
                               {v1::REFERRAL_STATE_RECEIVED, v1::REFERRAL_STATE_ACKNOWLEDGED,
                                v1::REFERRAL_STATE_UNDER_RESEARCH}));
  query.overdue = request.overdue();
  query.escalated = request.escalated();
  RETURN_IF_ERROR(ReadReferralPage(db_, query, clock_.Now(), request.page_size(),
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
  if (!request.categories().empty()) {
    return FieldError("categories", "are recorded with StartResearch, not Acknowledge");
  }
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_ACKNOWLEDGED,
              [](v1::LifecycleEvent&, v1::Referral&) { return absl::OkStatus(); });
}

absl::StatusOr<v1::ForceStepResponse> Desk::StartResearch(const Call& call,
                                                          const v1::ForceStepRequest& request) {
  RETURN_IF_ERROR(CheckCategories("categories", request.categories()));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_RESEARCH_STARTED, [&](v1::LifecycleEvent& e, v1::Referral&) {
                e.mutable_categories()->CopyFrom(request.categories());
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::ForceStepResponse> Desk::Decline(const Call& call,
                                                    const v1::DeclineReferralRequest& request) {
  RETURN_IF_ERROR(referral::CheckDecline(
      request.reason_code(), request.reason(), request.named_organisation(), options_.code,
      options_.reference ? *options_.reference : ReferenceData::BuiltIn()));
  return Step(
      call, request, request.request_id(), request.referral_id(), v1::EVENT_TYPE_DECLINED_BY_FORCE,
      referral::DeclineFill(request.reason_code(), request.reason(), request.named_organisation()));
}

absl::StatusOr<v1::ForceStepResponse> Desk::Close(const Call& call,
                                                  const v1::CloseReferralRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome(), clock_.Now()));
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_CLOSED_BY_FORCE, OutcomeStep(request.outcome(), /*finishes=*/true));
}

referral::Fill Desk::OutcomeStep(const v1::Outcome& outcome, bool finishes,
                                 std::vector<v1::ReferralState> holding) const {
  return [=, code = options_.code](v1::LifecycleEvent& e, v1::Referral& r) {
    // The IOPC investigates independently: it is the investigating body.
    const std::string by = r.iopc_mode() == v1::IOPC_MODE_INDEPENDENT ? "IOPC" : code;
    return referral::OutcomeFill(outcome, by, finishes, holding)(e, r);
  };
}

absl::StatusOr<v1::ForceStepResponse> Desk::ReferToIopc(const Call& call,
                                                        const v1::ReferToIopcRequest& request) {
  if (!v1::IopcMode_IsValid(request.mode())) return FieldError("mode", "is not an IOPC mode");
  const v1::IopcMode mode = request.mode();
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_REFERRED_TO_IOPC, [mode](v1::LifecycleEvent& e, v1::Referral& r) {
                if (r.state() == v1::REFERRAL_STATE_RECEIVED) {
                  return absl::FailedPreconditionError(
                      "acknowledge the referral before recording a referral to the IOPC");
                }
                if (mode == v1::IOPC_MODE_UNSPECIFIED && r.referred_to_iopc()) {
                  return absl::FailedPreconditionError(
                      absl::StrCat(r.referral_id(), " is referred to the IOPC already"));
                }
                if (mode != v1::IOPC_MODE_UNSPECIFIED && !r.referred_to_iopc()) {
                  return absl::FailedPreconditionError(
                      "the IOPC decides a mode for a matter referred to it: record the referral "
                      "first (mode unset)");
                }
                e.set_iopc_mode(mode);
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::ForceStepResponse> Desk::UpdateOutcome(const Call& call,
                                                          const v1::UpdateOutcomeRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome(), clock_.Now()));
  // The force keeps its own tracks (conduct, vetting) while its unit holds the criminal one.
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_OUTCOME_UPDATED,
              OutcomeStep(request.outcome(), /*finishes=*/false,
                          {v1::REFERRAL_STATE_UNDER_RESEARCH, v1::REFERRAL_STATE_HANDED_OVER,
                           v1::REFERRAL_STATE_JOINT_INVESTIGATION}));
}

absl::StatusOr<v1::ForceStepResponse> Desk::HandOver(const Call& call,
                                                     const v1::HandOverRequest& request) {
  RETURN_IF_ERROR(CheckText("notes", request.notes(), 20000, true));
  RETURN_IF_ERROR(referral::CheckDecision(request.thr(), request.priority()));
  if (options_.units.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "force ", options_.code, " has no investigating unit configured; close the referral"));
  }
  const std::string unit = request.unit().empty() ? options_.units.front() : request.unit();
  if (std::find(options_.units.begin(), options_.units.end(), unit) == options_.units.end()) {
    return FieldError("unit",
                      absl::StrCat("force ", options_.code, " does not hand over to '", unit,
                                   "'; it may choose ", absl::StrJoin(options_.units, ", ")));
  }
  return Step(call, request, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_HANDED_OVER, [&](v1::LifecycleEvent& e, v1::Referral& r) {
                // A force's own handover follows its research (only a force without an
                // anti-corruption department hands over on receipt, by itself).
                if (r.state() != v1::REFERRAL_STATE_UNDER_RESEARCH) {
                  return absl::FailedPreconditionError(absl::StrCat(
                      "a handover follows research; the referral is ", StateName(r.state())));
                }
                e.set_unit(unit);
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
  const absl::Time now = clock_.Now();
  v1::LifecycleEvent received =
      NewEvent(v1::EVENT_TYPE_RECEIVED, env.event().referral_id(), options_.code, options_.code,
               ServiceActor(options_.code), now);
  ASSIGN_OR_RETURN(const v1::RegisterEntry folded, mirror_.Produce(txn, received));
  // Not when UKFIU withdrew or redirected it before it arrived: the package stays here.
  if (!options_.hand_over_on_receipt || folded.state() != v1::REFERRAL_STATE_RECEIVED) {
    return absl::OkStatus();
  }
  // No anti-corruption department here: the unit researches and assesses it from the start.
  v1::LifecycleEvent handed =
      NewEvent(v1::EVENT_TYPE_HANDED_OVER, env.event().referral_id(), options_.code, options_.code,
               ServiceActor(options_.code), now);
  handed.set_unit(options_.units.front());
  handed.set_on_receipt(true);
  handed.set_reason(absl::StrCat(options_.code, " has no anti-corruption department of its own: ",
                                 options_.units.front(), " handles its referrals from the start"));
  ASSIGN_OR_RETURN(v1::Referral copy, LoadReferral(txn, handed.referral_id()));
  return mirror_.Produce(txn, handed, &copy.package(), &copy).status();
}

}  // namespace sarloop::force
