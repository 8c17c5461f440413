#include "common/server/witness.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/base/text.h"
#include "common/rpc/field_checks.h"

namespace sarloop {

const Migration kWitnessMigration{"witnessed audit heads of other services",
                                  "CREATE TABLE witnessed_heads ("
                                  "  service TEXT PRIMARY KEY,"
                                  "  seq INTEGER NOT NULL,"
                                  "  hash TEXT NOT NULL,"
                                  "  signature TEXT NOT NULL,"
                                  "  public_key TEXT NOT NULL,"
                                  "  witnessed_at INTEGER NOT NULL)",
                                  "CREATE TABLE witnessed_heads ("
                                  "  service TEXT PRIMARY KEY,"
                                  "  seq BIGINT NOT NULL,"
                                  "  hash TEXT NOT NULL,"
                                  "  signature TEXT NOT NULL,"
                                  "  public_key TEXT NOT NULL,"
                                  "  witnessed_at BIGINT NOT NULL)"};

std::string WitnessOf(v1::ServiceKind kind) {
  return kind == v1::SERVICE_KIND_NCA ? "UKFIU" : "NCA";
}

namespace {

// The method whose entries record heads taken as another service's witness.
constexpr char kRecordAuditHead[] = "/sarloop.v1.AuditWitness/RecordAuditHead";

// The head a witness holds for one service; HeadOf reads its row.
constexpr char kSelectHead[] =
    "SELECT seq, hash, signature, public_key, witnessed_at FROM witnessed_heads WHERE service = ?";

v1::AuditHead HeadOf(const Row& r, const std::string& service) {
  v1::AuditHead head;
  head.set_service(service);
  head.set_seq(r.Int(0));
  head.set_hash(absl::HexStringToBytes(r.Text(1)));
  head.set_signature(absl::HexStringToBytes(r.Text(2)));
  head.set_public_key(r.Text(3));
  *head.mutable_witnessed_at() = ToProto(FromMicros(r.Int(4)));
  return head;
}

}  // namespace

absl::StatusOr<v1::RecordAuditHeadResponse> Witness::Record(
    const Call& call, const v1::RecordAuditHeadRequest& request) {
  if (!call.identity.IsService()) {
    return absl::PermissionDeniedError(
        absl::StrCat(call.identity.uri, " is not a service: only services report audit heads"));
  }
  if (request.seq() < 1) return FieldError("seq", "must be 1 or more");
  if (request.hash().size() != 32) return FieldError("hash", "must be 32 bytes (SHA-256)");
  if (request.signature().size() != 64) {
    return FieldError("signature", "must be 64 bytes (Ed25519)");
  }
  if (request.public_key().empty() || request.public_key().size() > 1024) {
    return FieldError("public_key", "must be an Ed25519 public key in PEM, at most 1 KiB");
  }
  const SignedHead head{request.seq(), request.hash(), request.signature()};
  const std::string& service = call.identity.uri;
  v1::RecordAuditHeadResponse response;
  RETURN_IF_ERROR(db_.Transact([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query(kSelectHead, {service}));
    // The first report pins the key; every later head must be signed with it.
    const std::string key = rows.empty() ? request.public_key() : rows[0].Text(3);
    if (key != request.public_key()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the audit key of ", service,
                       " is not the one it reported first: a log re-signed with "
                       "a new key is not the log this witness saw"));
    }
    RETURN_IF_ERROR(VerifyHeadSignature(key, head));
    if (!rows.empty()) {
      const int64_t seq = rows[0].Int(0);
      const std::string hash = absl::HexStringToBytes(rows[0].Text(1));
      if (request.seq() < seq) {
        return absl::FailedPreconditionError(
            absl::StrCat("audit head of ", service, " went back from entry ", seq, " to ",
                         request.seq(), ": its log was rolled back or cut"));
      }
      if (request.seq() == seq && request.hash() != hash) {
        return absl::FailedPreconditionError(
            absl::StrCat("entry ", seq, " of ", service,
                         " has another hash than the one witnessed: its log was rewritten"));
      }
      if (request.seq() == seq) {
        *response.mutable_head() = HeadOf(rows[0], service);
        return call.audit ? call.audit->RecordInTransaction(txn) : absl::OkStatus();
      }
      // A longer log must still hold the witnessed entry: a log rolled back and grown again past
      // the witnessed head does not.
      if (request.prev_seq() != seq || request.prev_hash() != hash) {
        return absl::FailedPreconditionError(
            absl::StrCat("the head of ", service, " at entry ", request.seq(),
                         " does not continue the witnessed head at entry ", seq,
                         request.prev_seq() == seq ? " (its log has another entry there: rewritten)"
                                                   : " (give prev_seq and prev_hash)"));
      }
    }
    const absl::Time now = clock_.Now();
    RETURN_IF_ERROR(
        txn.Exec(rows.empty() ? "INSERT INTO witnessed_heads (seq, hash, signature, public_key, "
                                "witnessed_at, service) VALUES (?, ?, ?, ?, ?, ?)"
                              : "UPDATE witnessed_heads SET seq = ?, hash = ?, signature = ?, "
                                "public_key = ?, witnessed_at = ? WHERE service = ?",
                 {request.seq(), absl::BytesToHexString(request.hash()),
                  absl::BytesToHexString(request.signature()), key, ToMicros(now), service}));
    v1::AuditHead* out = response.mutable_head();
    out->set_service(service);
    out->set_seq(request.seq());
    out->set_hash(request.hash());
    out->set_signature(request.signature());
    out->set_public_key(key);
    *out->mutable_witnessed_at() = ToProto(now);
    return call.audit ? call.audit->RecordInTransaction(txn) : absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<v1::GetAuditHeadResponse> Witness::Get(const Call& call,
                                                      const std::string& service) {
  RETURN_IF_ERROR(CheckText("service", service, 200, true));
  if (call.identity.kind != "analyst" && call.identity.uri != service) {
    return absl::PermissionDeniedError(
        absl::StrCat(call.identity.uri, " may read its own witnessed head only"));
  }
  v1::GetAuditHeadResponse response;
  bool found = false;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query(kSelectHead, {service}));
    if (rows.empty()) return absl::OkStatus();
    found = true;
    *response.mutable_head() = HeadOf(rows[0], service);
    return absl::OkStatus();
  }));
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no audit head witnessed for ", service));
  }
  return response;
}

