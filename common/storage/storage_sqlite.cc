// The SQLite engine: a writer connection per service database, in WAL mode with
// synchronous=FULL, reader connections beside it, and a checkpointer that copies the WAL back into
// the database file on its own thread.
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/fault.h"
#include "common/base/mutex.h"
#include "common/base/status.h"
#include "common/storage/sqlite_page_cache.h"
#include "common/storage/storage.h"
#include "common/storage/storage_engine.h"
#include "common/storage/storage_wal_vfs.h"

namespace sarloop {
namespace {

using storage_internal::CoalescingWalVfs;
using storage_internal::Connection;
using storage_internal::Engine;
using storage_internal::SealingTxn;

// Disk full and I/O errors are conditions a service waits out (UNAVAILABLE); anything else is a
// programming or data error (INTERNAL).
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", sqlite3_errmsg(db), " (", rc, ")");
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_BUSY ||
      primary == SQLITE_LOCKED || primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

absl::Status BindAll(sqlite3* db, sqlite3_stmt* stmt, const std::vector<SqlValue>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    const int idx = static_cast<int>(i) + 1;
    int rc = SQLITE_OK;
    const SqlValue& v = params[i];
    if (std::holds_alternative<std::monostate>(v)) {
      rc = sqlite3_bind_null(stmt, idx);
    } else if (auto* n = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt, idx, *n);
    } else if (auto* s = std::get_if<std::string>(&v)) {
      rc = sqlite3_bind_text(stmt, idx, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
    } else if (auto* b = std::get_if<Blob>(&v)) {
      rc = sqlite3_bind_blob(stmt, idx, b->bytes.data(), static_cast<int>(b->bytes.size()),
                             SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) return SqliteError(db, rc, "bind");
  }
  return absl::OkStatus();
}

class SqliteTxn : public SealingTxn {
 public:
  SqliteTxn(sqlite3* db, const Keyring* keys) : SealingTxn(keys), db_(db) {}
  ~SqliteTxn() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  }

  absl::Status Exec(absl::string_view sql, std::vector<SqlValue> params) override {
    return Query(sql, std::move(params)).status();
  }

  absl::StatusOr<std::vector<Row>> Query(absl::string_view sql,
                                         std::vector<SqlValue> params) override {
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    RETURN_IF_ERROR(BindAll(db_, stmt, params));
    std::vector<Row> rows;
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        absl::Status err = SqliteError(db_, rc, sql);
        sqlite3_reset(stmt);
        return err;
      }
      const int n = sqlite3_column_count(stmt);
      std::vector<SqlValue> values;
      values.reserve(n);
      for (int c = 0; c < n; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_INTEGER:
            values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, c)));
            break;
          case SQLITE_TEXT:
            values.emplace_back(
                std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)),
                            sqlite3_column_bytes(stmt, c)));
            break;
          case SQLITE_BLOB: {
            const void* p = sqlite3_column_blob(stmt, c);
            values.emplace_back(
                Blob{std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt, c))});
            break;
          }
          case SQLITE_FLOAT:
            values.emplace_back(static_cast<int64_t>(sqlite3_column_double(stmt, c)));
            break;
          default:
            values.emplace_back(std::monostate{});
        }
      }
      rows.emplace_back(std::move(values));
    }
    sqlite3_reset(stmt);
    return rows;
  }

  int64_t Changes() override { return sqlite3_changes64(db_); }

 private:
  // Finds or prepares a cached statement.
  absl::StatusOr<sqlite3_stmt*> Prepare(absl::string_view sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, absl::StrCat("prepare ", sql));
    statements_.emplace(std::string(sql), stmt);
    return stmt;
  }

  sqlite3* const db_;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
};

