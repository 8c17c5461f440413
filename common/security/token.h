// Opaque tokens a service hands its callers and must take back unaltered: watch cursors and page
// tokens. A token is its payload and an HMAC-SHA256 tag over what issued it (`kind`, the query it
// pages), keyed by a secret kept in the service's database (the feed migration's token_secret
// table, made at first use). So a token survives a restart, and one that was forged, altered,
// issued by another service or for another query is refused rather than misread.
#ifndef SARLOOP_COMMON_SECURITY_TOKEN_H_
#define SARLOOP_COMMON_SECURITY_TOKEN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/storage/storage.h"

namespace sarloop {

class TokenSigner {
 public:
  // The signer of the service whose database `db` is: its secret read, or made and stored.
  static absl::StatusOr<std::shared_ptr<const TokenSigner>> ForDatabase(Database& db);
  // For unit tests: a given secret.
  explicit TokenSigner(std::string secret) : secret_(std::move(secret)) {}

  // `payload` as a token bound to `kind` and `query`.
  std::string Sign(absl::string_view kind, absl::string_view query,
                   absl::string_view payload) const;
  // The payload of a token Sign made with the same `kind` and `query`; INVALID_ARGUMENT naming
  // `field` for anything else.
  absl::StatusOr<std::string> Open(absl::string_view field, absl::string_view kind,
                                   absl::string_view query, absl::string_view token) const;

 private:
  std::string Tag(absl::string_view kind, absl::string_view query, absl::string_view payload) const;
  const std::string secret_;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SECURITY_TOKEN_H_
