#include "common/server/server.h"

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <malloc.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/crypto.h"
#include "common/base/ids.h"
#include "common/base/log_fields.h"
#include "common/base/status.h"
#include "common/messaging/watch.h"
#include "common/rpc/health.h"
#include "common/rpc/reflection.h"
#include "common/rpc/request_checks.h"
#include "common/rpc/rpc.h"
#include "common/rpc/serving.h"
#include "common/security/audit.h"
#include "common/security/authz.h"
#include "common/security/identity.h"
#include "common/security/tls.h"
#include "common/server/config.h"
#include "common/server/https_server.h"
#include "common/server/repeating.h"
#include "common/server/witness.h"
#include "sarloop/v1/delivery.grpc.pb.h"

namespace sarloop {
namespace {

// %j: the message as the inside of a JSON string, so every JSON line parses whatever the message
// holds (quotes from a status, a backslash in a path, a control character).
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) {
    std::string out;
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), out);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

// %k: the line's structured fields (common/base/log_fields.h) as more members of the JSON object.
class JsonLogFields : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) {
    std::string out;
    AppendLogFieldsJson(out);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonLogFields>();
  }
};

void SetUpLogging(const v1::ServiceConfig& config) {
  auto logger = spdlog::stderr_logger_mt(absl::StrCat("sarloop-", config.code()));
  if (config.log_json()) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('j');
    formatter->add_flag<JsonLogFields>('k').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","service":"%n","msg":"%j"%k})");
    logger->set_formatter(std::move(formatter));
  } else {
    // UTC, and marked so: logs from machines in different zones line up.
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %n %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(config.log_level()));
  spdlog::set_default_logger(logger);
  // gRPC's own messages (a peer's TLS handshake timing out, say) go through the same logger, so
  // every line has the service's format (JSON with log_json) rather than gRPC's raw stderr lines.
  gpr_set_log_function([](gpr_log_func_args* args) {
    const spdlog::level::level_enum level =
        args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::warn
        : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                  : spdlog::level::debug;
    spdlog::log(level, "grpc {}:{}: {}", args->file, args->line, args->message);
  });
}

// The health service name under which the outbox reports stuck messages.
constexpr char kOutboxHealth[] = "sarloop.outbox";

class OpsService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) { raw.Unary("GetBacklog", this, &OpsService::GetBacklog); }
  static constexpr char kServiceName[] = "sarloop.v1.Ops";

  OpsService(Edge edge, Database& db, Clock& clock) : edge_(edge), db_(db), clock_(clock) {}

  void GetBacklog(UnaryCall* ctx, const v1::GetBacklogRequest* req,
                  v1::GetBacklogResponse* response) {
    return Serve(
        ctx, edge_, "/sarloop.v1.Ops/GetBacklog", *req, [=, this](const Call&) -> absl::Status {
          ASSIGN_OR_RETURN(auto backlog, ReadBacklog(db_));
          const absl::Time now = clock_.Now();
          for (const Backlog& b : backlog) {
            auto* d = response->add_destinations();
            d->set_destination(b.destination);
            d->set_pending(b.pending);
            d->set_rejected(b.rejected);
            d->set_delivered(b.delivered);
            if (b.pending > 0) {
              d->set_oldest_pending_age_seconds(absl::ToInt64Seconds(now - b.oldest_pending));
            }
            d->set_last_error(b.last_error);
          }
          const CommitStats stats = db_.Stats();
          response->mutable_storage()->set_commits(stats.commits);
          response->mutable_storage()->set_transactions(stats.transactions);
          return absl::OkStatus();
        });
  }

 private:
  const Edge edge_;
  Database& db_;
  Clock& clock_;
};

