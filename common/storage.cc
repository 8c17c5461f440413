#include "common/storage.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/fault.h"
#include "common/status.h"

namespace sarloop {

int64_t Row::Int(int i) const {
  const SqlValue& v = values_.at(i);
  if (auto* p = std::get_if<int64_t>(&v)) return *p;
  return 0;
}

const std::string& Row::Text(int i) const {
  static const std::string kEmpty;
  const SqlValue& v = values_.at(i);
  if (auto* p = std::get_if<std::string>(&v)) return *p;
  if (auto* p = std::get_if<Blob>(&v)) return p->bytes;
  return kEmpty;
}

namespace {

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

class SqliteDatabase;

class SqliteTxn : public Txn {
 public:
  explicit SqliteTxn(SqliteDatabase* db) : db_(db) {}
  absl::Status Exec(absl::string_view sql, std::vector<SqlValue> params) override;
  absl::StatusOr<std::vector<Row>> Query(absl::string_view sql,
                                         std::vector<SqlValue> params) override;
  int64_t Changes() override;
  absl::StatusOr<Blob> Seal(absl::string_view column, absl::string_view row_key,
                            absl::string_view plaintext) override;
  absl::StatusOr<std::string> Unseal(absl::string_view column, absl::string_view row_key,
                                     absl::string_view stored) override;

