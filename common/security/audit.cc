#include "common/security/audit.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/crypto.h"
#include "common/base/files.h"
#include "common/base/ids.h"
#include "common/base/mutex.h"
#include "common/base/status.h"
#include "common/base/text.h"

namespace sarloop {

const Migration kAuditMigration = {"audit log", R"sql(
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  identity TEXT NOT NULL,
  user TEXT NOT NULL,
  method TEXT NOT NULL,
  referral_id TEXT NOT NULL,
  code INTEGER NOT NULL,
  detail TEXT NOT NULL,
  hash BLOB NOT NULL
);
)sql",
                                   R"sql(
CREATE TABLE audit (
  seq BIGINT PRIMARY KEY,
  at BIGINT NOT NULL,
  identity TEXT NOT NULL,
  "user" TEXT NOT NULL,
  method TEXT NOT NULL,
  referral_id TEXT NOT NULL,
  code BIGINT NOT NULL,
  detail TEXT NOT NULL,
  hash BYTEA NOT NULL
);
)sql"};

namespace {

constexpr size_t kHashSize = 32;

// SHA-256 over the previous hash and every field, each length-prefixed so no two different entries
// serialise alike.
std::string EntryHash(const std::string& prev, int64_t seq, const AuditEntry& e) {
  std::string buf = prev;
  auto put = [&](const std::string& field) {
    const uint64_t n = field.size();
    buf.append(reinterpret_cast<const char*>(&n), sizeof(n));
    buf.append(field);
  };
  put(std::to_string(seq));
  put(std::to_string(ToMicros(e.at)));
  put(e.identity);
  put(e.user);
  put(e.method);
  put(e.referral_id);
  put(std::to_string(e.code));
  put(e.detail);
  return Sha256Digest(buf);
}

std::string CheckpointMessage(int64_t seq, const std::string& hash) {
  return absl::StrCat("sarloop-audit-checkpoint:", seq, ":", absl::BytesToHexString(hash));
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

absl::StatusOr<Pkey> ReadKey(const std::string& path, bool is_private) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  EVP_PKEY* key = is_private ? PEM_read_PrivateKey(f, nullptr, nullptr, nullptr)
                             : PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (key == nullptr || EVP_PKEY_base_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an Ed25519 PEM key"));
  }
  return Pkey(key);
}

std::string PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n);
  BIO_free(bio);
  return out;
}

absl::StatusOr<Pkey> LoadOrMakeKey(const std::string& path) {
  auto key = ReadKey(path, true);
  if (key.ok()) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      spdlog::warn("the audit signing key {} is readable by others (mode {:o}); make it 0600", path,
                   st.st_mode & 0777);
    }
    return key;
  }
  if (!absl::IsNotFound(key.status())) return key;
  EVP_PKEY* raw = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  const bool made = ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &raw) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!made) return absl::InternalError("Ed25519 key generation failed");
  Pkey made_key(raw);
  auto pem = [&](bool is_private) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (is_private) {
      PEM_write_bio_PrivateKey(bio, raw, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_bio_PUBKEY(bio, raw);
    }
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, n);
    BIO_free(bio);
    return out;
  };
  // Replicas sharing a key (one organisation, several processes) may start at once: the key is
  // written whole under a name of this process's own, then linked into place, which only one
  // process can do; the others read the winner's key.
  const std::string tmp = absl::StrCat(path, ".new.", ::getpid(), ".", NewId("", 8));
  ::unlink(tmp.c_str());
  RETURN_IF_ERROR(WriteFileSynced(tmp, pem(true), O_CREAT | O_EXCL, 0600));
  const int linked = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (linked != 0) {
    if (link_errno == EEXIST) return ReadKey(path, true);
    return absl::UnavailableError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(link_errno)));
  }
  // The key's name, made by the link, is in the directory's blocks: lost with them at a power
  // loss, a new key would be made at the next start, and the witness, which pinned this one,
  // would refuse every head after.
  RETURN_IF_ERROR(SyncDirectoryOf(path));
  RETURN_IF_ERROR(WriteFileSynced(path + ".pub", pem(false), O_CREAT | O_TRUNC, 0644));
  spdlog::info("made audit signing key {} (public half {}.pub)", path, path);
  return made_key;
}

}  // namespace

