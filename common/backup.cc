#include "common/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace sarloop {
namespace {

// A connection closed on scope exit.
class Connection {
 public:
  ~Connection() { sqlite3_close_v2(db_); }
  absl::Status Open(const std::string& path, int flags) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      return absl::UnavailableError(
          absl::StrCat("open ", path, ": ", db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
    }
    sqlite3_busy_timeout(db_, 10000);
    return absl::OkStatus();
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

absl::Status SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    return absl::UnavailableError(absl::StrCat("fsync ", path, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

absl::Status SyncDirectoryOf(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return SyncFile(dir.empty() ? "." : dir.string());
}

absl::StatusOr<int64_t> QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::DataLossError(absl::StrCat(sql, ": ", sqlite3_errmsg(db)));
  }
  int64_t value = 0;
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
  std::string error = rc == SQLITE_ROW || rc == SQLITE_DONE ? "" : sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  if (!error.empty()) return absl::DataLossError(absl::StrCat(sql, ": ", error));
  return value;
}

}  // namespace

absl::Status BackupDatabase(const std::string& from, const std::string& to) {
  if (!std::filesystem::exists(from))
    return absl::NotFoundError(absl::StrCat(from, ": no such database"));
  if (std::filesystem::exists(to)) {
    return absl::AlreadyExistsError(absl::StrCat(to, " exists; a backup never overwrites"));
  }
  Connection source, dest;
  RETURN_IF_ERROR(source.Open(from, SQLITE_OPEN_READONLY));
  RETURN_IF_ERROR(dest.Open(to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  sqlite3_backup* backup = sqlite3_backup_init(dest.get(), "main", source.get(), "main");
  if (backup == nullptr) {
    std::filesystem::remove(to);
    return absl::UnavailableError(
        absl::StrCat("backup of ", from, ": ", sqlite3_errmsg(dest.get())));
  }
  // All pages in one step: one read transaction, so one consistent moment of the source.
  const int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    std::filesystem::remove(to);
    return absl::UnavailableError(absl::StrCat("backup of ", from, ": ", sqlite3_errstr(rc)));
  }
  // The copy is a plain rollback-journal file: nothing of it waits in a WAL.
  sqlite3_exec(dest.get(), "PRAGMA journal_mode = DELETE", nullptr, nullptr, nullptr);
  RETURN_IF_ERROR(SyncFile(to));
  return SyncDirectoryOf(to);
}

absl::StatusOr<DatabaseFileInfo> CheckDatabaseFile(const std::string& file) {
  if (!std::filesystem::exists(file))
    return absl::NotFoundError(absl::StrCat(file, ": no such file"));
  Connection db;
  RETURN_IF_ERROR(db.Open(file, SQLITE_OPEN_READONLY));
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db.get(), "PRAGMA integrity_check(1)", -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::DataLossError(
        absl::StrCat(file, ": not a database (", sqlite3_errmsg(db.get()), ")"));
  }
  std::string result;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  } else {
    result = sqlite3_errmsg(db.get());
  }
  sqlite3_finalize(stmt);
  if (result != "ok") return absl::DataLossError(absl::StrCat(file, ": damaged: ", result));
  DatabaseFileInfo info;
  ASSIGN_OR_RETURN(info.schema_version, QueryInt(db.get(), "PRAGMA user_version"));
  ASSIGN_OR_RETURN(info.pages, QueryInt(db.get(), "PRAGMA page_count"));
  absl::StatusOr<int64_t> audit = QueryInt(db.get(), "SELECT COUNT(*) FROM audit");
  info.audit_entries = audit.ok() ? *audit : 0;
  return info;
}

absl::Status RestoreDatabase(const std::string& backup, const std::string& database) {
  RETURN_IF_ERROR(CheckDatabaseFile(backup).status());
  const std::string staging = database + ".restoring";
  std::error_code ec;
  std::filesystem::remove(staging, ec);
  std::filesystem::copy_file(backup, staging, ec);
  if (ec)
    return absl::UnavailableError(
        absl::StrCat("copy ", backup, " to ", staging, ": ", ec.message()));
  RETURN_IF_ERROR(SyncFile(staging));
  // The log and shared memory of the database being replaced must not be applied to the copy.
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(database + suffix, ec);
  std::filesystem::rename(staging, database, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("rename ", staging, ": ", ec.message()));
  return SyncDirectoryOf(database);
}

}  // namespace sarloop