// sqlite3_open_v2 with sarloop's settings. NOT_FOUND when the file must exist and does not.
// `vfs` null: the default.
absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, int flags,
                                        const char* vfs = nullptr) {
  storage_internal::InstallSqlitePageCache();
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK) {
    std::string msg =
        absl::StrCat("open ", path, ": ", raw ? sqlite3_errmsg(raw) : "out of memory");
    sqlite3_close_v2(raw);
    if ((rc & 0xff) == SQLITE_CANTOPEN && !(flags & SQLITE_OPEN_CREATE)) {
      return absl::NotFoundError(msg);
    }
    return absl::UnavailableError(msg);
  }
  sqlite3_extended_result_codes(raw, 1);
  return raw;
}

// Copies the WAL back into the database file on its own thread and connection. SQLite's own
// auto-checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages, on the writer thread:
// that commit, and every job in its batch, waited for some hundreds of page writes and an fsync of
// the database file. Here the writer's WAL hook only says that a checkpoint is due. A PASSIVE
// checkpoint never blocks the writer or a reader; what it cannot copy yet (a page a reader's
// snapshot still needs) is copied by the next one. Durability does not depend on it: a commit is
// durable once its WAL frames are synced.
class Checkpointer {
 public:
  // Every this many WAL pages after a commit: SQLite's default auto-checkpoint threshold.
  static constexpr int kDueFrames = 1000;

  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(const std::string& path,
                                                             bool synchronous_full) {
    ASSIGN_OR_RETURN(sqlite3 * db, OpenConnection(path, SQLITE_OPEN_READWRITE));
    auto self = std::unique_ptr<Checkpointer>(new Checkpointer(db));
    const char* sync =
        synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
    if (const int rc = sqlite3_exec(db, sync, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      return SqliteError(db, rc, sync);
    }
    self->thread_ = std::thread([raw = self.get()] { raw->Loop(); });
    return self;
  }

  ~Checkpointer() {
    Stop();
    sqlite3_close_v2(db_);
  }

  // Joins the thread; called before the writer's connection closes (SQLite checkpoints then).
  void Stop() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.Signal();
    if (thread_.joinable()) thread_.join();
  }

  // The writer's WAL hook: after each commit, with the WAL's size in pages.
  static int OnCommit(void* self, sqlite3*, const char*, int frames) {
    static_cast<Checkpointer*>(self)->Committed(frames);
    return SQLITE_OK;
  }

 private:
  explicit Checkpointer(sqlite3* db) : db_(db) {}

  // A checkpoint is due at every kDueFrames pages the WAL has grown since one was last asked for,
  // not after every commit past the threshold. The WAL starts again from its beginning only when
  // a write begins with everything copied and no reader in it; while readers keep it from doing
  // so, asking after every commit ran a checkpoint per commit (each two fsyncs, the same hot pages
  // copied again, and a wake-up of this thread): on a busy service most of this thread's work.
  // A checkpoint refused as BUSY is asked again kDueFrames pages later.
  void Committed(int frames) {
    if (frames < asked_at_) asked_at_ = 0;  // the WAL started again from its beginning
    if (frames - asked_at_ < kDueFrames) return;
    asked_at_ = frames;
    Due();
  }

  void Due() {
    {
      MutexLock lock(&mu_);
      if (due_) return;
      due_ = true;
    }
    cv_.Signal();
  }

