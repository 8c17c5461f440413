#include "common/identity.h"

#include <grpcpp/security/auth_context.h>
#include <spdlog/spdlog.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sarloop {
namespace {
constexpr absl::string_view kPrefix = "spiffe://sarloop/";

bool ValidSegment(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}
}  // namespace

absl::StatusOr<Identity> ParseIdentity(absl::string_view uri) {
  if (uri.substr(0, kPrefix.size()) != kPrefix) {
    return absl::InvalidArgumentError(
        absl::StrCat("identity '", uri, "' is not spiffe://sarloop/"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(uri.substr(kPrefix.size()), '/');
  for (absl::string_view p : parts) {
    if (!ValidSegment(p)) {
      return absl::InvalidArgumentError(absl::StrCat("identity '", uri, "' has a bad segment"));
    }
  }
  Identity id;
  id.uri = std::string(uri);
  id.kind = std::string(parts[0]);
  if ((id.kind == "ukfiu" || id.kind == "nca" || id.kind == "linkage") && parts.size() <= 2) {
    id.org = id.kind == "ukfiu" ? "UKFIU" : id.kind == "nca" ? "NCA" : "LINKAGE";
    if (parts.size() == 2) id.system = std::string(parts[1]);
    return id;
  }
  if ((id.kind == "force" || id.kind == "racu") && parts.size() >= 2 && parts.size() <= 3) {
    id.org = std::string(parts[1]);
    if (parts.size() == 3) id.system = std::string(parts[2]);
    return id;
  }
  if ((id.kind == "analyst" || id.kind == "monitor") && parts.size() == 2) {
    id.system = std::string(parts[1]);
    return id;
  }
  return absl::InvalidArgumentError(absl::StrCat("identity '", uri, "' is not a sarloop role"));
}

absl::StatusOr<Identity> PeerIdentity(const grpc::ServerContextBase& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the caller presented no client certificate");
  }
  std::vector<grpc::string_ref> uris = auth->FindPropertyValues("peer_uri");
  if (uris.size() != 1) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the client certificate must carry exactly one URI SAN; it has ", uris.size()));
  }
  absl::StatusOr<Identity> id = ParseIdentity(absl::string_view(uris[0].data(), uris[0].size()));
  if (!id.ok()) return absl::UnauthenticatedError(id.status().message());
  return id;
}

v1::Actor ActorOf(const grpc::ServerContextBase& ctx, const Identity& id) {
  v1::Actor actor;
  actor.set_identity(id.uri);
  const auto& md = ctx.client_metadata();
  auto it = md.find("x-sarloop-user");
  if (it != md.end()) {
    actor.set_user(std::string(it->second.data(), std::min<size_t>(it->second.size(), 100)));
  }
  return actor;
}

bool MatchesPattern(absl::string_view pattern, absl::string_view uri) {
  std::vector<absl::string_view> p = absl::StrSplit(pattern, '/');
  std::vector<absl::string_view> u = absl::StrSplit(uri, '/');
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == "**" && i + 1 == p.size()) return u.size() >= i;
    if (i >= u.size()) return false;
    if (p[i] != "*" && p[i] != u[i]) return false;
    if (p[i] == "*" && u[i].empty()) return false;
  }
  return p.size() == u.size();
}

}  // namespace sarloop
