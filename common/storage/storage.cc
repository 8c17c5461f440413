// Group commit over any engine (storage_engine.h): the write queue, write jobs on the writer
// thread, savepoints, storage health, migrations. The engines hold only what differs.
#include "common/storage/storage.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/base/crypto.h"
#include "common/base/fault.h"
#include "common/base/mutex.h"
#include "common/base/status.h"
#include "common/storage/storage_engine.h"

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

namespace storage_internal {

namespace {
std::string CellAad(absl::string_view column, absl::string_view row_key) {
  return absl::StrCat(column, absl::string_view("\0", 1), row_key);
}
}  // namespace

absl::StatusOr<Blob> SealingTxn::Seal(absl::string_view column, absl::string_view row_key,
                                      absl::string_view plaintext) {
  if (keys_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(column, ": the database was opened without data keys"));
  }
  ASSIGN_OR_RETURN(std::string sealed, keys_->Seal(plaintext, CellAad(column, row_key)));
  return Blob{std::move(sealed)};
}

absl::StatusOr<std::string> SealingTxn::Unseal(absl::string_view column, absl::string_view row_key,
                                               absl::string_view stored) {
  if (keys_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(column, ": the database was opened without data keys"));
  }
  absl::StatusOr<std::string> plain = keys_->Open(stored, CellAad(column, row_key));
  if (!plain.ok()) {
    return absl::Status(plain.status().code(),
                        absl::StrCat(column, " of ", row_key, ": ", plain.status().message()));
  }
  return plain;
}

namespace {

class GroupCommitDatabase : public Database {
 public:
  explicit GroupCommitDatabase(Engine engine)
      : conn_(std::move(engine.writer)),
        readers_(std::move(engine.readers)),
        keys_(std::move(engine.keys)) {
    for (auto& r : readers_) free_readers_.push_back(r.get());
  }

  ~GroupCommitDatabase() override {
    {
      MutexLock lock(&jobs_mu_);
      stopping_ = true;
      // A host that never released the writer: what it left runs on a thread of ours.
      if (hosted_) Unhost();
    }
    jobs_cv_.Signal();
    if (writer_.joinable()) writer_.join();
  }

  // Group commit, as LevelDB's write queue: callers queue up; the one at the front leads. It takes
  // every function queued at that moment, runs each in its own SAVEPOINT (one that fails is rolled
  // back alone and gets its own error), commits once, and only then answers them; a failed COMMIT
  // fails all of them. Those that queued meanwhile form the next batch, so the batch grows with
  // the load while one fsync is in progress, and a lone caller pays nothing extra. Once the writer
  // thread runs (Submit), calls from other threads become jobs of their own on it instead.
  absl::Status Transact(const std::function<absl::Status(Txn&)>& fn) override {
    if (tl_batch.db == this) return TransactInBatch(fn);
    if (writes_failing_.load()) return WritesRefused();
    if (writer_started_.load() && std::this_thread::get_id() != writer_id_.load()) {
      return TransactOnWriter(fn);
    }
    Writer mine;
    mine.fn = &fn;
    MutexLock queue_lock(&queue_mu_);
    writers_.push_back(&mine);
    while (!mine.done && &mine != writers_.front()) mine.cv.Wait(&queue_mu_);
    if (mine.done) return mine.status;
    const size_t n = std::min(writers_.size(), max_batch_.load());
    std::vector<Writer*> batch(writers_.begin(), writers_.begin() + static_cast<ptrdiff_t>(n));
    queue_lock.Unlock();
    bool committed;
    const absl::Time began = absl::Now();
    {
      MutexLock lock(&mu_);
      committed = RunBatch(batch);
    }
    if (committed && commit_observer_) {
      int64_t ok = 0;
      for (const Writer* w : batch) ok += w->status.ok() ? 1 : 0;
      Observe(ok, absl::Now() - began);
    }
    // What the committed functions asked to run once they were durable (AfterCommit).
    for (Writer* w : batch) {
      if (w->status.ok()) {
        for (auto& fn : w->after_commit) fn();
      }
    }
    queue_lock.Lock();
    stats_.commits += committed ? 1 : 0;
    for (Writer* w : batch) {
      writers_.pop_front();
      if (committed && w->status.ok()) ++stats_.transactions;
      w->done = true;
      if (w != &mine) w->cv.Signal();
    }
    if (!writers_.empty()) writers_.front()->cv.Signal();
    return mine.status;
  }

