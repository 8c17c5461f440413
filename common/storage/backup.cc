#include "common/storage/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/files.h"
#include "common/base/status.h"

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

// Who owns a file and its permission bits.
struct Ownership {
  uid_t uid;
  gid_t gid;
  mode_t mode;
};

// The ownership a file put in place of `path` must have: that of `path`, or when there is none
// yet, its directory's owner with 0600, so the service that owns the directory can use it.
absl::StatusOr<Ownership> OwnershipFor(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return Ownership{st.st_uid, st.st_gid, st.st_mode & 07777};
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (::stat(dir.empty() ? "." : dir.c_str(), &st) != 0) {
    return absl::UnavailableError(absl::StrCat(dir.string(), ": ", std::strerror(errno)));
  }
  return Ownership{st.st_uid, st.st_gid, 0600};
}

// Copies `from` to `to` (replaced if it exists) with `owner`'s owner and mode, and syncs it.
absl::Status CopyOwned(const std::string& from, const std::string& to, const Ownership& owner) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return absl::UnavailableError(absl::StrCat(from, ": ", std::strerror(errno)));
  // Created readable by nobody else from the first byte; the mode is set once the owner is.
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    ::close(in);
    return absl::UnavailableError(absl::StrCat(to, ": ", std::strerror(errno)));
  }
  std::string error;
  if (::fchmod(out, 0600) != 0) error = absl::StrCat("chmod ", to);
  std::vector<char> buffer(1 << 20);
  while (error.empty()) {
    const ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = absl::StrCat("read ", from);
      break;
    }
    for (ssize_t done = 0; done < n && error.empty();) {
      const ssize_t w = ::write(out, buffer.data() + done, n - done);
      if (w < 0 && errno != EINTR) error = absl::StrCat("write ", to);
      if (w > 0) done += w;
    }
  }
  // Only root may give a file away; anyone else's copy is already theirs.
  if (error.empty() && ::geteuid() == 0 && ::fchown(out, owner.uid, owner.gid) != 0) {
    error = absl::StrCat("chown ", to);
  }
  if (error.empty() && ::fchmod(out, owner.mode) != 0) error = absl::StrCat("chmod ", to);
  if (error.empty() && ::fsync(out) != 0) error = absl::StrCat("fsync ", to);
  if (!error.empty()) error = absl::StrCat(error, ": ", std::strerror(errno));
  ::close(in);
  ::close(out);
  if (!error.empty()) return absl::UnavailableError(error);
  return absl::OkStatus();
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
  // The copy holds what the database holds: readable by its owner only (SQLite keeps an existing
  // file's mode, and gives its journal the same).
  const int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(to, ": ", std::strerror(errno)));
  const bool private_mode = ::fchmod(fd, 0600) == 0;
  ::close(fd);
  if (!private_mode) {
    std::filesystem::remove(to);
    return absl::UnavailableError(absl::StrCat("chmod ", to, ": ", std::strerror(errno)));
  }
  Connection source, dest;
  RETURN_IF_ERROR(source.Open(from, SQLITE_OPEN_READONLY));
  RETURN_IF_ERROR(dest.Open(to, SQLITE_OPEN_READWRITE));
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

// A restored change feed numbers its next events as it did at the backup, so a cursor handed
// out since would skip them: without the secret that signed them, the service makes a new one
// when it starts and refuses every cursor and page token signed before. A database without a
// feed has no such table.
absl::Status ForgetTokenSecret(const std::string& path) {
  Connection db;
  RETURN_IF_ERROR(db.Open(path, SQLITE_OPEN_READWRITE));
  char* error = nullptr;
  const int rc = sqlite3_exec(db.get(), "DELETE FROM token_secret", nullptr, nullptr, &error);
  const std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  if (message.find("no such table") != std::string::npos) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(path, ": ", message));
}

absl::Status RestoreDatabase(const std::string& backup, const std::string& database) {
  RETURN_IF_ERROR(CheckDatabaseFile(backup).status());
  const std::string staging = database + ".restoring";
  ASSIGN_OR_RETURN(const Ownership owner, OwnershipFor(database));
  std::error_code ec;
  std::filesystem::remove(staging, ec);
  RETURN_IF_ERROR(CopyOwned(backup, staging, owner));
  absl::Status forgot = ForgetTokenSecret(staging);
  if (forgot.ok()) forgot = SyncFile(staging);
  if (!forgot.ok()) {
    std::filesystem::remove(staging, ec);
    return forgot;
  }
  // The log and shared memory of the database being replaced must not be applied to the copy.
  // They are set aside, not deleted, until the copy is in place: should the rename fail, the
  // database being replaced keeps what its log holds.
  std::vector<std::string> aside;
  auto put_back = [&](const std::string& what, const std::error_code& why) {
    std::error_code ignored;
    for (const std::string& from : aside) {
      std::filesystem::rename(from + ".replaced", from, ignored);
    }
    std::filesystem::remove(staging, ignored);
    return absl::UnavailableError(absl::StrCat("rename ", what, ": ", why.message()));
  };
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string from = database + suffix;
    if (!std::filesystem::exists(from, ec)) continue;
    std::filesystem::rename(from, from + ".replaced", ec);
    if (ec) return put_back(from, ec);
    aside.push_back(from);
  }
  std::filesystem::rename(staging, database, ec);
  if (ec) {
    return put_back(staging, ec);
  }
  for (const std::string& from : aside) std::filesystem::remove(from + ".replaced", ec);
  return SyncDirectoryOf(database);
}

absl::Status CopyFilePrivately(const std::string& from, const std::string& to) {
  if (std::filesystem::exists(to)) {
    return absl::AlreadyExistsError(absl::StrCat(to, " exists; a backup never overwrites"));
  }
  return CopyOwned(from, to, Ownership{::geteuid(), ::getegid(), 0600});
}

absl::Status RestoreFileBeside(const std::string& from, const std::string& to,
                               const std::string& database) {
  ASSIGN_OR_RETURN(const Ownership owner, OwnershipFor(database));
  // Copied beside and renamed over: a crash leaves the old file or the new, never a part.
  const std::string staging = to + ".restoring";
  absl::Status copied = CopyOwned(from, staging, owner);
  std::error_code ec;
  if (copied.ok()) {
    std::filesystem::rename(staging, to, ec);
    if (ec) copied = absl::UnavailableError(absl::StrCat("rename ", staging, ": ", ec.message()));
  }
  if (!copied.ok()) {
    std::filesystem::remove(staging, ec);
    return copied;
  }
  return SyncDirectoryOf(to);
}

}  // namespace sarloop
