#include "common/base/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/messaging/messaging.h"
#include "common/referral/referral_store.h"
#include "common/referral/sealed_columns.h"
#include "common/security/sealed.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::testing::_;
using ::testing::HasSubstr;

std::shared_ptr<const Keyring> Ring(std::vector<char> fills) {
  std::vector<std::string> keys;
  for (char c : fills) keys.emplace_back(Keyring::kKeySize, c);
  return Keyring::FromKeys(std::move(keys)).value();
}

// RFC 4231's test cases 1, 2 and 6 (a key longer than the block), then OpenSSL's own HMAC() over
// keys and messages of every length around the block size.
TEST(HmacSha256, IsRfc4231sAndOpenSslsHmac) {
  EXPECT_EQ(absl::BytesToHexString(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(absl::BytesToHexString(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(
      absl::BytesToHexString(HmacSha256(std::string(131, '\xaa'),
                                        "Test Using Larger Than Block-Size Key - Hash Key First")),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  std::mt19937 bytes(20261206);
  for (size_t key_size : {0, 1, 32, 63, 64, 65, 200}) {
    for (size_t message_size : {0, 1, 55, 64, 1000}) {
      std::string key(key_size, '\0'), message(message_size, '\0');
      for (char& c : key) c = static_cast<char>(bytes());
      for (char& c : message) c = static_cast<char>(bytes());
      unsigned char want[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), want, &len);
      EXPECT_EQ(HmacSha256(key, message), std::string(reinterpret_cast<char*>(want), len))
          << key_size << " " << message_size;
    }
  }
  EXPECT_EQ(absl::BytesToHexString(Sha256Digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Keyring, SealsWithAFreshIvAndOpensOnlyWhereSealed) {
  auto ring = Ring({'a'});
  ASSERT_OK_AND_ASSIGN(std::string one, ring->Seal("Jane Example", "sars.sar/SAR-1"));
  ASSERT_OK_AND_ASSIGN(std::string two, ring->Seal("Jane Example", "sars.sar/SAR-1"));
  EXPECT_NE(one, two);  // random IV: equal plaintexts do not show as equal cells
  EXPECT_EQ(one.find("Jane"), std::string::npos);
  EXPECT_THAT(ring->Open(one, "sars.sar/SAR-1"), IsOk());
  EXPECT_EQ(ring->Open(one, "sars.sar/SAR-1").value(), "Jane Example");
  EXPECT_THAT(Keyring::KeyIdOf(one), IsOk());
  EXPECT_EQ(Keyring::KeyIdOf(one).value(), ring->current_key_id());
  EXPECT_EQ(ring->current_key_id().size(), 16u);
  // Another row or column: the associated data differs.
  EXPECT_THAT(ring->Open(one, "sars.sar/SAR-2"), StatusIs(absl::StatusCode::kDataLoss, _));
  EXPECT_THAT(ring->Open(one, "referrals.referral/SAR-1"),
              StatusIs(absl::StatusCode::kDataLoss, _));
}

// Sealing and opening reuse cipher contexts that hold the key's schedule. What they produce
// must be plain AES-256-GCM (opened here by a fresh OpenSSL context), and a context must stay
// right after failures and across threads.
TEST(Keyring, ReusedContextsAreStandardGcmAndSurviveFailuresAndThreads) {
  auto ring = Ring({'k'});
  const std::string key(Keyring::kKeySize, 'k');
  auto open_fresh = [&](const std::string& sealed, const std::string& aad) -> std::string {
    constexpr size_t kHeader = 4 + 8 + 12, kTag = 16;
    const auto* u = reinterpret_cast<const unsigned char*>(sealed.data());
    const std::string full_aad = sealed.substr(0, kHeader) + aad;
    std::string out(sealed.size() - kHeader - kTag, '\0');
    std::string tag = sealed.substr(sealed.size() - kTag);
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    int len = 0;
    const bool ok =
        EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), nullptr,
                           reinterpret_cast<const unsigned char*>(key.data()), u + 12) == 1 &&
        EVP_DecryptUpdate(c, nullptr, &len, reinterpret_cast<const unsigned char*>(full_aad.data()),
                          static_cast<int>(full_aad.size())) == 1 &&
        EVP_DecryptUpdate(c, reinterpret_cast<unsigned char*>(out.data()), &len, u + kHeader,
                          static_cast<int>(out.size())) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) == 1 &&
        EVP_DecryptFinal_ex(c, reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? out : "<failed>";
  };
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string text = absl::StrCat("subject ", t, "/", i, std::string(i % 40, 'x'));
        const std::string aad = absl::StrCat("cell/", t, "/", i);
        absl::StatusOr<std::string> sealed = ring->Seal(text, aad);
        if (!sealed.ok() || open_fresh(*sealed, aad) != text) ++wrong;
        std::string bad = *sealed;
        bad[bad.size() - 1 - i % 16] ^= 0x20;
        if (ring->Open(bad, aad).ok()) ++wrong;  // a failed open ...
        if (ring->Open(*sealed, aad + "!").ok()) ++wrong;
        absl::StatusOr<std::string> opened = ring->Open(*sealed, aad);  // ... then a good one
        if (!opened.ok() || *opened != text) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(PublicRandomBytes, NeverRepeatsAcrossBlocksOrIntoAForkedChild) {
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {  // 60,000 bytes: many 4 KiB blocks, split across their ends
    std::string iv(12, '\0');
    ASSERT_TRUE(PublicRandomBytes(reinterpret_cast<unsigned char*>(iv.data()), iv.size()));
    ASSERT_TRUE(seen.insert(iv).second) << "repeated at " << i;
  }
  // A child forked with part of the block unused must not hand out what the parent will.
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    unsigned char mine[16];
    const bool ok = PublicRandomBytes(mine, sizeof mine);
    const ssize_t n = write(pipe_fds[1], mine, ok ? sizeof mine : 0);
    _exit(n == sizeof mine ? 0 : 1);
  }
  close(pipe_fds[1]);
  unsigned char parents[16], childs[16];
  ASSERT_TRUE(PublicRandomBytes(parents, sizeof parents));
  ASSERT_EQ(read(pipe_fds[0], childs, sizeof childs), static_cast<ssize_t>(sizeof childs));
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(std::string(reinterpret_cast<char*>(parents), 16),
            std::string(reinterpret_cast<char*>(childs), 16));
}

TEST(Keyring, EveryFlippedByteIsDetected) {
  auto ring = Ring({'a'});
  ASSERT_OK_AND_ASSIGN(std::string sealed, ring->Seal("narrative of suspicion", "c/r"));
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] ^= 0x01;
    EXPECT_FALSE(ring->Open(bad, "c/r").ok()) << "byte " << i;
  }
  EXPECT_THAT(ring->Open(sealed.substr(0, sealed.size() - 1), "c/r"),
              StatusIs(absl::StatusCode::kDataLoss, _));
  EXPECT_THAT(ring->Open("plain text", "c/r"), StatusIs(absl::StatusCode::kDataLoss, _));
}

TEST(Keyring, RotationOpensOldValuesAndSealsWithTheNewKey) {
  auto old_ring = Ring({'a'});
  ASSERT_OK_AND_ASSIGN(std::string old_value, old_ring->Seal("v", "x"));
  auto rotated = Ring({'b', 'a'});
  EXPECT_NE(rotated->current_key_id(), old_ring->current_key_id());
  EXPECT_EQ(rotated->Open(old_value, "x").value(), "v");
  ASSERT_OK_AND_ASSIGN(std::string new_value, rotated->Seal("v", "x"));
  EXPECT_EQ(Keyring::KeyIdOf(new_value).value(), rotated->current_key_id());
  // With the old key dropped, its values no longer open, and the error names the key.
  auto new_only = Ring({'b'});
  EXPECT_THAT(new_only->Open(old_value, "x"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                       HasSubstr(old_ring->current_key_id())));
}

TEST(Keyring, RefusesBadKeys) {
  EXPECT_THAT(Keyring::FromKeys({}), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(Keyring::FromKeys({std::string(16, 'a')}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
  EXPECT_THAT(Keyring::FromKeys({std::string(32, 'a'), std::string(32, 'a')}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
}

TEST(KeyFiles, ANewKeyIsPrivateAndReadBack) {
  TempDir dir;
  const std::string path = dir.File("k.key");
  ASSERT_THAT(WriteNewKeyFile(path, 32), IsOk());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(WriteNewKeyFile(path, 32), StatusIs(absl::StatusCode::kAlreadyExists, _));
  EXPECT_THAT(Keyring::FromFiles({path}), IsOk());
}

TEST(KeyFiles, RefusesMissingShortAndWorldReadableFiles) {
  TempDir dir;
  EXPECT_THAT(Keyring::FromFiles({dir.File("missing.key")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing.key")));
  const std::string shared = dir.File("shared.key");
  ASSERT_THAT(WriteNewKeyFile(shared, 32), IsOk());
  ::chmod(shared.c_str(), 0644);
  EXPECT_THAT(Keyring::FromFiles({shared}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chmod 600")));
  const std::string short_key = dir.File("short.key");
  ASSERT_THAT(WriteNewKeyFile(short_key, 16), IsOk());
  EXPECT_THAT(Keyring::FromFiles({short_key}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exactly 32 bytes")));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

v1::Referral SampleReferral(int i, const std::string& name) {
  v1::Referral r;
  r.set_referral_id(absl::StrCat("REF-", absl::Hex(i, absl::kZeroPad16)));
  r.set_sar_id("SAR-0000000000000001");
  r.set_organisation("NFK");
  r.set_state(v1::REFERRAL_STATE_RECEIVED);
  *r.mutable_package()->mutable_sar() = SampleSar(name);
  return r;
}

const Migration kSchema[] = {kMessagingMigration, kReferralStoreMigration};

TEST(SealedCells, NoPlaintextReachesTheDatabaseOrItsWal) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(path, kSchema, Ring({'a'})));
  ASSERT_THAT(db->Transact([&](Txn& txn) -> absl::Status {
    v1::Referral r = SampleReferral(1, "Zebedee Sentinelname");
    RETURN_IF_ERROR(SaveReferral(txn, r, absl::Now()));
    v1::Envelope env;
    env.set_message_id("EV-1");
    env.mutable_event()->set_referral_id(r.referral_id());
    *env.mutable_package() = r.package();
    return Enqueue(txn, "NFK", env, absl::Now());
  }),
              IsOk());
  // The WAL holds the commit (no checkpoint has run yet): scan it and the main file.
  const std::string wal = Slurp(path + "-wal");
  ASSERT_FALSE(wal.empty());
  EXPECT_EQ(wal.find("Sentinelname"), std::string::npos);
  EXPECT_EQ(Slurp(path).find("Sentinelname"), std::string::npos);
  // Positive control: the value is there, and opens with the key.
  ASSERT_THAT(db->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(v1::Referral r, LoadReferral(txn, SampleReferral(1, "").referral_id()));
    EXPECT_EQ(r.package().sar().subjects(0).full_name(), "Zebedee Sentinelname");
    return absl::OkStatus();
  }),
              IsOk());
}

TEST(SealedCells, ACellCopiedToAnotherRowDoesNotOpen) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("s.db"), kSchema, Ring({'a'})));
  const std::string a = SampleReferral(1, "").referral_id();
  const std::string b = SampleReferral(2, "").referral_id();
  ASSERT_THAT(db->Transact([&](Txn& txn) -> absl::Status {
    v1::Referral r1 = SampleReferral(1, "First Person");
    v1::Referral r2 = SampleReferral(2, "Second Person");
    RETURN_IF_ERROR(SaveReferral(txn, r1, absl::Now()));
    RETURN_IF_ERROR(SaveReferral(txn, r2, absl::Now()));
    // An attacker with write access swaps row b's cell for row a's.
    return txn.Exec(
        "UPDATE referrals SET referral = (SELECT referral FROM referrals WHERE referral_id = ?) "
        "WHERE referral_id = ?",
        {a, b});
  }),
              IsOk());
  EXPECT_THAT(db->Read([&](Txn& txn) { return LoadReferral(txn, b).status(); }),
              StatusIs(absl::StatusCode::kDataLoss, _));
  EXPECT_THAT(db->Read([&](Txn& txn) { return LoadReferral(txn, a).status(); }), IsOk());
}

TEST(SealedCells, WithoutKeysSealingFails) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("s.db"), kSchema));
  EXPECT_THAT(db->Transact([&](Txn& txn) -> absl::Status {
    v1::Referral r = SampleReferral(1, "A Person");
    return SaveReferral(txn, r, absl::Now());
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without data keys")));
}

TEST(Reseal, MovesEveryCellToTheNewKeyAndThenTheOldKeyCanGo) {
  TempDir dir;
  const std::string path = dir.File("s.db");
  auto old_ring = Ring({'a'});
  constexpr int kRows = 450;  // more than two batches
  {
    ASSERT_OK_AND_ASSIGN(auto db, Database::Open(path, kSchema, old_ring));
    ASSERT_THAT(db->Transact([&](Txn& txn) -> absl::Status {
      for (int i = 0; i < kRows; ++i) {
        v1::Referral r = SampleReferral(i, absl::StrCat("Person ", i));
        RETURN_IF_ERROR(SaveReferral(txn, r, absl::Now()));
      }
      return absl::OkStatus();
    }),
                IsOk());
  }
  auto rotated = Ring({'b', 'a'});
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(path, kSchema, rotated));
  ASSERT_OK_AND_ASSIGN(ResealReport dry,
                       Reseal(*db, ReferralSealedColumns(), rotated->current_key_id(), true));
  EXPECT_EQ(dry.resealed, 0);
  EXPECT_EQ(dry.before[old_ring->current_key_id()], kRows);
  ASSERT_OK_AND_ASSIGN(ResealReport done,
                       Reseal(*db, ReferralSealedColumns(), rotated->current_key_id(), false));
  EXPECT_EQ(done.resealed, kRows);
  ASSERT_OK_AND_ASSIGN(ResealReport again,
                       Reseal(*db, ReferralSealedColumns(), rotated->current_key_id(), false));
  EXPECT_EQ(again.resealed, 0);
  EXPECT_EQ(again.before[rotated->current_key_id()], kRows);
  db.reset();

  ASSERT_OK_AND_ASSIGN(auto reopened, Database::Open(path, kSchema, Ring({'b'})));
  ASSERT_THAT(reopened->Read([&](Txn& txn) -> absl::Status {
    for (int i = 0; i < kRows; ++i) {
      ASSIGN_OR_RETURN(v1::Referral r, LoadReferral(txn, SampleReferral(i, "").referral_id()));
      EXPECT_EQ(r.package().sar().subjects(0).full_name(), absl::StrCat("Person ", i));
    }
    return absl::OkStatus();
  }),
              IsOk());
}

}  // namespace
}  // namespace sarloop