void WitnessService::RecordAuditHead(UnaryCall* ctx, const v1::RecordAuditHeadRequest* request,
                                     v1::RecordAuditHeadResponse* response) {
  return ServeWrite(
      ctx, edge_, kRecordAuditHead, *request, [=, this](const Call& call) -> absl::Status {
        absl::StatusOr<v1::RecordAuditHeadResponse> recorded = witness_.Record(call, *request);
        if (absl::IsFailedPrecondition(recorded.status())) {
          spdlog::error("audit witness: {}", std::string(recorded.status().message()));
        }
        if (!recorded.ok()) return recorded.status();
        *response = *std::move(recorded);
        return absl::OkStatus();
      });
}

void WitnessService::GetAuditHead(UnaryCall* ctx, const v1::GetAuditHeadRequest* request,
                                  v1::GetAuditHeadResponse* response) {
  return Serve(ctx, edge_, "/sarloop.v1.AuditWitness/GetAuditHead", *request,
               [=, this](const Call& call) -> absl::Status {
                 ASSIGN_OR_RETURN(*response, witness_.Get(call, request->service()));
                 return absl::OkStatus();
               });
}

namespace {

constexpr char kSelectHashAt[] = "SELECT hash FROM audit WHERE seq = ?";

// The hash of entry `seq` of the service's own audit log; NOT_FOUND when it has none.
absl::StatusOr<std::string> HashAt(Database& db, int64_t seq) {
  std::string hash;
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query(kSelectHashAt, {seq}));
    if (rows.empty()) return absl::NotFoundError(absl::StrCat("no audit entry ", seq));
    hash = rows[0].Text(0);
    return absl::OkStatus();
  }));
  return hash;
}

}  // namespace

absl::StatusOr<bool> MustReportHead(Database& db, const WitnessedHead& witnessed,
                                    const SignedHead& head, bool quiet_expired) {
  if (quiet_expired || witnessed.seq <= 0 || head.seq <= witnessed.seq) return true;
  bool must = true;
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto at, txn.Query(kSelectHashAt, {witnessed.seq}));
    if (at.empty() || at[0].Text(0) != witnessed.hash) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto others,
                     txn.Query("SELECT COUNT(*) FROM audit WHERE seq > ? AND seq <= ? "
                               "AND method <> ?",
                               {witnessed.seq, head.seq, std::string(kRecordAuditHead)}));
    must = others.empty() || others[0].Int(0) > 0;
    return absl::OkStatus();
  }));
  return must;
}

