// The PostgreSQL engine (libpq), for the NCA register when it outgrows one machine (DESIGN §7,
// issue 8): one writing connection per process, with group commit as on SQLite, and a few reading
// connections, since PostgreSQL's snapshots let reads run beside the writer. Several processes may
// share the database: exactly-once rests on its constraints and transactions, and the few
// orderings that must be global (the audit chain, the register's change sequence) take a
// transaction-scoped advisory lock (Txn::Serialize).
#include <libpq-fe.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/storage/storage.h"
#include "common/storage/storage_engine.h"

namespace sarloop {
namespace {

using storage_internal::Connection;
using storage_internal::Engine;
using storage_internal::SealingTxn;

// PostgreSQL type OIDs (pg_type.dat) of the results sarloop reads.
constexpr Oid kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23, kNumeric = 1700;

// SQL written with SQLite's `?` placeholders, numbered for PostgreSQL ($1, $2, ...). Quoted text
// and identifiers are left alone.
std::string NumberPlaceholders(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;
      out.push_back(c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      out.push_back(c);
    } else if (c == '?') {
      absl::StrAppend(&out, "$", ++n);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  ~PgResult() { PQclear(r_); }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

// A failed statement as a status: conflicts between concurrent transactions (unique violation
// from a racing replica, serialisation failure, deadlock) are ABORTED, to be retried; lost
// connections and a full disk are UNAVAILABLE; anything else is INTERNAL.
absl::Status PgError(PGconn* conn, const PGresult* res, absl::string_view what) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  absl::StripTrailingAsciiWhitespace(&msg);
  msg = absl::StrCat(what, ": ", msg, state ? absl::StrCat(" (SQLSTATE ", state, ")") : "");
  const std::string s = state ? state : "";
  if (s == "23505" || s == "40001" || s == "40P01") return absl::AbortedError(msg);
  if (s.empty() || s.rfind("08", 0) == 0 || s.rfind("53", 0) == 0 || s.rfind("57", 0) == 0 ||
      s.rfind("58", 0) == 0 || PQstatus(conn) == CONNECTION_BAD) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

class PgTxn : public SealingTxn {
 public:
  PgTxn(PGconn* conn, const Keyring* keys) : SealingTxn(keys), conn_(conn) {}

  absl::Status Exec(absl::string_view sql, std::vector<SqlValue> params) override {
    return Query(sql, std::move(params)).status();
  }

  absl::StatusOr<std::vector<Row>> Query(absl::string_view sql,
                                         std::vector<SqlValue> params) override {
    const std::string& text = Numbered(sql);
    std::vector<std::string> ints;
    ints.reserve(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& v = params[i];
      if (auto* n = std::get_if<int64_t>(&v)) {
        ints.push_back(absl::StrCat(*n));
        values[i] = ints.back().c_str();
      } else if (auto* s = std::get_if<std::string>(&v)) {
        values[i] = s->c_str();
      } else if (auto* b = std::get_if<Blob>(&v)) {
        values[i] = b->bytes.data();
        lengths[i] = static_cast<int>(b->bytes.size());
        formats[i] = 1;  // binary: bytea as it is
      }
    }
    ASSIGN_OR_RETURN(const std::string* prepared, Prepared(sql, text));
    PgResult res(prepared != nullptr
                     ? PQexecPrepared(conn_, prepared->c_str(), static_cast<int>(params.size()),
                                      values.data(), lengths.data(), formats.data(), 0)
                     : PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                                    values.data(), lengths.data(), formats.data(), 0));
    const ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
      // Insufficient resources (53: disk full, out of memory) and system errors (58: I/O): the
      // storage cannot take writes, as SQLite's SQLITE_FULL and SQLITE_IOERR.
      if (state != nullptr && (absl::StartsWith(state, "53") || absl::StartsWith(state, "58"))) {
        storage_failure_ = PQresultErrorMessage(res.get());
      }
      return PgError(conn_, res.get(), sql);
    }
    const char* tuples = PQcmdTuples(res.get());
    changes_ = (tuples && *tuples) ? std::atoll(tuples) : 0;
    std::vector<Row> rows;
    const int nrows = PQntuples(res.get());
    const int ncols = PQnfields(res.get());
    rows.reserve(nrows);
    for (int r = 0; r < nrows; ++r) {
      std::vector<SqlValue> row;
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          row.emplace_back(std::monostate{});
          continue;
        }
        const char* v = PQgetvalue(res.get(), r, c);
        const int len = PQgetlength(res.get(), r, c);
        switch (PQftype(res.get(), c)) {
          case kInt8:
          case kInt4:
          case kInt2:
          case kNumeric: {
            // A NUMERIC (SUM over BIGINT) is read as its integer part.
            int64_t n = 0;
            absl::string_view digits(v, len);
            digits = digits.substr(0, digits.find('.'));
            if (!absl::SimpleAtoi(digits, &n)) {
              return absl::InternalError(absl::StrCat(sql, ": not an integer: ", digits));
            }
            row.emplace_back(n);
            break;
          }
          case kBool:
            row.emplace_back(int64_t{v[0] == 't' ? 1 : 0});
            break;
          case kBytea: {
            // Text format: "\x" and hex digits.
            absl::string_view hex(v, len);
            if (hex.substr(0, 2) != "\\x") {
              return absl::InternalError(absl::StrCat(sql, ": bytea not in hex format"));
            }
            row.emplace_back(Blob{absl::HexStringToBytes(hex.substr(2))});
            break;
          }
          default:
            row.emplace_back(std::string(v, len));
        }
      }
      rows.emplace_back(std::move(row));
    }
    return rows;
  }