  void SetCommitObserver(std::function<void(int64_t, absl::Duration)> observer) override {
    commit_observer_ = std::move(observer);
  }

  void SetMaxBatch(int n) override { max_batch_.store(static_cast<size_t>(std::max(n, 1))); }

  CommitStats Stats() override {
    MutexLock lock(&queue_mu_);
    return stats_;
  }

  bool WritesFailing() override { return writes_failing_.load(); }

  absl::Status Probe() override {
    if (!writes_failing_.load()) return absl::OkStatus();
    MutexLock lock(&mu_);
    absl::Status s = RunLocked(true, [](Txn& txn) -> absl::Status {
      RETURN_IF_ERROR(
          txn.Exec("CREATE TABLE IF NOT EXISTS storage_probe "
                   "(id INTEGER PRIMARY KEY, at BIGINT NOT NULL)"));
      return txn.Exec(
          "INSERT INTO storage_probe (id, at) VALUES (1, ?) "
          "ON CONFLICT (id) DO UPDATE SET at = excluded.at",
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

  bool InWriteJob() const override { return tl_batch.db == this; }

  absl::Status Read(const std::function<absl::Status(Txn&)>& fn) override {
    if (tl_batch.db == this || tl_reading == this) {
      // Inside a write job, or inside a read this thread runs on the writer's connection: that
      // transaction's snapshot (taking the connection again would wait for this very thread).
      mu_.AssertHeld();  // by that write job or read, on this thread
      return fn(conn_->txn());
    }
    // The commit observer's reads (the watch streams woken by a commit read the rows it stored)
    // run on the writer's connection: its page cache holds those very pages, while a reader's is
    // dropped whenever the write-ahead log has moved since its last read, so there the same read
    // goes back to the file. The observer runs once the batch is answered, with the connection
    // idle; what it reads is known (common/messaging/watch.h), and none of it writes. (Should it
    // start a write, a read inside that writer function keeps to a reader: the writer's lock is
    // held.)
    if (readers_.empty() || (tl_observing == this && tl_writer.db != this)) {
      MutexLock lock(&mu_);
      tl_reading = this;
      absl::Status status = RunLocked(false, fn);
      tl_reading = nullptr;
      return status;
    }
    Connection* reader = TakeReader();
    absl::Status status = reader->Begin(false);
    if (status.ok()) status = fn(reader->txn());
    if (reader->InTransaction()) reader->Rollback();
    GiveBackReader(reader);
    return status;
  }

  void Submit(std::function<Completion()> job) override {
    {
      MutexLock lock(&jobs_mu_);
      jobs_.push_back(std::move(job));
      if (hosted_) {
        // The host runs the writer after every event it takes: from its own thread no signal.
        if (!OnWriterThread()) wake_();
        return;
      }
      StartWriter();
    }
    jobs_cv_.Signal();
  }

  using Database::Ride;
  void Ride(std::function<absl::Status(Txn&)> fn, absl::Duration within,
            std::function<void()> lost) override {
    if (max_batch_.load() <= 1) within = absl::ZeroDuration();  // every write its own commit
    {
      MutexLock lock(&jobs_mu_);
      const auto due = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(within);
      const bool sooner = riders_.empty() || due < riders_due_;
      if (sooner) riders_due_ = due;
      riders_.push_back({std::move(fn), std::move(lost)});
      if (hosted_) {
        // The host waits until the due time RunWriter last gave it, or an event.
        if (sooner && !OnWriterThread()) wake_();
        return;
      }
      StartWriter();
    }
    // The writer sleeps until a job comes or the earliest rider is due; it must hear of an
    // earlier due time.
    jobs_cv_.Signal();
  }

  absl::Status HostWriter(std::function<void()> wake) override {
    MutexLock lock(&jobs_mu_);
    if (writer_.joinable()) {
      return absl::FailedPreconditionError("the database's writer thread already runs");
    }
    wake_ = std::move(wake);
    hosted_ = true;
    if (!jobs_.empty() || !riders_.empty()) wake_();
    return absl::OkStatus();
  }

  std::chrono::steady_clock::time_point RunWriter() override {
    std::vector<std::function<Completion()>> batch;
    {
      MutexLock lock(&jobs_mu_);
      writer_id_.store(std::this_thread::get_id());
      writer_started_.store(true);
      batch = TakeBatch();
    }
    if (!batch.empty()) RunJobs(batch);
    MutexLock lock(&jobs_mu_);
    // Jobs this thread submitted while the batch ran signalled nobody.
    if (!jobs_.empty()) return std::chrono::steady_clock::now();
    return riders_.empty() ? std::chrono::steady_clock::time_point::max() : riders_due_;
  }

  void ReleaseWriter() override {
    {
      MutexLock lock(&jobs_mu_);
      if (!hosted_) return;
      Unhost();
    }
    jobs_cv_.Signal();
  }

  void AfterCommit(std::function<void()> fn) override {
    if (tl_batch.db == this) {
      tl_batch.batch->after_commit.push_back(std::move(fn));
    } else if (tl_writer.db == this) {
      tl_writer.hooks->push_back(std::move(fn));
    } else {
      fn();
    }
  }

  absl::StatusOr<int64_t> SynchronousMode() override {
    MutexLock lock(&mu_);
    return conn_->SynchronousMode();
  }

  // Applies the migrations not yet applied, each in its own transaction. The version is read
  // again inside each, so processes sharing a database (PostgreSQL replicas) that start together
  // apply every step once.
  absl::Status Migrate(std::span<const Migration> migrations) {
    MutexLock lock(&mu_);
    for (size_t i = 0;; ++i) {
      bool done = false;
      RETURN_IF_ERROR(RunLocked(true, [&](Txn&) -> absl::Status {
        mu_.AssertHeld();  // RunLocked runs it under the lock
        ASSIGN_OR_RETURN(const int64_t version, conn_->SchemaVersion());
        if (version > static_cast<int64_t>(migrations.size())) {
          return absl::FailedPreconditionError(
              absl::StrCat("database schema version ", version, " is newer than this binary (",
                           migrations.size(), "); refusing to start"));
        }
        if (version == static_cast<int64_t>(migrations.size())) {
          done = true;
          return absl::OkStatus();
        }
        const Migration& m = migrations[version];
        absl::Status s = conn_->ExecScript(m);
        if (!s.ok()) {
          return absl::Status(s.code(),
                              absl::StrCat("migration '", m.description, "': ", s.message()));
        }
        return conn_->SetSchemaVersion(version + 1);
      }));
      if (done) return absl::OkStatus();
    }
  }

 private:
  // The batch the writer thread is running, seen by the jobs it runs (thread-local, so a job's
  // Transact and Read know they are inside it).
  struct Batch {
    // Set when the batch itself failed (BEGIN, or a savepoint statement): nothing in it commits.
    absl::Status error;
    int64_t transactions = 0;
    // Transact calls running (one inside another's function nests).
    int open = 0;
    std::vector<std::function<void()>> after_commit;
  };
  struct BatchContext {
    GroupCommitDatabase* db = nullptr;
    Batch* batch = nullptr;
  };
  static thread_local BatchContext tl_batch;

  struct Writer {
    const std::function<absl::Status(Txn&)>* fn = nullptr;
    absl::Status status;
    bool done = false;
    CondVar cv;
    // AfterCommit calls made while `fn` ran: run once the batch has committed, if `fn` succeeded.
    std::vector<std::function<void()>> after_commit;
  };
  // The writer whose function the group-commit leader is running on this thread.
  struct WriterContext {
    GroupCommitDatabase* db = nullptr;
    std::vector<std::function<void()>>* hooks = nullptr;
  };
  static thread_local WriterContext tl_writer;
  // The database whose commit observer this thread is running, and the one whose Read it runs on
  // the writer's connection.
  static thread_local GroupCommitDatabase* tl_observing;
  static thread_local GroupCommitDatabase* tl_reading;

  // Tells the commit observer, with its reads on the writer's connection (Read).
  void Observe(int64_t transactions, absl::Duration took) {
    tl_observing = this;
    commit_observer_(transactions, took);
    tl_observing = nullptr;
  }

  // Runs `w`'s function with AfterCommit calls collected for it.
  absl::Status RunWriter(Writer& w, const std::function<absl::Status(Txn&)>& run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    tl_writer = WriterContext{this, &w.after_commit};
    absl::Status s = run(conn_->txn());
    tl_writer = WriterContext{};
    if (!s.ok()) w.after_commit.clear();
    return s;
  }
  // Enough to carry every call a service admits at once (max_inflight_calls) in one commit.
  static constexpr size_t kMaxBatch = 512;

  absl::Status WritesRefused() {
    return RetryLater(
        absl::StatusCode::kUnavailable,
        absl::StrCat("storage cannot take writes (", FailureReason(), "); retry later"),
        absl::Seconds(1));
  }

  // Runs `fn` in the open transaction so that a failure undoes `fn` alone, and drops the
  // AfterCommit calls it made. When nothing else is in the transaction yet (`alone`), that needs
  // no savepoint: a failure rolls the whole transaction back and begins another. A savepoint is
  // not free: SQLite copies every page `fn` changes into its statement journal first, about 50 us
  // of a 180 us three-write transaction here, and at light load most transactions are alone.
  absl::Status RunUndoable(const std::function<absl::Status(Txn&)>& fn, absl::Status& batch_error,
                           std::vector<std::function<void()>>* hooks, bool alone)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Txn& txn = conn_->txn();
    const size_t hooks_before = hooks != nullptr ? hooks->size() : 0;
    if (!alone) {
      if (absl::Status s = txn.Exec("SAVEPOINT grp"); !s.ok()) {
        batch_error = s;
        return s;
      }
    }
    absl::Status status = fn(txn);
    if (!status.ok()) {
      NoteFailure();
      if (hooks != nullptr) hooks->resize(hooks_before);
      absl::Status undo;
      if (alone) {
        conn_->Rollback();
        undo = conn_->Begin(true);
      } else {
        undo = txn.Exec("ROLLBACK TO SAVEPOINT grp");
        if (undo.ok()) undo = txn.Exec("RELEASE SAVEPOINT grp");
      }
      if (!undo.ok()) batch_error = undo;
      return status;
    }
    if (alone) return absl::OkStatus();
    if (absl::Status s = txn.Exec("RELEASE SAVEPOINT grp"); !s.ok()) {
      batch_error = s;
      return s;
    }
    return absl::OkStatus();
  }

  // A Transact call from inside a write job: its own savepoint in the batch's transaction, unless
  // it is the first to write there.
  absl::Status TransactInBatch(const std::function<absl::Status(Txn&)>& fn)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Batch& b = *tl_batch.batch;
    if (!b.error.ok()) return b.error;
    if (writes_failing_.load()) return WritesRefused();
    const bool alone = b.transactions == 0 && b.open == 0;
    ++b.open;
    absl::Status status = RunUndoable(fn, b.error, &b.after_commit, alone);
    --b.open;
    if (status.ok()) ++b.transactions;
    return status;
  }

  // A Transact call from another thread once the writer runs: a job of its own, waited for, so
  // that it shares the writer's commits instead of taking turns with them.
  absl::Status TransactOnWriter(const std::function<absl::Status(Txn&)>& fn) {
    struct Wait {
      Mutex mu;
      CondVar cv;
      bool done ABSL_GUARDED_BY(mu) = false;
      absl::Status status ABSL_GUARDED_BY(mu);
    } wait;
    Submit([&]() -> Completion {
      absl::Status status = Transact(fn);
      return [&wait, status](const absl::Status& commit) {
        MutexLock lock(&wait.mu);
        wait.status = status.ok() ? commit : status;
        wait.done = true;
        wait.cv.Signal();
      };
    });
    MutexLock lock(&wait.mu);
    while (!wait.done) wait.cv.Wait(&wait.mu);
    return wait.status;
  }

  void StartWriter() ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs_mu_) {
    if (writer_.joinable()) return;
    writer_ = std::thread([this] { WriterLoop(); });
    writer_id_.store(writer_.get_id());
    writer_started_.store(true);
  }

  // The host is gone: the loop runs on a thread of ours from now on, at once if work is queued.
  void Unhost() ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs_mu_) {
    hosted_ = false;
    wake_ = nullptr;
    if (!jobs_.empty() || !riders_.empty()) StartWriter();
  }

