// The referral lifecycle of DESIGN §3 as pure functions over the rules table (rules.h): which
// event may follow which state, and how a set of events folds into one referral (the register
// entry every service's copy is made from). No I/O; unit tests reach all of it directly.
#ifndef SARLOOP_COMMON_REFERRAL_LIFECYCLE_H_
#define SARLOOP_COMMON_REFERRAL_LIFECYCLE_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sarloop/v1/nca.pb.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

// The state `type` moves a referral to from `from`. Side events (reminder, escalation,
// deconfliction, open-investigation flag) return `from` unchanged for any non-terminal state.
// FAILED_PRECONDITION naming both when the transition is illegal.
absl::StatusOr<v1::ReferralState> NextState(v1::ReferralState from, v1::EventType type);

// DECLINED_BY_FORCE, CLOSED_BY_FORCE, OUTCOME_RECORDED, WITHDRAWN, REDIRECTED.
bool IsTerminal(v1::ReferralState state);
// The same states as an SQL list, for `state IN ...` over a state column (lifecycle_test keeps the
// two equal).
inline constexpr char kTerminalStatesSql[] = "(5, 6, 9, 10, 11)";
// The states that have not ended, as a condition on a column named `state`: what a statement
// that runs on a call's path, or a partial index, tests. Ranges, not `NOT IN` the list above:
// SQLite builds a temporary b-tree for an IN list each time a statement runs, and a partial index
// with one in its WHERE makes every insert and update of the table build it again. Partial
// indexes of open referrals use this exact text, which is how the planner knows they hold every
// row a query with the same condition can want. lifecycle_test keeps it equal to !IsTerminal.
inline constexpr char kOpenStatesSql[] = "(state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8)";

// A decline or an outcome: what Recommendation 4 asks forces to send back.
bool IsFeedback(v1::ReferralState state);

// Whether the event moves the referral (as opposed to a side event).
bool ChangesState(v1::EventType type);

// Short names for messages and tables: "UNDER_RESEARCH", "HANDED_OVER".
absl::string_view StateName(v1::ReferralState state);
absl::string_view EventName(v1::EventType type);
absl::string_view OutcomeName(v1::OutcomeType type);

// The register's order of events: occurred_at, then the event's place in the lifecycle, then
// event_id. A total order on any set of distinct events, so folding in this order gives one answer
// whatever order events arrived in.
bool EventBefore(const v1::LifecycleEvent& a, const v1::LifecycleEvent& b);

// Folds every event known for one referral into its register entry. Events are deduplicated by
// event_id and sorted with EventBefore first, so the result depends only on the set of events.
// A state event that does not follow from the state reached so far still applies when it moves
// the referral further along (an intermediate event may not have arrived yet) and is ignored when
// it would move it back (a producer's clock ran behind); the first end in order is final.
// Counters count distinct side events.
v1::RegisterEntry Fold(const std::vector<v1::LifecycleEvent>& events);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_LIFECYCLE_H_
