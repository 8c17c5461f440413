#include "services/linkage/desk.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/fault.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/validation.h"
#include "common/security/audit.h"
#include "spdlog/spdlog.h"

namespace sarloop::linkage {
namespace {

constexpr Migration kMigrations[] = {
    {"linkage: indexes, uploads, stored subjects, hits",
     R"sql(
CREATE TABLE linkage_uploads (
  upload_id TEXT PRIMARY KEY,
  org TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  records INTEGER NOT NULL DEFAULT 0,
  committed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE linkage_records (
  upload_id TEXT NOT NULL,
  record_id TEXT NOT NULL,
  encoding BLOB NOT NULL,
  PRIMARY KEY (upload_id, record_id)
);
CREATE TABLE linkage_index (
  org TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  upload_id TEXT NOT NULL,
  records INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE linkage_subjects (
  sar_id TEXT NOT NULL,
  subject_ref TEXT NOT NULL,
  encoding BLOB NOT NULL,
  stored_at INTEGER NOT NULL,
  PRIMARY KEY (sar_id, subject_ref)
);
CREATE TABLE linkage_hits (
  hit_id TEXT PRIMARY KEY,
  sar_id TEXT NOT NULL,
  subject_ref TEXT NOT NULL,
  org TEXT NOT NULL,
  record_id TEXT NOT NULL,
  score_milli INTEGER NOT NULL,
  fields TEXT NOT NULL,
  index_version INTEGER NOT NULL,
  found_at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  feedback_reason TEXT NOT NULL DEFAULT '',
  feedback_at INTEGER,
  UNIQUE (sar_id, subject_ref, org, record_id)
);
CREATE INDEX linkage_hits_found ON linkage_hits (found_at);
)sql"},
};

constexpr char kRecordsColumn[] = "linkage_records.encoding";
constexpr char kSubjectsColumn[] = "linkage_subjects.encoding";
constexpr int kMaxRecordsPerCall = 5000;
constexpr int kMaxSubjectsPerCall = 100;
// Up to this many stored subjects, re-screening is exact; beyond it, LSH-blocked (BulkScreen),
// which sarloop-linkage-eval measures at >= 99.5% of the pairs above the threshold.
constexpr size_t kExactRescreenLimit = 20000;

std::string RowKey(absl::string_view a, absl::string_view b) { return absl::StrCat(a, "/", b); }

// 1 to 64 of [A-Za-z0-9._-]: safe inside a sealed cell's row key and in logs.
absl::Status CheckRef(absl::string_view field, const std::string& value) {
  if (value.empty() || value.size() > 64) {
    return FieldError(field, "must be 1 to 64 characters");
  }
  for (char c : value) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return FieldError(field, "may hold only letters, digits, '.', '_' and '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPrefixedId(absl::string_view field, const std::string& value,
                             absl::string_view prefix) {
  RETURN_IF_ERROR(CheckRef(field, value));
  if (!absl::StartsWith(value, prefix)) {
    return FieldError(field, absl::StrCat("must start with ", prefix));
  }
  return absl::OkStatus();
}

absl::StatusOr<Filter> ParseEncoding(absl::string_view field, const std::string& bytes) {
  absl::StatusOr<Filter> f = FromBytes(bytes);
  if (!f.ok()) return FieldError(field, absl::StrCat("must be ", kFilterBytes, " bytes"));
  return f;
}

// A stored subject's cell: its encodings one after another.
std::string FiltersToBytes(const std::vector<Filter>& filters) {
  std::string out;
  for (const Filter& f : filters) out += ToBytes(f);
  return out;
}

absl::StatusOr<std::vector<Filter>> FiltersFromBytes(absl::string_view bytes) {
  if (bytes.empty() || bytes.size() % kFilterBytes != 0) {
    return absl::DataLossError(absl::StrCat("a stored subject's encodings are ", bytes.size(),
                                            " bytes, not a multiple of ", kFilterBytes));
  }
  std::vector<Filter> out;
  for (size_t at = 0; at < bytes.size(); at += kFilterBytes) {
    ASSIGN_OR_RETURN(Filter f, FromBytes(bytes.substr(at, kFilterBytes)));
    out.push_back(f);
  }
  return out;
}

absl::Status RequireKind(const Call& call, absl::string_view kind, absl::string_view what) {
  if (call.identity.kind != kind) {
    return absl::PermissionDeniedError(absl::StrCat(what, " is for ", kind, " identities"));
  }
  return absl::OkStatus();
}

v1::LinkageHit HitFromRow(const Row& row) {
  // hit_id, sar_id, subject_ref, org, record_id, score_milli, fields, index_version, found_at,
  // status, feedback_reason, feedback_at
  v1::LinkageHit h;
  h.set_hit_id(row.Text(0));
  h.set_sar_id(row.Text(1));
  h.set_subject_ref(row.Text(2));
  h.set_organisation(row.Text(3));
  h.set_record_id(row.Text(4));
  h.set_score_milli(static_cast<int32_t>(row.Int(5)));
  for (absl::string_view f : absl::StrSplit(row.Text(6), ',', absl::SkipEmpty())) {
    h.add_matched_fields(std::string(f));
  }
  h.set_index_version(row.Int(7));
  *h.mutable_found_at() = ToProto(FromMicros(row.Int(8)));
  h.set_status(static_cast<v1::LinkStatus>(row.Int(9)));
  h.set_feedback_reason(row.Text(10));
  if (!row.IsNull(11)) *h.mutable_feedback_at() = ToProto(FromMicros(row.Int(11)));
  return h;
}

constexpr char kHitColumns[] =
    "hit_id, sar_id, subject_ref, org, record_id, score_milli, fields, index_version, found_at, "
    "status, feedback_reason, feedback_at";

// The records so far in an upload still open for `org`. NOT_FOUND for an unknown upload or
// another force's; FAILED_PRECONDITION once committed, or once lapsed (begun before
// `lapsed_before`): a lapsed upload's records may already be partly purged, and committing what
// is left would leave an index that shrinks at the next start.
absl::StatusOr<int64_t> OpenUploadRecords(Txn& txn, const std::string& upload_id,
                                          const std::string& org, absl::Time lapsed_before) {
  ASSIGN_OR_RETURN(std::vector<Row> up,
                   txn.Query("SELECT org, committed, records, started_at FROM linkage_uploads "
                             "WHERE upload_id = ?",
                             {upload_id}));
  if (up.empty() || up[0].Text(0) != org) {
    return absl::NotFoundError(absl::StrCat("upload ", upload_id, " not found"));
  }
  if (up[0].Int(1) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload ", upload_id, " is already committed"));
  }
  if (up[0].Int(3) < ToMicros(lapsed_before)) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload ", upload_id, " has lapsed (begun before ",
                     absl::FormatTime(lapsed_before), "); begin another"));
  }
  return up[0].Int(2);
}

absl::StatusOr<v1::LinkageHit> LoadHit(Txn& txn, const std::string& hit_id) {
  ASSIGN_OR_RETURN(
      std::vector<Row> rows,
      txn.Query(absl::StrCat("SELECT ", kHitColumns, " FROM linkage_hits WHERE hit_id = ?"),
                {hit_id}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("hit ", hit_id, " not found"));
  return HitFromRow(rows[0]);
}

}  // namespace

std::span<const SealedColumn> LinkageSealedColumns() {
  // Keyed, but still about people. Ids hold no '/' (RowKey).
  static constexpr SealedColumn kColumns[] = {
      {"linkage_records", kRecordsColumn, "upload_id || '/' || record_id"},
      {"linkage_subjects", kSubjectsColumn, "sar_id || '/' || subject_ref"},
  };
  return kColumns;
}

std::span<const Migration> LinkageMigrations() { return kMigrations; }

namespace {
const Migration kMigrationsAfterAudit[] = {kRequestDigestMigration, kMessagingIndexesMigration,
                                           kInboxBySenderMigration};
}  // namespace

std::span<const Migration> LinkageMigrationsAfterAudit() { return kMigrationsAfterAudit; }

LinkageDesk::LinkageDesk(Database& db, Clock& clock, LinkageOptions options)
    : db_(db), clock_(clock), options_(options) {}

absl::StatusOr<std::unique_ptr<LinkageDesk>> LinkageDesk::Load(Database& db, Clock& clock,
                                                               LinkageOptions options) {
  std::unique_ptr<LinkageDesk> desk(new LinkageDesk(db, clock, options));
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<Row> indexes,
                     txn.Query("SELECT org, version, upload_id FROM linkage_index"));
    for (const Row& ix : indexes) {
      ASSIGN_OR_RETURN(std::vector<Row> rows,
                       txn.Query("SELECT record_id, encoding FROM linkage_records "
                                 "WHERE upload_id = ? ORDER BY record_id",
                                 {ix.Text(2)}));
      auto force = std::make_shared<ForceIndex>();
      force->upload_id = ix.Text(2);
      force->version = ix.Int(1);
      std::vector<Filter> filters;
      for (const Row& r : rows) {
        ASSIGN_OR_RETURN(std::string bytes,
                         txn.Unseal(kRecordsColumn, RowKey(ix.Text(2), r.Text(0)), r.Text(1)));
        ASSIGN_OR_RETURN(Filter f, FromBytes(bytes));
        force->record_ids.push_back(r.Text(0));
        filters.push_back(f);
      }
      force->index = ScreeningIndex::Build(filters);
      WriterMutexLock lock(&desk->mu_);  // nobody else has the desk yet
      desk->indexes_[ix.Text(0)] = std::move(force);
    }
    return absl::OkStatus();
  }));
  desk->RefreshSubjects();
  // Records of an upload replaced just before a crash or stop.
  RETURN_IF_ERROR(desk->PurgeReplacedUploads());
  return desk;
}