// What --check-config checks beyond the configuration's own fields: everything the process would
// read at start (reference data, certificates, keys, the policy) and the organisation codes it
// names, without opening the database or listening. Returns a summary for the operator.
absl::StatusOr<std::string> CheckConfig(const v1::ServiceConfig& config) {
  ReferenceData loaded;
  const ReferenceData* reference = &ReferenceData::BuiltIn();
  if (!config.reference_dir().empty()) {
    absl::StatusOr<ReferenceData> r = ReferenceData::Load(config.reference_dir());
    if (!r.ok()) return FieldError("reference_dir", r.status().message());
    loaded = *std::move(r);
    reference = &loaded;
  }
  std::set<std::string> units;
  for (const Region& region : reference->regions()) units.insert(region.rocu);
  if (config.kind() == v1::SERVICE_KIND_FORCE && !reference->FindOrganisation(config.code())) {
    return FieldError("code", absl::StrCat("unknown organisation '", config.code(),
                                           "' (not in the reference data)"));
  }
  for (int i = 0; i < config.served_forces_size(); ++i) {
    if (!reference->FindOrganisation(config.served_forces(i))) {
      return FieldError(absl::StrCat("served_forces[", i, "]"),
                        absl::StrCat("unknown organisation '", config.served_forces(i), "'"));
    }
  }
  std::string summary =
      absl::StrCat("  kind ", v1::ServiceKind_Name(config.kind()), ", code ", config.code(),
                   ", listening on ", config.listen(), "\n  database ",
                   config.postgres().empty() ? config.database() : "on PostgreSQL", "\n");
  for (int i = 0; i < config.peers_size(); ++i) {
    const std::string& code = config.peers(i).code();
    std::string what = "unit";
    if (code == "UKFIU" || code == "NCA") {
      what = "national";
    } else if (reference->FindOrganisation(code)) {
      what = "organisation";
    } else if (units.count(code) > 0) {
      what = "regional unit";
    } else if (code != config.handover_unit() && code != config.code() &&
               !absl::c_linear_search(config.other_handover_units(), code)) {
      what = "unit not in the reference data: check the code";
    }
    absl::StrAppend(&summary, "  peer ", code, " (", what, ") at ", config.peers(i).address(),
                    "\n");
  }
  RETURN_IF_ERROR(CheckRequiredPeers(config));
  if (!config.handover_unit().empty() && !reference->IsUnit(config.handover_unit())) {
    return FieldError("handover_unit",
                      absl::StrCat("unknown unit '", config.handover_unit(),
                                   "' (not a regional or national unit in the reference data)"));
  }
  for (int i = 0; i < config.other_handover_units_size(); ++i) {
    if (!reference->IsUnit(config.other_handover_units(i))) {
      return FieldError(absl::StrCat("other_handover_units[", i, "]"),
                        absl::StrCat("unknown unit '", config.other_handover_units(i),
                                     "' (not a regional or national unit in the reference data)"));
    }
  }
  if (!config.other_handover_units().empty() && config.handover_unit().empty()) {
    return FieldError("other_handover_units", "needs handover_unit (the default unit) as well");
  }
  if (config.hand_over_on_receipt() && config.handover_unit().empty()) {
    return FieldError("hand_over_on_receipt", "needs handover_unit (the unit that takes them)");
  }
  if (!config.decline_reviewer().empty()) {
    absl::StatusOr<Identity> reviewer = ParseIdentity(config.decline_reviewer());
    if (!reviewer.ok() || reviewer->kind != "oversight") {
      return FieldError("decline_reviewer",
                        absl::StrCat("'", config.decline_reviewer(),
                                     "' is not an oversight identity "
                                     "(spiffe://sarloop/oversight/<ORG>/<office>)"));
    }
  }
  // These two name the field and the file themselves.
  if (absl::Status s = MakeServerCredentials(config.tls()).status(); !s.ok()) return s;
  // The certificate must be this service's own: another organisation's would have its peers
  // refuse every delivery, and this service answer as someone else.
  ASSIGN_OR_RETURN(const std::string uri, CertificateFileUri(config.tls().cert_file()));
  absl::StatusOr<Identity> own = ParseIdentity(uri);
  if (!own.ok()) return FieldError("tls.cert_file", own.status().message());
  std::string kind = absl::AsciiStrToLower(v1::ServiceKind_Name(config.kind()).substr(13));
  if (!own->IsService() || own->kind != kind || own->org != config.code()) {
    return FieldError("tls.cert_file",
                      absl::StrCat("is the certificate of ", uri, ", not of this service (", kind,
                                   " ", config.code(), ")"));
  }
  if (absl::Status s =
          Keyring::FromFiles({config.data_key_files().begin(), config.data_key_files().end()})
              .status();
      !s.ok()) {
    return s;
  }
  if (!config.subject_key_file().empty()) {
    if (absl::Status s = ReadKeyFile(config.subject_key_file(), 32, 1024).status(); !s.ok()) {
      return FieldError("subject_key_file", s.message());
    }
  }
  const PolicyScope scope = ScopeOf(config);
  if (absl::Status s =
          AuthzGate::Create(config.authz_policy_file(), scope,
                            [](const std::string&, const std::string&, const grpc::Status&) {})
              .status();
      !s.ok()) {
    return FieldError("authz_policy_file", s.message());
  }
  const std::filesystem::path dir = std::filesystem::path(config.database()).parent_path().empty()
                                        ? std::filesystem::path(".")
                                        : std::filesystem::path(config.database()).parent_path();
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return FieldError("database", absl::StrCat("directory '", dir.string(),
                                               "' does not exist or is not writable"));
  }
  absl::StrAppend(&summary, "  certificates, data keys",
                  config.subject_key_file().empty() ? "" : ", subject key",
                  " and the authorisation policy load\n");
  return summary;
}