  bool OnWriterThread() const {
    return writer_started_.load() && std::this_thread::get_id() == writer_id_.load();
  }

  struct Rider {
    std::function<absl::Status(Txn&)> fn;
    std::function<void()> lost;
  };

  // A rider as a job of the batch it rides in.
  std::function<Completion()> RiderJob(Rider rider) {
    return [this, rider = std::move(rider)]() -> Completion {
      const absl::Status status = Transact(rider.fn);
      return [status, lost = rider.lost](const absl::Status& commit) {
        const absl::Status& failed = status.ok() ? commit : status;
        if (failed.ok()) return;
        spdlog::warn("storage: a deferred write was lost: {}", failed.ToString());
        if (lost) lost();
      };
    };
  }

  // The next batch: the queued jobs, up to the batch limit, and the riders: all of them when they
  // can ride with jobs, else when the earliest is due (one at a time with group commit off).
  // Empty when nothing is due.
  std::vector<std::function<Completion()>> TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs_mu_) {
    const bool riders_due =
        !riders_.empty() && (stopping_ || std::chrono::steady_clock::now() >= riders_due_);
    if (jobs_.empty() && !riders_due) return {};
    const size_t n = std::min(jobs_.size(), max_batch_.load());
    std::vector<std::function<Completion()>> batch(std::make_move_iterator(jobs_.begin()),
                                                   std::make_move_iterator(jobs_.begin() + n));
    jobs_.erase(jobs_.begin(), jobs_.begin() + static_cast<ptrdiff_t>(n));
    const size_t riders = max_batch_.load() <= 1 && !batch.empty() ? 0
                          : max_batch_.load() <= 1                 ? 1
                                                                   : riders_.size();
    for (size_t i = 0; i < riders; ++i) batch.push_back(RiderJob(std::move(riders_[i])));
    riders_.erase(riders_.begin(), riders_.begin() + static_cast<ptrdiff_t>(riders));
    return batch;
  }

