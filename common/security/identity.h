// Who is calling: the peer certificate's single URI SAN, parsed into sarloop's identity scheme
// (DESIGN §5). What each identity may call is the policy's (common/security/authz.h).
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
#ifndef SARLOOP_COMMON_SECURITY_IDENTITY_H_
#define SARLOOP_COMMON_SECURITY_IDENTITY_H_

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
  // A client system below an organisation ("psd", "intake"): it acts for people, and each call
  // must name the person (x-sarloop-user). An analyst's certificate names the analyst.
  bool ActsForPeople() const {
    return !system.empty() && kind != "analyst" && kind != "monitor" && kind != "oversight";
  }
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

// The metadata key in which a client system names the person it acts for.
inline constexpr char kUserMetadataKey[] = "x-sarloop-user";

// The person a call acts for, as the audit log and events record it. A client system that acts for
// people (Identity::ActsForPeople) must name one in x-sarloop-user: 1 to 100 printable characters;
// INVALID_ARGUMENT naming x-sarloop-user otherwise. An analyst is the person their certificate
// names unless x-sarloop-user says more.
absl::StatusOr<v1::Actor> ActingPerson(const grpc::ServerContextBase& ctx, const Identity& id);

// Whether `user`, given in x-sarloop-user, may name the person a call acts for: 1 to 100 bytes of
// UTF-8 with no control, separator or bidi character (common/base/text.h), as every text field of
// a request is held to, since it goes into every event the call makes.
absl::Status CheckActingUser(absl::string_view user);

// Matches `uri` against a pattern where `*` stands for exactly one path segment and a trailing
// `/**` for any number of further segments (including none).
bool MatchesPattern(absl::string_view pattern, absl::string_view uri);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SECURITY_IDENTITY_H_
