// The referral's clocks (D4, D5, D11 of the domain review), as pure functions over the fold: what
// is due next and by when, who is chased when it is not, and when regulation 19's report to the
// police and crime commissioner falls due. One definition, read by UKFIU's feedback clock, the
// register's overdue list and aggregates, the dashboard and the STA.
//
// Stages: acknowledgement (due days after dispatch), the first decision (decline, close, hand
// over, or an investigation reported open: due days after dispatch, or after a unit declined to
// assist), then progress updates at the interval the priority sets, while the work is open. An
// investigation that updates on time is never overdue.
//
// Pure; no I/O. Thread-safe.
#ifndef SARLOOP_COMMON_REFERRAL_CLOCKS_H_
#define SARLOOP_COMMON_REFERRAL_CLOCKS_H_

#include <vector>

#include "absl/time/time.h"
#include "sarloop/v1/nca.pb.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

// How often a holder must report progress at each priority: P1 every 30 days, P2 60, P3 90,
// P4 180; an investigation without a priority (a force's own) every 90. Estimates in the absence
// of a published national standard; the interval is what "overdue" is measured against.
absl::Duration ProgressInterval(v1::Priority priority);

// What is due next for the referral `entry` folds (its clock fields set by Fold): the stage and
// its due time. CLOCK_STAGE_NONE and absl::InfiniteFuture() once it has ended; the decision stage
// with absl::InfiniteFuture() while it is paused (the force's request for information to UKFIU
// is open: Fold adds the wait to the due time when the answer comes).
struct Due {
  v1::ClockStage stage = v1::CLOCK_STAGE_NONE;
  absl::Time at = absl::InfiniteFuture();
};
Due NextDue(const v1::RegisterEntry& entry);

// Whether the entry is overdue at `now`: its stage's due time has passed without the contact it
// waits for.
bool IsOverdue(const v1::RegisterEntry& entry, absl::Time now);

// Regulation 19 (Police (Conduct) Regulations 2020): an investigation still open 12 months after
// the force received the referral (every open state counts; the dispatch when no receipt arrived)
// is reported to the local policing body, then every 6 months. The time the `n`th report (1 for
// the first) falls due.
absl::Time Reg19DueAt(const v1::RegisterEntry& entry, int n);
// Whether it is open past the first of those.
bool IsOpenOver12Months(const v1::RegisterEntry& entry, absl::Time now);

// How UKFIU chases silence: a reminder as soon as the stage is overdue and again every `repeat`
// while it stays so; then the escalation ladder, rung k (1 = the force's head of professional
// standards, 2 = its deputy chief constable, 3 = the police and crime commissioner or the
// agency's equivalent) once `grace` x k has passed since the due time. A new contact moves the
// due time and starts a new episode.
struct ChasePolicy {
  absl::Duration repeat = absl::Hours(24 * 14);
  absl::Duration grace = absl::Hours(24 * 28);
  int rungs = 3;
};

// What is owed now for the referral (`events` are the referral's events, any order): a reminder
// (its sequence in this episode, 0 for none) and the ladder rung to escalate to (0 for none).
// At most one rung per call: the next call climbs the next.
struct Chase {
  int reminder = 0;
  int rung = 0;
};
Chase ChaseNow(const v1::RegisterEntry& entry, const std::vector<v1::LifecycleEvent>& events,
               absl::Time now, const ChasePolicy& policy);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_CLOCKS_H_
