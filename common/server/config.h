// Loading a service instance's configuration (ServiceConfig in proto/sarloop/v1/config.proto):
// one file, JSON (.json) or text proto (anything else), then flags that override single fields,
// then defaults, then validation.
#ifndef SARLOOP_COMMON_SERVER_CONFIG_H_
#define SARLOOP_COMMON_SERVER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/security/authz.h"
#include "sarloop/v1/config.pb.h"

namespace sarloop {

// Parses `--config=FILE` and the overriding flags `--listen=`, `--database=`, `--log_level=`,
// `--log_json`, `--dev_clock_offset_file=`. INVALID_ARGUMENT naming the flag or field on any
// error, including an unknown flag.
absl::StatusOr<v1::ServiceConfig> LoadConfig(const std::vector<std::string>& args,
                                             v1::ServiceKind expected_kind);

// Parses a config file's contents (`json` selects the format).
absl::StatusOr<v1::ServiceConfig> ParseConfig(const std::string& text, bool json);

// Reads a config file without flags, for tools that act on a service's files (its kind is taken
// from the file, which must name it). Defaults filled and checked as for the service.
absl::StatusOr<v1::ServiceConfig> ReadConfigFile(const std::string& path);

// The parsed file at `path`, before defaults and checks.
absl::StatusOr<v1::ServiceConfig> ReadConfigText(const std::string& path);

// Fills defaults and checks required fields for `kind`.
absl::Status FinishConfig(v1::ServiceConfig& config, v1::ServiceKind kind);

// The peers a service cannot work without, by kind: a force's UKFIU and NCA and its handover
// unit, a unit's UKFIU, NCA and every force it serves, UKFIU's NCA (and the linkage service when it
// screens). INVALID_ARGUMENT naming `peers` and what is missing, or a code listed twice.
absl::Status CheckRequiredPeers(const v1::ServiceConfig& config);

// A force's units, its default (handover_unit) first; none when it has no handover_unit.
std::vector<std::string> HandoverUnits(const v1::ServiceConfig& config);

// The scope a service's configuration gives its authorisation policy.
PolicyScope ScopeOf(const v1::ServiceConfig& config);

// The peer address for `code`, or nullptr.
const v1::Peer* FindPeer(const v1::ServiceConfig& config, const std::string& code);

// The code of every configured peer (where the service can send).
std::vector<std::string> PeerCodes(const v1::ServiceConfig& config);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SERVER_CONFIG_H_