 private:
  SqliteDatabase* db_;
};

class SqliteDatabase : public Database {
 public:
  SqliteDatabase(sqlite3* db, std::shared_ptr<const Keyring> keys)
      : db_(db), keys_(std::move(keys)) {}
  ~SqliteDatabase() override {
    {
      std::lock_guard lock(jobs_mu_);
      stopping_ = true;
    }
    jobs_cv_.notify_one();
    if (writer_.joinable()) writer_.join();
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  // Group commit, as LevelDB's write queue: callers queue up; the one at the front leads. It takes
  // every function queued at that moment, runs each in its own SAVEPOINT (one that fails is rolled
  // back alone and gets its own error), commits once, and only then answers them; a failed COMMIT
  // fails all of them. Those that queued meanwhile form the next batch, so the batch grows with
  // the load while one fsync is in progress, and a lone caller pays nothing extra.
  absl::Status Transact(const std::function<absl::Status(Txn&)>& fn) override {
    if (tl_batch.db == this) return TransactInBatch(fn);
    if (writes_failing_.load()) return WritesRefused();
    if (writer_started_.load() && std::this_thread::get_id() != writer_id_) {
      return TransactOnWriter(fn);
    }
    Writer mine;
    mine.fn = &fn;
    std::unique_lock queue_lock(queue_mu_);
    writers_.push_back(&mine);
    while (!mine.done && &mine != writers_.front()) mine.cv.wait(queue_lock);
    if (mine.done) return mine.status;
    const size_t n = std::min(writers_.size(), max_batch_.load());
    std::vector<Writer*> batch(writers_.begin(), writers_.begin() + static_cast<ptrdiff_t>(n));
    queue_lock.unlock();
    bool committed;
    const absl::Time began = absl::Now();
    {
      std::lock_guard lock(mu_);
      committed = RunBatch(batch);
    }
    if (committed && commit_observer_) {
      int64_t ok = 0;
      for (const Writer* w : batch) ok += w->status.ok() ? 1 : 0;
      commit_observer_(ok, absl::Now() - began);
    }
    queue_lock.lock();
    stats_.commits += committed ? 1 : 0;
    for (Writer* w : batch) {
      writers_.pop_front();
      if (committed && w->status.ok()) ++stats_.transactions;
      w->done = true;
      if (w != &mine) w->cv.notify_one();
    }
    if (!writers_.empty()) writers_.front()->cv.notify_one();
    return mine.status;
  }

  void SetCommitObserver(std::function<void(int64_t, absl::Duration)> observer) override {
    commit_observer_ = std::move(observer);
  }

  void SetMaxBatch(int n) override { max_batch_.store(static_cast<size_t>(std::max(n, 1))); }

  // Transactions committed and functions they carried, for the messages-per-commit figure.
  CommitStats Stats() override {
    std::lock_guard lock(queue_mu_);
    return stats_;
  }

  bool WritesFailing() override { return writes_failing_.load(); }

  absl::Status Probe() override {
    if (!writes_failing_.load()) return absl::OkStatus();
    std::lock_guard lock(mu_);
    absl::Status s = RunLocked("BEGIN IMMEDIATE", [](Txn& txn) -> absl::Status {
      RETURN_IF_ERROR(
          txn.Exec("CREATE TABLE IF NOT EXISTS storage_probe "
                   "(id INTEGER PRIMARY KEY, at INTEGER NOT NULL)"));
      return txn.Exec("INSERT OR REPLACE INTO storage_probe (id, at) VALUES (1, ?)",
                      {static_cast<int64_t>(::time(nullptr))});
    });
    // A disk with a little space back can take one small write and fail the next real one:
    // writes are taken again only after three probes in a row succeed.
    probes_ok_ = s.ok() ? probes_ok_ + 1 : 0;
    if (probes_ok_ < 3) {
      return s.ok() ? absl::UnavailableError("storage recovering: probe writes succeed") : s;
    }
    probes_ok_ = 0;
    writes_failing_.store(false);
    return absl::OkStatus();
  }

  absl::Status Read(const std::function<absl::Status(Txn&)>& fn) override {
    if (tl_batch.db == this) {
      // Inside a write job: the writer thread holds the connection, in the batch's transaction.
      SqliteTxn txn(this);
      return fn(txn);
    }
    std::lock_guard lock(mu_);
    return RunLocked("BEGIN DEFERRED", fn);
  }

  void Submit(std::function<Completion()> job) override {
    {
      std::lock_guard lock(jobs_mu_);
      if (!writer_.joinable()) {
        writer_ = std::thread([this] { WriterLoop(); });
        writer_id_ = writer_.get_id();
        writer_started_.store(true);
      }
      jobs_.push_back(std::move(job));
    }
    jobs_cv_.notify_one();
  }

  void AfterCommit(std::function<void()> fn) override {
    if (tl_batch.db == this) {
      tl_batch.batch->after_commit.push_back(std::move(fn));
    } else {
      fn();
    }
  }

  absl::StatusOr<int64_t> SynchronousMode() override {
    std::lock_guard lock(mu_);
    SqliteTxn txn(this);
    ASSIGN_OR_RETURN(auto rows, txn.Query("PRAGMA synchronous", {}));
    if (rows.empty()) return absl::InternalError("PRAGMA synchronous returned nothing");
    return rows[0].Int(0);
  }

  // Without `migrations` (nullopt), the schema is left as it is.
  absl::Status Init(std::optional<std::span<const Migration>> migrations) {
    std::lock_guard lock(mu_);
    SqliteTxn txn(this);
    RETURN_IF_ERROR(txn.Exec("PRAGMA busy_timeout = 5000", {}));
    ASSIGN_OR_RETURN(auto mode, txn.Query("PRAGMA journal_mode = WAL", {}));
    if (mode.empty() || mode[0].Text(0) != "wal") {
      return absl::UnavailableError("SQLite did not enter WAL mode");
    }
    // The fault suite's unsafe mode proves its power-loss test fails without FULL.
    const bool unsafe = fault::Unsafe("sync_normal");
    RETURN_IF_ERROR(
        txn.Exec(unsafe ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL", {}));
    ASSIGN_OR_RETURN(auto sync, txn.Query("PRAGMA synchronous", {}));
    if (sync.empty() || sync[0].Int(0) != (unsafe ? 1 : 2)) {
      return absl::UnavailableError("SQLite did not take synchronous=FULL");
    }
    RETURN_IF_ERROR(txn.Exec("PRAGMA foreign_keys = ON", {}));
    // Up to 64 MiB of page cache (SQLite's default is 2 MiB): a register of a million referrals
    // has indexes far bigger than that, and every insert into them would otherwise be a read
    // from disk. Memory is taken only as pages are used.
    RETURN_IF_ERROR(txn.Exec("PRAGMA cache_size = -65536", {}));
    if (!migrations) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto version_rows, txn.Query("PRAGMA user_version", {}));
    const int64_t version = version_rows.empty() ? 0 : version_rows[0].Int(0);
    if (version > static_cast<int64_t>(migrations->size())) {
      return absl::FailedPreconditionError(
          absl::StrCat("database schema version ", version, " is newer than this binary (",
                       migrations->size(), "); refusing to start"));
    }
    for (size_t i = version; i < migrations->size(); ++i) {
      RETURN_IF_ERROR(RunLocked("BEGIN IMMEDIATE", [&](Txn& t) -> absl::Status {
        RETURN_IF_ERROR(ExecScript((*migrations)[i].sql, (*migrations)[i].description));
        return t.Exec(absl::StrCat("PRAGMA user_version = ", i + 1), {});
      }));
    }
    return absl::OkStatus();
  }

  // Finds or prepares a cached statement.
  absl::StatusOr<sqlite3_stmt*> Prepare(absl::string_view sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = statements_.find(std::string(sql));
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

  sqlite3* raw() { return db_; }
  const Keyring* keys() const { return keys_.get(); }

 private:
  absl::Status ExecScript(absl::string_view sql, absl::string_view what) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : "";
      sqlite3_free(err);
      return absl::InternalError(absl::StrCat("migration '", what, "': ", msg));
    }
    return absl::OkStatus();
  }

  // The batch the writer thread is running, seen by the jobs it runs (thread-local, so a job's
  // Transact and Read know they are inside it).
  struct Batch {
    // Set when the batch itself failed (BEGIN, or a savepoint statement): nothing in it commits.
    absl::Status error;
    int64_t transactions = 0;
    std::vector<std::function<void()>> after_commit;
  };
  struct BatchContext {
    SqliteDatabase* db = nullptr;
    Batch* batch = nullptr;
  };
  static thread_local BatchContext tl_batch;

  absl::Status WritesRefused() {
    return RetryLater(
        absl::StatusCode::kUnavailable,
        absl::StrCat("storage cannot take writes (", FailureReason(), "); retry later"),
        absl::Seconds(1));
  }

  // A Transact call from inside a write job: its own savepoint in the batch's transaction.
  absl::Status TransactInBatch(const std::function<absl::Status(Txn&)>& fn)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Batch& b = *tl_batch.batch;
    if (!b.error.ok()) return b.error;
    if (writes_failing_.load()) return WritesRefused();
    SqliteTxn txn(this);
    if (absl::Status s = txn.Exec("SAVEPOINT grp", {}); !s.ok()) {
      b.error = s;
      return s;
    }
    absl::Status status = fn(txn);
    if (!status.ok()) {
      NoteFailure();
      absl::Status undo = txn.Exec("ROLLBACK TO grp", {});
      if (undo.ok()) undo = txn.Exec("RELEASE grp", {});
      if (!undo.ok()) b.error = undo;
      return status;
    }
    if (absl::Status s = txn.Exec("RELEASE grp", {}); !s.ok()) {
      b.error = s;
      return s;
    }
    ++b.transactions;
    return absl::OkStatus();
  }

