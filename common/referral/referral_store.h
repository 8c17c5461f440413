// The `referrals` table that ukfiu, force and racu each keep: one v1::Referral per row, with the
// columns their queries filter on. Used inside the caller's transaction.
#ifndef SARLOOP_COMMON_REFERRAL_REFERRAL_STORE_H_
#define SARLOOP_COMMON_REFERRAL_REFERRAL_STORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/referral/mirror.h"
#include "common/storage.h"
#include "common/validation.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

extern const Migration kReferralStoreMigration;

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

// A page of referrals, oldest first, optionally only one state and one organisation; packages
// are stripped (callers fetch one referral for its package).
absl::StatusOr<std::vector<v1::Referral>> ListReferrals(Txn& txn, v1::ReferralState state,
                                                        const std::string& organisation,
                                                        const Page& page);

// The read side of the inbox RPCs, written once for ukfiu, force and unit: a page of referrals
// (validating `state`, `page_size` and `page_token`; INVALID_ARGUMENT naming the field) with the
// token for the next page, in a read transaction of its own.
absl::Status ReadReferralPage(Database& db, v1::ReferralState state,
                              const std::string& organisation, int32_t page_size,
                              const std::string& page_token,
                              google::protobuf::RepeatedPtrField<v1::Referral>* referrals,
                              std::string* next_page_token);

// One referral, with its package, and every event this service knows for it, in order.
// INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one.
absl::Status ReadReferralWithEvents(Database& db, const std::string& referral_id,
                                    v1::Referral* referral,
                                    google::protobuf::RepeatedPtrField<v1::LifecycleEvent>* events);

// The metrics gauges of a `referrals` table: sarloop_referrals{state} and
// sarloop_referrals_overdue (not ended and past the due date at `now`).
absl::Status WriteReferralGauges(Database& db, absl::Time now, MetricsText& out);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_REFERRAL_STORE_H_