absl::Status LinkageDesk::CheckRate(const Call& call, int encodings) {
  const double per_second = options_.subjects_per_minute / 60.0;
  const double capacity = options_.subjects_per_minute;
  if (encodings > capacity) {
    // Waiting would never help: the bucket holds at most a minute's worth.
    return absl::ResourceExhaustedError(absl::StrCat(
        "this request screens ", encodings, " encodings (a subject without a date ",
        "of birth counts once per decade), more than the ", options_.subjects_per_minute,
        " a minute allowed per caller: send fewer "
        "subjects per call"));
  }
  const absl::Time now = clock_.Now();
  MutexLock lock(&rate_mu_);
  auto [it, inserted] = buckets_.try_emplace(call.identity.uri, now, capacity);
  auto& [last, tokens] = it->second;
  tokens = std::min(capacity, tokens + absl::ToDoubleSeconds(now - last) * per_second);
  last = now;
  if (tokens < encodings) {
    return RetryLater(absl::StatusCode::kResourceExhausted,
                      absl::StrCat("screening is limited to ", options_.subjects_per_minute,
                                   " encoded subjects a minute per caller (a subject without a "
                                   "date of birth counts once per decade it is screened under)"),
                      absl::Seconds((encodings - tokens) / per_second));
  }
  tokens -= encodings;
  return absl::OkStatus();
}

void LinkageDesk::Refund(const Call& call, int encodings) {
  MutexLock lock(&rate_mu_);
  auto it = buckets_.find(call.identity.uri);
  if (it != buckets_.end()) {
    it->second.second =
        std::min<double>(options_.subjects_per_minute, it->second.second + encodings);
  }
}

