#include "services/force/desk.h"

#include "absl/strings/str_cat.h"
#include "common/event_log.h"
#include "common/ids.h"
#include "common/lifecycle.h"
#include "common/messaging.h"
#include "common/referral_store.h"
#include "common/status.h"
#include "common/validation.h"

namespace sarloop::force {
namespace {

const Migration kMigrations[] = {kEventLogMigration, kReferralStoreMigration};

const std::vector<std::string> kReportTo = {"UKFIU", "NCA"};

// The actor of what the service does by itself (e.g. recording receipt).
v1::Actor ServiceActor(const std::string& code) {
  v1::Actor a;
  a.set_identity(absl::StrCat("spiffe://sarloop/force/", code));
  a.set_user("sarloop");
  return a;
}

}  // namespace

std::span<const Migration> DeskMigrations() { return kMigrations; }

Desk::Desk(Database& db, Clock& clock, DeskOptions options)
    : db_(db), clock_(clock), options_(std::move(options)) {}

std::vector<std::string> Desk::Destinations() const {
  std::vector<std::string> d = kReportTo;
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

absl::StatusOr<v1::ForceStepResponse> Desk::Step(const Call& call, const std::string& request_id,
                                                 const std::string& referral_id, v1::EventType type,
                                                 const Fill& fill) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  RETURN_IF_ERROR(CheckReferralId("referral_id", referral_id));
  v1::ForceStepResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request_id, &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Referral referral, LoadReferral(txn, referral_id));
        ASSIGN_OR_RETURN(v1::ReferralState next, NextState(referral.state(), type));
        v1::LifecycleEvent event =
            NewEvent(type, referral_id, options_.code, options_.code, call.actor, now);
        RETURN_IF_ERROR(fill(event, referral));
        RETURN_IF_ERROR(CheckNoSubjectData(event, referral.package().sar()));
        referral.set_state(next);
        RETURN_IF_ERROR(SaveReferral(txn, referral, now));
        std::vector<std::string> destinations = kReportTo;
        const v1::ReferralPackage* package = nullptr;
        if (type == v1::EVENT_TYPE_HANDED_OVER) {
          destinations.push_back(options_.unit);
          package = &referral.package();
        }
        RETURN_IF_ERROR(Emit(txn, event, destinations, now, package, options_.unit));
        *response.mutable_referral() = referral;
        response.mutable_referral()->clear_package();
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::ForceStepResponse> Desk::Acknowledge(const Call& call,
                                                        const v1::ForceStepRequest& request) {
  return Step(call, request.request_id(), request.referral_id(), v1::EVENT_TYPE_ACKNOWLEDGED,
              [](v1::LifecycleEvent&, v1::Referral&) { return absl::OkStatus(); });
}

absl::StatusOr<v1::ForceStepResponse> Desk::StartResearch(const Call& call,
                                                          const v1::ForceStepRequest& request) {
  return Step(call, request.request_id(), request.referral_id(), v1::EVENT_TYPE_RESEARCH_STARTED,
              [](v1::LifecycleEvent&, v1::Referral&) { return absl::OkStatus(); });
}

absl::StatusOr<v1::ForceStepResponse> Desk::Decline(const Call& call,
                                                    const v1::DeclineReferralRequest& request) {
  RETURN_IF_ERROR(CheckText("reason", request.reason(), 2000, true));
  return Step(call, request.request_id(), request.referral_id(), v1::EVENT_TYPE_DECLINED_BY_FORCE,
              [&](v1::LifecycleEvent& e, v1::Referral& r) {
                e.set_reason(request.reason());
                r.set_reason(request.reason());
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::ForceStepResponse> Desk::Close(const Call& call,
                                                  const v1::CloseReferralRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome()));
  return Step(call, request.request_id(), request.referral_id(), v1::EVENT_TYPE_CLOSED_BY_FORCE,
              [&](v1::LifecycleEvent& e, v1::Referral& r) {
                *e.mutable_outcome() = request.outcome();
                e.mutable_outcome()->set_investigating_org(options_.code);
                *r.mutable_outcome() = e.outcome();
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::ForceStepResponse> Desk::HandOver(const Call& call,
                                                     const v1::HandOverRequest& request) {
  RETURN_IF_ERROR(CheckText("notes", request.notes(), 20000, true));
  if (options_.unit.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "force ", options_.code, " has no investigating unit configured; close the referral"));
  }
  return Step(call, request.request_id(), request.referral_id(), v1::EVENT_TYPE_HANDED_OVER,
              [&](v1::LifecycleEvent& e, v1::Referral& r) {
                e.set_unit(options_.unit);
                r.set_unit(options_.unit);
                r.mutable_package()->set_handover_notes(request.notes());
                return absl::OkStatus();
              });
}

absl::Status Desk::ReceiveDispatch(Txn& txn, const v1::Envelope& env) {
  const v1::LifecycleEvent& ev = env.event();
  if (ev.organisation() != options_.code) {
    return absl::FailedPreconditionError(
        absl::StrCat("referral addressed to ", ev.organisation(), ", this is ", options_.code));
  }
  if (!env.has_package()) return FieldError("package", "is required with DISPATCHED");
  ASSIGN_OR_RETURN(bool exists, HasReferral(txn, ev.referral_id()));
  if (exists) return absl::FailedPreconditionError("referral already received");
  const absl::Time now = clock_.Now();
  v1::Referral r;
  r.set_referral_id(ev.referral_id());
  r.set_sar_id(env.package().sar().sar_id());
  r.set_organisation(options_.code);
  r.set_state(v1::REFERRAL_STATE_RECEIVED);
  *r.mutable_dispatched_at() = ev.occurred_at();
  *r.mutable_due_at() = ev.due_at();
  *r.mutable_thr() = ev.thr();
  r.set_linked_referral_id(ev.linked_referral_id());
  *r.mutable_package() = env.package();
  r.mutable_deconfliction_with()->CopyFrom(env.package().deconfliction_with());
  RETURN_IF_ERROR(SaveReferral(txn, r, now));
  RETURN_IF_ERROR(AppendEvent(txn, ev).status());
  v1::LifecycleEvent received = NewEvent(v1::EVENT_TYPE_RECEIVED, ev.referral_id(), options_.code,
                                         options_.code, ServiceActor(options_.code), now);
  return Emit(txn, received, kReportTo, now);
}

absl::Status Desk::Receive(Txn& txn, const Identity& peer, const v1::Envelope& env) {
  const v1::LifecycleEvent& ev = env.event();
  const bool from_ukfiu = peer.kind == "ukfiu";
  const bool from_unit = peer.kind == "racu" && peer.org == options_.unit;
  switch (ev.type()) {
    case v1::EVENT_TYPE_DISPATCHED:
      if (!from_ukfiu) break;
      return ReceiveDispatch(txn, env);
    case v1::EVENT_TYPE_WITHDRAWN:
    case v1::EVENT_TYPE_REDIRECTED:
    case v1::EVENT_TYPE_REMINDER_SENT:
    case v1::EVENT_TYPE_ESCALATED:
    case v1::EVENT_TYPE_DECONFLICTION_FLAG:
    case v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG:
      if (!from_ukfiu) break;
      [[fallthrough]];
    case v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED:
    case v1::EVENT_TYPE_ASSISTANCE_DECLINED:
    case v1::EVENT_TYPE_OUTCOME_RECORDED: {
      if (!from_ukfiu && !from_unit) break;
      if (env.has_package()) return FieldError("package", "is only accepted with DISPATCHED");
      ASSIGN_OR_RETURN(v1::Referral r, LoadReferral(txn, ev.referral_id()));
      ASSIGN_OR_RETURN(bool is_new, AppendEvent(txn, ev));
      if (!is_new) return absl::OkStatus();
      if (ev.type() == v1::EVENT_TYPE_REMINDER_SENT) r.set_reminders(r.reminders() + 1);
      if (ev.type() == v1::EVENT_TYPE_ESCALATED) r.set_escalated(true);
      for (const std::string& org : ev.other_organisations()) r.add_deconfliction_with(org);
      // A step the referral has moved past (e.g. the unit's outcome after a withdrawal) is kept
      // in the timeline but does not change the state.
      absl::StatusOr<v1::ReferralState> next = NextState(r.state(), ev.type());
      if (next.ok()) {
        r.set_state(*next);
        if (!ev.reason().empty()) r.set_reason(ev.reason());
        if (ev.has_outcome()) *r.mutable_outcome() = ev.outcome();
        if (!ev.linked_referral_id().empty()) r.set_linked_referral_id(ev.linked_referral_id());
      }
      return SaveReferral(txn, r, clock_.Now());
    }
    default:
      break;
  }
  return absl::PermissionDeniedError(
      absl::StrCat(peer.uri, " may not send ", EventName(ev.type()), " to force ", options_.code));
}

}  // namespace sarloop::force