absl::Status AppendAudit(Txn& txn, const AuditEntry& given) {
  // What a caller or a peer sent is kept as one printable line: a NUL ended the text PostgreSQL
  // stored early while the hash covered all of it (a false alarm of tampering at every verify),
  // and bytes that are not UTF-8 were refused by it, losing the entry.
  AuditEntry entry = given;
  for (std::string* text :
       {&entry.identity, &entry.user, &entry.method, &entry.referral_id, &entry.detail}) {
    *text = Printable(*text);
  }
  // One chain per database: processes sharing it (PostgreSQL replicas) append one at a time.
  RETURN_IF_ERROR(txn.Serialize(kGlobalOrder));
  ASSIGN_OR_RETURN(auto head, txn.Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
  const int64_t seq = head.empty() ? 1 : head[0].Int(0) + 1;
  const std::string prev = head.empty() ? std::string(kHashSize, '\0') : head[0].Text(1);
  return txn.Exec(
      "INSERT INTO audit (seq, at, identity, \"user\", method, referral_id, code, detail, hash) "
      "VALUES (?,?,?,?,?,?,?,?,?)",
      {seq, ToMicros(entry.at), entry.identity, entry.user, entry.method, entry.referral_id,
       int64_t{entry.code}, entry.detail, Blob{EntryHash(prev, seq, entry)}});
}

absl::Status AuditRecorder::RecordInTransaction(Txn& txn) {
  if (db_ == nullptr) return absl::OkStatus();
  AuditEntry e = entry_;
  e.code = 0;
  RETURN_IF_ERROR(AppendAudit(txn, e));
  recorded_ok_ = true;
  return absl::OkStatus();
}

absl::Status AuditRecorder::RecordRefusal(Txn& txn, const std::string& referral_id,
                                          const absl::Status& refusal) {
  if (db_ == nullptr) return absl::OkStatus();
  AuditEntry e = entry_;
  // A refused envelope's referral id is whatever the peer sent: the audit log keeps its length
  // for ever, so at most what a real id needs.
  e.referral_id = PrintablePrefix(referral_id, 64);
  e.code = static_cast<int>(refusal.code());
  e.detail = PrintablePrefix(refusal.message(), 300);
  return AppendAudit(txn, e);
}

absl::Status AuditRecorder::Finish(const absl::Status& status) {
  if (db_ == nullptr || (status.ok() && recorded_ok_)) return absl::OkStatus();
  AuditEntry e = entry_;
  e.code = static_cast<int>(status.code());
  if (!status.ok()) e.detail = PrintablePrefix(status.message(), 300);
  absl::Status s = db_->Transact([&](Txn& txn) { return AppendAudit(txn, e); });
  // Loud in the log and in health; the caller refuses a call it could not record.
  if (!s.ok()) {
    spdlog::error("audit append failed for {}: {}", Printable(e.method), Printable(s.ToString()));
  }
  return s;
}

RefusalBudget::RefusalBudget(double per_second, double burst)
    : per_second_(per_second), burst_(burst), tokens_(burst) {}

bool RefusalBudget::Take(absl::Time now, int64_t* unwritten) {
  MutexLock lock(&mu_);
  if (last_ != absl::InfinitePast() && now > last_) {
    tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * per_second_);
  }
  if (now > last_) last_ = now;
  if (tokens_ < 1) {
    ++unwritten_;
    return false;
  }
  tokens_ -= 1;
  *unwritten = unwritten_;
  unwritten_ = 0;
  return true;
}

void RefusalBudget::Unwritten(int64_t unwritten) {
  MutexLock lock(&mu_);
  unwritten_ += unwritten + 1;
}

absl::Status WithUnwritten(const absl::Status& refusal, int64_t unwritten) {
  if (unwritten == 0) return refusal;
  return absl::Status(refusal.code(),
                      absl::StrCat(refusal.message(), " (and ", unwritten,
                                   " refusals before it, over the audit rate, counted only)"));
}

struct AuditCheckpointer::Impl {
  Impl(Database& db, Pkey key, std::string file, std::string public_pem)
      : db(db), key(std::move(key)), file(std::move(file)), public_pem(std::move(public_pem)) {}

  Database& db;
  Pkey key;
  std::string file;
  std::string public_pem;
  mutable Mutex mu;
  int64_t last_seq ABSL_GUARDED_BY(mu) = -1;
  SignedHead last ABSL_GUARDED_BY(mu);
};

