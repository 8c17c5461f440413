#include "common/referral/outcomes.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/referral/validation.h"

namespace sarloop {
namespace {

using T = v1::OutcomeType;
using R = v1::MisconductResult;
using F = v1::ConductFinding;

// The value management advice had before the 2020 Regulations abolished it.
constexpr int kManagementAdvice = 2;

bool In(int value, const std::vector<int>& set) {
  return std::find(set.begin(), set.end(), value) != set.end();
}

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

bool IsForum(T type) {
  return In(type, std::vector<int>{v1::OUTCOME_TYPE_MISCONDUCT_MEETING,
                                   v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
                                   v1::OUTCOME_TYPE_ACCELERATED_HEARING});
}

// Reg 42: the actions open to a forum on a finding. Gross misconduct is for a hearing; an
// accelerated hearing (reg 49) hears gross misconduct only; reduction in rank and dismissal
// for misconduct (not gross) need a final written warning in force (reg 42(5)/(6)), which only a
// hearing can act on.
std::vector<int> ActionsFor(T forum, F finding) {
  const std::vector<int> kNone;
  switch (finding) {
    case v1::CONDUCT_FINDING_NONE:
      return {v1::MISCONDUCT_RESULT_NOT_PROVEN, v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW};
    case v1::CONDUCT_FINDING_MISCONDUCT:
      if (forum == v1::OUTCOME_TYPE_ACCELERATED_HEARING) return kNone;
      if (forum == v1::OUTCOME_TYPE_MISCONDUCT_MEETING) {
        return {v1::MISCONDUCT_RESULT_WRITTEN_WARNING, v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING,
                v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW};
      }
      return {v1::MISCONDUCT_RESULT_WRITTEN_WARNING, v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING,
              v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW,
              v1::MISCONDUCT_RESULT_REDUCTION_IN_RANK,
              v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE};
    case v1::CONDUCT_FINDING_GROSS_MISCONDUCT:
      if (forum == v1::OUTCOME_TYPE_MISCONDUCT_MEETING) return kNone;
      return {v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING, v1::MISCONDUCT_RESULT_REDUCTION_IN_RANK,
              v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE};
    default:
      return kNone;
  }
}

std::string Name(T type) {
  std::string n = v1::OutcomeType_Name(type);
  return n.rfind("OUTCOME_TYPE_", 0) == 0 ? n.substr(13) : n;
}

std::string ResultName(int result) {
  if (result == kManagementAdvice) return "MANAGEMENT_ADVICE";
  std::string n = v1::MisconductResult_Name(static_cast<R>(result));
  return n.rfind("MISCONDUCT_RESULT_", 0) == 0 ? n.substr(18) : n;
}

}  // namespace

v1::OutcomeTrack TrackOf(T type) {
  switch (type) {
    case v1::OUTCOME_TYPE_CRIMINAL_NO_FURTHER_ACTION:
    case v1::OUTCOME_TYPE_CRIMINAL_CHARGED:
    case v1::OUTCOME_TYPE_CRIMINAL_CONVICTED:
    case v1::OUTCOME_TYPE_CRIMINAL_ACQUITTED:
      return v1::OUTCOME_TRACK_CRIMINAL;
    case v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER:
    case v1::OUTCOME_TYPE_CASE_TO_ANSWER:
    case v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE:
    case v1::OUTCOME_TYPE_MISCONDUCT_MEETING:
    case v1::OUTCOME_TYPE_MISCONDUCT_HEARING:
    case v1::OUTCOME_TYPE_ACCELERATED_HEARING:
    case v1::OUTCOME_TYPE_DISMISSED:
    case v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION:
      return v1::OUTCOME_TRACK_CONDUCT;
    case v1::OUTCOME_TYPE_VETTING_CLEARANCE_MAINTAINED:
    case v1::OUTCOME_TYPE_VETTING_MAINTAINED_WITH_CONDITIONS:
    case v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN:
    case v1::OUTCOME_TYPE_DISMISSED_AFTER_VETTING_WITHDRAWAL:
      return v1::OUTCOME_TRACK_VETTING;
    case v1::OUTCOME_TYPE_BARRED_LIST_ENTRY:
    case v1::OUTCOME_TYPE_ADVISORY_LIST_ENTRY:
      return v1::OUTCOME_TRACK_LISTING;
    case v1::OUTCOME_TYPE_STAFF_MISCONDUCT_PROCEDURE:
    case v1::OUTCOME_TYPE_CONTRACT_ENDED:
      return v1::OUTCOME_TRACK_STAFF;
    case v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL:
    case v1::OUTCOME_TYPE_INTELLIGENCE_ONLY:
      return v1::OUTCOME_TRACK_NONE;
    default:
      return v1::OUTCOME_TRACK_UNSPECIFIED;
  }
}

bool IsOpenOutcome(T type) {
  return type == v1::OUTCOME_TYPE_CRIMINAL_CHARGED || type == v1::OUTCOME_TYPE_CASE_TO_ANSWER;
}

absl::string_view TrackName(v1::OutcomeTrack track) {
  const std::string& n = v1::OutcomeTrack_Name(track);
  absl::string_view v(n);
  if (v.substr(0, 14) == "OUTCOME_TRACK_") v.remove_prefix(14);
  return v;
}

void UpgradeOutcome(v1::Outcome& o) {
  if (o.type() == v1::OUTCOME_TYPE_DISMISSED) {
    o.set_type(v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
    o.set_finding(v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
    o.set_misconduct_result(v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE);
  }
  if (o.misconduct_result() == kManagementAdvice) {
    o.set_misconduct_result(v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW);
  }
  if (IsForum(o.type()) && o.finding() == v1::CONDUCT_FINDING_UNSPECIFIED) {
    switch (o.misconduct_result()) {
      case v1::MISCONDUCT_RESULT_NOT_PROVEN:
      case v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW:
        o.set_finding(v1::CONDUCT_FINDING_NONE);
        break;
      case v1::MISCONDUCT_RESULT_REDUCTION_IN_RANK:
      case v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE:
        o.set_finding(o.type() == v1::OUTCOME_TYPE_MISCONDUCT_MEETING
                          ? v1::CONDUCT_FINDING_MISCONDUCT
                          : v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
        break;
      default:
        o.set_finding(v1::CONDUCT_FINDING_MISCONDUCT);
        break;
    }
  }
  if (o.type() != v1::OUTCOME_TYPE_UNSPECIFIED) o.set_track(TrackOf(o.type()));
}

absl::Status CheckCategories(absl::string_view field,
                             const google::protobuf::RepeatedField<int>& categories) {
  for (int i = 0; i < categories.size(); ++i) {
    const std::string name = absl::StrCat(field, "[", i, "]");
    if (categories[i] == v1::CORRUPTION_CATEGORY_UNSPECIFIED ||
        !v1::CorruptionCategory_IsValid(categories[i])) {
      return FieldError(name, "is not a corruption category");
    }
    if (std::find(categories.begin(), categories.begin() + i, categories[i]) !=
        categories.begin() + i) {
      return FieldError(
          name, absl::StrCat(v1::CorruptionCategory_Name(categories[i]), " is given twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOutcomeFitsRole(absl::string_view field, T type, v1::SubjectRole role) {
  const v1::OutcomeTrack track = TrackOf(type);
  const bool officer =
      role == v1::SUBJECT_ROLE_OFFICER || role == v1::SUBJECT_ROLE_SPECIAL_CONSTABLE;
  const bool employee = officer || role == v1::SUBJECT_ROLE_STAFF || role == v1::SUBJECT_ROLE_PCSO;
  const bool personnel =
      employee || role == v1::SUBJECT_ROLE_VOLUNTEER || role == v1::SUBJECT_ROLE_CONTRACTOR;
  const char* route = "";
  switch (role) {
    case v1::SUBJECT_ROLE_STAFF:
    case v1::SUBJECT_ROLE_PCSO:
      route = "police staff and PCSOs answer to the force's staff misconduct procedure";
      break;
    case v1::SUBJECT_ROLE_VOLUNTEER:
    case v1::SUBJECT_ROLE_CONTRACTOR:
      route =
          "a volunteer's or contractor's route is the end of the role or contract, or "
          "vetting withdrawn";
      break;
    case v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE:
      route =
          "a family member or associate is not personnel: a criminal outcome, intelligence "
          "only, or the linked officer's vetting";
      break;
    case v1::SUBJECT_ROLE_OTHER_LAW_ENFORCEMENT:
      route = "another body's personnel answer to that body: not our personnel";
      break;
    default:
      route = "officers and special constables answer to the Police (Conduct) Regulations 2020";
      break;
  }
  auto refuse = [&](absl::string_view who) {
    return FieldError(field, absl::StrCat(Name(type), " is for ", who, " only; ", route));
  };
  if (role == v1::SUBJECT_ROLE_UNSPECIFIED) return absl::OkStatus();
  switch (track) {
    case v1::OUTCOME_TRACK_CONDUCT:
      if (type == v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION) {
        if (!employee) return refuse("officers, special constables, police staff and PCSOs");
      } else if (!officer) {
        return refuse(
            "officers and special constables, under the Police (Conduct) Regulations 2020");
      }
      break;
    case v1::OUTCOME_TRACK_LISTING:
      if (!employee) return refuse("officers, special constables, police staff and PCSOs");
      break;
    case v1::OUTCOME_TRACK_VETTING:
      if (type == v1::OUTCOME_TYPE_DISMISSED_AFTER_VETTING_WITHDRAWAL) {
        if (!officer) {
          return refuse(
              "officers and special constables, under the Police (Vetting) Regulations 2025");
        }
      } else if (!personnel && role != v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE) {
        // (A family member's or associate's case can end in the linked officer's vetting.)
        return refuse("the organisation's own personnel and those linked to them");
      }
      break;
    case v1::OUTCOME_TRACK_STAFF:
      if (type == v1::OUTCOME_TYPE_STAFF_MISCONDUCT_PROCEDURE && role != v1::SUBJECT_ROLE_STAFF &&
          role != v1::SUBJECT_ROLE_PCSO) {
        return refuse("police staff and PCSOs");
      }
      if (type == v1::OUTCOME_TYPE_CONTRACT_ENDED && role != v1::SUBJECT_ROLE_CONTRACTOR &&
          role != v1::SUBJECT_ROLE_VOLUNTEER) {
        return refuse("contractors and volunteers");
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status CheckOutcome(absl::string_view field, const v1::Outcome& o, absl::Time now) {
  const auto f = [&](absl::string_view sub) { return absl::StrCat(field, ".", sub); };
  if (o.type() == v1::OUTCOME_TYPE_UNSPECIFIED || !v1::OutcomeType_IsValid(o.type())) {
    return FieldError(f("type"), "is required");
  }
  if (o.type() == v1::OUTCOME_TYPE_DISMISSED) {
    return FieldError(f("type"),
                      "DISMISSED is read from old data only: give MISCONDUCT_HEARING (or "
                      "ACCELERATED_HEARING) with finding GROSS_MISCONDUCT and "
                      "DISMISSAL_WITHOUT_NOTICE");
  }
  if (o.type() == v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL) {
    return FieldError(f("type"),
                      "NOT_OUR_PERSONNEL is read from old data only: decline the referral with "
                      "reason_code NOT_OUR_EMPLOYEE (or EMPLOYEE_OF_ANOTHER_ORGANISATION)");
  }
  const v1::OutcomeTrack track = TrackOf(o.type());
  if (o.track() != v1::OUTCOME_TRACK_UNSPECIFIED && o.track() != track) {
    return FieldError(f("track"), absl::StrCat("is ", TrackName(track), " for ", Name(o.type())));
  }
  const int result = o.misconduct_result();
  if (result == kManagementAdvice) {
    return FieldError(f("misconduct_result"),
                      "management advice was abolished by the Police (Conduct) Regulations 2020; "
                      "give REFLECTIVE_PRACTICE_REVIEW or a warning");
  }
  if (!v1::MisconductResult_IsValid(result)) {
    return FieldError(f("misconduct_result"), "is not a disciplinary action");
  }
  if (!v1::ConductFinding_IsValid(o.finding())) {
    return FieldError(f("finding"), "is not a finding");
  }
  if (IsForum(o.type())) {
    if (o.finding() == v1::CONDUCT_FINDING_UNSPECIFIED) {
      return FieldError(f("finding"), "is required for a misconduct meeting or hearing");
    }
    if (result == v1::MISCONDUCT_RESULT_UNSPECIFIED) {
      return FieldError(f("misconduct_result"), "is required for a misconduct meeting or hearing");
    }
    const auto actions = ActionsFor(o.type(), o.finding());
    if (actions.size() == 0) {
      return FieldError(f("finding"), absl::StrCat(v1::ConductFinding_Name(o.finding()),
                                                   " cannot be found by a ", Name(o.type())));
    }
    if (!In(result, actions)) {
      return FieldError(f("misconduct_result"),
                        absl::StrCat(ResultName(result), " does not follow ",
                                     v1::ConductFinding_Name(o.finding()), " at a ", Name(o.type()),
                                     " (Police (Conduct) Regulations 2020, reg 42)"));
    }
  } else {
    if (result != v1::MISCONDUCT_RESULT_UNSPECIFIED) {
      return FieldError(f("misconduct_result"), "applies only to a misconduct meeting or hearing");
    }
    if (o.type() == v1::OUTCOME_TYPE_CASE_TO_ANSWER) {
      if (o.finding() != v1::CONDUCT_FINDING_MISCONDUCT &&
          o.finding() != v1::CONDUCT_FINDING_GROSS_MISCONDUCT) {
        return FieldError(f("finding"),
                          "is required for a case to answer: MISCONDUCT or GROSS_MISCONDUCT");
      }
    } else if (o.finding() != v1::CONDUCT_FINDING_UNSPECIFIED) {
      return FieldError(f("finding"), "applies only to a case to answer, a meeting or a hearing");
    }
  }
  const bool no_proceedings = track == v1::OUTCOME_TRACK_NONE;
  if (!v1::CorruptionCategory_IsValid(o.category()) ||
      (o.category() == v1::CORRUPTION_CATEGORY_UNSPECIFIED && !no_proceedings)) {
    return FieldError(f("category"), "is required");
  }
  if (!v1::SubjectRole_IsValid(o.subject_role()) ||
      (o.subject_role() == v1::SUBJECT_ROLE_UNSPECIFIED && !no_proceedings)) {
    return FieldError(f("subject_role"), "is required");
  }
  RETURN_IF_ERROR(CheckOutcomeFitsRole(f("type"), o.type(), o.subject_role()));
  if (!o.has_opened_at()) return FieldError(f("opened_at"), "is required");
  RETURN_IF_ERROR(CheckNotInFuture(f("opened_at"), o.opened_at(), now));
  if (IsOpenOutcome(o.type())) {
    if (o.has_closed_at()) {
      return FieldError(f("closed_at"), absl::StrCat(Name(o.type()), " is open: leave it unset"));
    }
  } else {
    if (!o.has_closed_at()) return FieldError(f("closed_at"), "is required");
    RETURN_IF_ERROR(CheckNotInFuture(f("closed_at"), o.closed_at(), now));
    if (TimeOf(o.closed_at()) < TimeOf(o.opened_at())) {
      return FieldError(f("closed_at"), "is before opened_at");
    }
  }
  return CheckText(f("learning_summary"), o.learning_summary(), 1000, false);
}

void SetTrack(OutcomeTracks& tracks, const v1::Outcome& outcome) {
  v1::Outcome o = outcome;
  UpgradeOutcome(o);
  for (v1::Outcome& t : tracks) {
    if (t.track() == o.track()) {
      t = std::move(o);
      return;
    }
  }
  *tracks.Add() = std::move(o);
  std::sort(tracks.begin(), tracks.end(),
            [](const v1::Outcome& a, const v1::Outcome& b) { return a.track() < b.track(); });
}

void UpgradeStoredOutcomes(v1::Outcome& ending, OutcomeTracks& tracks) {
  for (v1::Outcome& t : tracks) UpgradeOutcome(t);
  if (ending.type() == v1::OUTCOME_TYPE_UNSPECIFIED) return;
  UpgradeOutcome(ending);
  if (tracks.empty()) SetTrack(tracks, ending);
}

absl::Status CheckCanFinish(const OutcomeTracks& tracks, const v1::Outcome& ending) {
  if (IsOpenOutcome(ending.type())) {
    return absl::FailedPreconditionError(
        absl::StrCat(Name(ending.type()),
                     " is open: record it with UpdateOutcome, and finish the "
                     "referral when every track is final"));
  }
  const v1::OutcomeTrack ending_track = TrackOf(ending.type());
  for (const v1::Outcome& t : tracks) {
    if (t.track() != ending_track && IsOpenOutcome(t.type())) {
      return absl::FailedPreconditionError(absl::StrCat("the ", TrackName(t.track()),
                                                        " track is still open (", Name(t.type()),
                                                        "): update it to its final outcome first"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sarloop
