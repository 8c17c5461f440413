// The linkage service's logic (issue 9): force indexes of encoded personnel, stored SAR subject
// encodings, screening and hits, and the forces' verdicts on them. The gRPC classes in main.cc
// only identify the caller and call these.
//
// What is kept where:
//  - SQLite (sealed cells): each force's current index and any upload in progress, every SAR
//    subject screened, every hit and its verdict. An accepted upload or screen is committed
//    before it is answered.
//  - memory: a ScreeningIndex per force and the stored subjects, rebuilt from SQLite at start and
//    changed only after the commit that changes them (Database::AfterCommit).
//
// Hits only: no method returns an encoding or a score below the threshold.
//
// Thread-safety: every method may be called from any thread. Small writes are meant to run as
// write jobs (rpc.h ServeWrite). Screen and CommitUpload do their comparing beside the writer and
// then write in short transactions (Database::Transact), so they are meant to run on the
// executor (rpc.h Serve): a large index's upload never holds up the node's other writes.
#ifndef SARLOOP_SERVICES_LINKAGE_DESK_H_
#define SARLOOP_SERVICES_LINKAGE_DESK_H_

#include <atomic>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/mutex.h"
#include "common/rpc/call.h"
#include "common/security/identity.h"
#include "common/security/sealed.h"
#include "common/storage/storage.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/linkage.pb.h"
#include "services/linkage/matcher.h"

namespace sarloop::linkage {

// The service's schema: before the audit log, and after it (ServiceMigrations).
std::span<const Migration> LinkageMigrations();
std::span<const Migration> LinkageMigrationsAfterAudit();
// Its sealed columns (the encodings), for Reseal.
std::span<const SealedColumn> LinkageSealedColumns();

inline constexpr uint32_t kDefaultThresholdMilli = 839;

struct LinkageOptions {
  // Hits are pairs whose match rule score reaches this (thousandths): the operating point
  // sarloop-linkage-eval chose on the synthetic population, the most recall with precision at
  // or above 0.96 (the target's 0.95 and a margin).
  uint32_t threshold_milli = kDefaultThresholdMilli;
  // Encodings one caller may screen per minute; past it RESOURCE_EXHAUSTED with a retry delay. A
  // subject counts once per encoding it brings (a subject without a date of birth, screened under
  // every decade, counts 11): each is a comparison with every index and a guess at a match.
  int subjects_per_minute = 6000;
  // Threads for re-screening stored subjects when an index changes.
  int rescreen_threads = 2;
  // What one force may hold staged: uploads begun and not committed (RESOURCE_EXHAUSTED past
  // it), records in one upload (a national workforce with declared family members is well
  // under it), and how long an upload left uncommitted is kept before its records are deleted.
  int max_open_uploads = 4;
  int64_t max_records_per_upload = 2'000'000;
  absl::Duration upload_lapses_after = absl::Hours(24);
};

class LinkageDesk {
 public:
  // Loads every index and stored subject. Errors from storage; DATA_LOSS when a sealed cell does
  // not open.
  static absl::StatusOr<std::unique_ptr<LinkageDesk>> Load(Database& db, Clock& clock,
                                                           LinkageOptions options);

  // Forces (the caller's organisation is the force; PERMISSION_DENIED for anyone else).
  absl::StatusOr<v1::BeginIndexUploadResponse> BeginUpload(const Call& call,
                                                           const v1::BeginIndexUploadRequest& r);
  absl::StatusOr<v1::UploadIndexRecordsResponse> UploadRecords(
      const Call& call, const v1::UploadIndexRecordsRequest& r);
  absl::StatusOr<v1::CommitIndexUploadResponse> CommitUpload(const Call& call,
                                                             const v1::CommitIndexUploadRequest& r);
  absl::StatusOr<v1::RecordLinkFeedbackResponse> RecordFeedback(
      const Call& call, const v1::RecordLinkFeedbackRequest& r);

  // UKFIU.
  absl::StatusOr<v1::ScreenSubjectsResponse> Screen(const Call& call,
                                                    const v1::ScreenSubjectsRequest& r);
  absl::StatusOr<v1::ListHitsResponse> ListHits(const v1::ListHitsRequest& r);
  // A force may read only hits in its own index (NOT_FOUND otherwise).
  absl::StatusOr<v1::GetHitResponse> GetHit(const Call& call, const v1::GetHitRequest& r);
  absl::StatusOr<v1::GetLinkageStatsResponse> Stats();

  // The ukfiu service's screening request for a new SAR (Envelope.screen), delivered through its
  // outbox: applied in the delivery's transaction (common/referral/delivery_service.h). Call
  // RefreshSubjects once that has committed.
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);
  // Brings the in-memory stored subjects up to what is committed.
  void RefreshSubjects();

  // Retention: deletes the SAR subjects stored, and the hits found, before `cutoff`, 5,000 rows
  // to a transaction so that the writer is never held for long, then writes one audit entry
  // ("retention.purge", by `actor`) with the counts, also when a batch fails. The stored subjects
  // in memory follow, and no hit is stored for a subject deleted, whatever memory held.
  struct Purged {
    int64_t subjects = 0;
    int64_t hits = 0;
    std::string Summary() const;
  };
  absl::StatusOr<Purged> PurgeScreenedBefore(absl::Time cutoff, const std::string& actor);