  // A Transact call from another thread once the writer runs: a job of its own, waited for, so
  // that it shares the writer's commits instead of taking turns with them.
  absl::Status TransactOnWriter(const std::function<absl::Status(Txn&)>& fn) {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      absl::Status status;
    } wait;
    Submit([&]() -> Completion {
      absl::Status status = Transact(fn);
      return [&wait, status](const absl::Status& commit) {
        std::lock_guard lock(wait.mu);
        wait.status = status.ok() ? commit : status;
        wait.done = true;
        wait.cv.notify_one();
      };
    });
    std::unique_lock lock(wait.mu);
    wait.cv.wait(lock, [&] { return wait.done; });
    return wait.status;
  }

  void WriterLoop() {
    std::unique_lock lock(jobs_mu_);
    for (;;) {
      jobs_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and every job submitted has run
      const size_t n = std::min(jobs_.size(), max_batch_.load());
      std::vector<std::function<Completion()>> batch(std::make_move_iterator(jobs_.begin()),
                                                     std::make_move_iterator(jobs_.begin() + n));
      jobs_.erase(jobs_.begin(), jobs_.begin() + static_cast<ptrdiff_t>(n));
      lock.unlock();
      RunJobs(batch);
      lock.lock();
    }
  }

  // One batch of jobs: one transaction, one COMMIT, then every job's completion.
  void RunJobs(std::vector<std::function<Completion()>>& jobs) {
    std::vector<Completion> completions;
    completions.reserve(jobs.size());
    Batch batch;
    absl::Status commit;
    const absl::Time began = absl::Now();
    bool acked_early = false;
    {
      std::lock_guard lock(mu_);
      batch.error = Begin();
      tl_batch = BatchContext{this, &batch};
      for (auto& job : jobs) completions.push_back(job());
      tl_batch = BatchContext{};
      commit = batch.error;
      if (commit.ok()) {
        fault::CrashPoint("storage.before_commit");
        if (fault::Unsafe("ack_before_commit")) {
          // Unsafe mode (test builds only): answer now, commit with the next transaction.
          acked_early = true;
          for (Completion& c : completions) c(absl::OkStatus());
        } else {
          commit = Commit();
          if (commit.ok()) fault::CrashPoint("storage.after_commit");
        }
      } else if (!sqlite3_get_autocommit(db_)) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      }
    }
    const bool committed = commit.ok() && batch.transactions > 0;
    if (committed && commit_observer_) commit_observer_(batch.transactions, absl::Now() - began);
    {
      std::lock_guard queue_lock(queue_mu_);
      stats_.commits += committed ? 1 : 0;
      stats_.transactions += committed ? batch.transactions : 0;
    }
    if (commit.ok()) {
      for (auto& fn : batch.after_commit) fn();
    }
    if (!acked_early) {
      for (Completion& c : completions) c(commit);
    }
  }