absl::StatusOr<LinkageDesk::Indexes> LinkageDesk::IndexesIn(Txn& txn) {
  Indexes committed;
  std::map<std::string, std::shared_ptr<const ForceIndex>> pending;
  {
    // Both maps at one instant: a commit moves an index from one to the other under both locks,
    // so it is in one of these copies whenever the table names it.
    ReaderMutexLock lock(&mu_);
    MutexLock pending_lock(&pending_mu_);
    committed = indexes_;
    pending = pending_;
  }
  ASSIGN_OR_RETURN(std::vector<Row> rows, txn.Query("SELECT org, upload_id FROM linkage_index"));
  Indexes out;
  for (const Row& row : rows) {
    auto it = committed.find(row.Text(0));
    if (it != committed.end() && it->second->upload_id == row.Text(1)) {
      out[row.Text(0)] = it->second;
      continue;
    }
    auto p = pending.find(row.Text(1));
    if (p == pending.end()) {
      return absl::InternalError(absl::StrCat("index ", row.Text(1), " of ", row.Text(0),
                                              " is neither loaded nor pending"));
    }
    out[row.Text(0)] = p->second;
  }
  return out;
}

absl::Status LinkageDesk::ReadStoredSubjects(Txn& txn, int64_t after,
                                             std::vector<StoredSubject>* out, int64_t* last,
                                             int64_t limit) {
  constexpr char kSelect[] =
      "SELECT rowid, sar_id, subject_ref, encoding FROM linkage_subjects WHERE rowid > ? "
      "ORDER BY rowid";
  ASSIGN_OR_RETURN(std::vector<Row> rows,
                   limit > 0 ? txn.Query(absl::StrCat(kSelect, " LIMIT ?"), {after, limit})
                             : txn.Query(kSelect, {after}));
  for (const Row& r : rows) {
    ASSIGN_OR_RETURN(std::string bytes,
                     txn.Unseal(kSubjectsColumn, RowKey(r.Text(1), r.Text(2)), r.Text(3)));
    ASSIGN_OR_RETURN(std::vector<Filter> filters, FiltersFromBytes(bytes));
    out->push_back({r.Text(1), r.Text(2), std::move(filters)});
    *last = r.Int(0);
  }
  return absl::OkStatus();
}

LinkageDesk::Queries LinkageDesk::Flatten(const std::vector<const StoredSubject*>& subjects) {
  Queries out;
  for (uint32_t i = 0; i < subjects.size(); ++i) {
    for (const Filter& f : subjects[i]->filters) {
      out.filters.push_back(f);
      out.subject.push_back(i);
    }
  }
  return out;
}

absl::StatusOr<int64_t> LinkageDesk::StoreHits(Txn& txn, const std::string& org,
                                               const ForceIndex& index,
                                               const std::vector<const StoredSubject*>& subjects,
                                               const Queries& queries, const std::vector<Hit>& hits,
                                               absl::Time now) {
  struct Best {
    double score = -1;
    std::vector<std::string> fields;
  };
  std::map<std::pair<uint32_t, uint32_t>, Best> best;  // (subject, record): in a stable order
  for (const Hit& h : hits) {
    const Query q = Query::From(queries.filters[h.query]);
    uint32_t r[kFieldCount];
    index.index.RecordPopcounts(h.record, r);
    const double score = HitScore(h, q, r);
    Best& b = best[{queries.subject[h.query], h.record}];
    if (score <= b.score) continue;
    b.score = score;
    b.fields.clear();
    for (int f = 0; f < kFieldCount; ++f) {
      const uint32_t sum = q.popcount[f] + r[f];
      if (sum > 0 && 2.0 * h.and_count[f] / sum >= 0.8) {
        b.fields.emplace_back(FieldName(static_cast<Field>(f)));
      }
    }
  }
  int64_t added = 0;
  for (const auto& [pair, b] : best) {
    const StoredSubject& s = *subjects[pair.first];
    const int64_t milli = std::max<int64_t>(
        options_.threshold_milli, static_cast<int64_t>(std::floor(b.score * 1000 + 1e-9)));
    // Only for a subject still stored: one compared from memory may have been deleted by the
    // retention purge since (PurgeScreenedBefore), and its hit must not outlive it.
    RETURN_IF_ERROR(txn.Exec(
        "INSERT INTO linkage_hits (hit_id, sar_id, subject_ref, org, record_id, score_milli, "
        "fields, index_version, found_at, status) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM linkage_subjects WHERE sar_id = ? AND subject_ref = ?) "
        "ON CONFLICT (sar_id, subject_ref, org, record_id) DO NOTHING",
        {NewId("HIT-"), s.sar_id, s.subject_ref, org, index.record_ids[pair.second], milli,
         absl::StrJoin(b.fields, ","), index.version, ToMicros(now), int64_t{v1::LINK_STATUS_OPEN},
         s.sar_id, s.subject_ref}));
    added += txn.Changes();
  }
  return added;
}

absl::StatusOr<v1::BeginIndexUploadResponse> LinkageDesk::BeginUpload(
    const Call& call, const v1::BeginIndexUploadRequest& r) {
  RETURN_IF_ERROR(RequireKind(call, "force", "uploading an index"));
  RETURN_IF_ERROR(CheckRequestId(r.request_id()));
  v1::BeginIndexUploadResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, r, r.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        const int64_t lapsed = ToMicros(now - options_.upload_lapses_after);
        ASSIGN_OR_RETURN(std::vector<Row> open,
                         txn.Query("SELECT COUNT(*) FROM linkage_uploads WHERE org = ? AND "
                                   "committed = 0 AND started_at >= ?",
                                   {call.identity.org, lapsed}));
        if (open[0].Int(0) >= options_.max_open_uploads) {
          return absl::ResourceExhaustedError(absl::StrCat(
              call.identity.org, " has ", open[0].Int(0),
              " uploads begun and not committed, the most it may hold: commit one, or begin "
              "again once one has lapsed (",
              absl::FormatDuration(options_.upload_lapses_after), " after it began)"));
        }
        response.set_upload_id(NewId("UPL-"));
        return txn.Exec("INSERT INTO linkage_uploads (upload_id, org, started_at) VALUES (?, ?, ?)",
                        {response.upload_id(), call.identity.org, ToMicros(now)});
      },
      now, call.audit));
  // Uploads abandoned long ago go now, not only when some force commits one.
  const absl::Status purged = PurgeReplacedUploads();
  if (!purged.ok()) spdlog::warn("linkage: purging lapsed uploads: {}", purged.ToString());
  return response;
}

