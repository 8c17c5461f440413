// nca, ops, audit, keys and health: looking at the register and at a service rather than acting
// on a referral (proto/sarloop/v1/nca.proto, delivery.proto's Ops, grpc.health.v1), and the
// offline tools an operator runs on a service's own files.
#include <google/protobuf/struct.pb.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/crypto.h"
#include "common/messaging/messaging.h"
#include "common/referral/retention.h"
#include "common/referral/sealed_columns.h"
#include "common/security/audit.h"
#include "common/security/identity.h"
#include "common/security/sealed.h"
#include "common/security/tls.h"
#include "common/server/config.h"
#include "common/storage/backup.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/witness.grpc.pb.h"
#include "services/linkage/desk.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/health.h"
#include "tools/ctl/values.h"
#include "tools/ctl/views.h"

namespace sarloop::ctl {
namespace {

using v1::Nca;

// --as-of sets the request's as_of; absent leaves it unset, which the server reads as now.
// (mutable_as_of() would mark the field present, so it is only called when the flag is given.)
template <typename Request>
absl::Status ReadAsOf(const Args& args, Request& request) {
  std::optional<std::string> text = args.Get("as-of");
  if (!text) return absl::OkStatus();
  ASSIGN_OR_RETURN(*request.mutable_as_of(), ParseTimestamp("as-of", *text));
  return absl::OkStatus();
}

absl::Status Timeline(const Input& in, Session& session) {
  v1::GetTimelineRequest request;
  request.set_referral_id(in.operands[0]);
  v1::GetTimelineResponse response;
  RETURN_IF_ERROR(session.Call(&Nca::Stub::GetTimeline, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintRegisterEntry(response.entry(), out);
    out << '\n';
    PrintEvents(response.events(), out);
  });
}

absl::Status ListRegister(const Input& in, Session& session) {
  v1::ListRegisterRequest request;
  ASSIGN_OR_RETURN(v1::ReferralState state, ReadState(in.args));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  request.set_state(state);
  request.set_organisation(OrgCode(in.args.Get("org").value_or("")));
  v1::ListRegisterResponse response;
  RETURN_IF_ERROR(ListPages(session, &Nca::Stub::ListRegister, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintRegisterList(response.entries(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status ListOverdue(const Input& in, Session& session) {
  v1::ListOverdueRequest request;
  RETURN_IF_ERROR(ReadAsOf(in.args, request));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  request.set_organisation(OrgCode(in.args.Get("org").value_or("")));
  v1::ListOverdueResponse response;
  RETURN_IF_ERROR(ListPages(session, &Nca::Stub::ListOverdue, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintRegisterList(response.entries(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status OversightOverdue(const Input& in, Session& session) {
  v1::ListOverdueRequest request;
  RETURN_IF_ERROR(ReadAsOf(in.args, request));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  v1::ListOverdueResponse response;
  RETURN_IF_ERROR(
      ListPages(session, &v1::Oversight::Stub::ListOverdue, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintRegisterList(response.entries(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status OversightEscalations(const Input& in, Session& session) {
  v1::ListEscalationsRequest request;
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  v1::ListEscalationsResponse response;
  RETURN_IF_ERROR(
      ListPages(session, &v1::Oversight::Stub::ListEscalations, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintEscalations(response.notices(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status Summary(const Input& in, Session& session) {
  v1::GetSummaryRequest request;
  RETURN_IF_ERROR(ReadAsOf(in.args, request));
  v1::GetSummaryResponse response;
  RETURN_IF_ERROR(session.Call(&Nca::Stub::GetSummary, request, &response));
  return Emit(session, response, [&](std::ostream& out) { PrintSummary(response, out); });
}

absl::Status Backlog(const Input& in, Session& session) {
  v1::GetBacklogResponse response;
  RETURN_IF_ERROR(session.Call(&v1::Ops::Stub::GetBacklog, v1::GetBacklogRequest(), &response));
  return Emit(session, response, [&](std::ostream& out) { PrintBacklog(response, out); });
}

// Prints the status, and fails (exit 1) unless the server is SERVING, so scripts can wait on it.
absl::Status Health(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> response, CheckHealth(session));
  const std::string status = ServingStatusName(*response);
  RETURN_IF_ERROR(
      Emit(session, *response, [&](std::ostream& out) { out << "status: " << status << '\n'; }));
  if (status != "SERVING") return absl::UnavailableError(absl::StrCat("the server is ", status));
  return absl::OkStatus();
}

// Offline: reads the service's database and checkpoint file directly (no server call), so an
// auditor can check a copy. Exit 1 naming the first bad entry when the chain does not verify.
// With --postgres the entries come from the NCA register's PostgreSQL database, and --database
// names only where that instance keeps its checkpoints and key.
absl::Status AuditVerify(const Input& in, Session& session) {
  const std::string database = in.args.Get("database").value_or("");
  if (database.empty()) return UsageError("--database: required");
  const std::string postgres = in.args.Get("postgres").value_or("");
  const std::string checkpoints =
      in.args.Get("checkpoints").value_or(database + ".audit-checkpoints");
  const std::string key = in.args.Get("key").value_or(database + ".audit-key.pub");
  // --witness: what another organisation's witness (at --target) holds for --service, by default
  // the service whose certificate is --identity.
  std::optional<SignedHead> witnessed;
  if (in.args.Has("witness")) {
    std::string service = in.args.Get("service").value_or("");
    if (service.empty()) {
      absl::StatusOr<std::string> own =
          CertificateFileUri(absl::StrCat(session.options().identity_dir, "/cert.pem"));
      if (!own.ok()) return UsageError("--service: give the service's identity (spiffe://...)");
      service = *own;
    }
    v1::GetAuditHeadRequest request;
    request.set_service(service);
    v1::GetAuditHeadResponse response;
    RETURN_IF_ERROR(session.Call(&v1::AuditWitness::Stub::GetAuditHead, request, &response));
    witnessed =
        SignedHead{response.head().seq(), response.head().hash(), response.head().signature()};
    // The witness checked the signature when it took the head; check it again here, under the
    // key the witness pinned, so a witness's answer is not taken on trust either.
    if (absl::Status s = VerifyHeadSignature(response.head().public_key(), *witnessed); !s.ok()) {
      return absl::DataLossError(
          absl::StrCat("the witnessed head of ", service, " does not verify: ", s.message()));
    }
  }
  const SignedHead* against = witnessed ? &*witnessed : nullptr;
  AuditReport report;
  if (postgres.empty()) {
    ASSIGN_OR_RETURN(report, VerifyAudit(database, checkpoints, key, against));
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::OpenPostgresExisting(postgres));
    ASSIGN_OR_RETURN(report, VerifyAudit(*db, checkpoints, key, against));
  }
  if (report.first_bad != 0) {
    return absl::DataLossError(absl::StrCat("audit log does not verify: first bad entry ",
                                            report.first_bad, ": ", report.problem));
  }
  std::cout << "audit log verifies: " << report.entries << " entries, " << report.checkpoints
            << " signed checkpoints";
  if (report.witnessed_seq > 0) {
    std::cout << ", holds the head witnessed at entry " << report.witnessed_seq;
  }
  std::cout << "\n";
  return absl::OkStatus();
}

// Offline: writes a new data key (32 random bytes, mode 0600) for data_key_files.
absl::Status KeysNew(const Input& in, Session& session) {
  const std::string out = in.args.Get("out").value_or("");
  if (out.empty()) return UsageError("--out: required");
  if (absl::Status written = WriteNewKeyFile(out, Keyring::kKeySize); !written.ok()) {
    return UsageError(written.message());
  }
  ASSIGN_OR_RETURN(auto ring, Keyring::FromFiles({out}));
  std::cout << "wrote " << out << " (data key " << ring->current_key_id() << ")\n";
  return absl::OkStatus();
}

// Every sealed column of every sarloop schema: the tool opens any service's database, and Reseal
// skips the tables a database does not hold.
std::vector<SealedColumn> AllSealedColumns() {
  std::vector<SealedColumn> all;
  for (auto part :
       {MessagingSealedColumns(), ReferralSealedColumns(), linkage::LinkageSealedColumns()}) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// Reseals every cell of the service's database under the first of its data keys.
absl::Status Reencrypt(const v1::ServiceConfig& config, std::shared_ptr<const Keyring> keys,
                       bool dry_run, Session& session) {
  ASSIGN_OR_RETURN(auto db, Database::OpenExisting(config.database(), keys));
  ASSIGN_OR_RETURN(ResealReport report,
                   Reseal(*db, AllSealedColumns(), keys->current_key_id(), dry_run));
  int64_t stale = 0;
  google::protobuf::Struct out;
  auto& fields = *out.mutable_fields();
  fields["database"].set_string_value(config.database());
  fields["current_key_id"].set_string_value(keys->current_key_id());
  auto& by_key = *fields["cells_by_key_before"].mutable_struct_value()->mutable_fields();
  for (const auto& [id, n] : report.before) {
    by_key[id].set_number_value(static_cast<double>(n));
    if (id != keys->current_key_id()) stale += n;
  }
  fields["resealed"].set_number_value(static_cast<double>(report.resealed));
  fields["dry_run"].set_bool_value(dry_run);
  return Emit(session, out, [&](std::ostream& o) {
    o << config.database() << ": sealing key " << keys->current_key_id() << '\n';
    for (const auto& [id, n] : report.before) {
      o << "  " << n << " cell(s) were sealed with " << id
        << (id == keys->current_key_id() ? " (current)" : "") << '\n';
    }
    if (dry_run) {
      o << "  dry run: " << stale << " cell(s) would be resealed\n";
    } else {
      o << "  resealed " << report.resealed << " cell(s)\n";
    }
  });
}

// Against the service's own files: reseals every cell under the first of data_key_files. Safe
// while the service runs (short transactions) and to repeat after an interruption.
absl::Status KeysReencrypt(const Input& in, Session& session) {
  const std::string path = in.args.Get("config").value_or("");
  if (path.empty()) return UsageError("--config: required");
  // The config and key files are the operator's own: a problem with them is a usage error.
  absl::StatusOr<v1::ServiceConfig> config = ReadConfigFile(path);
  if (!config.ok()) return UsageError(config.status().message());
  absl::StatusOr<std::shared_ptr<const Keyring>> keys =
      Keyring::FromFiles({config->data_key_files().begin(), config->data_key_files().end()});
  if (!keys.ok()) return UsageError(keys.status().message());
  return Reencrypt(*config, *keys, in.args.Has("dry-run"), session);
}

// Whether something accepts TCP connections at `listen` (host:port, an IPv6 host in brackets),
// i.e. the service runs; an error when that cannot be told (a host that does not resolve), which a
// restore must take as "may be running": it deletes the live database's journal.
absl::StatusOr<bool> Listening(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("listen '", listen, "' is not host:port"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int failed =
          getaddrinfo(host.c_str(), listen.substr(colon + 1).c_str(), &hints, &found);
      failed != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot tell whether the service listens on ",
                                                      listen, " (", gai_strerror(failed),
                                                      "); refusing to touch its database"));
  }
  // Stopped only when an address refuses the connection: any other failure (no socket of that
  // family, unreachable, a timeout) says nothing about the service.
  bool up = false, refused = false;
  for (addrinfo* a = found; a != nullptr && !up; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    up = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    if (!up && errno == ECONNREFUSED) refused = true;
    ::close(fd);
  }
  freeaddrinfo(found);
  if (!up && !refused) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot tell whether the service listens on ", listen,
                     " (no connection could be tried); refusing to touch its database"));
  }
  return up;
}

absl::StatusOr<v1::ServiceConfig> ConfigArg(const Input& in) {
  const std::string path = in.args.Get("config").value_or("");
  if (path.empty()) return UsageError("--config: required");
  absl::StatusOr<v1::ServiceConfig> config = ReadConfigFile(path);
  if (!config.ok()) return UsageError(config.status().message());
  // The db commands work on a service's SQLite file; PostgreSQL has its own tools.
  if (!config->postgres().empty()) {
    return absl::FailedPreconditionError(
        "this service's register is on PostgreSQL (postgres in its config): back it up, restore "
        "and replicate it with PostgreSQL's tools (pg_basebackup, pg_dump, streaming replicas)");
  }
  return config;
}

// Online: the service keeps running. The signed audit checkpoints are copied first, so they never
// vouch for entries the database copy lacks.
absl::Status DbBackup(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(v1::ServiceConfig config, ConfigArg(in));
  const std::string out = in.args.Get("out").value_or("");
  if (out.empty()) return UsageError("--out: required");
  // Refused before anything is written: a checkpoint copy left beside an older file of that name
  // would vouch for entries it lacks, and block the retry.
  for (const std::string& path : {out, out + ".audit-checkpoints"}) {
    if (std::filesystem::exists(path)) {
      return UsageError(absl::StrCat("--out: ", path, " exists; a backup never overwrites"));
    }
  }
  const std::string checkpoints = config.database() + ".audit-checkpoints";
  if (std::filesystem::exists(checkpoints)) {
    RETURN_IF_ERROR(CopyFilePrivately(checkpoints, out + ".audit-checkpoints"));
  }
  if (absl::Status backed_up = BackupDatabase(config.database(), out); !backed_up.ok()) {
    std::error_code ignored;
    std::filesystem::remove(out + ".audit-checkpoints", ignored);
    return backed_up;
  }
  ASSIGN_OR_RETURN(DatabaseFileInfo info, CheckDatabaseFile(out));
  std::cout << "backed up " << config.database() << " to " << out << " (" << info.pages
            << " pages, schema version " << info.schema_version << ", " << info.audit_entries
            << " audit entries) and its signed audit checkpoints to " << out
            << ".audit-checkpoints\n";
  return absl::OkStatus();
}

// Offline: refuses while the service still listens.
absl::Status DbRestore(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(v1::ServiceConfig config, ConfigArg(in));
  const std::string from = in.args.Get("from").value_or("");
  if (from.empty()) return UsageError("--from: required");
  ASSIGN_OR_RETURN(const bool listening, Listening(config.listen()));
  if (listening) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the service still listens on ", config.listen(), ": stop it before restoring"));
  }
  ASSIGN_OR_RETURN(DatabaseFileInfo info, CheckDatabaseFile(from));
  // The checkpoints first: should the restore stop between the two, the database it leaves (the
  // old one, which holds every entry the backup does) still verifies against them. Checkpoints
  // the backup lacks would vouch for entries the restored log does not hold: a false alarm of
  // tampering at every verify, so the live ones go.
  const std::string checkpoints = config.database() + ".audit-checkpoints";
  if (std::filesystem::exists(from + ".audit-checkpoints")) {
    RETURN_IF_ERROR(RestoreFileBeside(from + ".audit-checkpoints", checkpoints, config.database()));
  } else {
    std::error_code ec;
    std::filesystem::remove(checkpoints, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("remove ", checkpoints, ": ", ec.message()));
  }
  RETURN_IF_ERROR(RestoreDatabase(from, config.database()));
  std::cout << "restored " << config.database() << " from " << from << " (schema version "
            << info.schema_version << ", " << info.audit_entries
            << " audit entries); start the service. Messages its peers delivered after the "
               "backup was taken are not in it.\n";
  return absl::OkStatus();
}

// On the service's host, while it runs: the retention purge the service runs hourly, now. Uses
// the service's retention_years (or --years) and its clock: the system's, moved by the
// configuration's dev_clock_offset_file or --clock-offset-file (development chains only).
absl::Status DbPurge(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(v1::ServiceConfig config, ConfigArg(in));
  int years = config.retention_years();
  if (std::optional<std::string> y = in.args.Get("years")) {
    if (!absl::SimpleAtoi(*y, &years) || years < 1) {
      return UsageError("--years: a whole number of years, at least 1");
    }
  }
  if (years < 1) {
    return UsageError("the configuration sets no retention_years; give --years to purge anyway");
  }
  if (config.kind() == v1::SERVICE_KIND_NCA) {
    return UsageError("the NCA register is not purged (it keeps no SAR content)");
  }
  const std::string offset_file =
      in.args.Get("clock-offset-file").value_or(config.dev_clock_offset_file());
  // A moved clock purges early: only on a development chain.
  if (!offset_file.empty() && !config.development_mode()) {
    return UsageError(
        "--clock-offset-file: a moved clock is for development chains only (development_mode: "
        "true in the service's configuration)");
  }
  if (!offset_file.empty()) {
    std::cerr << "DEVELOPMENT MODE: the purge's clock follows " << offset_file << "\n";
  }
  std::unique_ptr<Clock> clock =
      offset_file.empty() ? NewSystemClock() : NewOffsetFileClock(offset_file);
  ASSIGN_OR_RETURN(auto db, Database::OpenExisting(config.database(), nullptr));
  ASSIGN_OR_RETURN(PurgeReport report, PurgeEnded(*db, clock->Now(), years, "sarloopctl/db-purge"));
  std::cout << config.database() << ": " << report.Summary() << "\n";
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> NcaCommands() {
  std::vector<Command> commands = {
      {.group = "nca",
       .verb = "timeline",
       .operands = {"REF_ID"},
       .summary = "show a register entry and every event, in the register's order",
       .run = Timeline},
      {.group = "nca",
       .verb = "list",
       .synopsis = absl::StrCat("[--org CODE] [--state STATE] ", kPagingSynopsis),
       .summary = "list the register",
       .options = Concat({"org", "state"}, kPagingOptions),
       .run = ListRegister},
      {.group = "nca",
       .verb = "overdue",
       .synopsis = absl::StrCat("[--org CODE] [--as-of DATE] ", kPagingSynopsis),
       .summary = "list referrals past their due date without feedback, most overdue first",
       .options = Concat({"org", "as-of"}, kPagingOptions),
       .run = ListOverdue},
      {.group = "nca",
       .verb = "summary",
       .synopsis = "[--as-of DATE]",
       .summary = "counts per organisation and outcomes by type",
       .options = {"as-of"},
       .run = Summary},
  };
  std::vector<Command> watch = WatchCommands("nca");
  commands.insert(commands.end(), watch.begin(), watch.end());
  return commands;
}

// Offline: the services' own parser (ParseSpiffeId, ParseIdentity) on one SPIFFE ID, so that
// sarloop-pki issues only what a service would accept as the same identity. Exit 2 naming the
// rule it breaks.
absl::Status IdentityCheck(const Input& in, Session&) {
  const std::string& uri = in.operands[0];
  absl::StatusOr<SpiffeId> spiffe = ParseSpiffeId(uri);
  if (!spiffe.ok()) return UsageError(spiffe.status().message());
  absl::StatusOr<Identity> id = ParseIdentity(uri);
  if (id.ok()) {
    std::cout << "sarloop identity: kind " << id->kind << ", organisation "
              << (id->org.empty() ? "-" : id->org) << ", system "
              << (id->system.empty() ? "- (the service itself)" : id->system) << "\n";
  } else {
    std::cout << "canonical SPIFFE ID, not a sarloop role: " << id.status().message() << "\n";
  }
  return absl::OkStatus();
}

std::vector<Command> OversightCommands() {
  return {
      {.group = "oversight",
       .verb = "escalations",
       .synopsis = kPagingSynopsis,
       .summary = "what the feedback clock escalated to you (and regulation 19 reports), oldest "
                  "first, with each referral as it stands now",
       .options = kPagingOptions,
       .run = OversightEscalations},
      {.group = "oversight",
       .verb = "overdue",
       .synopsis = absl::StrCat("[--as-of DATE] ", kPagingSynopsis),
       .summary = "your organisation's overdue referrals, most overdue first",
       .options = Concat({"as-of"}, kPagingOptions),
       .run = OversightOverdue},
  };
}

std::vector<Command> OpsCommands() {
  return {
      {.group = "identity",
       .verb = "check",
       .operands = {"SPIFFE_ID"},
       .summary = "whether a SPIFFE ID is in canonical form, and the sarloop role it names "
                  "(offline; exit 2 naming the rule it breaks)",
       .run = IdentityCheck},
      {.group = "ops",
       .verb = "backlog",
       .summary = "the outbox backlog of this service per destination",
       .run = Backlog},
      {.group = "audit",
       .verb = "verify",
       .synopsis = "--database FILE [--postgres CONNINFO] [--checkpoints FILE] [--key PUBKEY] "
                   "[--witness [--service URI]]",
       .summary = "verify a service's audit chain and signed checkpoints (read-only); with "
                  "--witness, also against the head the witness at --target holds",
       .options = {"database", "postgres", "checkpoints", "key", "witness", "service"},
       .run = AuditVerify},
      {.group = "keys",
       .verb = "new",
       .synopsis = "--out FILE",
       .summary = "write a new data key (32 random bytes, mode 0600) for data_key_files",
       .options = {"out"},
       .run = KeysNew},
      {.group = "keys",
       .verb = "reencrypt",
       .synopsis = "--config SERVICE_CONFIG [--dry-run]",
       .summary = "reseal a service's stored cells under its first data key (after rotation)",
       .options = {"config", "dry-run"},
       .run = KeysReencrypt},
      {.group = "db",
       .verb = "backup",
       .synopsis = "--config SERVICE_CONFIG --out FILE",
       .summary = "copy a service's database while it runs (SQLite online backup), with its "
                  "audit checkpoints",
       .options = {"config", "out"},
       .run = DbBackup},
      {.group = "db",
       .verb = "restore",
       .synopsis = "--config SERVICE_CONFIG --from FILE",
       .summary = "put a checked backup in place of a stopped service's database",
       .options = {"config", "from"},
       .run = DbRestore},
      {.group = "db",
       .verb = "purge",
       .synopsis = "--config SERVICE_CONFIG [--years N] [--clock-offset-file FILE]",
       .summary = "delete referrals that ended over retention_years (or N) years ago, now",
       .options = {"config", "years", "clock-offset-file"},
       .run = DbPurge},
      {.group = "health",
       .summary = "grpc.health.v1 check of the server; exit 1 unless SERVING",
       .run = Health},
  };
}

}  // namespace sarloop::ctl