  void Loop() {
    pthread_setname_np(pthread_self(), "sarloop-ckpt");
    MutexLock lock(&mu_);
    for (;;) {
      while (!due_ && !stop_) cv_.Wait(&mu_);
      if (stop_) return;
      due_ = false;
      lock.Unlock();
      int wal_pages = 0, copied = 0;
      const int rc =
          sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &wal_pages, &copied);
      // BUSY: another connection is checkpointing; the next commit past the threshold asks again.
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        spdlog::warn("storage: checkpoint failed: {} (the WAL keeps the writes; retried when due)",
                     sqlite3_errmsg(db_));
      }
      lock.Lock();
    }
  }

  sqlite3* const db_;
  int asked_at_ = 0;  // the WAL's size when a checkpoint was last asked for; the writer's only
  Mutex mu_;
  CondVar cv_;
  bool due_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class SqliteConnection : public Connection {
 public:
  SqliteConnection(sqlite3* db, const Keyring* keys)
      : db_(db), txn_(std::make_unique<SqliteTxn>(db, keys)) {}
  ~SqliteConnection() override {
    txn_.reset();  // its statements are finalised before the connection closes
    if (checkpointer_) {
      checkpointer_->Stop();
      sqlite3_wal_hook(db_, nullptr, nullptr);
    }
    sqlite3_close_v2(db_);
  }

  Txn& txn() override { return *txn_; }

  // BEGIN and COMMIT go through the connection's cached statements like any other: through
  // sqlite3_exec each was parsed again at every transaction (1.6% of a light-load profile).
  absl::Status Begin(bool write) override {
    return txn_->Exec(write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED", {});
  }

  absl::Status Commit() override {
    absl::Status err = txn_->Exec("COMMIT", {});
    if (!err.ok()) {
      // A failed COMMIT may leave the transaction open; make sure nothing of it survives.
      Rollback();
    }
    return err;
  }

  // Every read transaction ends here, so ROLLBACK goes through the cached statement too (through
  // sqlite3_exec it was parsed at every read: 16% of the NCA's register watch under load).
  void Rollback() override {
    if (!InTransaction()) return;
    if (!txn_->Exec("ROLLBACK", {}).ok() && InTransaction()) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  bool InTransaction() override { return !sqlite3_get_autocommit(db_); }

  std::optional<std::string> StorageFailure() override {
    const int primary = sqlite3_errcode(db_) & 0xff;
    if (primary != SQLITE_FULL && primary != SQLITE_IOERR) return std::nullopt;
    return std::string(sqlite3_errmsg(db_));
  }

  absl::StatusOr<int64_t> SchemaVersion() override {
    ASSIGN_OR_RETURN(auto rows, txn_->Query("PRAGMA user_version", {}));
    return rows.empty() ? 0 : rows[0].Int(0);
  }

  absl::Status SetSchemaVersion(int64_t version) override {
    return txn_->Exec(absl::StrCat("PRAGMA user_version = ", version), {});
  }

  absl::Status ExecScript(const Migration& migration) override {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, std::string(migration.sql).c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : "";
      sqlite3_free(err);
      return absl::InternalError(msg);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> SynchronousMode() override {
    ASSIGN_OR_RETURN(auto rows, txn_->Query("PRAGMA synchronous", {}));
    if (rows.empty()) return absl::InternalError("PRAGMA synchronous returned nothing");
    return rows[0].Int(0);
  }

  // sarloop's settings, checked: WAL and synchronous=FULL, or the database is refused.
  absl::Status Configure() {
    RETURN_IF_ERROR(txn_->Exec("PRAGMA busy_timeout = 5000", {}));
    ASSIGN_OR_RETURN(auto mode, txn_->Query("PRAGMA journal_mode = WAL", {}));
    if (mode.empty() || mode[0].Text(0) != "wal") {
      return absl::UnavailableError("SQLite did not enter WAL mode");
    }
    // The fault suite's unsafe mode proves its power-loss test fails without FULL.
    const bool unsafe = fault::Unsafe("sync_normal");
    RETURN_IF_ERROR(
        txn_->Exec(unsafe ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL", {}));
    ASSIGN_OR_RETURN(int64_t sync, SynchronousMode());
    if (sync != (unsafe ? 1 : 2)) {
      return absl::UnavailableError("SQLite did not take synchronous=FULL");
    }
    RETURN_IF_ERROR(txn_->Exec("PRAGMA foreign_keys = ON", {}));
    // Checkpoints off the writer thread (Checkpointer). The hook replaces SQLite's auto-checkpoint.
    const char* path = sqlite3_db_filename(db_, "main");
    if (path == nullptr || *path == '\0') return absl::InternalError("the database has no file");
    ASSIGN_OR_RETURN(checkpointer_, Checkpointer::Start(path, !unsafe));
    sqlite3_wal_hook(db_, &Checkpointer::OnCommit, checkpointer_.get());
    // Every job in a group commit runs in its own savepoint, and SQLite keeps what a savepoint
    // may have to roll back in a sub-journal that, past 64 KiB, it spills to a new file in
    // /var/tmp: a file created, written page by page and deleted on most commits (strace of the
    // writer at 10 lifecycles/s). It is never needed after a crash (the WAL is the journal), so
    // it stays in memory; it is bounded by what one transaction changes.
    RETURN_IF_ERROR(txn_->Exec("PRAGMA temp_store = MEMORY", {}));
    // Up to 64 MiB of page cache (SQLite's default is 2 MiB): a register of a million referrals
    // has indexes far bigger than that, and every insert into them would otherwise be a read
    // from disk. Memory is taken only as pages are used.
    return txn_->Exec("PRAGMA cache_size = -65536", {});
  }

  // A connection that only reads, beside the writer (WAL gives each read transaction its own
  // snapshot of what is committed).
  absl::Status ConfigureReader() {
    RETURN_IF_ERROR(txn_->Exec("PRAGMA busy_timeout = 5000", {}));
    RETURN_IF_ERROR(txn_->Exec("PRAGMA query_only = ON", {}));
    return txn_->Exec("PRAGMA cache_size = -65536", {});
  }

 private:
  sqlite3* const db_;
  std::unique_ptr<SqliteTxn> txn_;
  std::unique_ptr<Checkpointer> checkpointer_;  // the writer's; none on a reader
};

absl::StatusOr<std::unique_ptr<Database>> OpenSqlite(
    const std::string& path, int flags, bool configure,
    std::optional<std::span<const Migration>> migrations, std::shared_ptr<const Keyring> keys,
    int readers = 0) {
  // The writer hands its WAL down in one write per commit (storage_wal_vfs.h): only in
  // synchronous=FULL, where every commit syncs before other connections may read its frames.
  const bool synchronous_full = configure && !fault::Unsafe("sync_normal");
  ASSIGN_OR_RETURN(sqlite3 * raw,
                   OpenConnection(path, flags, synchronous_full ? CoalescingWalVfs() : nullptr));
  auto conn = std::make_unique<SqliteConnection>(raw, keys.get());
  if (configure) {
    RETURN_IF_ERROR(conn->Configure());
  } else {
    sqlite3_busy_timeout(raw, 5000);
  }
  Engine engine;
  engine.writer = std::move(conn);
  // Opened after the writer has put the file in WAL mode; a schema the migrations change later
  // is picked up by each statement as it is prepared.
  for (int i = 0; i < readers; ++i) {
    ASSIGN_OR_RETURN(sqlite3 * r, OpenConnection(path, SQLITE_OPEN_READWRITE));
    auto reader = std::make_unique<SqliteConnection>(r, keys.get());
    RETURN_IF_ERROR(reader->ConfigureReader());
    engine.readers.push_back(std::move(reader));
  }
  engine.keys = std::move(keys);
  return storage_internal::NewGroupCommitDatabase(std::move(engine), migrations);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         std::span<const Migration> migrations,
                                                         std::shared_ptr<const Keyring> keys,
                                                         int readers) {
  return OpenSqlite(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, true, migrations,
                    std::move(keys), readers);
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenExisting(
    const std::string& path, std::shared_ptr<const Keyring> keys) {
  return OpenSqlite(path, SQLITE_OPEN_READWRITE, true, std::nullopt, std::move(keys));
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenReadOnly(
    const std::string& path, std::shared_ptr<const Keyring> keys) {
  return OpenSqlite(path, SQLITE_OPEN_READONLY, false, std::nullopt, std::move(keys));
}

}  // namespace sarloop