absl::StatusOr<v1::UploadIndexRecordsResponse> LinkageDesk::UploadRecords(
    const Call& call, const v1::UploadIndexRecordsRequest& r) {
  RETURN_IF_ERROR(RequireKind(call, "force", "uploading an index"));
  RETURN_IF_ERROR(CheckRequestId(r.request_id()));
  RETURN_IF_ERROR(CheckPrefixedId("upload_id", r.upload_id(), "UPL-"));
  if (r.records_size() < 1 || r.records_size() > kMaxRecordsPerCall) {
    return FieldError("records", absl::StrCat("must hold 1 to ", kMaxRecordsPerCall, " records"));
  }
  for (int i = 0; i < r.records_size(); ++i) {
    RETURN_IF_ERROR(CheckRef(absl::StrCat("records[", i, "].record_id"), r.records(i).record_id()));
    RETURN_IF_ERROR(
        ParseEncoding(absl::StrCat("records[", i, "].encoding"), r.records(i).encoding()).status());
  }
  v1::UploadIndexRecordsResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, r, r.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(const int64_t held,
                         OpenUploadRecords(txn, r.upload_id(), call.identity.org,
                                           // Read in the transaction, after any purge
                                           // before it: one that deleted records saw it lapse.
                                           clock_.Now() - options_.upload_lapses_after));
        if (held + r.records_size() > options_.max_records_per_upload) {
          return absl::ResourceExhaustedError(
              absl::StrCat("upload ", r.upload_id(), " holds ", held, " records; ",
                           r.records_size(), " more would pass the most one upload may hold (",
                           options_.max_records_per_upload, ")"));
        }
        for (int i = 0; i < r.records_size(); ++i) {
          const auto& rec = r.records(i);
          ASSIGN_OR_RETURN(
              Blob sealed,
              txn.Seal(kRecordsColumn, RowKey(r.upload_id(), rec.record_id()), rec.encoding()));
          RETURN_IF_ERROR(txn.Exec(
              "INSERT INTO linkage_records (upload_id, record_id, encoding) VALUES (?, ?, ?) "
              "ON CONFLICT (upload_id, record_id) DO NOTHING",
              {r.upload_id(), rec.record_id(), std::move(sealed)}));
          if (txn.Changes() == 0) {
            return FieldError(absl::StrCat("records[", i, "].record_id"),
                              "is already in the upload");
          }
        }
        const int64_t total = held + r.records_size();
        RETURN_IF_ERROR(txn.Exec("UPDATE linkage_uploads SET records = ? WHERE upload_id = ?",
                                 {total, r.upload_id()}));
        response.set_records(total);
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

struct LinkageDesk::Prepared {
  std::shared_ptr<ForceIndex> force;  // its version is set in the transaction
  int64_t records = 0;
  // The stored subjects up to row `last_subject`, and their hits against the new index.
  std::vector<StoredSubject> subjects;
  int64_t last_subject = 0;
  Queries queries;
  std::vector<Hit> hits;
};

void LinkageDesk::ScreenExactly(const ForceIndex& index, const Queries& queries,
                                std::vector<Hit>* out) const {
  for (uint32_t i = 0; i < queries.filters.size(); ++i) {
    index.index.Screen(Query::From(queries.filters[i]), i, options_.threshold_milli, BestKernel(),
                       out);
  }
}

std::vector<Hit> LinkageDesk::ScreenAll(const ForceIndex& index, const std::vector<Filter>& records,
                                        const Queries& queries) const {
  std::vector<Hit> hits;
  if (queries.filters.size() <= kExactRescreenLimit) {
    ScreenExactly(index, queries, &hits);
  } else {
    hits = BulkScreen(queries.filters, records, options_.threshold_milli, BlockingParams{},
                      options_.rescreen_threads, BestKernel(), nullptr);
  }
  return hits;
}

absl::StatusOr<std::unique_ptr<LinkageDesk::Prepared>> LinkageDesk::Prepare(
    const std::string& org, const v1::CommitIndexUploadRequest& r) {
  // Read in bounded chunks, each its own read transaction: with one SQLite connection a read
  // shares the writer's lock, so one long read would hold every write back. Records added
  // between chunks show in the count the transaction checks.
  constexpr int64_t kChunk = 5000;
  bool usable = false;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<Row> up,
                     txn.Query("SELECT org, committed, records FROM linkage_uploads "
                               "WHERE upload_id = ?",
                               {r.upload_id()}));
    // Anything but an open upload of this force with the records expected is for the
    // transaction to answer (an error, or the stored answer to a repeat).
    usable = !up.empty() && up[0].Text(0) == org && up[0].Int(1) == 0 &&
             up[0].Int(2) == r.expected_records();
    return absl::OkStatus();
  }));
  if (!usable) return nullptr;
  auto prepared = std::make_unique<Prepared>();
  auto force = std::make_shared<ForceIndex>();
  force->upload_id = r.upload_id();
  std::vector<Filter> filters;
  for (bool more = true; more;) {
    RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
      const std::string after = force->record_ids.empty() ? "" : force->record_ids.back();
      ASSIGN_OR_RETURN(std::vector<Row> rows,
                       txn.Query("SELECT record_id, encoding FROM linkage_records "
                                 "WHERE upload_id = ? AND record_id > ? ORDER BY record_id LIMIT ?",
                                 {r.upload_id(), after, kChunk}));
      for (const Row& row : rows) {
        ASSIGN_OR_RETURN(
            std::string bytes,
            txn.Unseal(kRecordsColumn, RowKey(r.upload_id(), row.Text(0)), row.Text(1)));
        ASSIGN_OR_RETURN(Filter f, FromBytes(bytes));
        force->record_ids.push_back(row.Text(0));
        filters.push_back(f);
      }
      more = static_cast<int64_t>(rows.size()) == kChunk;
      return absl::OkStatus();
    }));
  }
  force->index = ScreeningIndex::Build(filters);
  prepared->force = std::move(force);
  prepared->records = static_cast<int64_t>(filters.size());
  {
    ReaderMutexLock lock(&mu_);
    prepared->subjects = subjects_;
    prepared->last_subject = last_subject_rowid_;
  }
  for (bool more = true; more;) {
    const size_t before = prepared->subjects.size();
    RETURN_IF_ERROR(db_.Read([&](Txn& txn) {
      return ReadStoredSubjects(txn, prepared->last_subject, &prepared->subjects,
                                &prepared->last_subject, kChunk);
    }));
    more = static_cast<int64_t>(prepared->subjects.size() - before) == kChunk;
  }
  std::vector<const StoredSubject*> subjects;
  for (const StoredSubject& s : prepared->subjects) subjects.push_back(&s);
  prepared->queries = Flatten(subjects);
  prepared->hits = ScreenAll(*prepared->force, filters, prepared->queries);
  return prepared;
}

