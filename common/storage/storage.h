// Storage: one SQLite database per service instance (DESIGN §7), behind a narrow interface.
//
// Durability contract: Open() puts the database in WAL mode with synchronous=FULL and reads both
// back, failing if SQLite did not take them. Transact() returns OK only after COMMIT has returned,
// i.e. after the WAL has been synced; a service acknowledges a request only after that.
//
// Thread-safety: a Database may be used from any thread. SQLite allows one writer: concurrent
// writes share one transaction and one commit (group commit). Before Submit is first called, the
// Transact call at the front of the queue commits everyone queued behind it; after, a writer
// thread runs the batches, and write jobs (Submit) run on it and answer from its commit. The
// writer's loop may instead run on a thread of the caller's (HostWriter): a server's serving
// thread, which then takes a write call, runs it, commits it and answers it without handing it
// to another thread. Reads share the same connection and wait for a batch to finish.
#ifndef SARLOOP_COMMON_STORAGE_STORAGE_H_
#define SARLOOP_COMMON_STORAGE_STORAGE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sarloop {

class Keyring;

// Group commit's effect: how many transactions committed and how many Transact functions they
// carried (their ratio is the messages per commit).
struct CommitStats {
  int64_t commits = 0;
  int64_t transactions = 0;
};

// Binary data for a BLOB column (serialised protobufs).
struct Blob {
  std::string bytes;
};

// A SQL value: NULL, INTEGER, TEXT or BLOB.
using SqlValue = std::variant<std::monostate, int64_t, std::string, Blob>;

// One result row. Accessors return a default (0 or "") for NULL.
class Row {
 public:
  explicit Row(std::vector<SqlValue> values) : values_(std::move(values)) {}
  int64_t Int(int i) const;
  // TEXT or BLOB contents.
  const std::string& Text(int i) const;
  bool IsNull(int i) const { return std::holds_alternative<std::monostate>(values_.at(i)); }
  size_t size() const { return values_.size(); }

 private:
  std::vector<SqlValue> values_;
};

// A step in the schema's history. Migrations are applied in order, each in its own transaction,
// and PRAGMA user_version records how many have been applied. Never edit a released migration;
// append a new one.
struct Migration {
  absl::string_view description;
  absl::string_view sql;
  // The same step in PostgreSQL's dialect (BIGINT, BYTEA, identity columns), for the schemas that
  // may live there (the NCA's); empty where a schema is SQLite's only.
  absl::string_view postgres_sql = {};
};

// The statements of one transaction. Only valid inside Database::Transact/Read.
class Txn {
 public:
  virtual ~Txn() = default;
  // Runs a statement that returns no rows. `?` placeholders take `params` in order.
  virtual absl::Status Exec(absl::string_view sql, std::vector<SqlValue> params = {}) = 0;
  // Runs a query and returns all rows.
  virtual absl::StatusOr<std::vector<Row>> Query(absl::string_view sql,
                                                 std::vector<SqlValue> params = {}) = 0;
  // Rows changed by the last Exec.
  virtual int64_t Changes() = 0;
  // Makes the rest of this transaction exclusive with every other transaction that serialises on
  // `what`, in any process sharing the database, until it ends: for orders that must be global,
  // such as a hash chain's next link. Taking it again in the same transaction is free. A no-op
  // where the engine has one writer (SQLite).
  virtual absl::Status Serialize(absl::string_view what) { return absl::OkStatus(); }

  // Sealed cells (DESIGN §5): `plaintext` encrypted with the database's keyring for the cell
  // named by `column` ("table.column") and `row_key`, so it opens only there.
  // FAILED_PRECONDITION when the database was opened without keys.
  virtual absl::StatusOr<Blob> Seal(absl::string_view column, absl::string_view row_key,
                                    absl::string_view plaintext) = 0;
  // The inverse of Seal for the same cell. DATA_LOSS when the stored value was altered or moved;
  // FAILED_PRECONDITION when its key is not configured.
  virtual absl::StatusOr<std::string> Unseal(absl::string_view column, absl::string_view row_key,
                                             absl::string_view stored) = 0;
};

