#include "common/referral/step.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/referral/referral_store.h"
#include "common/referral/validation.h"

namespace sarloop::referral {

absl::Status TakeStep(const Stepper& stepper, const Call& call,
                      const google::protobuf::Message& request, const std::string& request_id,
                      const std::string& referral_id, v1::EventType type, const Fill& fill,
                      google::protobuf::Message* response, v1::Referral* referral) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  RETURN_IF_ERROR(CheckReferralId("referral_id", referral_id));
  const EventRule* rule = RuleFor(type);
  const Receiver& self = stepper.mirror.self();
  const bool unit_step = rule != nullptr && (rule->producer == Producer::kUnit ||
                                             (rule->producer == Producer::kHolder && self.is_unit));
  if (rule == nullptr || rule->producer == Producer::kUkfiu || unit_step != self.is_unit) {
    return absl::InternalError(absl::StrCat(EventName(type), " is not a step for ", self.code));
  }
  const absl::Time now = stepper.clock.Now();
  return RunIdempotent(
      stepper.db, call.scope, request, request_id, response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Referral copy, LoadReferral(txn, referral_id));
        RETURN_IF_ERROR(NextState(copy.state(), type).status());
        // Addressed to the force whichever of the two produces it; a unit's carries the unit.
        v1::LifecycleEvent event =
            NewEvent(type, referral_id, self.code, copy.organisation(), call.actor, now);
        if (unit_step) event.set_unit(self.code);
        RETURN_IF_ERROR(fill(event, copy));
        RETURN_IF_ERROR(CheckNoSubjectData(event, copy.package().sar()));
        RETURN_IF_ERROR(
            stepper.mirror.Produce(txn, event, rule->package_to ? &copy.package() : nullptr, &copy)
                .status());
        copy.clear_package();
        *referral = std::move(copy);
        return absl::OkStatus();
      },
      now, call.audit);
}

namespace {
absl::Status CheckHolding(const std::vector<v1::ReferralState>& holding, const v1::Referral& copy,
                          absl::string_view what) {
  if (std::find(holding.begin(), holding.end(), copy.state()) != holding.end()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      what, " is not taken in state ", StateName(copy.state()), " (", copy.referral_id(), ")"));
}
}  // namespace

absl::Status CheckDecision(const v1::ThrAssessment& thr, v1::Priority priority) {
  RETURN_IF_ERROR(CheckThr("thr", thr));
  if (priority == v1::PRIORITY_UNSPECIFIED || !v1::Priority_IsValid(priority)) {
    return FieldError("priority", "is required: P1 to P4");
  }
  return absl::OkStatus();
}

absl::Status CheckDecline(v1::DeclineReason code, const std::string& reason,
                          const std::string& named_organisation, const std::string& addressee,
                          const ReferenceData& reference) {
  if (code == v1::DECLINE_REASON_UNSPECIFIED || !v1::DeclineReason_IsValid(code)) {
    return FieldError("reason_code", "is required: why the force declines, as a code");
  }
  if (code == v1::DECLINE_REASON_FORMER_EMPLOYEE) {
    return FieldError("reason_code",
                      "FORMER_EMPLOYEE is no reason to decline: a former employee's referral stays "
                      "with the force that employed them (close it with a barred or advisory list "
                      "outcome, or as intelligence only)");
  }
  RETURN_IF_ERROR(CheckText("reason", reason, 2000, code == v1::DECLINE_REASON_OTHER));
  if (code == v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION) {
    if (named_organisation.empty()) {
      return FieldError("named_organisation", "is required: the organisation that employs them");
    }
    if (named_organisation == addressee || !reference.FindOrganisation(named_organisation)) {
      return FieldError("named_organisation",
                        absl::StrCat("'", named_organisation,
                                     "' is not another organisation in the reference data"));
    }
  } else if (!named_organisation.empty()) {
    return FieldError("named_organisation", "is only for EMPLOYEE_OF_ANOTHER_ORGANISATION");
  }
  return absl::OkStatus();
}

Fill DeclineFill(v1::DeclineReason code, const std::string& reason,
                 const std::string& named_organisation) {
  return [=](v1::LifecycleEvent& e, v1::Referral& r) -> absl::Status {
    // "Not ours" needs no research; every other reason comes from it.
    const bool not_ours = code == v1::DECLINE_REASON_NOT_OUR_EMPLOYEE ||
                          code == v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION;
    if (!not_ours && r.state() != v1::REFERRAL_STATE_UNDER_RESEARCH) {
      return absl::FailedPreconditionError(
          absl::StrCat("only 'not our employee' or 'employee of another organisation' may be "
                       "given before research; the referral is ",
                       StateName(r.state())));
    }
    e.set_reason(reason);
    e.set_decline_reason(code);
    e.set_named_organisation(named_organisation);
    return absl::OkStatus();
  };
}

Fill ProgressFill(v1::ProgressStatus status, const std::string& note,
                  std::vector<v1::ReferralState> holding) {
  return [status, note, holding = std::move(holding)](v1::LifecycleEvent& event,
                                                      v1::Referral& copy) -> absl::Status {
    if (status == v1::PROGRESS_STATUS_UNSPECIFIED || !v1::ProgressStatus_IsValid(status)) {
      return FieldError("status", "is required");
    }
    RETURN_IF_ERROR(CheckText("note", note, 500, false));
    RETURN_IF_ERROR(CheckHolding(holding, copy, "a progress update"));
    event.set_progress(status);
    event.set_reason(note);
    return absl::OkStatus();
  };
}

Fill OutcomeFill(const v1::Outcome& outcome, const std::string& investigating_org, bool finishes,
                 std::vector<v1::ReferralState> holding) {
  return [outcome, investigating_org, finishes, holding = std::move(holding)](
             v1::LifecycleEvent& event, v1::Referral& copy) -> absl::Status {
    if (finishes) {
      RETURN_IF_ERROR(CheckCanFinish(copy.tracks(), outcome));
    } else {
      RETURN_IF_ERROR(CheckHolding(holding, copy, "an outcome update"));
    }
    v1::Outcome* o = event.mutable_outcome();
    *o = outcome;
    UpgradeOutcome(*o);
    o->set_investigating_org(investigating_org);
    return absl::OkStatus();
  };
}

}  // namespace sarloop::referral