// GET /metrics for a monitoring identity: what Metrics recorded, the outbox per destination, calls
// refused by admission, and the service's own gauges.
HttpResponse ServeMetrics(const HttpRequest& request, const Metrics& metrics, Database& db,
                          Clock& clock, const Admission& admission, const WatchHub& watch,
                          const std::function<absl::Status(MetricsText&)>& service_gauges) {
  HttpResponse response;
  response.content_type = "text/plain; charset=utf-8";
  absl::StatusOr<Identity> id = ParseIdentity(request.peer_uri);
  if (request.peer_uri.empty() || !id.ok()) {
    response.status = 401;
    response.body = "a client certificate with a monitoring identity is required\n";
    return response;
  }
  if (id->kind != "monitor") {
    response.status = 403;
    response.body = absl::StrCat(request.peer_uri, " is not a monitoring identity\n");
    return response;
  }
  if (request.method != "GET" || request.path != "/metrics") {
    response.status = request.method != "GET" ? 405 : 404;
    response.body = "GET /metrics\n";
    return response;
  }
  MetricsText out;
  metrics.Write(out);
  out.Family("sarloop_calls_shed_total", "counter",
             "Calls refused at once past max_inflight_calls (RESOURCE_EXHAUSTED).");
  out.Sample("sarloop_calls_shed_total", "", static_cast<double>(admission.refused()));
  watch.WriteMetrics(out);
  absl::StatusOr<std::vector<Backlog>> backlog = ReadBacklog(db);
  if (backlog.ok()) {
    const absl::Time now = clock.Now();
    out.Family("sarloop_outbox_pending", "gauge", "Messages waiting to be delivered.");
    for (const Backlog& b : *backlog) {
      out.Sample("sarloop_outbox_pending", Label("destination", b.destination),
                 static_cast<double>(b.pending));
    }
    out.Family("sarloop_outbox_oldest_pending_age_seconds", "gauge",
               "Age of the oldest message waiting for a destination; 0 when none waits.");
    for (const Backlog& b : *backlog) {
      out.Sample("sarloop_outbox_oldest_pending_age_seconds", Label("destination", b.destination),
                 b.pending > 0 ? absl::ToDoubleSeconds(now - b.oldest_pending) : 0);
    }
    out.Family("sarloop_outbox_rejected", "gauge",
               "Messages refused permanently by their receiver (kept for inspection).");
    for (const Backlog& b : *backlog) {
      out.Sample("sarloop_outbox_rejected", Label("destination", b.destination),
                 static_cast<double>(b.rejected));
    }
  }
  absl::Status gauges = service_gauges ? service_gauges(out) : absl::OkStatus();
  out.Family("sarloop_metrics_scrape_errors", "gauge",
             "1 when a gauge above could not be read from storage this time.");
  out.Sample("sarloop_metrics_scrape_errors", "", backlog.ok() && gauges.ok() ? 0 : 1);
  response.body = out.text();
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return response;
}

// A refusal never reaches a handler: the gate records it in the audit log itself.
RefusalSink AuditRefusals(Database* db, Clock* clock) {
  // Each written refusal is a commit on the writer; a flood of them is counted instead.
  auto budget = std::make_shared<RefusalBudget>(/*per_second=*/10, /*burst=*/50);
  return [db, clock, budget](const std::string& identity, const std::string& method,
                             const grpc::Status& refusal) {
    const absl::Time now = clock->Now();
    int64_t unwritten = 0;
    if (!budget->Take(now, &unwritten)) return;
    AuditRecorder recorder(db, AuditEntry{now, identity, "", method, "", 0, ""});
    // The refusal stands either way; Finish logs an entry it could not make durable, and the
    // budget counts it again so the next row written still says it happened.
    const absl::Status written = recorder.Finish(WithUnwritten(
        absl::Status(static_cast<absl::StatusCode>(refusal.error_code()), refusal.error_message()),
        unwritten));
    if (!written.ok()) budget->Unwritten(unwritten);
  };
}