// One call's objects, alive until it has ended.
struct WitnessReporter::Pending {
  grpc::ClientContext ctx;
  v1::GetAuditHeadRequest get;
  v1::GetAuditHeadResponse got;
  v1::RecordAuditHeadRequest record;
  v1::RecordAuditHeadResponse recorded;
};

WitnessReporter::WitnessReporter(std::shared_ptr<grpc::Channel> channel, std::string witness_code,
                                 std::string own_identity, Database& db, Clock& clock,
                                 absl::Duration quiet_limit)
    : stub_(v1::AuditWitness::NewStub(std::move(channel))),
      witness_code_(std::move(witness_code)),
      own_identity_(std::move(own_identity)),
      db_(db),
      clock_(clock),
      quiet_limit_(quiet_limit) {}

WitnessReporter::~WitnessReporter() {
  // The call in flight is cancelled, and must have ended before this goes.
  {
    MutexLock lock(&mu_);
    if (active_ != nullptr) active_->TryCancel();
  }
  while (in_flight_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void WitnessReporter::Finished() {
  {
    MutexLock lock(&mu_);
    active_ = nullptr;
  }
  in_flight_.store(false);
}

void WitnessReporter::Report(const SignedHead& head, const std::string& public_key_pem) {
  if (head.seq == 0) return;
  bool idle = false;
  if (!in_flight_.compare_exchange_strong(idle, true)) return;  // the next head supersedes it
  auto p = std::make_shared<Pending>();
  p->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  {
    MutexLock lock(&mu_);
    active_ = &p->ctx;
  }
  if (witnessed_seq_ < 0) {
    // Which head does the witness hold? The head itself goes with the next report.
    p->get.set_service(own_identity_);
    caller_->Post([this, p] {
      const grpc::Status s = stub_->GetAuditHead(&p->ctx, p->get, &p->got);
      if (s.ok()) {
        witnessed_seq_ = p->got.head().seq();
        witnessed_hash_ = p->got.head().hash();
        witnessed_at_ = clock_.Now();
      } else if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        witnessed_seq_ = 0;
        witnessed_hash_.clear();
      } else {
        spdlog::warn("audit witness {} not reachable: {}", witness_code_,
                     Printable(s.error_message()));
      }
      Finished();
    });
    return;
  }
  if (head.seq == witnessed_seq_ && head.hash == witnessed_hash_) {
    Finished();
    return;
  }
  absl::StatusOr<bool> must = MustReportHead(db_, {witnessed_seq_, witnessed_hash_}, head,
                                             clock_.Now() - witnessed_at_ >= quiet_limit_);
  if (must.ok() && !*must) {
    Finished();
    return;
  }
  p->record.set_seq(head.seq);
  p->record.set_hash(head.hash);
  p->record.set_signature(head.signature);
  p->record.set_public_key(public_key_pem);
  if (witnessed_seq_ > 0) {
    p->record.set_prev_seq(witnessed_seq_);
    absl::StatusOr<std::string> prev = HashAt(db_, witnessed_seq_);
    // A log that lacks the witnessed entry sends none: the witness refuses, and says so.
    if (prev.ok()) p->record.set_prev_hash(*prev);
  }
  caller_->Post([this, p, seq = head.seq] {
    const grpc::Status s = stub_->RecordAuditHead(&p->ctx, p->record, &p->recorded);
    if (s.ok()) {
      witnessed_seq_ = p->recorded.head().seq();
      witnessed_hash_ = p->recorded.head().hash();
      witnessed_at_ = clock_.Now();
      spdlog::debug("audit head {} witnessed by {}", seq, witness_code_);
    } else if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      spdlog::error("the audit witness {} refuses this service's head at entry {}: {}",
                    witness_code_, seq, Printable(s.error_message()));
      witnessed_seq_ = -1;  // ask again what it holds
    } else {
      spdlog::warn("audit head {} not witnessed by {} yet: {}", seq, witness_code_,
                   Printable(s.error_message()));
      // The witness may have recorded it and the answer been lost: ask what it holds before the
      // next report, which would otherwise claim to continue the older head and be refused as a
      // rewritten log.
      witnessed_seq_ = -1;
    }
    Finished();
  });
}

}  // namespace sarloop
