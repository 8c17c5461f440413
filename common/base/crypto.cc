#include "common/base/crypto.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/mutex.h"

namespace sarloop {
namespace {

constexpr absl::string_view kMagic = "SLK1";
constexpr size_t kIdBytes = 8;
constexpr size_t kIvBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kHeader = 4 + kIdBytes + kIvBytes;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// A key's id is a digest of the key under a fixed label, so it says nothing about the key.
std::string KeyId(absl::string_view key) {
  return absl::BytesToHexString(
      Sha256Digest(absl::StrCat("sarloop data key id\n", key)).substr(0, kIdBytes));
}

// The header is authenticated along with the caller's associated data: a value cannot be
// re-labelled with another key id or moved to another cell.
std::string FullAad(absl::string_view header, absl::string_view aad) {
  return absl::StrCat(header, aad);
}

// The calling thread's block of public random bytes. A forked child has only the forking thread,
// and the handler empties that thread's block there.
struct PublicRandomBlock {
  static constexpr size_t kSize = 4096;
  std::array<unsigned char, kSize> bytes;
  size_t used = kSize;  // all of it: empty
};
PublicRandomBlock& ThreadPublicRandom() {
  thread_local PublicRandomBlock block;
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(nullptr, nullptr, [] { ThreadPublicRandom().used = PublicRandomBlock::kSize; });
  });
  return block;
}

// A digest context per thread, reused: each use starts with EVP_DigestInit_ex.
EVP_MD_CTX* ThreadDigestCtx() {
  thread_local MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) std::abort();
  return ctx.get();
}

// An algorithm from the default provider, kept for the life of the process.
template <typename T>
const T* Fetched(T* (*fetch)(OSSL_LIB_CTX*, const char*, const char*), const char* name) {
  T* fetched = fetch(nullptr, name, nullptr);
  if (fetched == nullptr) std::abort();
  return fetched;
}

}  // namespace

const EVP_MD* Sha256() {
  static const EVP_MD* const md = Fetched(EVP_MD_fetch, "SHA256");
  return md;
}

const EVP_CIPHER* Aes256Gcm() {
  static const EVP_CIPHER* const cipher = Fetched(EVP_CIPHER_fetch, "AES-256-GCM");
  return cipher;
}

std::string Sha256Digest(absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, Sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string HmacSha256(absl::string_view key, absl::string_view message) {
  constexpr size_t kBlock = 64;
  unsigned char block[kBlock] = {};
  std::string long_key;
  if (key.size() > kBlock) {
    long_key = Sha256Digest(key);
    key = long_key;
  }
  std::memcpy(block, key.data(), key.size());
  unsigned char pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x36;
  EVP_MD_CTX* ctx = ThreadDigestCtx();
  unsigned char inner[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestInit_ex(ctx, Sha256(), nullptr);
  EVP_DigestUpdate(ctx, pad, kBlock);
  EVP_DigestUpdate(ctx, message.data(), message.size());
  EVP_DigestFinal_ex(ctx, inner, &len);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x5c;
  unsigned char out[EVP_MAX_MD_SIZE];
  EVP_DigestInit_ex(ctx, Sha256(), nullptr);
  EVP_DigestUpdate(ctx, pad, kBlock);
  EVP_DigestUpdate(ctx, inner, len);
  EVP_DigestFinal_ex(ctx, out, &len);
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(pad, sizeof pad);
  if (!long_key.empty()) OPENSSL_cleanse(long_key.data(), long_key.size());
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool PublicRandomBytes(unsigned char* out, size_t n) {
  PublicRandomBlock& block = ThreadPublicRandom();
  if (n > block.bytes.size()) return RAND_bytes(out, static_cast<int>(n)) == 1;
  if (block.bytes.size() - block.used < n) {
    if (RAND_bytes(block.bytes.data(), static_cast<int>(block.bytes.size())) != 1) return false;
    block.used = 0;
  }
  std::memcpy(out, block.bytes.data() + block.used, n);
  block.used += n;
  return true;
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path, size_t min_size, size_t max_size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("key file ", path, ": ", std::strerror(errno)));
  }
  struct stat st {};
  std::string out;
  absl::Status status;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = absl::InvalidArgumentError(absl::StrCat("key file ", path, ": not a regular file"));
  } else if ((st.st_mode & 077) != 0) {
    status = absl::InvalidArgumentError(
        absl::StrCat("key file ", path, ": readable by group or others (mode ",
                     absl::StrFormat("%03o", st.st_mode & 0777), "); chmod 600 it"));
  } else if (static_cast<size_t>(st.st_size) < min_size ||
             static_cast<size_t>(st.st_size) > max_size) {
    status = absl::InvalidArgumentError(
        min_size == max_size ? absl::StrCat("key file ", path, ": must hold exactly ", min_size,
                                            " bytes, holds ", st.st_size)
                             : absl::StrCat("key file ", path, ": must hold ", min_size, " to ",
                                            max_size, " bytes, holds ", st.st_size));
  } else {
    out.resize(st.st_size);
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n <= 0) {
        status = absl::InvalidArgumentError(absl::StrCat("key file ", path, ": short read"));
        break;
      }
      got += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return out;
}