// The one name a service's global orders (the audit chain's next link, the NCA register's
// change sequence) serialise on. One name, not one per order: a batch holds what it takes until
// its COMMIT, so two names taken in different orders by two replicas' batches would deadlock.
inline constexpr absl::string_view kGlobalOrder = "sarloop.global-order";

class Database {
 public:
  virtual ~Database() = default;

  // Opens or creates the database at `path` and applies pending `migrations`.
  // Errors: UNAVAILABLE when the file cannot be opened or the pragmas do not take;
  // FAILED_PRECONDITION when the database is newer than this binary (more migrations applied).
  // `keys` seal and open sensitive cells (Txn::Seal); without them those calls fail. With
  // `readers` > 0, Read outside a write job runs on one of that many extra connections, beside
  // the writer, instead of waiting for it (and holding it up) on the one connection.
  static absl::StatusOr<std::unique_ptr<Database>> Open(
      const std::string& path, std::span<const Migration> migrations,
      std::shared_ptr<const Keyring> keys = nullptr, int readers = 0);

  // Opens a PostgreSQL database (libpq `conninfo`, e.g. "host=/run/postgresql dbname=nca") and
  // applies pending migrations in their PostgreSQL form, with `readers` extra connections so reads
  // run beside the writer. Several processes may share it (replicas). Commits are as durable as
  // the server's synchronous_commit; SynchronousMode reports 2 only when it is on and fsync too.
  // Errors: UNAVAILABLE when the server cannot be reached.
  static absl::StatusOr<std::unique_ptr<Database>> OpenPostgres(
      const std::string& conninfo, std::span<const Migration> migrations,
      std::shared_ptr<const Keyring> keys = nullptr, int readers = 2);
  // The same without migrations, for tools (audit verification) that do not know the schema.
  static absl::StatusOr<std::unique_ptr<Database>> OpenPostgresExisting(
      const std::string& conninfo, std::shared_ptr<const Keyring> keys = nullptr);

  // Opens an existing database for maintenance (e.g. resealing after key rotation) by a tool that
  // does not know the service's schema: read-write, same pragmas, no migrations. NOT_FOUND when
  // the file does not exist.
  static absl::StatusOr<std::unique_ptr<Database>> OpenExisting(
      const std::string& path, std::shared_ptr<const Keyring> keys);

  // Opens an existing database read-only (for offline tools such as audit verification); no
  // migrations run. Write transactions on it fail.
  static absl::StatusOr<std::unique_ptr<Database>> OpenReadOnly(
      const std::string& path, std::shared_ptr<const Keyring> keys = nullptr);

  // Runs `fn` in a write transaction (BEGIN IMMEDIATE). If `fn` fails, rolls back and returns its
  // error. Otherwise commits and returns the commit's status: UNAVAILABLE when the commit failed
  // (disk full, I/O error), in which case nothing of `fn` is kept. Concurrent calls may share one
  // SQLite transaction and one commit (group commit), each `fn` in its own savepoint: one that
  // fails is rolled back alone, and none is answered OK before the shared COMMIT has returned.
  virtual absl::Status Transact(const std::function<absl::Status(Txn&)>& fn) = 0;
  // Commits and the Transact functions they carried, since the database was opened.
  virtual CommitStats Stats() = 0;
  // At most `n` (>= 1) Transact functions per commit; 1 turns group commit off. For measuring it.
  virtual void SetMaxBatch(int n) = 0;
  // Told after every commit how many Transact functions it carried and how long the batch took
  // (for metrics, and to wake watch streams). A batch of write jobs tells it after the jobs have
  // been answered. Set before the database is shared between threads.
  virtual void SetCommitObserver(std::function<void(int64_t, absl::Duration)> observer) = 0;

