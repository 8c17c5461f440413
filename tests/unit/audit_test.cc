#include "common/audit.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::TempDir;
using ::testing::HasSubstr;

class AuditTest : public ::testing::Test {
 protected:
  // A log of `n` entries with a signed checkpoint at its head.
  void Make(int n) {
    db_path_ = dir_.File(absl::StrCat("svc", ++dbs_, ".db"));
    auto db = Database::Open(db_path_, std::vector<Migration>{kAuditMigration});
    ASSERT_THAT(db, IsOk());
    db_ = std::move(*db);
    for (int i = 1; i <= n; ++i) {
      AuditEntry e{absl::FromUnixSeconds(1700000000 + i),
                   "spiffe://sarloop/force/NFK/psd",
                   "officer-" + std::to_string(i % 3),
                   "/sarloop.v1.Force/Acknowledge",
                   "REF-0123456789abcdef",
                   i % 5 == 0 ? 9 : 0,
                   ""};
      ASSERT_THAT(db_->Transact([&](Txn& t) { return AppendAudit(t, e); }), IsOk());
    }
    auto cp = AuditCheckpointer::Create(*db_, key(), checkpoints());
    ASSERT_THAT(cp, IsOk());
    ASSERT_THAT((*cp)->Checkpoint(), IsOk());
  }
  std::string key() const { return db_path_ + ".audit-key"; }
  std::string checkpoints() const { return db_path_ + ".audit-checkpoints"; }
  AuditReport Verify() {
    auto report = VerifyAudit(db_path_, checkpoints(), key() + ".pub");
    EXPECT_THAT(report, IsOk());
    return report.ok() ? *report : AuditReport{};
  }
  void Tamper(const std::string& sql) {
    ASSERT_THAT(db_->Transact([&](Txn& t) { return t.Exec(sql); }), IsOk());
  }

  TempDir dir_;
  int dbs_ = 0;
  std::string db_path_;
  std::unique_ptr<Database> db_;
};

TEST_F(AuditTest, AnUntouchedLogVerifies) {
  Make(50);
  AuditReport r = Verify();
  EXPECT_EQ(r.first_bad, 0) << r.problem;
  EXPECT_EQ(r.entries, 50);
  EXPECT_EQ(r.checkpoints, 1);
}

TEST_F(AuditTest, EveryChangedEntryIsNamed) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 20; ++trial) {
    Make(40);
    const int victim = std::uniform_int_distribution<int>(1, 40)(rng);
    const char* columns[] = {"user = 'mallory'", "code = 7", "referral_id = 'REF-ffffffffffffffff'",
                             "at = at + 1", "identity = 'spiffe://sarloop/force/SFK/psd'"};
    Tamper(absl::StrCat("UPDATE audit SET ", columns[trial % 5], " WHERE seq = ", victim));
    AuditReport r = Verify();
    EXPECT_EQ(r.first_bad, victim) << r.problem;
    EXPECT_THAT(r.problem, HasSubstr("does not match"));
  }
}

TEST_F(AuditTest, ADeletedEntryIsNamed) {
  Make(40);
  Tamper("DELETE FROM audit WHERE seq = 23");
  AuditReport r = Verify();
  EXPECT_EQ(r.first_bad, 23);
  EXPECT_THAT(r.problem, HasSubstr("missing"));
}

TEST_F(AuditTest, ACutTailIsCaughtByTheSignedCheckpoint) {
  Make(40);
  Tamper("DELETE FROM audit WHERE seq > 31");
  AuditReport r = Verify();
  EXPECT_EQ(r.first_bad, 32);
  EXPECT_THAT(r.problem, HasSubstr("tail was cut"));
}

TEST_F(AuditTest, ARewrittenChainDoesNotMatchTheCheckpoint) {
  Make(10);
  // An attacker recomputes a consistent chain for changed entries, but cannot re-sign.
  Tamper("DELETE FROM audit WHERE seq >= 5");
  for (int i = 5; i <= 10; ++i) {
    AuditEntry e{absl::FromUnixSeconds(1800000000 + i),
                 "spiffe://sarloop/force/NFK/psd",
                 "x",
                 "/sarloop.v1.Force/ListInbox",
                 "",
                 0,
                 ""};
    ASSERT_THAT(db_->Transact([&](Txn& t) { return AppendAudit(t, e); }), IsOk());
  }
  AuditReport r = Verify();
  EXPECT_EQ(r.first_bad, 10);
  EXPECT_THAT(r.problem, HasSubstr("signed checkpoint"));
}

TEST_F(AuditTest, AnEmptiedOrMissingCheckpointFileIsAFailure) {
  Make(5);
  { std::ofstream truncate(checkpoints(), std::ios::trunc); }
  AuditReport r = Verify();
  EXPECT_EQ(r.first_bad, 1);
  EXPECT_THAT(r.problem, HasSubstr("holds no checkpoint"));
  std::filesystem::remove(checkpoints());
  r = Verify();
  EXPECT_EQ(r.first_bad, 1);
  EXPECT_THAT(r.problem, HasSubstr("no signed checkpoint file"));
}

TEST_F(AuditTest, AForgedCheckpointIsRefused) {
  Make(5);
  {
    std::ofstream out(checkpoints(), std::ios::app);
    out << "5 " << std::string(64, 'a') << " " << std::string(128, 'b') << "\n";
  }
  AuditReport r = Verify();
  EXPECT_NE(r.first_bad, 0);
  EXPECT_THAT(r.problem, HasSubstr("bad signature"));
}

}  // namespace
}  // namespace sarloop
