#include "common/security/identity.h"

#include <grpcpp/security/auth_context.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status.h"
#include "common/base/text.h"

namespace sarloop {
namespace {

constexpr absl::string_view kScheme = "spiffe://";
constexpr size_t kMaxId = 2048;
constexpr size_t kMaxSegment = 255;

bool PathChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}
bool DomainChar(char c) {
  return absl::ascii_islower(static_cast<unsigned char>(c)) ||
         absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

// At most 100 bytes of `uri`, for a message.
std::string Shown(absl::string_view uri) {
  return uri.size() <= 100 ? std::string(uri) : absl::StrCat(uri.substr(0, 100), "...");
}

}  // namespace

absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", Shown(uri), "' is not a SPIFFE ID in canonical form: ", why));
  };
  if (uri.size() > kMaxId) return bad("longer than 2048 bytes");
  if (uri.substr(0, kScheme.size()) != kScheme) return bad("the scheme must be spiffe://");
  absl::string_view rest = uri.substr(kScheme.size());
  const size_t slash = rest.find('/');
  SpiffeId id;
  id.trust_domain = std::string(rest.substr(0, slash));
  if (id.trust_domain.empty()) return bad("no trust domain");
  for (char c : id.trust_domain) {
    if (!DomainChar(c)) {
      return bad("the trust domain may hold lower-case letters, digits, '.', '-' and '_' only");
    }
  }
  if (slash == absl::string_view::npos) return bad("no path");
  for (absl::string_view seg : absl::StrSplit(rest.substr(slash + 1), '/')) {
    if (seg.empty()) return bad("an empty path segment (or a trailing slash)");
    if (seg == "." || seg == "..") return bad("a '.' or '..' path segment");
    if (seg.size() > kMaxSegment) return bad("a path segment longer than 255 bytes");
    for (char c : seg) {
      if (!PathChar(c)) {
        return bad("path segments may hold letters, digits, '.', '-' and '_' only");
      }
    }
    id.path.emplace_back(seg);
  }
  return id;
}

absl::StatusOr<Identity> ParseIdentity(absl::string_view uri) {
  ASSIGN_OR_RETURN(SpiffeId spiffe, ParseSpiffeId(uri));
  if (spiffe.trust_domain != "sarloop") {
    return absl::InvalidArgumentError(
        absl::StrCat("identity '", Shown(uri), "' is not in trust domain sarloop"));
  }
  const std::vector<std::string>& parts = spiffe.path;
  for (const std::string& p : parts) {
    if (p.size() > 64) {
      return absl::InvalidArgumentError(
          absl::StrCat("identity '", Shown(uri), "' has a segment longer than 64 bytes"));
    }
  }
  Identity id;
  id.uri = std::string(uri);
  id.kind = parts[0];
  if ((id.kind == "ukfiu" || id.kind == "nca" || id.kind == "linkage") && parts.size() <= 2) {
    id.org = id.kind == "ukfiu" ? "UKFIU" : id.kind == "nca" ? "NCA" : "LINKAGE";
    if (parts.size() == 2) id.system = parts[1];
    return id;
  }
  if ((id.kind == "force" || id.kind == "racu") && parts.size() >= 2 && parts.size() <= 3) {
    id.org = parts[1];
    if (parts.size() == 3) id.system = parts[2];
    return id;
  }
  // The people a force's silence escalates to (the head of professional standards, the deputy
  // chief constable, the police and crime commissioner): oversight/<ORG>/<office>.
  if (id.kind == "oversight" && parts.size() == 3) {
    id.org = parts[1];
    id.system = parts[2];
    return id;
  }
  if ((id.kind == "analyst" || id.kind == "monitor") && parts.size() == 2) {
    id.system = parts[1];
    return id;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("identity '", Shown(uri), "' is not a sarloop role"));
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

absl::Status CheckActingUser(absl::string_view user) {
  // A peer that refuses an event's text would never take the events the call makes.
  if (user.empty() || user.size() > 100 || !IsCleanText(user)) {
    return FieldError(kUserMetadataKey,
                      "must be 1 to 100 bytes of UTF-8 text without control characters");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Actor> ActingPerson(const grpc::ServerContextBase& ctx, const Identity& id) {
  v1::Actor actor;
  actor.set_identity(id.uri);
  const auto& md = ctx.client_metadata();
  auto it = md.find(kUserMetadataKey);
  const absl::string_view user = it == md.end()
                                     ? absl::string_view()
                                     : absl::string_view(it->second.data(), it->second.size());
  if (absl::StripAsciiWhitespace(user).empty()) {
    if (id.kind == "analyst" || id.kind == "oversight") {
      actor.set_user(id.system);
      return actor;
    }
    if (id.ActsForPeople()) {
      return FieldError(kUserMetadataKey,
                        "is required: a client system names the person it acts for (sarloopctl "
                        "--user NAME)");
    }
    return actor;
  }
  RETURN_IF_ERROR(CheckActingUser(user));
  actor.set_user(std::string(user));
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
