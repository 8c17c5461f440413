// The one Step: how a service that holds a referral (the force it is addressed to, the unit it
// was handed to) takes one of the steps the rules table lets its role take. Load the copy, check
// the transition, make the event, let the caller complete it, check data minimisation, record it
// through the Mirror (fold, save) and send it where the table says; answered once per request_id.
#ifndef SARLOOP_COMMON_REFERRAL_STEP_H_
#define SARLOOP_COMMON_REFERRAL_STEP_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/reference/reference.h"
#include "common/referral/mirror.h"
#include "common/rpc/call.h"
#include "common/storage/storage.h"
#include "google/protobuf/message.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::referral {

// Completes the new event and the copy (a reason, an outcome, a handover's unit and notes).
// INVALID_ARGUMENT naming the field stops the step.
using Fill = std::function<absl::Status(v1::LifecycleEvent& event, v1::Referral& copy)>;

struct Stepper {
  Database& db;
  Clock& clock;
  Mirror& mirror;
};

// Takes step `type` on `referral_id` for `call`, idempotently by (call.scope, request_id) for
// `request` (the RPC's request: a request_id used for another request is refused), and
// writes the answer into `response` with the referral (its package left out) in `referral`.
// INVALID_ARGUMENT names the field (request_id, referral_id, or what `fill` or the data
// minimisation check refuse); NOT_FOUND for a referral this service does not hold;
// FAILED_PRECONDITION naming the current state when the table does not allow the step from it.
absl::Status TakeStep(const Stepper& stepper, const Call& call,
                      const google::protobuf::Message& request, const std::string& request_id,
                      const std::string& referral_id, v1::EventType type, const Fill& fill,
                      google::protobuf::Message* response, v1::Referral* referral);

// The Fill of a step that records an outcome on its track (Close, RecordOutcome, UpdateOutcome):
// the outcome read as today's vocabulary with its track set and `investigating_org` as the
// organisation that investigated. A step that `finishes` the referral must leave no track open
// (CheckCanFinish); an update is taken only while the copy is in one of `holding` (the states in
// which the producer holds the work), FAILED_PRECONDITION naming the state otherwise.
Fill OutcomeFill(const v1::Outcome& outcome, const std::string& investigating_org, bool finishes,
                 std::vector<v1::ReferralState> holding = {});

// A decision that hands over, adopts or declines an investigation carries a THR assessment (all
// three scores and a rationale) and a priority, P1 to P4. INVALID_ARGUMENT naming "thr..." or
// "priority".
absl::Status CheckDecision(const v1::ThrAssessment& thr, v1::Priority priority);

// The Fill of a progress update (ReportProgress): `status` (required) and a short `note` (at most
// 500 characters) on the event, taken only while the copy is in one of `holding`.
Fill ProgressFill(v1::ProgressStatus status, const std::string& note,
                  std::vector<v1::ReferralState> holding);

// A decline as a force gives it (or UKFIU records it on an off-system organisation's behalf):
// `code` required; free text required with OTHER; `named_organisation` with
// EMPLOYEE_OF_ANOTHER_ORGANISATION only, another organisation of `reference` than `addressee`.
// FORMER_EMPLOYEE is refused: a former employee's referral stays with the force that employed
// them (close it with a listing outcome, or as intelligence only). INVALID_ARGUMENT naming the
// field.
absl::Status CheckDecline(v1::DeclineReason code, const std::string& reason,
                          const std::string& named_organisation, const std::string& addressee,
                          const ReferenceData& reference);

// Its Fill: "not ours" (NOT_OUR_EMPLOYEE, EMPLOYEE_OF_ANOTHER_ORGANISATION) from RECEIVED,
// ACKNOWLEDGED or UNDER_RESEARCH, every other reason after research (FAILED_PRECONDITION naming
// the state).
Fill DeclineFill(v1::DeclineReason code, const std::string& reason,
                 const std::string& named_organisation);

// The same, for a response message with a `referral` field.
template <typename Response>
absl::StatusOr<Response> Step(const Stepper& stepper, const Call& call,
                              const google::protobuf::Message& request,
                              const std::string& request_id, const std::string& referral_id,
                              v1::EventType type, const Fill& fill) {
  Response response;
  absl::Status s = TakeStep(stepper, call, request, request_id, referral_id, type, fill, &response,
                            response.mutable_referral());
  if (!s.ok()) return s;
  return response;
}

}  // namespace sarloop::referral

#endif  // SARLOOP_COMMON_REFERRAL_STEP_H_
