// The referral domain's sealed columns (DESIGN §5), beside its tables: the SAR (names, dates of
// birth, addresses, narrative), the referral with its package, and the messages of its threads.
#ifndef SARLOOP_COMMON_REFERRAL_SEALED_COLUMNS_H_
#define SARLOOP_COMMON_REFERRAL_SEALED_COLUMNS_H_

#include <span>

#include "absl/strings/string_view.h"
#include "common/security/sealed.h"

namespace sarloop {

// The names the cells are sealed under (each cell is bound to its column and row).
inline constexpr absl::string_view kSarColumn = "sars.sar";
inline constexpr absl::string_view kReferralColumn = "referrals.referral";
inline constexpr absl::string_view kThreadMessageColumn = "thread_messages.message";

std::span<const SealedColumn> ReferralSealedColumns();

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_SEALED_COLUMNS_H_
