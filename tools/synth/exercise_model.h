// The national exercise's model: referrals over several financial years in which time passes
// inside each case. Every referral gets a plan of steps (acknowledge, research, decide, report
// progress, hand over, conclude), each on its own day, drawn from distributions stated once in
// exercise_model.cc and labelled there as estimates where no public figure exists (the starting
// point is section 3 of the practitioner's domain review). Organisations behave differently
// (prompt, slow, near-silent) and improve year on year.
//
// Pure: everything follows from the options and the seed (same seed, same exercise, on every
// standard library); nothing here talks to a service. The driver (exercise.cc) moves the chain's
// clock to each step's day and makes the call.
#ifndef SARLOOP_TOOLS_SYNTH_EXERCISE_MODEL_H_
#define SARLOOP_TOOLS_SYNTH_EXERCISE_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::synth::exercise {

// How an organisation answers in a given year.
enum class Behaviour {
  kPrompt,      // answers within the clocks, reports progress on time
  kSlow,        // answers late, reports progress after it is due
  kNearSilent,  // most referrals never answered; the rest very late
};
absl::string_view BehaviourName(Behaviour b);

// One organisation that takes referrals on the chain.
struct OrgSpec {
  std::string code;
  // The unit it hands over to ("" when it investigates everything itself).
  std::string unit;
  // Its service hands every referral to `unit` on receipt (Border Force).
  bool hands_over_on_receipt = false;
  // Its share of national volume: officers FTE where a published figure is held, else 0 (the
  // model then uses the median of the known figures and says so).
  double weight = 0;
};

// The force's first decision (or UKFIU's withdrawal), drawn per referral.
enum class Decision {
  kUnanswered,          // a near-silent organisation never answers
  kNotOurs,             // declined: not our employee, or another organisation's
  kDeclined,            // declined: explained, known and managed, insufficient identifiers
  kIntelligenceOnly,    // closed as intelligence only
  kLocalInvestigation,  // investigated by the force; a conduct, vetting or criminal outcome
  kHandover,            // handed to its unit (which may decline to assist)
  kIopc,                // local investigation the IOPC directs
  kWithdrawn,           // UKFIU withdraws it
};
absl::string_view DecisionName(Decision d);

// What the driver does on a step's day.
enum class Act {
  kRefer,          // UKFIU receives the SAR and refers it
  kAcknowledge,    // the force acknowledges
  kStartResearch,  // the force starts research
  kReportOpen,     // the force reports an investigation open (a first decision)
  kProgress,       // the force reports progress on its open investigation
  kReferToIopc,    // the force refers the matter to the IOPC, which directs the investigation
  kDecline,        // the force declines, with a coded reason
  kInterim,        // the force records an open outcome (a case to answer, charged)
  kClose,          // the force closes it with an outcome
  kHandOver,       // the force hands it to its unit
  kUnitAccept,     // the unit opens a joint investigation
  kUnitDecline,    // the unit declines to assist; back with the force
  kUnitProgress,   // the unit reports progress
  kUnitInterim,    // the unit records an open outcome
  kUnitOutcome,    // the unit records the outcome
  kWithdraw,       // UKFIU withdraws it
};
absl::string_view ActName(Act a);

struct Step {
  absl::Time at;  // 10:00 UTC on the step's day
  Act act;
};

struct Referral {
  std::string organisation;
  int year = 0;  // financial year index from the first (0-based)
  Behaviour behaviour = Behaviour::kPrompt;
  Decision decision = Decision::kUnanswered;
  // The report as submitted (submitted_at set; no sar_id, no subject_ref).
  v1::Sar sar;
  v1::ThrAssessment thr;
  // Referred because of a link to personnel found other than in the SAR (the subject is a family
  // member or associate).
  bool indirect = false;
  v1::DeclineReason decline_code = v1::DECLINE_REASON_UNSPECIFIED;
  std::string decline_text;
  std::string named_employer;  // EMPLOYEE_OF_ANOTHER_ORGANISATION
  std::string unit;            // kHandover, and every referral of a hands-over-on-receipt org
  bool on_receipt = false;     // the organisation's service hands it to `unit` as it arrives
  v1::Priority priority = v1::PRIORITY_UNSPECIFIED;
  bool unit_declines = false;
  std::string assistance_reason;
  std::string withdraw_reason;
  // An open outcome recorded before the ending, when type is set; and the ending. Both dated.
  v1::Outcome interim;
  v1::Outcome outcome;
  // In time order; only steps on or before the exercise's end.
  std::vector<Step> steps;
};

struct Options {
  uint64_t seed = 1;
  // The first financial year starts here (1 April, 00:00 UTC); steps after `end` do not happen.
  absl::Time start;
  absl::Time end;
  // Referrals in the first full year, nationally; later years grow (Model::growth).
  int referrals_per_year = 1000;
  std::vector<OrgSpec> orgs;
};

struct Exercise {
  std::vector<Referral> referrals;  // in dispatch order
  // Each organisation's behaviour in each financial year.
  std::map<std::string, std::vector<Behaviour>> behaviour;
  int years = 0;
};

Exercise MakeExercise(const Options& options);

// The distributions the exercise draws from, one line each, for the run's log and README.
std::string DescribeModel();

// 1 April 00:00 UTC of the financial year holding `t`.
absl::Time FinancialYearStart(absl::Time t);

// The state the referral's executed steps leave it in, from the referral rules' table.
v1::ReferralState ExpectedState(const Referral& r);
// Which event a step produces (EVENT_TYPE_UNSPECIFIED for kRefer's SAR submission).
v1::EventType EventOf(Act a);

}  // namespace sarloop::synth::exercise

#endif  // SARLOOP_TOOLS_SYNTH_EXERCISE_MODEL_H_