absl::StatusOr<v1::CommitIndexUploadResponse> LinkageDesk::CommitUpload(
    const Call& call, const v1::CommitIndexUploadRequest& r) {
  RETURN_IF_ERROR(RequireKind(call, "force", "uploading an index"));
  RETURN_IF_ERROR(CheckRequestId(r.request_id()));
  RETURN_IF_ERROR(CheckPrefixedId("upload_id", r.upload_id(), "UPL-"));
  if (r.expected_records() < 0) return FieldError("expected_records", "must not be negative");
  const std::string& org = call.identity.org;
  // The index is built and every stored subject compared with it here, beside the writer; the
  // transaction below only checks nothing changed, screens subjects stored since, and writes.
  ASSIGN_OR_RETURN(std::unique_ptr<Prepared> prepared, Prepare(org, r));
  fault::CrashPoint("linkage.commit_prepared");
  v1::CommitIndexUploadResponse response;
  std::shared_ptr<ForceIndex> built;
  const absl::Time now = clock_.Now();
  const absl::Status done = RunIdempotent(
      db_, call.scope, r, r.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(const int64_t held,
                         OpenUploadRecords(txn, r.upload_id(), call.identity.org,
                                           // Read in the transaction, after any purge
                                           // before it: one that deleted records saw it lapse.
                                           clock_.Now() - options_.upload_lapses_after));
        if (held != r.expected_records()) {
          return absl::FailedPreconditionError(absl::StrCat("upload ", r.upload_id(), " holds ",
                                                            held, " records, not the ",
                                                            r.expected_records(), " expected"));
        }
        if (prepared == nullptr || prepared->records != held) {
          return RetryLater(absl::StatusCode::kAborted,
                            absl::StrCat("upload ", r.upload_id(),
                                         " changed while it was being committed; commit again"),
                            absl::Seconds(1));
        }
        ASSIGN_OR_RETURN(std::vector<Row> old,
                         txn.Query("SELECT version FROM linkage_index WHERE org = ?", {org}));
        std::shared_ptr<ForceIndex> force = prepared->force;
        force->version = old.empty() ? 1 : old[0].Int(0) + 1;

        // Subjects stored since the index was prepared (earlier in this batch too) are few:
        // compared here, exactly.
        std::vector<StoredSubject> late;
        int64_t last = prepared->last_subject;
        RETURN_IF_ERROR(ReadStoredSubjects(txn, last, &late, &last));
        std::vector<const StoredSubject*> late_ptrs;
        for (const StoredSubject& s : late) late_ptrs.push_back(&s);
        const Queries late_queries = Flatten(late_ptrs);
        std::vector<Hit> late_hits;
        ScreenExactly(*force, late_queries, &late_hits);
        std::vector<const StoredSubject*> subjects;
        for (const StoredSubject& s : prepared->subjects) subjects.push_back(&s);
        ASSIGN_OR_RETURN(int64_t added, StoreHits(txn, org, *force, subjects, prepared->queries,
                                                  prepared->hits, now));
        ASSIGN_OR_RETURN(int64_t added_late,
                         StoreHits(txn, org, *force, late_ptrs, late_queries, late_hits, now));
        response.set_new_hits(added + added_late);
        response.set_subjects_rescreened(static_cast<int64_t>(subjects.size() + late.size()));
        // The replaced upload's records go afterwards, in batches (PurgeReplacedUploads).
        RETURN_IF_ERROR(txn.Exec(
            "INSERT INTO linkage_index (org, version, upload_id, records, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (org) DO UPDATE SET version = excluded.version, "
            "upload_id = excluded.upload_id, records = excluded.records, "
            "updated_at = excluded.updated_at",
            {org, force->version, r.upload_id(), held, ToMicros(now)}));
        RETURN_IF_ERROR(txn.Exec("UPDATE linkage_uploads SET committed = 1 WHERE upload_id = ?",
                                 {r.upload_id()}));
        response.set_index_version(force->version);
        response.set_records(held);
        {
          MutexLock lock(&pending_mu_);
          pending_[force->upload_id] = force;
        }
        // Registered here, so it runs on the writer right after this commit and before the
        // next batch: two uploads of one force committed close together are published in the
        // order they committed. (Registered after the call returned, it ran at once on the
        // caller's thread, in whatever order those threads happened to run.)
        db_.AfterCommit([this, org, force] {
          WriterMutexLock lock(&mu_);
          MutexLock pending_lock(&pending_mu_);
          indexes_[org] = force;
          pending_.erase(force->upload_id);
        });
        built = std::move(force);
        return absl::OkStatus();
      },
      now, call.audit);
  if (!done.ok()) {
    // Rolled back after the index was staged (the batch's COMMIT, or what RunIdempotent writes
    // after the function), so the hook that would have moved it out of pending_ never runs: taken
    // out here, or every failed commit would keep a whole index in memory.
    if (built) {
      MutexLock lock(&pending_mu_);
      auto it = pending_.find(built->upload_id);
      if (it != pending_.end() && it->second == built) pending_.erase(it);
    }
    return done;
  }
  if (built) {
    fault::CrashPoint("linkage.upload_committed");
    // The upload is committed and answered from here on; a purge that fails is retried by the
    // next commit or restart.
    const absl::Status purged = PurgeReplacedUploads();
    if (!purged.ok()) spdlog::warn("linkage: purging replaced uploads: {}", purged.ToString());
  }
  return response;
}

