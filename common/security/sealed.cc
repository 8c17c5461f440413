#include "common/security/sealed.h"

#include "absl/strings/str_cat.h"
#include "common/base/crypto.h"
#include "common/base/status.h"

namespace sarloop {

absl::StatusOr<Blob> SealProto(Txn& txn, absl::string_view column, absl::string_view row_key,
                               const google::protobuf::Message& message) {
  std::string bytes = message.SerializeAsString();
  absl::StatusOr<Blob> sealed = txn.Seal(column, row_key, bytes);
  std::fill(bytes.begin(), bytes.end(), '\0');
  return sealed;
}

absl::Status UnsealProto(Txn& txn, absl::string_view column, absl::string_view row_key,
                         absl::string_view stored, google::protobuf::Message* message) {
  ASSIGN_OR_RETURN(std::string bytes, txn.Unseal(column, row_key, stored));
  const bool parsed = message->ParseFromString(bytes);
  std::fill(bytes.begin(), bytes.end(), '\0');
  if (!parsed)
    return absl::DataLossError(absl::StrCat(column, " of ", row_key, ": does not parse"));
  return absl::OkStatus();
}

absl::StatusOr<ResealReport> Reseal(Database& db, std::span<const SealedColumn> columns,
                                    const std::string& current_key_id, bool dry_run, int batch) {
  ResealReport report;
  for (const SealedColumn& c : columns) {
    bool exists = false;
    RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                            "AND name = ?",
                                            {std::string(c.table)}));
      exists = !rows.empty();
      return absl::OkStatus();
    }));
    if (!exists) continue;
    const std::string field(c.column.substr(c.column.find('.') + 1));
    const std::string select = absl::StrCat("SELECT rowid, ", c.row_key, ", ", field, " FROM ",
                                            c.table, " WHERE rowid > ? ORDER BY rowid LIMIT ?");
    const std::string update = absl::StrCat("UPDATE ", c.table, " SET ", field,
                                            " = ? WHERE rowid = ? AND ", field, " = ?");
    int64_t after = 0;
    while (true) {
      int64_t seen = 0;
      // Read and rewrite in one write transaction, so a cell the service changes meanwhile is
      // either resealed here or written afresh by the service, never overwritten with stale data.
      RETURN_IF_ERROR(db.Transact([&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(auto rows, txn.Query(select, {after, int64_t{batch}}));
        for (const Row& row : rows) {
          ++seen;
          after = row.Int(0);
          ASSIGN_OR_RETURN(std::string key_id, Keyring::KeyIdOf(row.Text(2)));
          ++report.before[key_id];
          if (key_id == current_key_id || dry_run) continue;
          ASSIGN_OR_RETURN(std::string plain, txn.Unseal(c.column, row.Text(1), row.Text(2)));
          ASSIGN_OR_RETURN(Blob sealed, txn.Seal(c.column, row.Text(1), plain));
          std::fill(plain.begin(), plain.end(), '\0');
          RETURN_IF_ERROR(txn.Exec(update, {std::move(sealed), row.Int(0), Blob{row.Text(2)}}));
          report.resealed += txn.Changes();
        }
        return absl::OkStatus();
      }));
      if (seen < batch) break;
    }
  }
  return report;
}

}  // namespace sarloop