  // BEGIN IMMEDIATE, after settling whatever an earlier transaction left open.
  absl::Status Begin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!sqlite3_get_autocommit(db_)) {
      if (fault::Unsafe("ack_before_commit")) {
        RETURN_IF_ERROR(Commit());
      } else {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      }
    }
    const int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      NoteFailure();
      return SqliteError(db_, rc, "BEGIN IMMEDIATE");
    }
    return absl::OkStatus();
  }

  struct Writer {
    const std::function<absl::Status(Txn&)>* fn = nullptr;
    absl::Status status;
    bool done = false;
    std::condition_variable cv;
  };
  // Enough to carry every call a service admits at once (max_inflight_calls) in one commit.
  static constexpr size_t kMaxBatch = 512;

  // Runs `batch` as one transaction and sets each writer's status: OK only if the COMMIT
  // succeeded. Returns whether something was committed.
  bool RunBatch(const std::vector<Writer*>& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (batch.size() == 1) {
      batch[0]->status = RunLocked("BEGIN IMMEDIATE", *batch[0]->fn);
      return batch[0]->status.ok();
    }
    std::vector<absl::Status> results(batch.size());
    const absl::Status all = RunLocked("BEGIN IMMEDIATE", [&](Txn& txn) -> absl::Status {
      bool any_ok = false;
      for (size_t i = 0; i < batch.size(); ++i) {
        RETURN_IF_ERROR(txn.Exec("SAVEPOINT grp", {}));
        results[i] = (*batch[i]->fn)(txn);
        if (!results[i].ok()) {
          NoteFailure();
          RETURN_IF_ERROR(txn.Exec("ROLLBACK TO grp"));
        }
        RETURN_IF_ERROR(txn.Exec("RELEASE grp"));
        any_ok |= results[i].ok();
      }
      // Nothing to commit when every function failed: roll back as for a single failure.
      return any_ok ? absl::OkStatus() : results[0];
    });
    for (size_t i = 0; i < batch.size(); ++i) {
      // A failed function keeps its own error (if it ran); one that succeeded shares the batch's
      // fate.
      batch[i]->status = results[i].ok() ? all : results[i];
    }
    return all.ok();
  }

  absl::Status RunLocked(const char* begin, const std::function<absl::Status(Txn&)>& fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!sqlite3_get_autocommit(db_)) {
      // Only the fault suite's unsafe "ack_before_commit" leaves a transaction open on purpose.
      // Anything else left open (a failed ROLLBACK) was never reported as done: discard it.
      if (fault::Unsafe("ack_before_commit")) {
        RETURN_IF_ERROR(Commit());
      } else {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      }
    }
    int rc = sqlite3_exec(db_, begin, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, begin);
    SqliteTxn txn(this);
    absl::Status status = fn(txn);
    if (!status.ok()) {
      if (std::string_view(begin) == "BEGIN IMMEDIATE") NoteFailure();
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return status;
    }
    fault::CrashPoint("storage.before_commit");
    // Unsafe mode (test builds only): report success now and commit at the next transaction, the
    // bug the power-loss test must catch.
    if (fault::Unsafe("ack_before_commit") && std::string_view(begin) == "BEGIN IMMEDIATE") {
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(Commit());
    fault::CrashPoint("storage.after_commit");
    return absl::OkStatus();
  }

  absl::Status Commit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      NoteFailure();
      absl::Status err = SqliteError(db_, rc, "COMMIT");
      // A failed COMMIT may leave the transaction open; make sure nothing of it survives.
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return err;
    }
    return absl::OkStatus();
  }

  // Disk full or an I/O error in the statement that just failed: stop taking writes.
  void NoteFailure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int primary = sqlite3_errcode(db_) & 0xff;
    if (primary != SQLITE_FULL && primary != SQLITE_IOERR) return;
    {
      std::lock_guard reason_lock(reason_mu_);
      failure_ = sqlite3_errmsg(db_);
    }
    if (!writes_failing_.exchange(true)) {
      spdlog::error("storage: a write failed ({}); refusing writes until one succeeds again",
                    sqlite3_errmsg(db_));
    }
  }

  std::string FailureReason() {
    std::lock_guard reason_lock(reason_mu_);
    return failure_;
  }

  std::mutex queue_mu_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(queue_mu_);
  std::atomic<size_t> max_batch_{kMaxBatch};
  // The writer thread and its queue of jobs.
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<std::function<Completion()>> jobs_ ABSL_GUARDED_BY(jobs_mu_);
  bool stopping_ ABSL_GUARDED_BY(jobs_mu_) = false;
  std::thread writer_;
  std::thread::id writer_id_;
  std::atomic<bool> writer_started_{false};
  std::function<void(int64_t, absl::Duration)> commit_observer_;
  CommitStats stats_ ABSL_GUARDED_BY(queue_mu_);
  std::atomic<bool> writes_failing_{false};
  int probes_ok_ ABSL_GUARDED_BY(mu_) = 0;
  std::mutex reason_mu_;
  std::string failure_;
  std::mutex mu_;
  sqlite3* const db_;
  const std::shared_ptr<const Keyring> keys_;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_ ABSL_GUARDED_BY(mu_);
  friend class SqliteTxn;
};