// The listener's limits: message size, connection age, no shared port, memory, streams.
void ConfigureListener(const v1::ServiceConfig& config, grpc::ResourceQuota& quota,
                       grpc::ServerBuilder& builder) {
  // Hostile input: no message above 4 MiB (a batch of 500 envelopes stays well below).
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  // TLS checks a certificate only at the handshake: connections are recycled after
  // connection_max_age_seconds so a revoked or rotated certificate stops being honoured.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             config.connection_max_age_seconds() * 1000);
  // Calls in flight get a grace as long as the age, at most 30 s, to finish.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             std::min(config.connection_max_age_seconds(), 30) * 1000);
  // A port another process holds is an error, not a share: gRPC's default SO_REUSEPORT would let
  // a second service (or a second chain) bind the same port and take half of its connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Overload: bounded memory for calls and connections, and bounded streams per connection;
  // Admission (in Serve) bounds the calls being handled.
  quota.Resize(static_cast<size_t>(config.grpc_memory_mib()) * 1024 * 1024);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 100);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, ProbesBandwidthDelay(config.kind()) ? 1 : 0);
  SetServerKeepalive(builder);
}

}  // namespace

// Everything a running service holds, in the order it is set up: members are destroyed in the
// reverse order, so each outlives what was built on it. The database keeps its commit observer,
// which holds the watch hub, until it is destroyed, after every later member.
struct RunningService::State {
  explicit State(v1::ServiceConfig c) : config(std::move(c)) {}

  const v1::ServiceConfig config;
  // Before the database: its commit observer records here until the very end.
  Metrics metrics;
  std::unique_ptr<Clock> clock;
  std::shared_ptr<const Keyring> keys;
  std::unique_ptr<Database> db;
  std::optional<ReferenceData> loaded;
  const ReferenceData* reference = nullptr;
  std::shared_ptr<grpc::ServerCredentials> server_creds;
  std::shared_ptr<AuthzGate> gate;
  std::shared_ptr<grpc::ChannelCredentials> channel_creds;
  std::vector<v1::Peer> peers;
  grpc::ServerBuilder builder;
  std::unique_ptr<CallQueue> calls;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<DeliveryWorker> worker;
  std::unique_ptr<AuditCheckpointer> checkpointer;
  std::unique_ptr<Admission> admission;
  std::unique_ptr<Executor> bodies;
  std::shared_ptr<WatchHub> watch;
  std::unique_ptr<ServiceContext> context;
  ServiceParts parts;
  Health health;
  // Every service, by full name: what reflection lists and health reports one by one.
  std::vector<std::string> service_names;
  std::unique_ptr<WitnessReporter> witness_reporter;
  grpc::ResourceQuota quota{"sarloop"};
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<HttpsServer> metrics_server;
  std::vector<std::string> destinations;
  // The timed tasks, on a loop of their own thread; Shutdown runs off that thread.
  boost::asio::io_context io;
  std::vector<std::unique_ptr<Repeating>> tasks;
  Repeating* checkpoints = nullptr;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
      boost::asio::make_work_guard(io);
  std::thread io_thread;
  bool stopped = false;

  absl::Status OpenStorage(std::vector<Migration> migrations);
  absl::Status BuildService(const ServiceBuilder& build);
  absl::Status Listen();
  void StartTasks();
  Repeating& Every(std::chrono::nanoseconds period, std::function<void()> tick) {
    return *tasks.emplace_back(std::make_unique<Repeating>(io, period, std::move(tick)));
  }
};

// The clock, the data keys, the database and the reference data.
absl::Status RunningService::State::OpenStorage(std::vector<Migration> migrations) {
  if (!config.dev_clock_offset_file().empty()) {
    spdlog::warn("DEVELOPMENT MODE: the clock follows {}; not for production",
                 config.dev_clock_offset_file());
  }
  clock = config.dev_clock_offset_file().empty()
              ? NewSystemClock()
              : NewOffsetFileClock(config.dev_clock_offset_file());
  ASSIGN_OR_RETURN(
      keys, Keyring::FromFiles({config.data_key_files().begin(), config.data_key_files().end()}));
  ASSIGN_OR_RETURN(db, config.postgres().empty()
                           ? Database::Open(config.database(), migrations, keys, /*readers=*/2)
                           : Database::OpenPostgres(config.postgres(), migrations, keys));
  ASSIGN_OR_RETURN(int64_t sync, db->SynchronousMode());
  spdlog::info("database {} open (synchronous={}, sealing with data key {} of {})",
               config.postgres().empty() ? config.database() : "on PostgreSQL", sync,
               keys->current_key_id(), keys->key_ids().size());
  reference = &ReferenceData::BuiltIn();
  if (!config.reference_dir().empty()) {
    ASSIGN_OR_RETURN(loaded, ReferenceData::Load(config.reference_dir()));
    reference = &*loaded;
  }
  return absl::OkStatus();
}