namespace {

// The Ed25519 key a PEM text holds, or null. OpenSSL's decoders cost more than the verification
// itself, and a witness verifies each service's heads with the one key it pinned, so parsed keys
// are kept (a few per service at most; the map starts again past kKeptKeys). A key is only ever
// read once made, which OpenSSL allows from any number of threads.
std::shared_ptr<EVP_PKEY> ParsedPublicKey(const std::string& pem) {
  constexpr size_t kKeptKeys = 256;
  static auto* mu = new Mutex();
  static auto* kept = new std::map<std::string, std::shared_ptr<EVP_PKEY>>();
  {
    MutexLock lock(mu);
    auto it = kept->find(pem);
    if (it != kept->end()) return it->second;
  }
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (raw == nullptr || EVP_PKEY_base_id(raw) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(raw);
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> key(raw, EVP_PKEY_free);
  MutexLock lock(mu);
  if (kept->size() >= kKeptKeys) kept->clear();
  kept->emplace(pem, key);
  return key;
}

}  // namespace

absl::Status VerifyHeadSignature(const std::string& public_key_pem, const SignedHead& head) {
  const std::shared_ptr<EVP_PKEY> key = ParsedPublicKey(public_key_pem);
  if (key == nullptr) return FieldError("public_key", "is not an Ed25519 public key in PEM");
  EVP_PKEY* raw = key.get();
  const std::string msg = CheckpointMessage(head.seq, head.hash);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool valid =
      ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, raw) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(head.signature.data()),
                       head.signature.size(), reinterpret_cast<const unsigned char*>(msg.data()),
                       msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!valid) return FieldError("signature", "does not verify for this head and key");
  return absl::OkStatus();
}

AuditCheckpointer::AuditCheckpointer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditCheckpointer::~AuditCheckpointer() = default;

absl::StatusOr<std::unique_ptr<AuditCheckpointer>> AuditCheckpointer::Create(
    Database& db, std::string key_file, std::string checkpoint_file,
    const std::string& public_copy) {
  absl::StatusOr<Pkey> loaded = LoadOrMakeKey(key_file);
  if (!loaded.ok()) {
    return FieldError("audit_key_file",
                      absl::StrCat(loaded.status().message(),
                                   " (provision it: openssl genpkey -algorithm ed25519 -out ",
                                   key_file, ", readable by the service only)"));
  }
  Pkey key = *std::move(loaded);
  std::string public_pem = PublicPem(key.get());
  if (!public_copy.empty()) {
    RETURN_IF_ERROR(WriteFileSynced(public_copy, public_pem, O_CREAT | O_TRUNC, 0644));
  }
  auto impl = std::unique_ptr<Impl>(
      new Impl(db, std::move(key), std::move(checkpoint_file), std::move(public_pem)));
  return std::unique_ptr<AuditCheckpointer>(new AuditCheckpointer(std::move(impl)));
}

absl::Status AuditCheckpointer::Checkpoint() {
  MutexLock lock(&impl_->mu);
  int64_t seq = 0;
  std::string hash;
  RETURN_IF_ERROR(impl_->db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto head, txn.Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    if (!head.empty()) {
      seq = head[0].Int(0);
      hash = head[0].Text(1);
    }
    return absl::OkStatus();
  }));
  if (seq == 0 || seq == impl_->last_seq) return absl::OkStatus();
  const std::string msg = CheckpointMessage(seq, hash);
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, impl_->key.get()) == 1 &&
      EVP_DigestSign(ctx, sig, &sig_len, reinterpret_cast<const unsigned char*>(msg.data()),
                     msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("Ed25519 signing failed");
  const std::string line = absl::StrCat(
      seq, " ", absl::BytesToHexString(hash), " ",
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(sig), sig_len)), "\n");
  RETURN_IF_ERROR(WriteFileSynced(impl_->file, line, O_CREAT | O_APPEND, 0644));
  impl_->last_seq = seq;
  impl_->last = SignedHead{seq, hash, std::string(reinterpret_cast<char*>(sig), sig_len)};
  return absl::OkStatus();
}

SignedHead AuditCheckpointer::LastHead() const {
  MutexLock lock(&impl_->mu);
  return impl_->last;
}

const std::string& AuditCheckpointer::PublicKeyPem() const { return impl_->public_pem; }

absl::StatusOr<AuditReport> VerifyAudit(const std::string& database,
                                        const std::string& checkpoint_file,
                                        const std::string& public_key_file,
                                        const SignedHead* witnessed) {
  ASSIGN_OR_RETURN(auto db, Database::OpenReadOnly(database));
  return VerifyAudit(*db, checkpoint_file, public_key_file, witnessed);
}

