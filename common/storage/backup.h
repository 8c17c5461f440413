// Backup and restore of a service's database, for the operator's tools (sarloopctl db ...).
//
// A backup is taken online, while the service runs: SQLite's backup API copies every page inside
// one read transaction, so the copy is the database as of one moment, and writers (WAL) are not
// held up. Sealed cells stay sealed: a backup is no use without the service's data keys, which
// are backed up apart from it.
#ifndef SARLOOP_COMMON_STORAGE_BACKUP_H_
#define SARLOOP_COMMON_STORAGE_BACKUP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sarloop {

struct DatabaseFileInfo {
  // PRAGMA user_version: how many migrations the file has.
  int64_t schema_version = 0;
  int64_t pages = 0;
  int64_t audit_entries = 0;
};

// Copies the database at `from` to `to`, which must not exist yet, readable by its owner only
// (0600), and syncs it to disk.
// NOT_FOUND when `from` does not exist; ALREADY_EXISTS when `to` does.
absl::Status BackupDatabase(const std::string& from, const std::string& to);

// Opens `file` read-only and checks it (PRAGMA integrity_check). DATA_LOSS naming the first
// problem when it is damaged or not a database.
absl::StatusOr<DatabaseFileInfo> CheckDatabaseFile(const std::string& file);

// Puts a checked copy of `backup` in place of `database` (whose service must be stopped): the copy
// is written next to it with the owner and mode of the file it replaces (or of its directory's
// owner, 0600, if there is none: a restore run as root must leave a file the service can write)
// and synced, the old write-ahead log and shared-memory files are removed (they belong to the
// database being replaced), and the copy is renamed over it.
absl::Status RestoreDatabase(const std::string& backup, const std::string& database);

// Copies a file that goes with a backup (the audit checkpoints) to `to`, which must not exist,
// readable by its owner only.
absl::Status CopyFilePrivately(const std::string& from, const std::string& to);

// Restores a file that goes with `database` (its audit checkpoints) from `from` to `to`, with the
// owner and mode `database` has.
absl::Status RestoreFileBeside(const std::string& from, const std::string& to,
                               const std::string& database);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_STORAGE_BACKUP_H_