// TLS and the gate, the outbox, the audit checkpoints, the serving machinery, and the service's
// own parts from `build`.
absl::Status RunningService::State::BuildService(const ServiceBuilder& build) {
  ASSIGN_OR_RETURN(server_creds, MakeServerCredentials(config.tls()));
  ASSIGN_OR_RETURN(gate, AuthzGate::Create(config.authz_policy_file(), ScopeOf(config),
                                           AuditRefusals(db.get(), clock.get())));
  // Every call on this server passes the gate before any handler runs.
  server_creds->SetAuthMetadataProcessor(gate);
  ASSIGN_OR_RETURN(channel_creds, MakeChannelCredentials(config.tls()));
  peers.assign(config.peers().begin(), config.peers().end());
  // Every method is served from this queue, by its one thread (common/rpc/serving.h), and the
  // deliveries' calls are started on it too: one thread of the process polls.
  calls = std::make_unique<CallQueue>(builder);
  transport = NewGrpcTransport(peers, channel_creds,
                               absl::Milliseconds(config.delivery().deadline_ms()), calls->queue());
  DeliveryOptions delivery = DeliveryOptionsFrom(config.delivery());
  delivery.on_failure = [this](const std::string& destination) {
    metrics.ObserveDeliveryFailure(destination);
  };
  worker = NewDeliveryWorker(*db, *transport, *clock, delivery);

  ASSIGN_OR_RETURN(checkpointer, AuditCheckpointer::Create(*db, config.audit_key_file(),
                                                           config.database() + ".audit-checkpoints",
                                                           config.database() + ".audit-key.pub"));
  // Whoever holds a copy of the data directory must not hold what signs its log.
  if (std::filesystem::path(config.audit_key_file()).parent_path() ==
      std::filesystem::path(config.database()).parent_path()) {
    spdlog::warn(
        "the audit signing key {} sits in the data directory: a copy of it could re-sign "
        "a rewritten log; move it apart (audit_key_file)",
        config.audit_key_file());
  }
  admission = std::make_unique<Admission>(config.max_inflight_calls());
  // A thread for every call admitted, so that calls waiting on a commit never hold up gRPC.
  bodies = NewThreadPool(config.max_inflight_calls());
  if (config.serial_commits()) {
    spdlog::warn("serial_commits: group commit is off (for measurement only)");
    db->SetMaxBatch(1);
  }
  // A commit that stored an event wakes the watch streams; they read where they are woken while
  // few are open, on the call threads when many are (common/messaging/watch.h).
  watch = std::make_shared<WatchHub>(bodies.get());
  db->SetCommitObserver([this, hub = watch](int64_t transactions, absl::Duration took) {
    metrics.ObserveCommit(transactions, took);
    hub->OnCommit();
  });
  context = std::make_unique<ServiceContext>(ServiceContext{
      config, *db, *clock, *worker, *reference,
      Edge{db.get(), clock.get(), admission.get(), config.serial_commits() ? nullptr : bodies.get(),
           &metrics, config.serial_commits() ? nullptr : db.get()},
      *watch, [gate = gate](const std::string& identity, const std::string& method) {
        return gate->Allows(identity, method);
      }});
  ASSIGN_OR_RETURN(parts, build(*context));
  if (config.retention_years() > 0 && !parts.purge) {
    return FieldError("retention_years", "is set, but this service has no retention job");
  }
  parts.Serve(std::make_shared<OpsService>(context->edge, *db, *clock));
  // The NCA witnesses every service's audit heads, UKFIU the NCA's.
  if (config.kind() == v1::SERVICE_KIND_NCA || config.kind() == v1::SERVICE_KIND_UKFIU) {
    parts.Serve(std::make_shared<WitnessService>(context->edge, *db, *clock));
  }
  parts.services.push_back(health.Service());
  for (const auto& s : parts.services) {
    // A method added to a .proto and not to its service would otherwise answer UNIMPLEMENTED.
    if (absl::StartsWith(s->full_name(), "sarloop.")) RETURN_IF_ERROR(s->Check());
    service_names.push_back(s->full_name());
  }
  service_names.push_back("grpc.reflection.v1.ServerReflection");
  service_names.push_back("grpc.reflection.v1alpha.ServerReflection");
  for (auto& s : ReflectionServices(service_names)) parts.services.push_back(std::move(s));
  const std::string witness = WitnessOf(config.kind());
  if (const v1::Peer* peer = FindPeer(config, witness)) {
    ASSIGN_OR_RETURN(const std::string own_uri, CertificateFileUri(config.tls().cert_file()));
    witness_reporter = std::make_unique<WitnessReporter>(PeerChannel(*peer, channel_creds), witness,
                                                         own_uri, *db, *clock);
  } else {
    spdlog::warn("audit heads are not witnessed: no peer {} in the configuration", witness);
  }
  return absl::OkStatus();
}

