// The seam between group commit (common/storage/storage.cc, written once) and a database engine
// (SQLite, PostgreSQL). An engine supplies connections; group commit decides when they begin and
// commit, runs savepoints, answers callers and keeps the storage-health state. Not for use outside
// common/: services see only Database and Txn.
#ifndef SARLOOP_COMMON_STORAGE_STORAGE_ENGINE_H_
#define SARLOOP_COMMON_STORAGE_STORAGE_ENGINE_H_

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/storage/storage.h"

namespace sarloop::storage_internal {

// Txn's sealed cells, the same for every engine: AES-GCM with the keyring, bound to the cell.
class SealingTxn : public Txn {
 public:
  explicit SealingTxn(const Keyring* keys) : keys_(keys) {}
  absl::StatusOr<Blob> Seal(absl::string_view column, absl::string_view row_key,
                            absl::string_view plaintext) override;
  absl::StatusOr<std::string> Unseal(absl::string_view column, absl::string_view row_key,
                                     absl::string_view stored) override;

 private:
  const Keyring* const keys_;
};

// One engine connection. Used by one thread at a time (group commit holds a lock around it).
class Connection {
 public:
  virtual ~Connection() = default;
  // The statements of the transaction open on this connection.
  virtual Txn& txn() = 0;
  // Starts a write transaction (which takes the engine's write lock at once where it has one) or
  // a read transaction.
  virtual absl::Status Begin(bool write) = 0;
  // Commits; on failure the transaction is rolled back and nothing of it is kept.
  virtual absl::Status Commit() = 0;
  virtual void Rollback() = 0;
  virtual bool InTransaction() = 0;
  // After a statement failed: the reason, when the failure means the storage cannot take writes
  // (disk full, I/O error) rather than a bad statement or a conflict.
  virtual std::optional<std::string> StorageFailure() = 0;
  // How many migrations the schema has had (SQLite's user_version; a table on PostgreSQL). Inside
  // a transaction.
  virtual absl::StatusOr<int64_t> SchemaVersion() = 0;
  virtual absl::Status SetSchemaVersion(int64_t version) = 0;
  // Runs a migration's script (several statements) in this engine's dialect.
  virtual absl::Status ExecScript(const Migration& migration) = 0;
  // 2 when a commit is durable when it returns (SQLite synchronous=FULL; PostgreSQL
  // synchronous_commit=on with fsync on).
  virtual absl::StatusOr<int64_t> SynchronousMode() = 0;
};

// What an engine gives group commit.
struct Engine {
  // The connection that writes, and that reads too when `readers` is empty.
  std::unique_ptr<Connection> writer;
  // Connections for Read, used while the writer works (an engine with MVCC across connections).
  std::vector<std::unique_ptr<Connection>> readers;
  std::shared_ptr<const Keyring> keys;
};

// Database over `engine`, with group commit, write jobs and storage health. Applies `migrations`
// unless nullopt.
absl::StatusOr<std::unique_ptr<Database>> NewGroupCommitDatabase(
    Engine engine, std::optional<std::span<const Migration>> migrations);

}  // namespace sarloop::storage_internal

#endif  // SARLOOP_COMMON_STORAGE_STORAGE_ENGINE_H_