absl::Status WriteNewKeyFile(const std::string& path, size_t size) {
  std::string key(size, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(size)) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) return absl::AlreadyExistsError(absl::StrCat(path, ": already exists"));
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", std::strerror(err)));
  }
  const bool written =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  OPENSSL_cleanse(key.data(), key.size());
  if (!written) {
    ::unlink(path.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": write failed"));
  }
  return absl::OkStatus();
}

// Setting a key up (AES's key schedule, GCM's hash key) was most of what sealing or opening a
// small value cost, on every row: each key keeps contexts that hold its schedule, and a use only
// sets the IV. A context that failed is not kept.
class Keyring::Contexts {
 public:
  explicit Contexts(const std::string& key) : key_(key) {}
  ~Contexts() {
    for (EVP_CIPHER_CTX* c : free_[0]) EVP_CIPHER_CTX_free(c);
    for (EVP_CIPHER_CTX* c : free_[1]) EVP_CIPHER_CTX_free(c);
  }

  // A context for the key, ready for EVP_*Init_ex with only an IV; null when OpenSSL fails.
  EVP_CIPHER_CTX* Take(bool encrypt) {
    {
      MutexLock lock(&mu_);
      std::vector<EVP_CIPHER_CTX*>& pool = free_[encrypt];
      if (!pool.empty()) {
        EVP_CIPHER_CTX* c = pool.back();
        pool.pop_back();
        return c;
      }
    }
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    if (c == nullptr) return nullptr;
    const int ok = encrypt ? EVP_EncryptInit_ex(c, Aes256Gcm(), nullptr, U(key_), nullptr)
                           : EVP_DecryptInit_ex(c, Aes256Gcm(), nullptr, U(key_), nullptr);
    if (ok != 1) {
      EVP_CIPHER_CTX_free(c);
      return nullptr;
    }
    return c;
  }

  // Back for the next use after a success; freed after a failure, or when enough are kept.
  void Give(bool encrypt, EVP_CIPHER_CTX* c, bool succeeded) {
    if (succeeded) {
      MutexLock lock(&mu_);
      std::vector<EVP_CIPHER_CTX*>& pool = free_[encrypt];
      if (pool.size() < kKept) {
        pool.push_back(c);
        return;
      }
    }
    EVP_CIPHER_CTX_free(c);
  }

 private:
  static constexpr size_t kKept = 32;
  const std::string& key_;  // the Keyring's, which outlives this
  Mutex mu_;
  std::vector<EVP_CIPHER_CTX*> free_[2] ABSL_GUARDED_BY(mu_);  // [0] decrypting, [1] encrypting
};

Keyring::Keyring(std::vector<Key> keys) : keys_(std::move(keys)) {
  for (const Key& key : keys_) contexts_.push_back(std::make_unique<Contexts>(key.bytes));
}

Keyring::~Keyring() = default;

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::FromKeys(std::vector<std::string> keys) {
  if (keys.empty()) return absl::InvalidArgumentError("data keys: at least one key is needed");
  std::vector<Key> ring;
  for (std::string& k : keys) {
    if (k.size() != kKeySize) {
      return absl::InvalidArgumentError(
          absl::StrCat("data keys: a key must be ", kKeySize, " bytes, not ", k.size()));
    }
    Key key{KeyId(k), std::move(k)};
    for (const Key& other : ring) {
      if (other.id == key.id) {
        return absl::InvalidArgumentError(
            absl::StrCat("data keys: key ", key.id, " is listed twice"));
      }
    }
    ring.push_back(std::move(key));
  }
  return std::shared_ptr<const Keyring>(new Keyring(std::move(ring)));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::FromFiles(
    const std::vector<std::string>& paths) {
  std::vector<std::string> keys;
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> key = ReadKeyFile(path, kKeySize, kKeySize);
    if (!key.ok())
      return absl::InvalidArgumentError(absl::StrCat("data_key_files: ", key.status().message()));
    keys.push_back(*std::move(key));
  }
  return FromKeys(std::move(keys));
}