int64_t LinkageDesk::IndexesAwaitingCommit() {
  MutexLock lock(&pending_mu_);
  return static_cast<int64_t>(pending_.size());
}

std::string LinkageDesk::Purged::Summary() const {
  return absl::StrCat("linkage: ", subjects, " SAR subjects and ", hits, " hits deleted");
}

absl::StatusOr<LinkageDesk::Purged> LinkageDesk::PurgeScreenedBefore(absl::Time cutoff,
                                                                     const std::string& actor) {
  constexpr int64_t kBatch = 5000;
  const std::string before = absl::FormatTime("%Y-%m-%d", cutoff, absl::UTCTimeZone());
  Purged purged;
  absl::Status status;
  for (const char* table : {"linkage_subjects", "linkage_hits"}) {
    const bool subjects = absl::string_view(table) == "linkage_subjects";
    for (int64_t deleted = kBatch; status.ok() && deleted == kBatch;) {
      status = db_.Transact([&](Txn& txn) -> absl::Status {
        RETURN_IF_ERROR(txn.Exec(
            absl::StrCat("DELETE FROM ", table, " WHERE rowid IN (SELECT rowid FROM ", table,
                         " WHERE ", subjects ? "stored_at" : "found_at", " < ? LIMIT ?)"),
            {ToMicros(cutoff), kBatch}));
        deleted = txn.Changes();
        if (deleted == 0) return absl::OkStatus();
        // Each batch's deletion and its audit entry commit together: a crash or a refused
        // append between them would delete people's data with no record of it.
        AuditEntry entry;
        entry.at = clock_.Now();
        entry.identity = actor;
        entry.method = "retention.purge";
        entry.detail = absl::StrCat("linkage: screened before ", before, ": ", deleted,
                                    subjects ? " SAR subjects" : " hits", " deleted");
        return AppendAudit(txn, entry);
      });
      if (status.ok()) (subjects ? purged.subjects : purged.hits) += deleted;
    }
  }
  // Whatever stopped the purge, memory follows what it deleted (a subject left there would be
  // compared again, and with every subject gone new ones reuse the rowids memory has read past).
  if (purged.subjects > 0) ReloadSubjects();
  if (!status.ok()) return status;
  return purged;
}

void LinkageDesk::ReloadSubjects() {
  // Read outside the lock (a national store takes a while), then brought up to date under it.
  std::vector<StoredSubject> all;
  int64_t last = 0;
  absl::Status status = db_.Read([&](Txn& txn) { return ReadStoredSubjects(txn, 0, &all, &last); });
  if (status.ok()) {
    WriterMutexLock lock(&mu_);
    status = db_.Read([&](Txn& txn) { return ReadStoredSubjects(txn, last, &all, &last); });
    if (status.ok()) {
      subjects_.swap(all);
      last_subject_rowid_ = last;
      return;
    }
  }
  // Commits still store no hit for a subject gone (StoreHits); the next purge or a restart reloads.
  spdlog::error("linkage: reloading stored subjects after a purge: {}", status.ToString());
}

