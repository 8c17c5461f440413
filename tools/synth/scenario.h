// The synthetic scenario sarloop-synth drives: SARs with realistic (invented) subjects, the
// referrals UKFIU makes from them, and the path each referral takes through the force and its
// unit. Pure: everything follows from the seed, nothing here talks to a service.
//
// The same seed gives the same scenario on the same platform (the generator is std::mt19937_64
// with its own integer helpers, not the implementation-defined std distributions).
#ifndef SARLOOP_TOOLS_SYNTH_SCENARIO_H_
#define SARLOOP_TOOLS_SYNTH_SCENARIO_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::synth {

// The organisations of the local chain that receive referrals, and their units.
inline constexpr const char* kForces[] = {"NFK", "SFK", "MPS", "BF"};

// The unit `force` hands over to by default in the local chain ("ERSOU", "NCAACU"), or "" (MPS).
std::string UnitOf(const std::string& force);

// Whether the local chain configures `force` to hand every referral to its unit on receipt
// (Border Force: no anti-corruption department of its own).
bool HandsOverOnReceipt(const std::string& force);

// What happens to one referral after UKFIU dispatches it.
enum class Path {
  // The force never answers: reminded once acknowledgement is due, escalated to its head of
  // professional standards after the grace period.
  kSilent,
  // Acknowledged, then nothing: reminded once the first decision is due, then escalated.
  kStalled,
  // Researched but closed only after the reminder: reminded, not escalated.
  kLateClose,
  // The force declines with a reason.
  kDecline,
  // The force closes it itself with an outcome.
  kClose,
  // Handed to the unit, which accepts and records an outcome.
  kUnitOutcome,
  // Handed to the unit, which accepts; the joint investigation is still open at the end and
  // reports progress on time: neither reminded nor escalated, not overdue.
  kUnitOpen,
  // The unit declines assistance; back with the force, which closes it with an outcome.
  kUnitDeclinedThenClose,
  // The unit declines assistance; back with the force, which declines it.
  kUnitDeclinedThenDecline,
  // UKFIU withdraws it.
  kWithdrawn,
  // UKFIU redirects it to another organisation (a new, linked referral with its own path).
  kRedirected,
};
inline constexpr int kPathCount = 11;

absl::string_view PathName(Path path);

// The register state a referral on `path` reaches before the clock moves (kLateClose is still
// UNDER_RESEARCH then).
v1::ReferralState StateBeforeClock(Path path);
// The state at the end of the scenario.
v1::ReferralState FinalState(Path path);
// Whether the path passes through the unit.
bool HandedOver(Path path);
bool AssistanceDeclined(Path path);
// Reminded at the due date: no feedback and no open joint investigation then.
bool Reminded(Path path);
// Escalated after the grace period: still no answer at all.
bool Escalated(Path path);
// Open at the end of the scenario.
bool OpenAtEnd(Path path);
// Open and overdue at the end: silent past its stage's due time (an open joint investigation
// reports progress, so it is not).
bool OverdueAtEnd(Path path);
// Whether an outcome is recorded (by the force or the unit) and whether the force declines.
bool HasOutcome(Path path);
bool DeclinedByForce(Path path);

// An invented person. Names and dates of birth are unique per person (ukfiu's pseudonymous
// subject reference is a keyed hash of both), so two subjects share a reference exactly when
// they are the same person.
struct Person {
  std::string full_name;
  std::string date_of_birth;  // YYYY-MM-DD
  std::string address;
  v1::SubjectRole role = v1::SUBJECT_ROLE_UNSPECIFIED;
  std::string employer;  // organisation code, empty when not law-enforcement personnel
};

struct SarPlan {
  // The report as submitted (no sar_id, no subject_ref).
  v1::Sar sar;
  // Scenario::persons index of each subject, in the SAR's subject order.
  std::vector<int> persons;
};

struct ReferralPlan {
  int sar = 0;
  std::string organisation;
  Path path = Path::kSilent;
  v1::ThrAssessment thr;
  // kDecline / kUnitDeclinedThenDecline: the force's reason; kWithdrawn / kRedirected: UKFIU's.
  std::string reason;
  // kDecline / kUnitDeclinedThenDecline: the force's coded reason, and the employer it names
  // (EMPLOYEE_OF_ANOTHER_ORGANISATION).
  v1::DeclineReason decline_code = v1::DECLINE_REASON_UNSPECIFIED;
  std::string named_employer;
  // kUnitDeclined*: the unit's reason for declining assistance.
  std::string assistance_reason;
  // Unit paths: the force's research notes for the unit, and the priority the force and the unit
  // give the case (P1-P4, from the THR: high harm or threat is P1 or P2).
  std::string handover_notes;
  v1::Priority priority = v1::PRIORITY_P3;
  // Unit paths: the unit it goes to, chosen per referral (Norfolk sends some to the NCA's ACU).
  std::string unit;
  // Paths with an outcome: what is recorded (opened_at/closed_at are set when it is recorded).
  v1::Outcome outcome;
  // An open outcome on the same track recorded first (charged before the verdict, a case to
  // answer before the hearing), when set: an OUTCOME_UPDATED before the ending.
  v1::Outcome interim;
  // kWithdrawn: the force acknowledges it before UKFIU withdraws it.
  bool acknowledged_before_withdrawal = false;
  // kRedirected: index of the new referral; the new referral: index of the one it replaces.
  int redirect_to = -1;
  int redirected_from = -1;
  // Referred because a link to personnel was found other than in the SAR itself (about 1 in 10).
  bool indirect = false;
  // The force asks UKFIU a question during research and decides once it has the answer (about
  // one in three referrals a force decides itself): the question and UKFIU's answer.
  std::string question;
  std::string answer;
  // The force refers the matter to the IOPC during research; the IOPC directs the investigation.
  bool iopc = false;
};

struct Scenario {
  uint64_t seed = 0;
  std::vector<Person> persons;
  std::vector<SarPlan> sars;
  // Referrals UKFIU makes directly come first, in SAR order; replacements made by a redirect
  // follow (redirected_from >= 0).
  std::vector<ReferralPlan> referrals;
};

// Builds the scenario for `sar_count` SARs. About 30% of SARs concern personnel of NFK, SFK, MPS
// or BF and are referred (a few to two organisations); some subjects recur across SARs. The unit
// outcomes cycle through every OutcomeType before repeating.
Scenario MakeScenario(uint64_t seed, int sar_count);

// What the NCA register should count for one organisation (OrganisationSummary's fields).
struct OrgTally {
  int referred = 0;
  int feedback_received = 0;
  int declined_by_force = 0;
  int withdrawn = 0;
  int redirected = 0;
  int open = 0;
  int handed_over = 0;
  int assistance_declined = 0;
  int overdue = 0;
  int escalated = 0;
  int reminded = 0;
  std::map<v1::OutcomeType, int> outcomes;
};

// The expected register counts per organisation once the whole scenario has run.
std::map<std::string, OrgTally> Tally(const Scenario& scenario);

// For each referral, the organisations its register entry may name in deconfliction_with: those of
// the other referrals whose SAR shares a subject with it, excluding its own redirect lineage
// (a redirected referral is closed when its replacement is made).
std::vector<std::set<std::string>> DeconflictionAllowed(const Scenario& scenario);

// Pairs (i, j), i < j, of referrals UKFIU made directly (not by redirect) to different
// organisations whose SARs share a subject: at least one of the two must be flagged.
std::vector<std::pair<int, int>> DeconflictionPairs(const Scenario& scenario);

}  // namespace sarloop::synth

#endif  // SARLOOP_TOOLS_SYNTH_SCENARIO_H_