  // What a write job does once its batch has ended, told the COMMIT's status: only on OK may its
  // caller hear that the job took effect.
  using Completion = std::function<void(const absl::Status& commit)>;
  // Runs `job` later on the database's writer thread (started by the first Submit), inside the
  // transaction of a batch shared with the jobs and Transact calls queued at that moment: it
  // saves each caller a thread of its own and a wake-up after the commit. Transact calls the job
  // makes run at once in their own savepoints and return their function's status, whose effect
  // still waits for the batch's COMMIT; Read calls see the batch so far. A job must not block on
  // anything but this database. The job returns its Completion, called on the writer thread after
  // the batch ends.
  virtual void Submit(std::function<Completion()> job) = 0;
  // Runs `fn` later in a write batch's transaction without waiting for it: in the next batch that
  // commits for another reason, or in one of its own once `within` has passed (at once when
  // group commit is off). Only for bookkeeping a crash may lose at the cost of a repeat someone
  // else absorbs, such as marking a delivery done (the receiver deduplicates): it saves a commit,
  // an fsync and a wait per call. `fn`'s failure, or the commit's, is logged and, if `lost` is
  // set, told to it on the writer thread, so the caller can do again what the write recorded.
  virtual void Ride(std::function<absl::Status(Txn&)> fn, absl::Duration within,
                    std::function<void()> lost) = 0;
  void Ride(std::function<absl::Status(Txn&)> fn, absl::Duration within) {
    Ride(std::move(fn), within, nullptr);
  }
  // Runs `fn` once what this thread is writing is committed: called inside a write job or a
  // Transact function, after the COMMIT that carries it (never if that fails, or if the function
  // fails); called outside both, at once. For effects outside the database (caches, indexes,
  // waking the delivery worker) that must not see what may yet be rolled back.
  virtual void AfterCommit(std::function<void()> fn) = 0;
  // Whether this thread is running a write job or Transact function of this database: a Transact
  // it makes now runs at once in the same batch, where it would otherwise wait for a batch (so
  // code that submits jobs and waits for them must not, from here).
  virtual bool InWriteJob() const = 0;

  // Hands the writer's loop to a host thread instead of a thread of the database's own. From now
  // on, work for the writer that comes from another thread (a Submit; a Ride due sooner than the
  // host was last told) calls `wake`, and the host then calls RunWriter, always from the same
  // thread. `wake` runs under the database's lock: it may only signal. ReleaseWriter, once the
  // host calls RunWriter no more, hands the loop back to a thread of the database's own.
  // FAILED_PRECONDITION when that thread already runs (a Submit came first).
  virtual absl::Status HostWriter(std::function<void()> wake) = 0;
  // On the host thread: runs one batch of what is queued, if any is due (Submit's jobs; riders
  // with them, or when due). Returns the time by which the host must call again unwoken: now when
  // more is queued, a rider's due time, or the steady clock's maximum.
  virtual std::chrono::steady_clock::time_point RunWriter() = 0;
  virtual void ReleaseWriter() = 0;

  // Runs `fn` in a read transaction. Writes inside `fn` are an error.
  virtual absl::Status Read(const std::function<absl::Status(Txn&)>& fn) = 0;

  // The synchronous pragma as SQLite reports it (2 = FULL). For start-up checks and tests.
  virtual absl::StatusOr<int64_t> SynchronousMode() = 0;

  // Storage health (DESIGN §6). Once a write fails for lack of space or an I/O error, every
  // Transact is refused at once with UNAVAILABLE (and a retry delay) while Read still works, until
  // Probe() manages to commit a write again. The service reports NOT_SERVING meanwhile.
  virtual bool WritesFailing() = 0;
  // Tries a small write; after three successes in a row writes are taken again. OK when writes
  // are being taken.
  virtual absl::Status Probe() = 0;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_STORAGE_STORAGE_H_