// The listener, the serving thread (which also runs the writer), health, metrics and the outbox.
absl::Status RunningService::State::Listen() {
  builder.AddListeningPort(config.listen(), server_creds, &port);
  ConfigureListener(config, quota, builder);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> counters;
  counters.push_back(admission->InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(counters));
  std::vector<RawService*> served;
  for (auto& s : parts.services) {
    builder.RegisterService(s.get());
    served.push_back(s.get());
  }
  server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen()));
  }
  // The writer's loop runs on the serving thread: a write call is taken, run, committed and
  // answered there, where it used to wake a writer thread and be handed back.
  if (absl::Status hosted = db->HostWriter([this] { calls->Wake(); }); hosted.ok()) {
    calls->Host([this] { return db->RunWriter(); }, [this] { db->ReleaseWriter(); });
  } else {
    spdlog::warn("the writer keeps a thread of its own: {}", hosted.ToString());
  }
  calls->Start(served);
  // Health answers for the server as a whole ("") and for each service by name, as generic
  // tools ask (grpc_health_probe -service sarloop.v1.Force).
  // Each name is set now, not first at the storage probe a second later: until a name is set,
  // health answers NOT_FOUND for it.
  for (const std::string& name : service_names) health.SetServingStatus(name, true);
  health.SetServingStatus("", true);
  if (!config.metrics_listen().empty()) {
    ASSIGN_OR_RETURN(metrics_server, HttpsServer::Start(config.metrics_listen(), config.tls(),
                                                        [this](const HttpRequest& request) {
                                                          return ServeMetrics(
                                                              request, metrics, *db, *clock,
                                                              *admission, *watch, parts.metrics);
                                                        }));
    spdlog::info("metrics on https://{}/metrics (monitoring identities only)",
                 config.metrics_listen());
  }
  for (const v1::Peer& p : peers) destinations.push_back(p.code());
  worker->Start(destinations);
  spdlog::info("{} serving on {} (mTLS, port {}), delivering to {} peers", config.code(),
               config.listen(), port, destinations.size());
  return absl::OkStatus();
}

// The service's periodic task, audit checkpoints, health and retention, on the loop's thread.
void RunningService::State::StartTasks() {
  if (parts.periodic && parts.period > absl::ZeroDuration()) {
    Every(absl::ToChronoNanoseconds(parts.period), parts.periodic).Start();
  }
  // Signed audit checkpoints every two seconds while the log grows, and one at the end.
  checkpoints = &Every(std::chrono::seconds(2), [this] {
    absl::Status s = checkpointer->Checkpoint();
    if (!s.ok()) spdlog::error("audit checkpoint: {}", s.ToString());
    if (witness_reporter) {
      witness_reporter->Report(checkpointer->LastHead(), checkpointer->PublicKeyPem());
    }
  });
  checkpoints->Start();
  // Health, every second: NOT_SERVING while storage refuses writes (until a probe write succeeds
  // again); the "sarloop.outbox" service NOT_SERVING while a message has waited longer than
  // delivery.stuck_after_seconds.
  health.SetServingStatus(kOutboxHealth, true);
  Every(std::chrono::seconds(1), [this] {
    const bool was_failing = db->WritesFailing();
    const bool storage_ok = db->Probe().ok();
    if (was_failing && storage_ok) spdlog::info("storage: writes succeed again");
    health.SetServingStatus("", storage_ok);
    for (const std::string& name : service_names) health.SetServingStatus(name, storage_ok);
    const absl::Time limit = clock->Now() - absl::Seconds(config.delivery().stuck_after_seconds());
    absl::StatusOr<absl::Time> oldest = OldestPending(*db, destinations);
    health.SetServingStatus(kOutboxHealth, !(oldest.ok() && *oldest < limit));
  }).Start();
  // Retention: a minute after start and every hour after that. An hour after start, a service
  // restarted hourly (a crash loop, frequent deployments) would never purge.
  if (config.retention_years() > 0) {
    Every(std::chrono::hours(1), [this] {
      absl::StatusOr<std::string> purged = parts.purge(clock->Now(), config.retention_years());
      if (!purged.ok()) {
        spdlog::error("retention: {}", purged.status().ToString());
      } else if (!purged->empty()) {
        spdlog::info("retention: {}", *purged);
      }
    }).Start(std::chrono::minutes(1));
  }
}

