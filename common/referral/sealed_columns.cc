#include "common/referral/sealed_columns.h"

namespace sarloop {

std::span<const SealedColumn> ReferralSealedColumns() {
  // The row keys are those the tables' code binds cells to (ukfiu's desk, referral_store.cc,
  // threads.cc's RowKey), in SQL.
  static constexpr SealedColumn kColumns[] = {
      {"sars", kSarColumn, "sar_id"},
      {"referrals", kReferralColumn, "referral_id"},
      {"thread_messages", kThreadMessageColumn, "thread_id || '/' || answer"},
  };
  return kColumns;
}

}  // namespace sarloop
