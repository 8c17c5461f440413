// The tamper-evident audit log every service keeps (DESIGN §5): one entry per RPC and per refusal
// (identity, the user the calling system names, method, referral id, result code), each entry
// hashed over the previous entry's hash (SHA-256), so changing or deleting an entry breaks the
// chain from there on. A signed checkpoint (Ed25519 over the head's sequence number and hash),
// written to a file beside the database, makes cutting entries off the tail detectable too.
//
// Entries for a call that changes something are appended in the same transaction as the change.
#ifndef SARLOOP_COMMON_AUDIT_H_
#define SARLOOP_COMMON_AUDIT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage.h"

namespace sarloop {

extern const Migration kAuditMigration;

struct AuditEntry {
  absl::Time at;
  std::string identity;
  std::string user;
  std::string method;
  std::string referral_id;
  // A grpc::StatusCode number.
  int code = 0;
  std::string detail;
};

// Appends `entry` to the chain inside `txn`.
absl::Status AppendAudit(Txn& txn, const AuditEntry& entry);

// Records one call: inside the call's own transaction when it changes something, otherwise (reads,
// refusals, failures, replays) in a transaction of its own when the call finishes.
class AuditRecorder {
 public:
  AuditRecorder(Database* db, AuditEntry entry) : db_(db), entry_(std::move(entry)) {}
  // Appends the entry with code OK in `txn`. A call whose transaction then fails is recorded
  // again, with its error, by Finish (the first append was rolled back with the transaction).
  absl::Status RecordInTransaction(Txn& txn);
  // Records the call's result unless it was already recorded as OK in its transaction. Returns
  // whether the entry is durable; a caller answers a call only when it is.
  absl::Status Finish(const absl::Status& status);
  // Appends, in `txn`, an entry for one part of the call that was refused (an envelope of a
  // delivery batch): the call's identity and method, `referral_id`, the refusal's code and
  // message.
  absl::Status RecordRefusal(Txn& txn, const std::string& referral_id, const absl::Status& refusal);

 private:
  Database* db_;
  AuditEntry entry_;
  bool recorded_ok_ = false;
};

// Signs the chain's head into the checkpoint file (one line per checkpoint: seq, hash, signature,
// all hex), fsynced. The key is an Ed25519 private key in PEM; when the file does not exist a new
// key is made (0600) and its public half written beside it as KEY.pub.
class AuditCheckpointer {
 public:
  static absl::StatusOr<std::unique_ptr<AuditCheckpointer>> Create(Database& db,
                                                                   std::string key_file,
                                                                   std::string checkpoint_file);
  ~AuditCheckpointer();
  // Writes a checkpoint if the head moved since the last one.
  absl::Status Checkpoint();

 private:
  struct Impl;
  explicit AuditCheckpointer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct AuditReport {
  int64_t entries = 0;
  int64_t checkpoints = 0;
  // 0 when the log verifies; otherwise the sequence number of the first bad entry (or, for a cut
  // tail, the first missing one).
  int64_t first_bad = 0;
  std::string problem;
};

// Verifies a service's audit log offline: the database (opened read-only), its checkpoint file
// and the public key (PEM). An error status only for what stops verification (unreadable files);
// a broken chain is a report with first_bad set.
absl::StatusOr<AuditReport> VerifyAudit(const std::string& database,
                                        const std::string& checkpoint_file,
                                        const std::string& public_key_file);
// The same over an open database (the NCA register's on PostgreSQL).
absl::StatusOr<AuditReport> VerifyAudit(Database& database, const std::string& checkpoint_file,
                                        const std::string& public_key_file);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_AUDIT_H_
