// Who is calling: the peer certificate's single URI SAN, parsed into sarloop's identity scheme
// (DESIGN §5). What each identity may call is the policy's (common/authz.h).
//
//   spiffe://sarloop/ukfiu[/<system>]        kind "ukfiu",   org "UKFIU"
//   spiffe://sarloop/nca[/<system>]          kind "nca",     org "NCA"
//   spiffe://sarloop/linkage[/<system>]      kind "linkage", org "LINKAGE"
//   spiffe://sarloop/force/<CODE>[/<system>] kind "force",   org CODE
//   spiffe://sarloop/racu/<CODE>[/<system>]  kind "racu",    org CODE
//   spiffe://sarloop/analyst/<user>          kind "analyst", org "" (user in `system`)
//   spiffe://sarloop/monitor/<name>          kind "monitor", org "" (name in `system`)
//
// Only a SPIFFE ID in canonical form is an identity (ParseSpiffeId): a certificate naming
// spiffe://sarloop/ukfiu/.. is no one, not UKFIU.
#ifndef SARLOOP_COMMON_IDENTITY_H_
#define SARLOOP_COMMON_IDENTITY_H_

#include <grpcpp/server_context.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

struct Identity {
  std::string uri;
  std::string kind;
  std::string org;
  // The client system below the organisation ("psd"), or the analyst's user name; empty for an
  // organisation's own service identity.
  std::string system;

  // An organisation's service itself (what delivery RPCs accept), not one of its client systems.
  bool IsService() const { return kind != "analyst" && system.empty(); }
};

// A SPIFFE ID split into its parts.
struct SpiffeId {
  std::string trust_domain;
  std::vector<std::string> path;  // the segments, at least one
};

// The one parser of SPIFFE IDs (the servers, and sarloop-pki through `sarloopctl identity
// check`): canonical form only, as the SPIFFE ID specification defines it. "spiffe://", a trust
// domain of lower-case letters, digits, '.', '-' and '_', then one or more "/segment"s of letters,
// digits, '.', '-' and '_'; no empty segment (so no "//" and no trailing slash), no "." or ".."
// segment, no percent-encoding, query, fragment, port or user info; at most 2048 bytes, a segment
// at most 255. INVALID_ARGUMENT saying which rule the text breaks (never echoing more of it than
// 100 bytes).
absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri);

// Parses a sarloop identity URI: a canonical SPIFFE ID in trust domain "sarloop" naming a role
// above. INVALID_ARGUMENT when it is not one.
absl::StatusOr<Identity> ParseIdentity(absl::string_view uri);

// The authenticated caller of a server call. UNAUTHENTICATED when the connection is not mTLS or
// the certificate has no URI SAN, more than one, or one outside the scheme.
absl::StatusOr<Identity> PeerIdentity(const grpc::ServerContextBase& ctx);

// The actor recorded on events: the identity and the user the caller names in the
// `x-sarloop-user` metadata (at most 100 characters; longer values are cut).
v1::Actor ActorOf(const grpc::ServerContextBase& ctx, const Identity& id);

// Matches `uri` against a pattern where `*` stands for exactly one path segment and a trailing
// `/**` for any number of further segments (including none).
bool MatchesPattern(absl::string_view pattern, absl::string_view uri);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_IDENTITY_H_
