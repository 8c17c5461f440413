#include "services/racu/unit.h"

#include "absl/strings/str_cat.h"
#include "common/event_log.h"
#include "common/ids.h"
#include "common/lifecycle.h"
#include "common/messaging.h"
#include "common/referral_store.h"
#include "common/status.h"
#include "common/validation.h"

namespace sarloop::racu {
namespace {
const Migration kMigrations[] = {kEventLogMigration, kReferralStoreMigration};
}  // namespace

std::span<const Migration> UnitMigrations() { return kMigrations; }

Unit::Unit(Database& db, Clock& clock, UnitOptions options)
    : db_(db), clock_(clock), options_(std::move(options)) {}

std::vector<std::string> Unit::Destinations() const {
  std::vector<std::string> d = {"UKFIU", "NCA"};
  d.insert(d.end(), options_.served_forces.begin(), options_.served_forces.end());
  return d;
}

absl::StatusOr<v1::ListHandoversResponse> Unit::Inbox(const v1::ListHandoversRequest& request) {
  v1::ListHandoversResponse response;
  RETURN_IF_ERROR(ReadReferralPage(db_, request.state(), "", request.page_size(),
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

absl::StatusOr<v1::UnitStepResponse> Unit::Step(const Call& call, const std::string& request_id,
                                                const std::string& referral_id, v1::EventType type,
                                                const Fill& fill) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  RETURN_IF_ERROR(CheckReferralId("referral_id", referral_id));
  v1::UnitStepResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request_id, &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Referral r, LoadReferral(txn, referral_id));
        ASSIGN_OR_RETURN(v1::ReferralState next, NextState(r.state(), type));
        // The event is about the force's referral: addressed to the force, produced by the unit.
        v1::LifecycleEvent event =
            NewEvent(type, referral_id, options_.code, r.organisation(), call.actor, now);
        event.set_unit(options_.code);
        fill(event, r);
        RETURN_IF_ERROR(CheckNoSubjectData(event, r.package().sar()));
        r.set_state(next);
        RETURN_IF_ERROR(SaveReferral(txn, r, now));
        RETURN_IF_ERROR(Emit(txn, event, {"UKFIU", "NCA", r.organisation()}, now));
        *response.mutable_referral() = r;
        response.mutable_referral()->clear_package();
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::UnitStepResponse> Unit::Accept(const Call& call,
                                                  const v1::AcceptHandoverRequest& request) {
  return Step(call, request.request_id(), request.referral_id(),
              v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, [](auto&, auto&) {});
}

absl::StatusOr<v1::UnitStepResponse> Unit::DeclineAssistance(
    const Call& call, const v1::DeclineAssistanceRequest& request) {
  RETURN_IF_ERROR(CheckText("reason", request.reason(), 2000, true));
  return Step(call, request.request_id(), request.referral_id(), v1::EVENT_TYPE_ASSISTANCE_DECLINED,
              [&](v1::LifecycleEvent& e, v1::Referral& r) {
                e.set_reason(request.reason());
                r.set_reason(request.reason());
              });
}

absl::StatusOr<v1::UnitStepResponse> Unit::RecordOutcome(const Call& call,
                                                         const v1::RecordOutcomeRequest& request) {
  RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome()));
  return Step(call, request.request_id(), request.referral_id(), v1::EVENT_TYPE_OUTCOME_RECORDED,
              [&](v1::LifecycleEvent& e, v1::Referral& r) {
                *e.mutable_outcome() = request.outcome();
                e.mutable_outcome()->set_investigating_org(options_.code);
                *r.mutable_outcome() = e.outcome();
              });
}

absl::Status Unit::Receive(Txn& txn, const Identity& peer, const v1::Envelope& env) {
  const v1::LifecycleEvent& ev = env.event();
  if (peer.kind == "ukfiu" &&
      (ev.type() == v1::EVENT_TYPE_WITHDRAWN || ev.type() == v1::EVENT_TYPE_REDIRECTED)) {
    return ReceiveEnding(txn, env);
  }
  if (ev.type() != v1::EVENT_TYPE_HANDED_OVER || peer.kind != "force" ||
      !options_.served_forces.count(peer.org)) {
    return absl::PermissionDeniedError(
        absl::StrCat(peer.uri, " may not send ", EventName(ev.type()), " to unit ", options_.code));
  }
  if (ev.unit() != options_.code) {
    return absl::FailedPreconditionError(
        absl::StrCat("handover addressed to ", ev.unit(), ", this is ", options_.code));
  }
  if (ev.organisation() != peer.org) {
    return absl::PermissionDeniedError("a force may hand over only its own referrals");
  }
  if (!env.has_package()) return FieldError("package", "is required with HANDED_OVER");
  ASSIGN_OR_RETURN(bool is_new, AppendEvent(txn, ev));
  if (!is_new) return absl::OkStatus();
  // A force may hand the same referral over again after this unit declined it.
  v1::Referral r;
  auto existing = LoadReferral(txn, ev.referral_id());
  if (existing.ok()) {
    r = *existing;
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  r.set_referral_id(ev.referral_id());
  r.set_sar_id(env.package().sar().sar_id());
  r.set_organisation(ev.organisation());
  r.set_state(v1::REFERRAL_STATE_HANDED_OVER);
  r.set_unit(options_.code);
  *r.mutable_dispatched_at() = env.package().dispatched_at();
  *r.mutable_due_at() = env.package().due_at();
  *r.mutable_thr() = env.package().thr();
  *r.mutable_package() = env.package();
  r.mutable_deconfliction_with()->CopyFrom(env.package().deconfliction_with());
  return SaveReferral(txn, r, clock_.Now());
}

absl::Status Unit::ReceiveEnding(Txn& txn, const v1::Envelope& env) {
  const v1::LifecycleEvent& ev = env.event();
  if (env.has_package()) return FieldError("package", "is only accepted with HANDED_OVER");
  auto held = LoadReferral(txn, ev.referral_id());
  // UKFIU tells the unit its mirror last saw; a unit that never held it has nothing to end.
  if (absl::IsNotFound(held.status())) return absl::OkStatus();
  if (!held.ok()) return held.status();
  v1::Referral r = *held;
  ASSIGN_OR_RETURN(bool is_new, AppendEvent(txn, ev));
  if (!is_new) return absl::OkStatus();
  absl::StatusOr<v1::ReferralState> next = NextState(r.state(), ev.type());
  if (!next.ok()) return absl::OkStatus();  // it had already ended here
  r.set_state(*next);
  r.set_reason(ev.reason());
  return SaveReferral(txn, r, clock_.Now());
}

}  // namespace sarloop::racu