absl::StatusOr<std::unique_ptr<RunningService>> RunningService::Start(
    const v1::ServiceConfig& config, std::vector<Migration> migrations,
    const ServiceBuilder& build) {
  auto state = std::make_unique<State>(config);
  RETURN_IF_ERROR(state->OpenStorage(std::move(migrations)));
  RETURN_IF_ERROR(state->BuildService(build));
  RETURN_IF_ERROR(state->Listen());
  // The tasks are armed on the loop's thread, where they run and are stopped.
  std::promise<void> armed;
  boost::asio::post(state->io, [&state = *state, &armed] {
    state.StartTasks();
    armed.set_value();
  });
  state->io_thread = std::thread([&io = state->io] { io.run(); });
  armed.get_future().wait();
  return std::unique_ptr<RunningService>(new RunningService(std::move(state)));
}

RunningService::RunningService(std::unique_ptr<State> state) : state_(std::move(state)) {}

RunningService::~RunningService() { (void)Stop(absl::ZeroDuration()); }

int RunningService::port() const { return state_->port; }

absl::Status RunningService::Stop(absl::Duration drain) {
  State& s = *state_;
  if (s.stopped) return absl::OkStatus();
  s.stopped = true;
  // Draining: still serving, but saying NOT_SERVING so balancers and peers go elsewhere. On the
  // loop's thread, so that no task sets a status after this. Audit checkpoints go on until the
  // drain ends.
  std::promise<void> draining;
  boost::asio::post(s.io, [&s, &draining] {
    s.health.SetServingStatus(false);
    for (auto& task : s.tasks) {
      if (task.get() != s.checkpoints) task->Stop();
    }
    draining.set_value();
  });
  draining.get_future().wait();
  absl::SleepFor(drain);
  boost::asio::post(s.io, [&s] {
    s.checkpoints->Stop();
    s.io.stop();
  });
  s.io_thread.join();

  // In-flight calls get a few seconds to finish; then they are cancelled (nothing is half-done:
  // each call's effect is one transaction).
  s.metrics_server.reset();
  // Watches would hold the shutdown for its whole grace: they end now, and resume elsewhere.
  s.watch->Stop();
  s.health.Stop();
  s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  s.worker->Stop();
  s.server->Wait();
  s.bodies->Join();
  // What a service runs beside gRPC (the dashboard) goes too: a page shown after the last
  // checkpoint would be audited past the head the witness last saw.
  s.parts.resources.clear();
  // The queue goes last: a call answered after it has shut down would abort the process. Every
  // body has run; one more write job is answered after every job queued before it.
  std::promise<void> drained;
  s.db->Submit([&drained]() -> Database::Completion {
    return [&drained](const absl::Status&) { drained.set_value(); };
  });
  drained.get_future().wait();
  s.calls->Stop();
  absl::Status status = s.checkpointer->Checkpoint();
  if (!status.ok()) {
    spdlog::error("final audit checkpoint: {}", status.ToString());
    return status;
  }
  const CommitStats stats = s.db->Stats();
  spdlog::info("stopped cleanly; {} transactions in {} commits", stats.transactions, stats.commits);
  return absl::OkStatus();
}

bool ProbesBandwidthDelay(v1::ServiceKind kind) { return kind == v1::SERVICE_KIND_LINKAGE; }

std::vector<Migration> ServiceMigrations(std::span<const Migration> migrations,
                                         std::span<const Migration> after_audit) {
  std::vector<Migration> all{kMessagingMigration};
  all.insert(all.end(), migrations.begin(), migrations.end());
  all.push_back(kAuditMigration);
  all.insert(all.end(), after_audit.begin(), after_audit.end());
  return all;
}