  void WriterLoop() {
    // Named, so a profile tells the writer from the gRPC thread that happened to start it.
    pthread_setname_np(pthread_self(), "sarloop-writer");
    MutexLock lock(&jobs_mu_);
    for (;;) {
      // No predicate: a Ride wakes it to look at the riders' due time again.
      if (!stopping_ && jobs_.empty()) {
        if (riders_.empty()) {
          jobs_cv_.Wait(&jobs_mu_);
        } else {
          jobs_cv_.WaitUntil(&jobs_mu_, riders_due_);
        }
      }
      std::vector<std::function<Completion()>> batch = TakeBatch();
      if (batch.empty()) {
        if (stopping_) return;  // every job and rider submitted has run
        continue;               // woken early, or told of another due time
      }
      lock.Unlock();
      RunJobs(batch);
      lock.Lock();
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
      MutexLock lock(&mu_);
      batch.error = BeginWrite();
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
      } else if (conn_->InTransaction()) {
        conn_->Rollback();
      }
    }
    const bool committed = commit.ok() && batch.transactions > 0;
    const absl::Duration took = absl::Now() - began;
    {
      MutexLock queue_lock(&queue_mu_);
      stats_.commits += committed ? 1 : 0;
      stats_.transactions += committed ? batch.transactions : 0;
    }
    if (commit.ok()) {
      for (auto& fn : batch.after_commit) fn();
    }
    if (!acked_early) {
      for (Completion& c : completions) c(commit);
    }
    // After the answers: the observer wakes the watch streams, which read the feed on this thread
    // while few are open (common/messaging/watch.h), and no caller should wait for that.
    if (committed && commit_observer_) Observe(batch.transactions, took);
  }

  // Starts a write transaction, after settling whatever an earlier one left open.
  absl::Status BeginWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (conn_->InTransaction()) {
      // Only the fault suite's unsafe "ack_before_commit" leaves a transaction open on purpose.
      // Anything else left open (a failed ROLLBACK) was never reported as done: discard it.
      if (fault::Unsafe("ack_before_commit")) {
        RETURN_IF_ERROR(Commit());
      } else {
        conn_->Rollback();
      }
    }
    absl::Status s = conn_->Begin(true);
    if (!s.ok()) NoteFailure();
    return s;
  }

  // Runs `batch` as one transaction and sets each writer's status: OK only if the COMMIT
  // succeeded. Returns whether something was committed.
  bool RunBatch(const std::vector<Writer*>& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (batch.size() == 1) {
      Writer& w = *batch[0];
      w.status = RunLocked(true, [&](Txn&) {
        mu_.AssertHeld();  // RunLocked runs it under the lock
        return RunWriter(w, *w.fn);
      });
      if (!w.status.ok()) w.after_commit.clear();
      return w.status.ok();
    }
    std::vector<absl::Status> results(batch.size());
    const absl::Status all = RunLocked(true, [&](Txn&) -> absl::Status {
      mu_.AssertHeld();  // RunLocked runs it under the lock
      bool any_ok = false;
      absl::Status batch_error;
      for (size_t i = 0; i < batch.size(); ++i) {
        Writer& w = *batch[i];
        // RunWriter drops a failed writer's AfterCommit calls itself.
        results[i] = RunUndoable(
            [&](Txn&) {
              mu_.AssertHeld();  // RunUndoable runs it under the lock
              return RunWriter(w, *w.fn);
            },
            batch_error,
            /*hooks=*/nullptr, /*alone=*/!any_ok);
        RETURN_IF_ERROR(batch_error);
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

  absl::Status RunLocked(bool write, const std::function<absl::Status(Txn&)>& fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write) {
      RETURN_IF_ERROR(BeginWrite());
    } else {
      if (conn_->InTransaction()) {
        if (fault::Unsafe("ack_before_commit")) {
          RETURN_IF_ERROR(Commit());
        } else {
          conn_->Rollback();
        }
      }
      RETURN_IF_ERROR(conn_->Begin(false));
    }
    absl::Status status = fn(conn_->txn());
    if (!status.ok()) {
      if (write) NoteFailure();
      conn_->Rollback();
      return status;
    }
    if (!write) {
      conn_->Rollback();
      return absl::OkStatus();
    }
    fault::CrashPoint("storage.before_commit");
    // Unsafe mode (test builds only): report success now and commit at the next transaction, the
    // bug the power-loss test must catch.
    if (fault::Unsafe("ack_before_commit")) return absl::OkStatus();
    RETURN_IF_ERROR(Commit());
    fault::CrashPoint("storage.after_commit");
    return absl::OkStatus();
  }

  absl::Status Commit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status s = conn_->Commit();
    if (!s.ok()) NoteFailure();
    return s;
  }

  // Disk full or an I/O error in the statement that just failed: stop taking writes.
  void NoteFailure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::optional<std::string> reason = conn_->StorageFailure();
    if (!reason) return;
    {
      MutexLock reason_lock(&reason_mu_);
      failure_ = *reason;
    }
    if (!writes_failing_.exchange(true)) {
      spdlog::error("storage: a write failed ({}); refusing writes until one succeeds again",
                    *reason);
    }
  }

  std::string FailureReason() {
    MutexLock reason_lock(&reason_mu_);
    return failure_;
  }

  Connection* TakeReader() {
    MutexLock lock(&readers_mu_);
    while (free_readers_.empty()) readers_cv_.Wait(&readers_mu_);
    Connection* c = free_readers_.back();
    free_readers_.pop_back();
    return c;
  }

  void GiveBackReader(Connection* c) {
    {
      MutexLock lock(&readers_mu_);
      free_readers_.push_back(c);
    }
    readers_cv_.Signal();
  }

  Mutex queue_mu_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(queue_mu_);
  std::atomic<size_t> max_batch_{kMaxBatch};
  std::function<void(int64_t, absl::Duration)> commit_observer_;
  CommitStats stats_ ABSL_GUARDED_BY(queue_mu_);
  // The writer thread and its queue of jobs.
  Mutex jobs_mu_;
  CondVar jobs_cv_;
  std::deque<std::function<Completion()>> jobs_ ABSL_GUARDED_BY(jobs_mu_);
  // Ride: functions waiting for a batch, and when the earliest of them must have one.
  std::deque<Rider> riders_ ABSL_GUARDED_BY(jobs_mu_);
  std::chrono::steady_clock::time_point riders_due_ ABSL_GUARDED_BY(jobs_mu_);
  bool stopping_ ABSL_GUARDED_BY(jobs_mu_) = false;
  std::thread writer_;
  // Whether a host runs the writer's loop (HostWriter), and how to tell it there is work.
  bool hosted_ ABSL_GUARDED_BY(jobs_mu_) = false;
  std::function<void()> wake_ ABSL_GUARDED_BY(jobs_mu_);
  // The thread running the writer's loop: ours, or the host's.
  std::atomic<std::thread::id> writer_id_;
  std::atomic<bool> writer_started_{false};
  std::atomic<bool> writes_failing_{false};
  int probes_ok_ ABSL_GUARDED_BY(mu_) = 0;
  Mutex reason_mu_;
  std::string failure_ ABSL_GUARDED_BY(reason_mu_);
  Mutex mu_;
  const std::unique_ptr<Connection> conn_ ABSL_PT_GUARDED_BY(mu_);
  const std::vector<std::unique_ptr<Connection>> readers_;
  Mutex readers_mu_;
  CondVar readers_cv_;
  std::vector<Connection*> free_readers_ ABSL_GUARDED_BY(readers_mu_);
  const std::shared_ptr<const Keyring> keys_;
};

thread_local GroupCommitDatabase::BatchContext GroupCommitDatabase::tl_batch;
thread_local GroupCommitDatabase::WriterContext GroupCommitDatabase::tl_writer;
thread_local GroupCommitDatabase* GroupCommitDatabase::tl_observing = nullptr;
thread_local GroupCommitDatabase* GroupCommitDatabase::tl_reading = nullptr;

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> NewGroupCommitDatabase(
    Engine engine, std::optional<std::span<const Migration>> migrations) {
  auto db = std::make_unique<GroupCommitDatabase>(std::move(engine));
  if (migrations) RETURN_IF_ERROR(db->Migrate(*migrations));
  return db;
}

}  // namespace storage_internal
}  // namespace sarloop