  int64_t Changes() override { return changes_; }

  absl::Status Serialize(absl::string_view what) override {
    return Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", {std::string(what)});
  }

  // A new connection (after a reset) has none of the statements prepared on the old one.
  void ForgetPrepared() { prepared_.clear(); }

  // The message of the last statement that failed for lack of storage, once.
  std::optional<std::string> TakeStorageFailure() {
    return std::exchange(storage_failure_, std::nullopt);
  }

 private:
  // The server-side prepared statement for `sql`, prepared on first use: the server then parses
  // and plans each statement once per connection rather than on every call, which halves the
  // cost of the register's small statements. Null for statements PostgreSQL cannot prepare
  // (SAVEPOINT, DDL), which run as they are.
  absl::StatusOr<const std::string*> Prepared(absl::string_view sql, const std::string& text) {
    auto it = prepared_.find(sql);
    if (it != prepared_.end()) return &it->second;
    const absl::string_view head = absl::StripLeadingAsciiWhitespace(sql);
    bool preparable = false;
    for (absl::string_view verb : {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}) {
      preparable |= absl::StartsWithIgnoreCase(head, verb);
    }
    if (!preparable) return nullptr;
    const std::string name = absl::StrCat("s", prepared_.size() + 1);
    PgResult res(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) return PgError(conn_, res.get(), sql);
    return &prepared_.emplace(std::string(sql), name).first->second;
  }

  const std::string& Numbered(absl::string_view sql) {
    auto it = numbered_.find(sql);
    if (it == numbered_.end()) {
      it = numbered_.emplace(std::string(sql), NumberPlaceholders(sql)).first;
    }
    return it->second;
  }

  PGconn* const conn_;
  int64_t changes_ = 0;
  std::optional<std::string> storage_failure_;
  std::map<std::string, std::string, std::less<>> numbered_;
  std::map<std::string, std::string, std::less<>> prepared_;
};

class PgConnection : public Connection {
 public:
  PgConnection(PGconn* conn, const Keyring* keys)
      : conn_(conn), txn_(std::make_unique<PgTxn>(conn, keys)) {}
  ~PgConnection() override {
    txn_.reset();
    PQfinish(conn_);
  }

  Txn& txn() override { return *txn_; }