std::vector<std::string> Keyring::key_ids() const {
  std::vector<std::string> ids;
  for (const Key& k : keys_) ids.push_back(k.id);
  return ids;
}

int Keyring::Find(absl::string_view id) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<std::string> Keyring::KeyIdOf(absl::string_view sealed) {
  if (sealed.size() < kHeader + kTagBytes || !absl::StartsWith(sealed, kMagic)) {
    return absl::DataLossError("not a sealed value");
  }
  return absl::BytesToHexString(sealed.substr(kMagic.size(), kIdBytes));
}

absl::StatusOr<std::string> Keyring::Seal(absl::string_view plaintext,
                                          absl::string_view aad) const {
  const Key& key = keys_.front();
  std::string out;
  out.reserve(kHeader + plaintext.size() + kTagBytes);
  out.append(kMagic.data(), kMagic.size());
  out.append(absl::HexStringToBytes(key.id));
  out.resize(kHeader);
  unsigned char* iv = reinterpret_cast<unsigned char*>(out.data()) + kMagic.size() + kIdBytes;
  if (!PublicRandomBytes(iv, kIvBytes)) return absl::InternalError("RAND_bytes failed");
  const std::string full_aad = FullAad(absl::string_view(out).substr(0, kHeader), aad);

  Contexts& contexts = *contexts_.front();
  EVP_CIPHER_CTX* ctx = contexts.Take(/*encrypt=*/true);
  int len = 0;
  out.resize(kHeader + plaintext.size() + kTagBytes);
  unsigned char* ct = reinterpret_cast<unsigned char*>(out.data()) + kHeader;
  iv = reinterpret_cast<unsigned char*>(out.data()) + kMagic.size() + kIdBytes;
  int total = 0;
  const bool ok =
      ctx != nullptr && EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv) == 1 &&
      EVP_EncryptUpdate(ctx, nullptr, &len, U(full_aad), static_cast<int>(full_aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx, ct, &len, U(plaintext), static_cast<int>(plaintext.size())) == 1 &&
      (total = len, EVP_EncryptFinal_ex(ctx, ct + total, &len) == 1) &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, ct + total + len) == 1;
  if (ctx != nullptr) contexts.Give(/*encrypt=*/true, ctx, ok);
  if (!ok) return absl::InternalError("AES-256-GCM encryption failed");
  return out;
}

absl::StatusOr<std::string> Keyring::Open(absl::string_view sealed, absl::string_view aad) const {
  absl::StatusOr<std::string> id = KeyIdOf(sealed);
  if (!id.ok()) return id.status();
  const int index = Find(*id);
  if (index < 0) {
    return absl::FailedPreconditionError(absl::StrCat("value sealed with data key ", *id,
                                                      ", which is not among the configured keys (",
                                                      absl::StrJoin(key_ids(), ", "), ")"));
  }
  const std::string full_aad = FullAad(sealed.substr(0, kHeader), aad);
  const unsigned char* iv = U(sealed) + kMagic.size() + kIdBytes;
  const size_t ct_size = sealed.size() - kHeader - kTagBytes;
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  std::string out(ct_size, '\0');
  Contexts& contexts = *contexts_[index];
  EVP_CIPHER_CTX* ctx = contexts.Take(/*encrypt=*/false);
  int len = 0;
  const bool ok =
      ctx != nullptr && EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, iv) == 1 &&
      EVP_DecryptUpdate(ctx, nullptr, &len, U(full_aad), static_cast<int>(full_aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                        U(sealed) + kHeader, static_cast<int>(ct_size)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (ctx != nullptr) contexts.Give(/*encrypt=*/false, ctx, ok);
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return absl::DataLossError(
        "sealed value failed authentication (altered, or moved from another row)");
  }
  return out;
}

}  // namespace sarloop