absl::Status LinkageDesk::PurgeReplacedUploads() {
  constexpr int kBatch = 5000;
  for (;;) {
    int64_t deleted = 0;
    RETURN_IF_ERROR(db_.Transact([&](Txn& txn) -> absl::Status {
      // Replaced indexes, and uploads begun and never committed that have lapsed.
      ASSIGN_OR_RETURN(
          std::vector<Row> replaced,
          txn.Query("SELECT upload_id FROM linkage_uploads WHERE (committed = 1 AND "
                    "upload_id NOT IN (SELECT upload_id FROM linkage_index)) OR (committed = 0 "
                    "AND started_at < ?) LIMIT 1",
                    {ToMicros(clock_.Now() - options_.upload_lapses_after)}));
      if (replaced.empty()) return absl::OkStatus();
      const std::string id = replaced[0].Text(0);
      RETURN_IF_ERROR(txn.Exec(
          "DELETE FROM linkage_records WHERE upload_id = ? AND record_id IN (SELECT record_id "
          "FROM linkage_records WHERE upload_id = ? LIMIT ?)",
          {id, id, int64_t{kBatch}}));
      deleted = txn.Changes();
      if (deleted == 0) {
        RETURN_IF_ERROR(txn.Exec("DELETE FROM linkage_uploads WHERE upload_id = ?", {id}));
        deleted = txn.Changes();
      }
      return absl::OkStatus();
    }));
    if (deleted == 0) return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<LinkageDesk::StoredSubject>> LinkageDesk::CheckScreen(
    absl::string_view prefix, const v1::ScreenSubjectsRequest& r) {
  RETURN_IF_ERROR(CheckPrefixedId(absl::StrCat(prefix, "sar_id"), r.sar_id(), "SAR-"));
  if (r.subjects_size() < 1 || r.subjects_size() > kMaxSubjectsPerCall) {
    return FieldError(absl::StrCat(prefix, "subjects"),
                      absl::StrCat("must hold 1 to ", kMaxSubjectsPerCall, " subjects"));
  }
  std::vector<StoredSubject> incoming;
  std::set<std::string> refs;
  for (int i = 0; i < r.subjects_size(); ++i) {
    const auto& s = r.subjects(i);
    RETURN_IF_ERROR(
        CheckRef(absl::StrCat(prefix, "subjects[", i, "].subject_ref"), s.subject_ref()));
    if (!refs.insert(s.subject_ref()).second) {
      return FieldError(absl::StrCat(prefix, "subjects[", i, "].subject_ref"),
                        "appears twice in the request");
    }
    StoredSubject subject{r.sar_id(), s.subject_ref(), {}};
    ASSIGN_OR_RETURN(
        Filter f, ParseEncoding(absl::StrCat(prefix, "subjects[", i, "].encoding"), s.encoding()));
    subject.filters.push_back(f);
    if (s.alternative_encodings_size() >= kMaxSubjectEncodings) {
      return FieldError(absl::StrCat(prefix, "subjects[", i, "].alternative_encodings"),
                        absl::StrCat("must hold at most ", kMaxSubjectEncodings - 1, " encodings"));
    }
    for (int j = 0; j < s.alternative_encodings_size(); ++j) {
      ASSIGN_OR_RETURN(Filter alt, ParseEncoding(absl::StrCat(prefix, "subjects[", i,
                                                              "].alternative_encodings[", j, "]"),
                                                 s.alternative_encodings(j)));
      subject.filters.push_back(alt);
    }
    incoming.push_back(std::move(subject));
  }
  return incoming;
}

absl::Status LinkageDesk::ScreenInTxn(Txn& txn, const std::vector<StoredSubject>& incoming,
                                      absl::Time now, v1::ScreenSubjectsResponse* response,
                                      const ScreenedByOrg* before) {
  std::vector<const StoredSubject*> subjects;
  for (const StoredSubject& s : incoming) {
    ASSIGN_OR_RETURN(Blob sealed, txn.Seal(kSubjectsColumn, RowKey(s.sar_id, s.subject_ref),
                                           FiltersToBytes(s.filters)));
    RETURN_IF_ERROR(
        txn.Exec("INSERT INTO linkage_subjects (sar_id, subject_ref, encoding, stored_at) "
                 "VALUES (?, ?, ?, ?) ON CONFLICT (sar_id, subject_ref) DO NOTHING",
                 {s.sar_id, s.subject_ref, std::move(sealed), ToMicros(now)}));
    subjects.push_back(&s);
  }
  ASSIGN_OR_RETURN(Indexes indexes, IndexesIn(txn));
  const Queries queries = Flatten(subjects);
  for (const auto& [org, force] : indexes) {
    if (before != nullptr) {
      auto it = before->find(org);
      if (it != before->end() && it->second.force == force) {
        RETURN_IF_ERROR(
            StoreHits(txn, org, *force, subjects, queries, it->second.hits, now).status());
        continue;
      }
    }
    std::vector<Hit> hits;
    ScreenExactly(*force, queries, &hits);
    RETURN_IF_ERROR(StoreHits(txn, org, *force, subjects, queries, hits, now).status());
  }
  if (response == nullptr) return absl::OkStatus();
  for (const StoredSubject& s : incoming) {
    ASSIGN_OR_RETURN(
        std::vector<Row> rows,
        txn.Query(absl::StrCat("SELECT ", kHitColumns,
                               " FROM linkage_hits WHERE sar_id = ? AND subject_ref = ? "
                               "ORDER BY score_milli DESC, hit_id"),
                  {s.sar_id, s.subject_ref}));
    for (const Row& row : rows) *response->add_hits() = HitFromRow(row);
  }
  return absl::OkStatus();
}

void LinkageDesk::RefreshSubjects() {
  WriterMutexLock lock(&mu_);
  const absl::Status status = db_.Read([&](Txn& txn) {
    return ReadStoredSubjects(txn, last_subject_rowid_, &subjects_, &last_subject_rowid_);
  });
  // The subjects stay stored; the next refresh (or a restart) picks them up.
  if (!status.ok()) spdlog::warn("linkage: reading stored subjects: {}", status.ToString());
}

absl::StatusOr<v1::ScreenSubjectsResponse> LinkageDesk::Screen(const Call& call,
                                                               const v1::ScreenSubjectsRequest& r) {
  RETURN_IF_ERROR(RequireKind(call, "ukfiu", "screening"));
  RETURN_IF_ERROR(CheckRequestId(r.request_id()));
  ASSIGN_OR_RETURN(std::vector<StoredSubject> incoming, CheckScreen("", r));
  int encodings = 0;
  for (const StoredSubject& s : incoming) encodings += static_cast<int>(s.filters.size());
  RETURN_IF_ERROR(CheckRate(call, encodings));
  // Compared with every committed index here, beside the writer; the transaction compares again
  // only with an index replaced meanwhile.
  ScreenedByOrg before;
  {
    Indexes committed;
    {
      ReaderMutexLock lock(&mu_);
      committed = indexes_;
    }
    std::vector<const StoredSubject*> subjects;
    for (const StoredSubject& s : incoming) subjects.push_back(&s);
    const Queries queries = Flatten(subjects);
    for (const auto& [org, force] : committed) {
      Screened& screened = before[org];
      screened.force = force;
      ScreenExactly(*force, queries, &screened.hits);
    }
  }
  v1::ScreenSubjectsResponse response;
  const absl::Time now = clock_.Now();
  bool ran = false;
  const absl::Status status = RunIdempotent(
      db_, call.scope, r, r.request_id(), &response,
      [&](Txn& txn) {
        ran = true;
        return ScreenInTxn(txn, incoming, now, &response, &before);
      },
      now, call.audit);
  // A repeat, or a screen that changed nothing, costs no rate.
  if (!ran || !status.ok()) Refund(call, encodings);
  RETURN_IF_ERROR(status);
  db_.AfterCommit([this] { RefreshSubjects(); });
  return response;
}

absl::Status LinkageDesk::Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope) {
  if (peer.kind != "ukfiu" || !peer.IsService()) {
    return absl::PermissionDeniedError("screening requests come from the ukfiu service only");
  }
  if (!envelope.has_screen()) return FieldError("screen", "is required");
  ASSIGN_OR_RETURN(std::vector<StoredSubject> incoming, CheckScreen("screen.", envelope.screen()));
  return ScreenInTxn(txn, incoming, clock_.Now(), nullptr);
}

absl::StatusOr<v1::ListHitsResponse> LinkageDesk::ListHits(const v1::ListHitsRequest& r) {
  ASSIGN_OR_RETURN(Page page, CheckPage(r.page_size(), r.page_token()));
  if (!r.organisation().empty()) RETURN_IF_ERROR(CheckRef("organisation", r.organisation()));
  if (!r.sar_id().empty()) RETURN_IF_ERROR(CheckPrefixedId("sar_id", r.sar_id(), "SAR-"));
  const int64_t status = r.status();
  v1::ListHitsResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<Row> rows,
                     txn.Query(absl::StrCat("SELECT ", kHitColumns,
                                            " FROM linkage_hits WHERE (? = '' OR org = ?) AND "
                                            "(? = 0 OR status = ?) AND (? = '' OR sar_id = ?) "
                                            "ORDER BY found_at DESC, hit_id LIMIT ? OFFSET ?"),
                               {r.organisation(), r.organisation(), status, status, r.sar_id(),
                                r.sar_id(), page.limit, page.offset}));
    for (const Row& row : rows) *response.add_hits() = HitFromRow(row);
    return absl::OkStatus();
  }));
  response.set_next_page_token(NextPageToken(page, response.hits_size()));
  return response;
}

