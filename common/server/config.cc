#include "common/server/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/status.h"
#include "common/security/identity.h"

namespace sarloop {

absl::StatusOr<v1::ServiceConfig> ParseConfig(const std::string& text, bool json) {
  v1::ServiceConfig config;
  if (json) {
    google::protobuf::util::JsonParseOptions options;
    auto status = google::protobuf::util::JsonStringToMessage(text, &config, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config: ", status.message().as_string()));
    }
  } else {
    // The parser's own words (line, column, the unknown field's name) go into the error, not
    // to libprotobuf's log.
    class Collector : public google::protobuf::io::ErrorCollector {
     public:
      void AddError(int line, int column, const std::string& message) override {
        if (first.empty()) first = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
      }
      std::string first;
    } errors;
    google::protobuf::TextFormat::Parser parser;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(text, &config)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: not a valid text proto ServiceConfig: ", errors.first));
    }
  }
  return config;
}

namespace {

// "host:port" or "[v6-address]:port", with a port of 1 to 65535.
absl::Status CheckAddress(absl::string_view field, const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return FieldError(field, absl::StrCat("'", address, "' is not host:port"));
  }
  const std::string host = address.substr(0, colon);
  if (host.front() == '[' && host.back() != ']') {
    return FieldError(field, absl::StrCat("'", address, "' is not [address]:port"));
  }
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return FieldError(field,
                      absl::StrCat("'", address.substr(colon + 1), "' is not a port (1 to 65535)"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> HandoverUnits(const v1::ServiceConfig& c) {
  std::vector<std::string> units;
  if (c.handover_unit().empty()) return units;
  units.push_back(c.handover_unit());
  for (const std::string& u : c.other_handover_units()) {
    if (std::find(units.begin(), units.end(), u) == units.end()) units.push_back(u);
  }
  return units;
}

PolicyScope ScopeOf(const v1::ServiceConfig& config) {
  return {config.kind(),
          config.code(),
          HandoverUnits(config),
          {config.served_forces().begin(), config.served_forces().end()}};
}

absl::Status CheckRequiredPeers(const v1::ServiceConfig& c) {
  std::set<std::string> peers;
  for (const v1::Peer& p : c.peers()) {
    if (!peers.insert(p.code()).second) {
      return FieldError("peers", absl::StrCat("names ", p.code(), " twice"));
    }
  }
  std::vector<std::pair<std::string, std::string>> needed;  // code, why
  switch (c.kind()) {
    case v1::SERVICE_KIND_FORCE:
      needed = {{"UKFIU", "a force reports every step to UKFIU"},
                {"NCA", "a force reports every step to the NCA register"}};
      if (!c.handover_unit().empty()) {
        needed.emplace_back(c.handover_unit(), "handover_unit names it");
      }
      for (const std::string& unit : c.other_handover_units()) {
        needed.emplace_back(unit, "other_handover_units names it");
      }
      break;
    case v1::SERVICE_KIND_RACU:
      needed = {{"UKFIU", "a unit reports every step to UKFIU"},
                {"NCA", "a unit reports every step to the NCA register"}};
      for (const std::string& force : c.served_forces()) {
        needed.emplace_back(force, "served_forces names it (the unit answers to it)");
      }
      break;
    case v1::SERVICE_KIND_UKFIU:
      needed = {{"NCA", "UKFIU reports every referral to the NCA register"}};
      if (!c.linkage_key_file().empty()) {
        needed.emplace_back("LINKAGE", "linkage_key_file is set (new SARs are screened)");
      }
      break;
    default:
      break;
  }
  for (const auto& [code, why] : needed) {
    if (peers.count(code) == 0) {
      return FieldError("peers", absl::StrCat("has no entry for ", code, ": ", why));
    }
  }
  return absl::OkStatus();
}

namespace {

// The binary's kind and code, and the linkage settings only one kind may carry.
absl::Status CheckKind(v1::ServiceConfig& c, v1::ServiceKind kind) {
  if (c.kind() == v1::SERVICE_KIND_UNSPECIFIED) c.set_kind(kind);
  if (c.kind() != kind) {
    return FieldError("kind", absl::StrCat("is ", v1::ServiceKind_Name(c.kind()),
                                           " but this binary serves ", v1::ServiceKind_Name(kind)));
  }
  if (kind == v1::SERVICE_KIND_UKFIU && c.code().empty()) c.set_code("UKFIU");
  if (kind == v1::SERVICE_KIND_NCA && c.code().empty()) c.set_code("NCA");
  if (kind == v1::SERVICE_KIND_LINKAGE && c.code().empty()) c.set_code("LINKAGE");
  if (kind != v1::SERVICE_KIND_LINKAGE && c.linkage_threshold_milli() != 0) {
    return FieldError("linkage_threshold_milli", "is for the linkage service only");
  }
  if (kind != v1::SERVICE_KIND_LINKAGE && c.linkage_subjects_per_minute() != 0) {
    return FieldError("linkage_subjects_per_minute", "is for the linkage service only");
  }
  if (c.linkage_threshold_milli() != 0 &&
      (c.linkage_threshold_milli() < 500 || c.linkage_threshold_milli() > 950)) {
    return FieldError("linkage_threshold_milli", "must be between 500 and 950");
  }
  if (kind != v1::SERVICE_KIND_UKFIU && !c.linkage_key_file().empty()) {
    return FieldError("linkage_key_file", "is for ukfiu only");
  }
  if (c.linkage_subjects_per_minute() < 0) {
    return FieldError("linkage_subjects_per_minute", "must not be negative");
  }
  return absl::OkStatus();
}

// Where the service listens, keeps its data and finds its peers and keys: each required.
absl::Status CheckPlaces(v1::ServiceConfig& c, v1::ServiceKind kind) {
  if (c.code().empty()) return FieldError("code", "is required");
  if (c.listen().empty()) return FieldError("listen", "is required");
  if (c.database().empty()) return FieldError("database", "is required");
  if (!c.postgres().empty() && kind != v1::SERVICE_KIND_NCA) {
    return FieldError("postgres", "only the NCA's register runs on PostgreSQL");
  }
  if (!c.dev_clock_offset_file().empty() && !c.development_mode()) {
    return FieldError("dev_clock_offset_file",
                      "moves the service's clock and is honoured only on a development chain "
                      "(development_mode: true); leave it empty in production");
  }
  if (c.tls().cert_file().empty()) return FieldError("tls.cert_file", "is required");
  if (c.tls().key_file().empty()) return FieldError("tls.key_file", "is required");
  if (c.tls().ca_file().empty()) return FieldError("tls.ca_file", "is required");
  RETURN_IF_ERROR(CheckAddress("listen", c.listen()));
  if (!c.metrics_listen().empty())
    RETURN_IF_ERROR(CheckAddress("metrics_listen", c.metrics_listen()));
  if (!c.dashboard_listen().empty()) {
    RETURN_IF_ERROR(CheckAddress("dashboard_listen", c.dashboard_listen()));
  }
  for (int i = 0; i < c.peers_size(); ++i) {
    if (c.peers(i).code().empty() || c.peers(i).address().empty()) {
      return FieldError(absl::StrCat("peers[", i, "]"), "needs code and address");
    }
    RETURN_IF_ERROR(CheckAddress(absl::StrCat("peers[", i, "].address"), c.peers(i).address()));
  }
  if (c.data_key_files().empty()) {
    return FieldError("data_key_files",
                      "is required: at least one file of 32 random bytes (sarloopctl keys new)");
  }
  if (kind == v1::SERVICE_KIND_UKFIU && c.subject_key_file().empty()) {
    return FieldError("subject_key_file", "is required for ukfiu");
  }
  return absl::OkStatus();
}

// The feedback clock's periods and escalation ladder, defaulted where unset.
absl::Status FinishFeedback(v1::FeedbackClockConfig* f) {
  if (f->due_days() <= 0) f->set_due_days(28);
  if (f->grace_days() <= 0) f->set_grace_days(28);
  if (f->ack_days() <= 0) f->set_ack_days(5);
  if (f->reminder_repeat_days() <= 0) f->set_reminder_repeat_days(14);
  if (f->escalation_ladder().empty()) {
    for (const char* office : {"head-of-psd", "dcc", "pcc"}) {
      f->add_escalation_ladder(absl::StrCat("spiffe://sarloop/oversight/{org}/", office));
    }
  }
  if (f->escalation_ladder_size() != 3) {
    return FieldError("feedback.escalation_ladder", "must have exactly three rungs");
  }
  for (int i = 0; i < f->escalation_ladder_size(); ++i) {
    const std::string example = absl::StrReplaceAll(f->escalation_ladder(i), {{"{org}", "NFK"}});
    absl::StatusOr<Identity> id = ParseIdentity(example);
    if (!id.ok() || id->kind != "oversight") {
      return FieldError(absl::StrCat("feedback.escalation_ladder[", i, "]"),
                        "must be spiffe://sarloop/oversight/{org}/<office>");
    }
  }
  if (f->scan_interval_seconds() <= 0) f->set_scan_interval_seconds(60);
  return absl::OkStatus();
}

// The outbox's backoff, batch and deadline, defaulted where unset.
absl::Status FinishDelivery(v1::DeliveryConfig* d) {
  if (d->initial_backoff_ms() <= 0) d->set_initial_backoff_ms(200);
  if (d->max_backoff_ms() <= 0) d->set_max_backoff_ms(60000);
  if (d->initial_backoff_ms() > d->max_backoff_ms()) {
    return FieldError(
        "delivery.initial_backoff_ms",
        absl::StrCat("is ", d->initial_backoff_ms(), ", more than delivery.max_backoff_ms (",
                     d->max_backoff_ms(), ")"));
  }
  if (d->batch_size() <= 0) d->set_batch_size(200);
  if (d->batch_size() > 500) return FieldError("delivery.batch_size", "at most 500");
  if (d->deadline_ms() <= 0) d->set_deadline_ms(10000);
  if (d->stuck_after_seconds() <= 0) d->set_stuck_after_seconds(3600);
  return absl::OkStatus();
}

// Limits, retention, the audit key's place and publication, defaulted where unset.
absl::Status FinishLimits(v1::ServiceConfig& c, v1::ServiceKind kind) {
  if (c.log_level().empty()) c.set_log_level("info");
  if (c.shutdown_drain_ms() <= 0) c.set_shutdown_drain_ms(1000);
  if (c.max_inflight_calls() <= 0) c.set_max_inflight_calls(128);
  if (c.max_inflight_calls() > 4096) return FieldError("max_inflight_calls", "at most 4096");
  if (c.retention_years() < 0 || c.retention_years() > 100) {
    return FieldError("retention_years", "must be 0 (keep everything) to 100");
  }
  if (c.retention_years() > 0 && kind == v1::SERVICE_KIND_NCA) {
    return FieldError("retention_years", "is not for nca (the register keeps no SAR content)");
  }
  if (c.grpc_memory_mib() <= 0) c.set_grpc_memory_mib(256);
  if (c.connection_max_age_seconds() < 0 || c.connection_max_age_seconds() > 86400) {
    return FieldError("connection_max_age_seconds", "must be 0 (default 600) to 86400");
  }
  if (c.connection_max_age_seconds() == 0) c.set_connection_max_age_seconds(600);
  if (c.audit_key_file().empty()) {
    // Apart from the data: beside the service's TLS key. A key at the old default is still used
    // (the service warns that it sits with the data).
    const std::string legacy = c.database() + ".audit-key";
    std::error_code ec;
    c.set_audit_key_file(
        std::filesystem::exists(legacy, ec)
            ? legacy
            : (std::filesystem::path(c.tls().key_file()).parent_path() / "audit-signing.key")
                  .string());
  }
  if (c.publication_min_count() < 0 || c.publication_min_count() > 1000) {
    return FieldError("publication_min_count", "must be 0 (default 5) to 1000");
  }
  if (c.publication_min_count() == 0) c.set_publication_min_count(5);
  if (!c.dashboard_listen().empty() && kind != v1::SERVICE_KIND_NCA) {
    return FieldError("dashboard_listen", "is for nca only");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FinishConfig(v1::ServiceConfig& c, v1::ServiceKind kind) {
  RETURN_IF_ERROR(CheckKind(c, kind));
  RETURN_IF_ERROR(CheckPlaces(c, kind));
  RETURN_IF_ERROR(FinishFeedback(c.mutable_feedback()));
  RETURN_IF_ERROR(FinishDelivery(c.mutable_delivery()));
  return FinishLimits(c, kind);
}

absl::StatusOr<v1::ServiceConfig> LoadConfig(const std::vector<std::string>& args,
                                             v1::ServiceKind expected_kind) {
  v1::ServiceConfig config;
  v1::ServiceConfig overrides;
  bool log_json = false;
  std::string path;
  for (const std::string& arg : args) {
    auto value = [&](absl::string_view flag) -> std::optional<std::string> {
      if (absl::StartsWith(arg, absl::StrCat(flag, "="))) return arg.substr(flag.size() + 1);
      return std::nullopt;
    };
    if (auto v = value("--config")) {
      path = *v;
    } else if (auto v = value("--listen")) {
      overrides.set_listen(*v);
    } else if (auto v = value("--database")) {
      overrides.set_database(*v);
    } else if (auto v = value("--log_level")) {
      overrides.set_log_level(*v);
    } else if (auto v = value("--dev_clock_offset_file")) {
      overrides.set_dev_clock_offset_file(*v);
    } else if (arg == "--log_json") {
      log_json = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", arg,
                       "' (flags: --config=FILE --listen=HOST:PORT "
                       "--database=FILE --log_level=LEVEL --log_json "
                       "--dev_clock_offset_file=FILE --check-config)"));
    }
  }
  if (path.empty()) return absl::InvalidArgumentError("--config=FILE is required");
  ASSIGN_OR_RETURN(config, ReadConfigText(path));
  config.MergeFrom(overrides);
  if (log_json) config.set_log_json(true);
  RETURN_IF_ERROR(FinishConfig(config, expected_kind));
  return config;
}

absl::StatusOr<v1::ServiceConfig> ReadConfigText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--config: cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), absl::EndsWith(path, ".json"));
}

absl::StatusOr<v1::ServiceConfig> ReadConfigFile(const std::string& path) {
  ASSIGN_OR_RETURN(v1::ServiceConfig config, ReadConfigText(path));
  if (config.kind() == v1::SERVICE_KIND_UNSPECIFIED) return FieldError("kind", "is required");
  RETURN_IF_ERROR(FinishConfig(config, config.kind()));
  return config;
}

std::vector<std::string> PeerCodes(const v1::ServiceConfig& config) {
  std::vector<std::string> codes;
  for (const v1::Peer& p : config.peers()) codes.push_back(p.code());
  return codes;
}

const v1::Peer* FindPeer(const v1::ServiceConfig& config, const std::string& code) {
  for (const v1::Peer& p : config.peers()) {
    if (p.code() == code) return &p;
  }
  return nullptr;
}

}  // namespace sarloop