  // Indexes built by a commit whose batch has not ended yet: 0 between calls, whether the commit
  // took or was rolled back.
  int64_t IndexesAwaitingCommit();

 private:
  struct ForceIndex {
    std::string upload_id;
    int64_t version = 0;
    std::vector<std::string> record_ids;
    ScreeningIndex index;
  };
  struct StoredSubject {
    std::string sar_id, subject_ref;
    // The encoding, then any alternatives (EncodedSubject.alternative_encodings).
    std::vector<Filter> filters;
  };
  // Every encoding of the subjects screened as one list of queries; subject[i] is the position
  // of the subject filters[i] belongs to.
  struct Queries {
    std::vector<Filter> filters;
    std::vector<uint32_t> subject;
  };
  static Queries Flatten(const std::vector<const StoredSubject*>& subjects);
  // The hits of some subjects against one index, worked out beside the writer.
  struct Screened {
    std::shared_ptr<const ForceIndex> force;
    std::vector<Hit> hits;
  };
  using ScreenedByOrg = std::map<std::string, Screened>;
  // Appends every hit of `queries` in `index`, each compared with every record.
  void ScreenExactly(const ForceIndex& index, const Queries& queries, std::vector<Hit>* out) const;
  // Screens `queries` against `index`: exactly up to kExactRescreenLimit encodings, beyond that
  // with LSH blocking on options_.rescreen_threads.
  std::vector<Hit> ScreenAll(const ForceIndex& index, const std::vector<Filter>& records,
                             const Queries& queries) const;
  // What CommitUpload works out beside the writer: the new index and every stored subject's
  // hits against it (defined in the .cc).
  struct Prepared;
  absl::StatusOr<std::unique_ptr<Prepared>> Prepare(const std::string& org,
                                                    const v1::CommitIndexUploadRequest& r);
  // Deletes the records of uploads no index uses any more, and of uploads left uncommitted past
  // options_.upload_lapses_after, a bounded batch per transaction, so that replacing a large
  // index never holds the writer for long.
  absl::Status PurgeReplacedUploads();
  // Reads every stored subject into memory again, after a purge deleted some.
  void ReloadSubjects();
  using Indexes = std::map<std::string, std::shared_ptr<const ForceIndex>>;

  LinkageDesk(Database& db, Clock& clock, LinkageOptions options);
  absl::Status CheckRate(const Call& call, int encodings);
  void Refund(const Call& call, int encodings);
  // The indexes as the transaction sees them: the committed ones, or one committed earlier in the
  // same batch (pending_).
  absl::StatusOr<Indexes> IndexesIn(Txn& txn);
  // Appends the stored subjects after row `after`; `last` becomes the last row read.
  // At most `limit` rows (0: all).
  static absl::Status ReadStoredSubjects(Txn& txn, int64_t after, std::vector<StoredSubject>* out,
                                         int64_t* last, int64_t limit = 0);
  static absl::StatusOr<std::vector<StoredSubject>> CheckScreen(absl::string_view prefix,
                                                                const v1::ScreenSubjectsRequest& r);
  // Stores the subjects (keeping earlier copies) and their hits in every current index; fills
  // `response` with every hit for them when given.
  // `before`, when given, holds hits worked out beside the writer: an index the transaction sees
  // unchanged is not screened again.
  absl::Status ScreenInTxn(Txn& txn, const std::vector<StoredSubject>& incoming, absl::Time now,
                           v1::ScreenSubjectsResponse* response,
                           const ScreenedByOrg* before = nullptr);
  // Inserts the hits (ignoring ones already known) in `txn`, one per subject and record at the
  // best score any of the subject's encodings reached; `hits` index `queries`. Returns how many
  // were new.
  absl::StatusOr<int64_t> StoreHits(Txn& txn, const std::string& org, const ForceIndex& index,
                                    const std::vector<const StoredSubject*>& subjects,
                                    const Queries& queries, const std::vector<Hit>& hits,
                                    absl::Time now);

  Database& db_;
  Clock& clock_;
  const LinkageOptions options_;

  // Memory mirrors of committed state.
  SharedMutex mu_;
  Indexes indexes_ ABSL_GUARDED_BY(mu_);
  std::vector<StoredSubject> subjects_ ABSL_GUARDED_BY(mu_);
  int64_t last_subject_rowid_ = 0;  // the last linkage_subjects row in subjects_

  // Indexes built by CommitUpload, by upload id, until their batch has committed: a screen later
  // in the same batch must use them (memory changes only after the COMMIT). Keyed by upload id so
  // that one whose batch rolled back is never used.
  Mutex pending_mu_;
  std::map<std::string, std::shared_ptr<const ForceIndex>> pending_ ABSL_GUARDED_BY(pending_mu_);

  Mutex rate_mu_;
  // caller -> (last, tokens)
  std::map<std::string, std::pair<absl::Time, double>> buckets_ ABSL_GUARDED_BY(rate_mu_);
};

}  // namespace sarloop::linkage

#endif  // SARLOOP_SERVICES_LINKAGE_DESK_H_