absl::StatusOr<v1::GetHitResponse> LinkageDesk::GetHit(const Call& call,
                                                       const v1::GetHitRequest& r) {
  RETURN_IF_ERROR(CheckPrefixedId("hit_id", r.hit_id(), "HIT-"));
  v1::GetHitResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(*response.mutable_hit(), LoadHit(txn, r.hit_id()));
    return absl::OkStatus();
  }));
  if (call.identity.kind == "force" && response.hit().organisation() != call.identity.org) {
    return absl::NotFoundError(absl::StrCat("hit ", r.hit_id(), " not found"));
  }
  return response;
}

absl::StatusOr<v1::RecordLinkFeedbackResponse> LinkageDesk::RecordFeedback(
    const Call& call, const v1::RecordLinkFeedbackRequest& r) {
  RETURN_IF_ERROR(RequireKind(call, "force", "feedback on a hit"));
  RETURN_IF_ERROR(CheckRequestId(r.request_id()));
  RETURN_IF_ERROR(CheckPrefixedId("hit_id", r.hit_id(), "HIT-"));
  RETURN_IF_ERROR(CheckText("reason", r.reason(), 2000, /*required=*/true));
  const v1::LinkStatus verdict =
      r.confirmed() ? v1::LINK_STATUS_CONFIRMED : v1::LINK_STATUS_REJECTED;
  v1::RecordLinkFeedbackResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, r, r.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::LinkageHit hit, LoadHit(txn, r.hit_id()));
        if (hit.organisation() != call.identity.org) {
          return absl::NotFoundError(absl::StrCat("hit ", r.hit_id(), " not found"));
        }
        if (hit.status() != v1::LINK_STATUS_OPEN) {
          if (hit.status() != verdict) {
            return absl::FailedPreconditionError(absl::StrCat("hit ", r.hit_id(), " is already ",
                                                              v1::LinkStatus_Name(hit.status())));
          }
          *response.mutable_hit() = hit;
          return absl::OkStatus();
        }
        RETURN_IF_ERROR(
            txn.Exec("UPDATE linkage_hits SET status = ?, feedback_reason = ?, feedback_at = ? "
                     "WHERE hit_id = ?",
                     {int64_t{verdict}, r.reason(), ToMicros(now), r.hit_id()}));
        ASSIGN_OR_RETURN(*response.mutable_hit(), LoadHit(txn, r.hit_id()));
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::GetLinkageStatsResponse> LinkageDesk::Stats() {
  v1::GetLinkageStatsResponse response;
  response.set_threshold_milli(static_cast<int32_t>(options_.threshold_milli));
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    std::map<std::string, v1::OrganisationLinkStats> by_org;
    ASSIGN_OR_RETURN(std::vector<Row> indexes,
                     txn.Query("SELECT org, version, records, updated_at FROM linkage_index"));
    for (const Row& row : indexes) {
      auto& s = by_org[row.Text(0)];
      s.set_organisation(row.Text(0));
      s.set_index_version(row.Int(1));
      s.set_index_records(row.Int(2));
      *s.mutable_index_updated_at() = ToProto(FromMicros(row.Int(3)));
    }
    ASSIGN_OR_RETURN(
        std::vector<Row> hits,
        txn.Query("SELECT org, status, COUNT(*) FROM linkage_hits GROUP BY org, status"));
    for (const Row& row : hits) {
      auto& s = by_org[row.Text(0)];
      s.set_organisation(row.Text(0));
      s.set_hits(s.hits() + row.Int(2));
      switch (row.Int(1)) {
        case v1::LINK_STATUS_OPEN:
          s.set_open(row.Int(2));
          break;
        case v1::LINK_STATUS_CONFIRMED:
          s.set_confirmed(row.Int(2));
          break;
        case v1::LINK_STATUS_REJECTED:
          s.set_rejected(row.Int(2));
          break;
      }
    }
    for (auto& [org, s] : by_org) {
      const int64_t decided = s.confirmed() + s.rejected();
      s.set_precision(decided ? static_cast<double>(s.confirmed()) / decided : 0);
      *response.add_organisations() = s;
    }
    ASSIGN_OR_RETURN(std::vector<Row> count, txn.Query("SELECT COUNT(*) FROM linkage_subjects"));
    response.set_subjects_stored(count[0].Int(0));
    return absl::OkStatus();
  }));
  return response;
}

}  // namespace sarloop::linkage