// Process-wide settings measured with perf under sarloop-bench. The malloc settings are glibc's,
// for a build with SARLOOP_TCMALLOC off (tcmalloc, linked by default, takes them and ignores them).
// Each call allocates and frees a burst of buffers on a different thread: glibc then hands the top
// of each arena back to the kernel (madvise, brk) and faults it back in on the next call, a few
// per cent of a service's CPU; keeping up to 64 MiB spare stops that (issue 6). glibc's fast bins
// (issue 24): gRPC and protobuf free many small blocks, which wait in the fast bins, and every
// request past the small sizes (SQLite's page-sized buffer at each B-tree split) first consolidates
// all of them, which took most of the time SQLite spent in malloc. Without fast bins, small blocks
// still come from each thread's cache and are merged as they are freed. Debian's abseil is built
// with the Mutex deadlock detector on, which records every lock gRPC takes in a graph: worth it in
// abseil's own tests, not in a service.
void TuneServiceProcess() {
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  mallopt(M_MXFAST, 0);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

std::string ServiceUsage(std::string_view program, std::string_view what) {
  return absl::StrCat(
      "usage: ", absl::string_view(program.data(), program.size()), " --config=FILE [flag]...\n\n",
      absl::string_view(what.data(), what.size()),
      "\n\nflags (each overrides the configuration file's field of the same name):\n"
      "  --config=FILE                the service configuration (text proto, or .json)\n"
      "  --listen=HOST:PORT           the mTLS gRPC listener\n"
      "  --database=FILE              the SQLite database file\n"
      "  --log_level=LEVEL            trace, debug, info, warn, error or critical\n"
      "  --log_json                   one JSON object per log line\n"
      "  --dev_clock_offset_file=FILE a development clock offset (never in production)\n"
      "  --check-config               check the configuration, print a summary and exit\n"
      "  --version                    the version and git revision\n"
      "  --help, -h                   this text\n");
}

int RunService(int argc, char** argv, v1::ServiceKind kind, std::span<const Migration> migrations,
               const ServiceBuilder& build, std::span<const Migration> after_audit) {
  TuneServiceProcess();
  std::vector<std::string> args(argv + 1, argv + argc);
  const auto check = std::find(args.begin(), args.end(), "--check-config");
  const bool check_only = check != args.end();
  if (check_only) args.erase(check);
  absl::StatusOr<v1::ServiceConfig> config = LoadConfig(args, kind);
  if (!config.ok()) {
    std::cerr << argv[0] << ": " << config.status().message() << "\n";
    return 2;
  }
  // The same checks at every start, so a mistake stops the service at once with the field named
  // (exit 2: systemd does not restart it) rather than surfacing later.
  absl::StatusOr<std::string> summary = CheckConfig(*config);
  if (!summary.ok()) {
    std::cerr << argv[0] << ": " << summary.status().message() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << argv[0] << ": configuration OK\n" << *summary;
    return 0;
  }
  SetUpLogging(*config);
  // SIGTERM and SIGINT are taken by this thread alone, with sigwait, and only once the service
  // runs: blocked here, before any thread starts (every thread inherits the mask), one that
  // comes during the migrations or the start waits, and is taken as soon as the service runs,
  // instead of killing it half-started without a drain or a last checkpoint.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  absl::StatusOr<std::unique_ptr<RunningService>> running =
      RunningService::Start(*config, ServiceMigrations(migrations, after_audit), build);
  if (!running.ok()) {
    spdlog::critical("cannot run: {}", running.status().ToString());
    return running.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  int signo = 0;
  while (sigwait(&stop_signals, &signo) != 0) {
  }
  spdlog::info("signal {}: draining for {} ms, then stopping", signo, config->shutdown_drain_ms());
  // A second signal while it stops: the operator wants it gone now. Nothing acknowledged is lost
  // (every answer followed its commit); the drain and the last checkpoint are skipped.
  std::thread([stop_signals] {
    int again = 0;
    while (sigwait(&stop_signals, &again) != 0) {
    }
    spdlog::warn("signal {} while stopping: exiting now", again);
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }).detach();
  const absl::Status stopped = (*running)->Stop(absl::Milliseconds(config->shutdown_drain_ms()));
  return stopped.ok() ? 0 : 1;
}

}  // namespace sarloop