thread_local SqliteDatabase::BatchContext SqliteDatabase::tl_batch;

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

absl::StatusOr<std::vector<Row>> SqliteTxn::Query(absl::string_view sql,
                                                  std::vector<SqlValue> params) {
  sqlite3* db = db_->raw();
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, db_->Prepare(sql));
  RETURN_IF_ERROR(BindAll(db, stmt, params));
  std::vector<Row> rows;
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      absl::Status err = SqliteError(db, rc, sql);
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

absl::Status SqliteTxn::Exec(absl::string_view sql, std::vector<SqlValue> params) {
  return Query(sql, std::move(params)).status();
}

int64_t SqliteTxn::Changes() { return sqlite3_changes64(db_->raw()); }

std::string CellAad(absl::string_view column, absl::string_view row_key) {
  return absl::StrCat(column, absl::string_view("\0", 1), row_key);
}

absl::StatusOr<Blob> SqliteTxn::Seal(absl::string_view column, absl::string_view row_key,
                                     absl::string_view plaintext) {
  if (db_->keys() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(column, ": the database was opened without data keys"));
  }
  ASSIGN_OR_RETURN(std::string sealed, db_->keys()->Seal(plaintext, CellAad(column, row_key)));
  return Blob{std::move(sealed)};
}

absl::StatusOr<std::string> SqliteTxn::Unseal(absl::string_view column, absl::string_view row_key,
                                              absl::string_view stored) {
  if (db_->keys() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(column, ": the database was opened without data keys"));
  }
  absl::StatusOr<std::string> plain = db_->keys()->Open(stored, CellAad(column, row_key));
  if (!plain.ok()) {
    return absl::Status(plain.status().code(),
                        absl::StrCat(column, " of ", row_key, ": ", plain.status().message()));
  }
  return plain;
}

}  // namespace

namespace {
// sqlite3_open_v2 with sarloop's settings. NOT_FOUND when the file must exist and does not.
absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
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
}  // namespace

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         std::span<const Migration> migrations,
                                                         std::shared_ptr<const Keyring> keys) {
  ASSIGN_OR_RETURN(sqlite3 * raw, OpenConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  auto db = std::make_unique<SqliteDatabase>(raw, std::move(keys));
  RETURN_IF_ERROR(db->Init(migrations));
  return db;
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenExisting(
    const std::string& path, std::shared_ptr<const Keyring> keys) {
  ASSIGN_OR_RETURN(sqlite3 * raw, OpenConnection(path, SQLITE_OPEN_READWRITE));
  auto db = std::make_unique<SqliteDatabase>(raw, std::move(keys));
  RETURN_IF_ERROR(db->Init(std::nullopt));
  return db;
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenReadOnly(
    const std::string& path, std::shared_ptr<const Keyring> keys) {
  ASSIGN_OR_RETURN(sqlite3 * raw, OpenConnection(path, SQLITE_OPEN_READONLY));
  sqlite3_busy_timeout(raw, 5000);
  return std::unique_ptr<Database>(new SqliteDatabase(raw, std::move(keys)));
}

}  // namespace sarloop