absl::StatusOr<AuditReport> VerifyAudit(Database& database, const std::string& checkpoint_file,
                                        const std::string& public_key_file,
                                        const SignedHead* witnessed) {
  ASSIGN_OR_RETURN(Pkey key, ReadKey(public_key_file, false));
  Database* db = &database;
  AuditReport report;
  std::map<int64_t, std::string> hashes;
  RETURN_IF_ERROR(db->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows,
                     txn.Query("SELECT seq, at, identity, \"user\", method, referral_id, "
                               "code, detail, hash FROM audit ORDER BY seq"));
    std::string prev(kHashSize, '\0');
    int64_t expected = 1;
    for (const Row& r : rows) {
      const int64_t seq = r.Int(0);
      AuditEntry e{FromMicros(r.Int(1)),       r.Text(2), r.Text(3), r.Text(4), r.Text(5),
                   static_cast<int>(r.Int(6)), r.Text(7)};
      if (seq != expected) {
        report.first_bad = expected;
        report.problem = absl::StrCat("entry ", expected, " is missing (next is ", seq, ")");
        return absl::OkStatus();
      }
      if (EntryHash(prev, seq, e) != r.Text(8)) {
        report.first_bad = seq;
        report.problem = absl::StrCat("entry ", seq, " does not match its hash (changed)");
        return absl::OkStatus();
      }
      prev = r.Text(8);
      hashes[seq] = prev;
      ++expected;
      ++report.entries;
    }
    return absl::OkStatus();
  }));
  if (report.first_bad != 0) return report;

  // What another organisation saw comes first: it holds whatever this disk was made to say.
  if (witnessed != nullptr && witnessed->seq > 0) {
    report.witnessed_seq = witnessed->seq;
    auto it = hashes.find(witnessed->seq);
    if (it == hashes.end()) {
      report.first_bad = report.entries + 1;
      report.problem = absl::StrCat("the witness holds the head at entry ", witnessed->seq,
                                    " but the log ends at entry ", report.entries,
                                    ": it was rolled back or cut");
      return report;
    }
    if (it->second != witnessed->hash) {
      report.first_bad = witnessed->seq;
      report.problem = absl::StrCat("entry ", witnessed->seq,
                                    " differs from the head the witness holds: the log was "
                                    "rewritten");
      return report;
    }
  }

  std::ifstream in(checkpoint_file);
  if (!in) {
    // A service that has recorded nothing has signed nothing yet.
    if (report.entries == 0) return report;
    report.first_bad = 1;
    report.problem = absl::StrCat("no signed checkpoint file ", checkpoint_file,
                                  ": the log cannot be checked for a cut tail");
    return report;
  }
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    int64_t seq = 0;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &seq)) {
      report.problem = absl::StrCat("checkpoint line ", report.checkpoints + 1, " is malformed");
      report.first_bad = -1;
      return report;
    }
    const std::string hash = absl::HexStringToBytes(f[1]);
    const std::string sig = absl::HexStringToBytes(f[2]);
    const std::string msg = CheckpointMessage(seq, hash);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool valid =
        ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key.get()) == 1 &&
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
    EVP_MD_CTX_free(ctx);
    ++report.checkpoints;
    if (!valid) {
      report.first_bad = -1;
      report.problem = absl::StrCat("checkpoint for entry ", seq, " has a bad signature");
      return report;
    }
    auto it = hashes.find(seq);
    if (it == hashes.end()) {
      report.first_bad = report.entries + 1;
      report.problem =
          absl::StrCat("the log ends at entry ", report.entries,
                       " but a signed checkpoint covers entry ", seq, ": the tail was cut");
      return report;
    }
    if (it->second != hash) {
      report.first_bad = seq;
      report.problem = absl::StrCat("entry ", seq, " differs from its signed checkpoint");
      return report;
    }
  }
  // An emptied file vouches for nothing: a log with entries and no checkpoint could have had its
  // tail cut and the lines that covered it removed.
  if (report.checkpoints == 0 && report.entries > 0) {
    report.first_bad = 1;
    report.problem =
        absl::StrCat("the checkpoint file ", checkpoint_file, " holds no checkpoint for ",
                     report.entries, " entries: the log cannot be checked for a cut tail");
  }
  return report;
}

}  // namespace sarloop
