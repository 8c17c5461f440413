#include "tools/ctl/client.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/client/client.h"
#include "common/security/identity.h"
#include "common/security/tls.h"
#include "sarloop/v1/config.pb.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {
namespace {

// The server cuts longer user names (common/security/identity.h); refusing them here avoids a
// silent cut.
constexpr size_t kMaxUserLength = 100;
// SubmitSarRequest.request_id: 1 to 100 characters.
constexpr size_t kMaxRequestIdLength = 100;

std::string FromEnv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// gRPC refuses metadata values outside printable ASCII, so check before any call is made.
bool IsPrintableAscii(absl::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

absl::Status CheckText(absl::string_view option, absl::string_view value, size_t max) {
  if (value.empty() || value.size() > max || !IsPrintableAscii(value)) {
    return UsageError(
        absl::StrCat("--", option, " must be 1 to ", max, " printable ASCII characters"));
  }
  return absl::OkStatus();
}

// Reads enough of each file to catch the usual mistakes (wrong directory, a file that is not
// PEM) here, where the message can name the file; gRPC would only say the handshake failed.
absl::Status CheckPemFile(const std::filesystem::path& path) {
  std::error_code error;
  std::ifstream in(path);
  if (!std::filesystem::is_regular_file(path, error) || !in) {
    return UsageError(absl::StrCat("identity: cannot read ", path.string()));
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos) {
    return UsageError(absl::StrCat("identity: ", path.string(), " is not a PEM file"));
  }
  return absl::OkStatus();
}

// The TLS files of an identity directory, checked here so that a mistake is named.
absl::StatusOr<v1::TlsConfig> CheckedIdentityFiles(const std::string& dir) {
  if (dir.empty()) {
    return UsageError("no identity: give --identity DIR or set SARLOOP_IDENTITY");
  }
  std::error_code error;
  if (!std::filesystem::exists(dir, error)) {
    return UsageError(absl::StrCat("identity: directory '", dir, "' does not exist"));
  }
  if (!std::filesystem::is_directory(dir, error)) {
    return UsageError(absl::StrCat("identity: '", dir, "' is not a directory"));
  }
  v1::TlsConfig tls = client::IdentityFiles(dir);
  RETURN_IF_ERROR(CheckPemFile(tls.cert_file()));
  RETURN_IF_ERROR(CheckPemFile(tls.key_file()));
  RETURN_IF_ERROR(CheckPemFile(tls.ca_file()));
  return tls;
}

}  // namespace

absl::StatusOr<GlobalOptions> ReadGlobalOptions(const Args& args) {
  GlobalOptions options;
  options.target = args.Get("target").value_or(FromEnv("SARLOOP_TARGET"));
  options.identity_dir = args.Get("identity").value_or(FromEnv("SARLOOP_IDENTITY"));
  // The person acting, named explicitly: a login name ($USER) is often a shared or service
  // account, and an empty one left audit entries naming nobody. Checked when a call is made.
  options.user = args.Get("user").value_or(FromEnv("SARLOOP_USER"));
  if (!options.user.empty()) RETURN_IF_ERROR(CheckText("user", options.user, kMaxUserLength));
  options.json = args.Has("json");
  if (std::optional<std::string> timeout = args.Get("timeout")) {
    ASSIGN_OR_RETURN(options.timeout, ParseSeconds("timeout", *timeout));
  }
  options.request_id = args.Get("request-id").value_or(NewId("req-"));
  RETURN_IF_ERROR(CheckText("request-id", options.request_id, kMaxRequestIdLength));
  return options;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Session::Channel() {
  if (channel_ != nullptr) return channel_;
  if (options_.target.empty()) {
    return UsageError("no target: give --target HOST:PORT or set SARLOOP_TARGET");
  }
  ASSIGN_OR_RETURN(v1::TlsConfig tls, CheckedIdentityFiles(options_.identity_dir));
  // A client system acts for a person, whom every call must name (RequirePerson); an analyst's
  // or a service's certificate names who acts.
  if (absl::StatusOr<std::string> uri = CertificateFileUri(tls.cert_file()); uri.ok()) {
    absl::StatusOr<Identity> id = ParseIdentity(*uri);
    if (id.ok() && id->ActsForPeople()) acts_for_people_ = *uri;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      client::OpenChannel(options_.target, tls);
  if (!channel.ok()) return UsageError(absl::StrCat("identity: ", channel.status().message()));
  channel_ = *std::move(channel);
  return channel_;
}

absl::Status Session::RequirePerson() {
  if (acts_for_people_.empty() || !options_.user.empty()) return absl::OkStatus();
  return UsageError(absl::StrCat("--user: name the person acting for ", acts_for_people_,
                                 " (or set SARLOOP_USER); it goes into every audit entry"));
}

void Session::Prepare(grpc::ClientContext* context) const {
  client::Prepare(context, {.deadline = options_.timeout, .user = options_.user});
}

void Session::PrepareWatch(grpc::ClientContext* context) const {
  client::Prepare(context, {.deadline = absl::InfiniteDuration(), .user = options_.user});
}

}  // namespace sarloop::ctl
