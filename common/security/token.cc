#include "common/security/token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/crypto.h"
#include "common/base/status.h"

namespace sarloop {
namespace {

constexpr size_t kSecretBytes = 32;
// A 128-bit tag: forging one is out of reach, and tokens stay short enough for a URL.
constexpr size_t kTagBytes = 16;

}  // namespace

absl::StatusOr<std::shared_ptr<const TokenSigner>> TokenSigner::ForDatabase(Database& db) {
  std::string fresh(kSecretBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(fresh.data()), kSecretBytes) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  std::string secret;
  // Read first: a list call asks for the signer each time, and that must not be a write.
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT secret FROM token_secret WHERE id = 1"));
    if (!rows.empty()) secret = rows[0].Text(0);
    return absl::OkStatus();
  }));
  if (secret.size() == kSecretBytes) return std::make_shared<const TokenSigner>(std::move(secret));
  // Made at most once: a replica sharing the database that got there first wins, and both sign
  // with its secret.
  RETURN_IF_ERROR(db.Transact([&](Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(
        txn.Exec("INSERT INTO token_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                 {Blob{fresh}}));
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT secret FROM token_secret WHERE id = 1"));
    if (rows.empty() || rows[0].Text(0).size() != kSecretBytes) {
      return absl::DataLossError("token_secret: the stored secret is missing or malformed");
    }
    secret = rows[0].Text(0);
    return absl::OkStatus();
  }));
  return std::make_shared<const TokenSigner>(std::move(secret));
}

std::string TokenSigner::Tag(absl::string_view kind, absl::string_view query,
                             absl::string_view payload) const {
  // Lengths first, so no two (kind, query, payload) triples share a message.
  const std::string message =
      absl::StrCat(kind.size(), ":", kind, query.size(), ":", query, payload.size(), ":", payload);
  return HmacSha256(secret_, message).substr(0, kTagBytes);
}

std::string TokenSigner::Sign(absl::string_view kind, absl::string_view query,
                              absl::string_view payload) const {
  return absl::StrCat(absl::WebSafeBase64Escape(payload), ".",
                      absl::WebSafeBase64Escape(Tag(kind, query, payload)));
}

absl::StatusOr<std::string> TokenSigner::Open(absl::string_view field, absl::string_view kind,
                                              absl::string_view query,
                                              absl::string_view token) const {
  const size_t dot = token.find('.');
  std::string payload, tag;
  if (token.size() > 4096 || dot == absl::string_view::npos ||
      !absl::WebSafeBase64Unescape(token.substr(0, dot), &payload) ||
      !absl::WebSafeBase64Unescape(token.substr(dot + 1), &tag) || tag.size() != kTagBytes ||
      CRYPTO_memcmp(tag.data(), Tag(kind, query, payload).data(), kTagBytes) != 0) {
    return FieldError(field,
                      "is not a token this service issued for this request (forged, altered, "
                      "from another service, from a request with other filters, or issued "
                      "before the service's database was restored from a backup)");
  }
  return payload;
}

}  // namespace sarloop
