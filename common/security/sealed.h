// The sensitive cells every service seals (DESIGN §5), and what an operator does when rotating
// keys: Reseal moves every cell sealed with an older key to the current one.
#ifndef SARLOOP_COMMON_SECURITY_SEALED_H_
#define SARLOOP_COMMON_SECURITY_SEALED_H_

#include <map>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/storage/storage.h"
#include "google/protobuf/message.h"

namespace sarloop {

// A sealed column: `table`.`column`, each cell bound to the row by the SQL expression `row_key`.
struct SealedColumn {
  absl::string_view table;
  absl::string_view column;  // "table.column", the name the cell is sealed under
  absl::string_view row_key;
};

// Which columns are sealed is each schema's owner's to say, beside its tables: the messaging tables
// (common/messaging/messaging.h), the referral's (common/referral/sealed_columns.h), the linkage
// service's (services/linkage/desk.h). sarloopctl reseals the union.

// Serialises and seals `message` for the cell (`column`, `row_key`).
absl::StatusOr<Blob> SealProto(Txn& txn, absl::string_view column, absl::string_view row_key,
                               const google::protobuf::Message& message);
// Opens and parses a cell SealProto wrote. DATA_LOSS when it does not parse.
absl::Status UnsealProto(Txn& txn, absl::string_view column, absl::string_view row_key,
                         absl::string_view stored, google::protobuf::Message* message);

struct ResealReport {
  // Per key id: cells found sealed with it before the run.
  std::map<std::string, int64_t> before;
  // Cells moved to the current key.
  int64_t resealed = 0;
};

// Re-encrypts every cell of `columns` not under the current key, in transactions of `batch` rows
// so a running service keeps working. A column whose table the database does not hold is skipped
// (a database holds its own service's tables only). Safe to interrupt and run again. With
// `dry_run`, only counts.
absl::StatusOr<ResealReport> Reseal(Database& db, std::span<const SealedColumn> columns,
                                    const std::string& current_key_id, bool dry_run,
                                    int batch = 200);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SECURITY_SEALED_H_
