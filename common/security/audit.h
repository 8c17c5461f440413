// The tamper-evident audit log every service keeps (DESIGN §5): one entry per RPC and per refusal
// (identity, the user the calling system names, method, referral id, result code), each entry
// hashed over the previous entry's hash (SHA-256), so changing or deleting an entry breaks the
// chain from there on. A signed checkpoint (Ed25519 over the head's sequence number and hash),
// written to a file beside the database, makes cutting entries off the tail detectable too.
//
// Entries for a call that changes something are appended in the same transaction as the change.
#ifndef SARLOOP_COMMON_SECURITY_AUDIT_H_
#define SARLOOP_COMMON_SECURITY_AUDIT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/mutex.h"
#include "common/storage/storage.h"

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

// Refusals written one by one up to a rate, and beyond it counted: a caller refused over and
// over (a client with no credential, one calling what it may not, a retry loop) cannot turn
// every refusal into an audit row and a commit. The count goes into the next row the rate
// allows, so the log still says how many there were. Thread-safe.
class RefusalBudget {
 public:
  // `per_second` rows on average, `burst` at once.
  RefusalBudget(double per_second, double burst);
  // Whether a refusal at `now` is written; if so, *unwritten is how many were counted, not
  // written, since the last one written.
  bool Take(absl::Time now, int64_t* unwritten);
  // A refusal Take let through whose row could not be written (storage refusing writes): it and
  // the `unwritten` it carried are counted again, and ride on the next row written.
  void Unwritten(int64_t unwritten);

 private:
  const double per_second_, burst_;
  Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t unwritten_ ABSL_GUARDED_BY(mu_) = 0;
};

// The status a refusal is written with: `refusal`, with the count of those before it that were
// not written (RefusalBudget) when there were any.
absl::Status WithUnwritten(const absl::Status& refusal, int64_t unwritten);

// A signed head of the chain: what a checkpoint line holds.
struct SignedHead {
  int64_t seq = 0;
  std::string hash;       // 32 bytes
  std::string signature;  // 64 bytes, Ed25519 over the checkpoint message
};

// OK when `head` is signed by the Ed25519 public key `public_key_pem`; INVALID_ARGUMENT naming
// public_key for a key that does not parse, naming signature for a bad signature.
absl::Status VerifyHeadSignature(const std::string& public_key_pem, const SignedHead& head);

// Signs the chain's head into the checkpoint file (one line per checkpoint: seq, hash, signature,
// all hex), fsynced. The key is an Ed25519 private key in PEM; when the file does not exist a new
// key is made (0600) and its public half written beside it as KEY.pub.
class AuditCheckpointer {
 public:
  // `public_copy`, when not empty, is where the public half is also written (beside the
  // database, where `sarloopctl audit verify` looks for it by default).
  static absl::StatusOr<std::unique_ptr<AuditCheckpointer>> Create(
      Database& db, std::string key_file, std::string checkpoint_file,
      const std::string& public_copy = "");
  ~AuditCheckpointer();
  // Writes a checkpoint if the head moved since the last one.
  absl::Status Checkpoint();
  // The last head signed (seq 0 before the first).
  SignedHead LastHead() const;
  // The public half of the signing key, PEM.
  const std::string& PublicKeyPem() const;

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
  // The witnessed head checked against, when one was given (0 otherwise).
  int64_t witnessed_seq = 0;
};

// Verifies a service's audit log offline: the database (opened read-only), its checkpoint file
// and the public key (PEM). An error status only for what stops verification (unreadable files);
// a broken chain is a report with first_bad set. With `witnessed` (the head another
// organisation's witness holds, common/server/witness.h), the log must hold that entry unchanged: a
// log that was rolled back or cut below it, or rewritten at it, fails even when its own checkpoint
// file was rewritten to match.
absl::StatusOr<AuditReport> VerifyAudit(const std::string& database,
                                        const std::string& checkpoint_file,
                                        const std::string& public_key_file,
                                        const SignedHead* witnessed = nullptr);
// The same over an open database (the NCA register's on PostgreSQL).
absl::StatusOr<AuditReport> VerifyAudit(Database& database, const std::string& checkpoint_file,
                                        const std::string& public_key_file,
                                        const SignedHead* witnessed = nullptr);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SECURITY_AUDIT_H_
