// The `referrals` table that ukfiu, force and racu each keep: one v1::Referral per row, with the
// columns their queries filter on. Used inside the caller's transaction.
#ifndef SARLOOP_COMMON_REFERRAL_REFERRAL_STORE_H_
#define SARLOOP_COMMON_REFERRAL_REFERRAL_STORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/metrics.h"
#include "common/referral/mirror.h"
#include "common/referral/validation.h"
#include "common/storage/storage.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

extern const Migration kReferralStoreMigration;
// An index of the referrals still open, by due time, for the feedback clock that visits them on
// every scan (OpenReferralIdsByDue). Without it each scan reads every referral ever kept.
extern const Migration kOpenReferralsMigration;
// The same index chosen by ranges of states (kOpenStatesSql), so that writing a referral builds no
// temporary b-tree. Every service that lists the migration above lists this one after it.
extern const Migration kOpenReferralsByRangeMigration;

// The referrals not yet in a terminal state, soonest due first. With kOpenReferralsByRangeMigration
// applied it reads those rows only, however many referrals have ended.
absl::StatusOr<std::vector<std::string>> OpenReferralIdsByDue(Txn& txn);
// Its statement, for tests that look at the plan.
std::string OpenReferralIdsByDueSql();

// NOT_FOUND ("referral_id: no such referral") when absent.
absl::StatusOr<v1::Referral> LoadReferral(Txn& txn, const std::string& referral_id);

// Whether the referral exists.
absl::StatusOr<bool> HasReferral(Txn& txn, const std::string& referral_id);

// Inserts or replaces; sets updated_at to `now` (created_at is kept from the first save).
absl::Status SaveReferral(Txn& txn, v1::Referral& referral, absl::Time now);

// The Mirror's SaveCopy for a `referrals` table: the copy takes the fold's state, counters, unit,
// reason, outcome and links. A delivered package (DISPATCHED at the addressee, HANDED_OVER at the
// unit) creates the copy or renews its package; otherwise the copy must exist (NOT_FOUND).
referral::SaveCopy ReferralStoreSaver(Clock& clock);

// What a list of referrals shows (Force.ListInbox, Racu.ListHandovers, Ukfiu.ListReferrals).
struct ReferralListQuery {
  // Any of these states; empty: every state.
  std::vector<v1::ReferralState> states;
  // Only this organisation's; empty: every organisation's.
  std::string organisation;
  // Only referrals whose running clock is past its due time (Referral.overdue), and only
  // escalated ones.
  bool overdue = false;
  bool escalated = false;
  // Newest first (by when this service first stored them); otherwise oldest first.
  bool newest_first = false;
  // The filters exclude everything (a needs-action filter with none of its states listed).
  bool empty = false;
};

// A list request's states: `state` (when set) and `states`, narrowed to `action_states` when
// `needs_action`. INVALID_ARGUMENT naming state or states for a value that is not a state.
absl::StatusOr<ReferralListQuery> StatesQuery(v1::ReferralState state,
                                              const google::protobuf::RepeatedField<int>& states,
                                              bool needs_action,
                                              const std::vector<v1::ReferralState>& action_states);

// Whether `referral`'s running clock (next_due_at, else the feedback due date) has passed at
// `now`: never for one that has ended or whose first-decision clock is paused.
bool IsOverdue(const v1::Referral& referral, absl::Time now);

// The read side of the inbox RPCs, written once for ukfiu, force and unit: a page of `query` as
// of `now`, packages stripped and Referral.overdue set, with the token for the next page, in a
// read transaction of its own. The token is a cursor (the last referral the page examined),
// signed and bound to the query (common/security/token.h): the page after it is right however the
// list changed in between (nothing skipped, nothing repeated; new referrals come in order), and a
// token forged or issued for another query is INVALID_ARGUMENT naming page_token. A page may hold
// fewer than page_size referrals when the filters are sparse: go on while next_page_token is set.
// INVALID_ARGUMENT naming states, organisation or page_size.
absl::Status ReadReferralPage(Database& db, const ReferralListQuery& query, absl::Time now,
                              int32_t page_size, const std::string& page_token,
                              google::protobuf::RepeatedPtrField<v1::Referral>* referrals,
                              std::string* next_page_token);

// One referral, with its package, and every event this service knows for it, in order.
// INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one.
absl::Status ReadReferralWithEvents(Database& db, const std::string& referral_id,
                                    v1::Referral* referral,
                                    google::protobuf::RepeatedPtrField<v1::LifecycleEvent>* events);

// The metrics gauges of a `referrals` table: sarloop_referrals{state} and
// sarloop_referrals_overdue (not ended and past the due date at `now`). Reads indexes only, with
// kOpenReferralsByRangeMigration applied.
absl::Status WriteReferralGauges(Database& db, absl::Time now, MetricsText& out);
// Their statements, for tests that look at the plans.
extern const char kReferralsByStateSql[];
std::string OverdueReferralsSql();

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_REFERRAL_STORE_H_
