// Confidentiality at rest (DESIGN §5): AES-256-GCM over values a service stores, with keys read
// from files.
//
// A sealed value is self-describing: "SLK1", the key id (8 bytes), a random 96-bit IV, the
// ciphertext and the 16-byte tag. The key id is derived from the key itself, so renaming a key
// file never orphans the rows it sealed. Callers pass associated data naming where the value
// lives (table, column, row), so a value copied to another row or column does not open.
#ifndef SARLOOP_COMMON_BASE_CRYPTO_H_
#define SARLOOP_COMMON_BASE_CRYPTO_H_

#include <openssl/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sarloop {

// SHA-256 and AES-256-GCM, fetched from OpenSSL's default provider once for the process.
// OpenSSL 3 looks an algorithm up by name on every init through EVP_sha256(), EVP_aes_256_gcm()
// or HMAC() (a profile of ukfiu under SubmitSar: 4% of its CPU in those look-ups); an algorithm
// fetched once is used as is. Never null: the process stops if the provider lacks them.
const EVP_MD* Sha256();
const EVP_CIPHER* Aes256Gcm();

// SHA-256 of `data` (32 bytes).
std::string Sha256Digest(absl::string_view data);
// HMAC-SHA256 (RFC 2104) of `message` under `key` (32 bytes), through Sha256().
std::string HmacSha256(absl::string_view key, absl::string_view message);

// Fills `out` with `n` random bytes that will be made public (GCM IVs, identifiers), taken from a
// block each thread draws from OpenSSL's generator 4 KiB at a time: one generator call per IV was
// 1.5% of a chain's CPU at its peak. Never for keys or other secrets, which should not wait in a
// buffer. The block is dropped in a forked child, which would otherwise repeat its parent's IVs.
// False when the generator fails.
bool PublicRandomBytes(unsigned char* out, size_t n);

// Reads a secret key file: exactly `size` bytes, a regular file that neither group nor others may
// read. INVALID_ARGUMENT naming the file otherwise.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path, size_t min_size, size_t max_size);

// Writes `size` random bytes to a new file with mode 0600; ALREADY_EXISTS if it exists.
absl::Status WriteNewKeyFile(const std::string& path, size_t size);

class Keyring {
 public:
  static constexpr size_t kKeySize = 32;

  // The first key seals; every key opens. INVALID_ARGUMENT when empty or a key is not 32 bytes.
  static absl::StatusOr<std::shared_ptr<const Keyring>> FromKeys(std::vector<std::string> keys);
  // Keys from files (see ReadKeyFile), the first sealing.
  static absl::StatusOr<std::shared_ptr<const Keyring>> FromFiles(
      const std::vector<std::string>& paths);

  // Encrypts `plaintext` with the current key under a fresh random IV.
  absl::StatusOr<std::string> Seal(absl::string_view plaintext, absl::string_view aad) const;
  // Decrypts. DATA_LOSS when the value is not sealed, was altered, or `aad` differs;
  // FAILED_PRECONDITION naming the key id when no key on the ring has that id.
  absl::StatusOr<std::string> Open(absl::string_view sealed, absl::string_view aad) const;

  // The key id (16 hex digits) a sealed value names; DATA_LOSS when it is not a sealed value.
  static absl::StatusOr<std::string> KeyIdOf(absl::string_view sealed);
  // The key id of the sealing key.
  const std::string& current_key_id() const { return keys_.front().id; }
  // Every key id on the ring, the sealing key first.
  std::vector<std::string> key_ids() const;

  struct Key {
    std::string id;  // 16 hex digits
    std::string bytes;
  };

  ~Keyring();

 private:
  // Cipher contexts that already hold one key's schedule, kept for reuse (crypto.cc).
  class Contexts;

  explicit Keyring(std::vector<Key> keys);
  // The index of the key with that id, or -1.
  int Find(absl::string_view id) const;

  std::vector<Key> keys_;
  std::vector<std::unique_ptr<Contexts>> contexts_;  // one per key
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_CRYPTO_H_