  absl::Status Begin(bool write) override {
    // A connection lost (server restart, failover) is made again before the next transaction;
    // until it comes back, writes fail UNAVAILABLE and the service reports NOT_SERVING.
    if (PQstatus(conn_) == CONNECTION_BAD) {
      PQreset(conn_);
      txn_->ForgetPrepared();
      if (PQstatus(conn_) == CONNECTION_BAD) return PgError(conn_, nullptr, "reconnect");
    }
    // Reads see one snapshot throughout; writes see others' commits as they land (READ
    // COMMITTED) and rely on constraints and advisory locks where order matters.
    return Simple(write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                        : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }

  absl::Status Commit() override {
    // PostgreSQL answers COMMIT of a transaction that has failed with a ROLLBACK, not an error.
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      Rollback();
      return absl::AbortedError("COMMIT of a transaction that had failed: rolled back");
    }
    PgResult res(PQexec(conn_, "COMMIT"));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      absl::Status err = PgError(conn_, res.get(), "COMMIT");
      last_failure_ = err.code() == absl::StatusCode::kUnavailable
                          ? std::optional<std::string>(std::string(err.message()))
                          : std::nullopt;
      Rollback();
      return err;
    }
    if (std::string_view(PQcmdStatus(res.get())) != "COMMIT") {
      return absl::AbortedError(absl::StrCat("COMMIT answered ", PQcmdStatus(res.get())));
    }
    return absl::OkStatus();
  }

  void Rollback() override {
    if (InTransaction()) PgResult res(PQexec(conn_, "ROLLBACK"));
  }

  bool InTransaction() override {
    const PGTransactionStatusType t = PQtransactionStatus(conn_);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
  }

  std::optional<std::string> StorageFailure() override {
    if (PQstatus(conn_) == CONNECTION_BAD) return std::string(PQerrorMessage(conn_));
    if (std::optional<std::string> f = txn_->TakeStorageFailure()) return f;
    return std::exchange(last_failure_, std::nullopt);
  }

  absl::StatusOr<int64_t> SchemaVersion() override {
    // Replicas starting together migrate one at a time, each seeing the others' steps.
    RETURN_IF_ERROR(txn_->Serialize("sarloop.schema"));
    RETURN_IF_ERROR(
        txn_->Exec("CREATE TABLE IF NOT EXISTS sarloop_schema (version BIGINT NOT NULL)", {}));
    ASSIGN_OR_RETURN(auto rows, txn_->Query("SELECT version FROM sarloop_schema", {}));
    return rows.empty() ? 0 : rows[0].Int(0);
  }

  absl::Status SetSchemaVersion(int64_t version) override {
    RETURN_IF_ERROR(txn_->Exec("DELETE FROM sarloop_schema", {}));
    return txn_->Exec("INSERT INTO sarloop_schema (version) VALUES (?)", {version});
  }

  absl::Status ExecScript(const Migration& migration) override {
    if (migration.postgres_sql.empty()) {
      return absl::FailedPreconditionError("has no PostgreSQL form");
    }
    PgResult res(PQexec(conn_, std::string(migration.postgres_sql).c_str()));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK &&
        PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
      return PgError(conn_, res.get(), "script");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> SynchronousMode() override {
    ASSIGN_OR_RETURN(auto sync, txn_->Query("SHOW synchronous_commit", {}));
    ASSIGN_OR_RETURN(auto fsync, txn_->Query("SHOW fsync", {}));
    if (sync.empty() || fsync.empty()) return absl::InternalError("SHOW returned nothing");
    // Every setting but "off" has COMMIT wait for the local WAL flush.
    return sync[0].Text(0) != "off" && fsync[0].Text(0) == "on" ? 2 : 1;
  }

 private:
  absl::Status Simple(const char* sql) {
    PgResult res(PQexec(conn_, sql));
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) return PgError(conn_, res.get(), sql);
    return absl::OkStatus();
  }

  PGconn* const conn_;
  std::unique_ptr<PgTxn> txn_;
  std::optional<std::string> last_failure_;
};

absl::StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo,
                                                      const Keyring* keys) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
    absl::StripTrailingAsciiWhitespace(&msg);
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("PostgreSQL: ", msg));
  }
  // Warnings (NOTICE) go nowhere rather than to stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::make_unique<PgConnection>(conn, keys);
}

}  // namespace

namespace {
absl::StatusOr<std::unique_ptr<Database>> OpenPg(
    const std::string& conninfo, std::optional<std::span<const Migration>> migrations,
    std::shared_ptr<const Keyring> keys, int readers) {
  Engine engine;
  ASSIGN_OR_RETURN(engine.writer, Connect(conninfo, keys.get()));
  for (int i = 0; i < readers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> r, Connect(conninfo, keys.get()));
    engine.readers.push_back(std::move(r));
  }
  engine.keys = std::move(keys);
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                   storage_internal::NewGroupCommitDatabase(std::move(engine), migrations));
  // As SQLite refuses to run without synchronous=FULL: a server (or a role, or the connection
  // string) that acknowledges commits before the WAL is flushed would let a reply outlive its
  // effect.
  ASSIGN_OR_RETURN(const int64_t sync, db->SynchronousMode());
  if (sync != 2) {
    return absl::FailedPreconditionError(
        "PostgreSQL does not make commits durable here (synchronous_commit is off or fsync is "
        "off): refusing to acknowledge anything on it");
  }
  return db;
}
}  // namespace

absl::StatusOr<std::unique_ptr<Database>> Database::OpenPostgres(
    const std::string& conninfo, std::span<const Migration> migrations,
    std::shared_ptr<const Keyring> keys, int readers) {
  return OpenPg(conninfo, migrations, std::move(keys), readers);
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenPostgresExisting(
    const std::string& conninfo, std::shared_ptr<const Keyring> keys) {
  return OpenPg(conninfo, std::nullopt, std::move(keys), 0);
}

}  // namespace sarloop
