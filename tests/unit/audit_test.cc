#include "common/security/audit.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/security/identity.h"
#include "common/server/witness.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::IsOkAndHolds;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::testing::_;
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

// Refusals beyond the rate are counted, and the count rides on the next one written.
TEST(RefusalBudget, WritesABurstThenTheRateAndCountsTheRest) {
  RefusalBudget budget(/*per_second=*/10, /*burst=*/50);
  absl::Time t = absl::FromUnixSeconds(1700000000);
  int64_t unwritten = -1;
  int written = 0;
  for (int i = 0; i < 1000; ++i) written += budget.Take(t, &unwritten) ? 1 : 0;
  EXPECT_EQ(written, 50);
  // A second later the rate allows ten more; the first carries the 950 counted meanwhile.
  t += absl::Seconds(1);
  ASSERT_TRUE(budget.Take(t, &unwritten));
  EXPECT_EQ(unwritten, 950);
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(budget.Take(t, &unwritten));
    EXPECT_EQ(unwritten, 0);
  }
  EXPECT_FALSE(budget.Take(t, &unwritten));
  // A clock that steps back gives nothing back.
  EXPECT_FALSE(budget.Take(t - absl::Hours(1), &unwritten));
  // Idle long enough, the whole burst again, never more.
  t += absl::Hours(1);
  written = 0;
  for (int i = 0; i < 100; ++i) written += budget.Take(t, &unwritten) ? 1 : 0;
  EXPECT_EQ(written, 50);
  EXPECT_THAT(WithUnwritten(absl::PermissionDeniedError("x may not call y"), 3).message(),
              HasSubstr("and 3 refusals before it"));
  EXPECT_EQ(WithUnwritten(absl::PermissionDeniedError("x"), 0).message(), "x");
}

// Replicas of one organisation share its signing key and may start together: whichever makes
// the key first, every one of them ends up signing with that same key.
TEST_F(AuditTest, ReplicasStartingAtOnceShareOneNewKey) {
  const std::string shared = dir_.File("shared-audit.key");
  constexpr int kReplicas = 8;
  std::vector<std::unique_ptr<Database>> dbs;
  for (int i = 0; i < kReplicas; ++i) {
    auto db = Database::Open(dir_.File(absl::StrCat("replica", i, ".db")),
                             std::vector<Migration>{kAuditMigration});
    ASSERT_THAT(db, IsOk());
    AuditEntry e{absl::FromUnixSeconds(1700000000), "spiffe://sarloop/nca", "", "/x", "", 0, ""};
    ASSERT_THAT((*db)->Transact([&](Txn& t) { return AppendAudit(t, e); }), IsOk());
    dbs.push_back(std::move(*db));
  }
  std::vector<absl::Status> results(kReplicas);
  std::vector<std::unique_ptr<AuditCheckpointer>> checkpointers(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      auto cp = AuditCheckpointer::Create(*dbs[i], shared,
                                          dir_.File(absl::StrCat("replica", i, ".checkpoints")));
      results[i] = cp.status();
      if (cp.ok()) checkpointers[i] = std::move(*cp);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kReplicas; ++i) {
    ASSERT_THAT(results[i], IsOk()) << "replica " << i;
    ASSERT_THAT(checkpointers[i]->Checkpoint(), IsOk());
    auto report =
        VerifyAudit(dir_.File(absl::StrCat("replica", i, ".db")),
                    dir_.File(absl::StrCat("replica", i, ".checkpoints")), shared + ".pub");
    ASSERT_THAT(report, IsOk()) << "replica " << i << " signed with another key";
  }
  // No half-made key is left behind.
  for (const auto& f :
       std::filesystem::directory_iterator(std::filesystem::path(shared).parent_path())) {
    EXPECT_EQ(f.path().string().find(".new."), std::string::npos) << f.path();
  }
}

TEST_F(AuditTest, AnUntouchedLogVerifies) {
  Make(50);
  AuditReport r = Verify();
  EXPECT_EQ(r.first_bad, 0) << r.problem;
  EXPECT_EQ(r.entries, 50);
  EXPECT_EQ(r.checkpoints, 1);
}

// A refused envelope names the referral its peer said it was about: kept for ever in the log, so
// at most 64 bytes of it, however much the peer sent.
TEST_F(AuditTest, ARefusalKeepsAtMostAnIdsWorthOfThePeersReferralId) {
  Make(0);
  AuditEntry call{absl::FromUnixSeconds(1700000000),
                  "spiffe://sarloop/force/NFK",
                  "",
                  "/sarloop.v1.Delivery/Deliver",
                  "",
                  0,
                  ""};
  AuditRecorder recorder(db_.get(), call);
  ASSERT_THAT(db_->Transact([&](Txn& t) {
    return recorder.RecordRefusal(t, std::string(1 << 20, 'R'),
                                  absl::PermissionDeniedError("not yours"));
  }),
              IsOk());
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("SELECT LENGTH(referral_id), code FROM audit"));
    EXPECT_EQ(rows.size(), 1u);
    if (!rows.empty()) {
      EXPECT_EQ(rows[0].Int(0), 64);
      EXPECT_EQ(rows[0].Int(1), static_cast<int>(absl::StatusCode::kPermissionDenied));
    }
    return absl::OkStatus();
  }),
              IsOk());
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

// --- The witness (common/server/witness.h): what another organisation holds of this log.
// -------------

class WitnessTest : public AuditTest {
 protected:
  void SetUp() override {
    auto db = Database::Open(dir_.File("witness.db"), std::vector<Migration>{kWitnessMigration});
    ASSERT_THAT(db, IsOk());
    witness_db_ = std::move(*db);
    witness_ = std::make_unique<Witness>(*witness_db_, clock_);
  }
  static Call CallAs(const std::string& uri) {
    Call call;
    call.identity = *ParseIdentity(uri);
    return call;
  }
  // The head the service's checkpointer signs now.
  SignedHead Head() {
    auto cp = AuditCheckpointer::Create(*db_, key(), checkpoints());
    EXPECT_THAT(cp, IsOk());
    EXPECT_THAT((*cp)->Checkpoint(), IsOk());
    pem_ = (*cp)->PublicKeyPem();
    return (*cp)->LastHead();
  }
  v1::RecordAuditHeadRequest Request(const SignedHead& h, int64_t prev_seq = 0) {
    v1::RecordAuditHeadRequest r;
    r.set_seq(h.seq);
    r.set_hash(h.hash);
    r.set_signature(h.signature);
    r.set_public_key(pem_);
    if (prev_seq > 0) {
      r.set_prev_seq(prev_seq);
      db_->Read([&](Txn& txn) -> absl::Status {
           auto rows = txn.Query("SELECT hash FROM audit WHERE seq = ?", {prev_seq});
           if (rows.ok() && !rows->empty()) r.set_prev_hash((*rows)[0].Text(0));
           return absl::OkStatus();
         })
          .IgnoreError();
    }
    return r;
  }
  void Append(int n, const std::string& user = "x",
              const std::string& method = "/sarloop.v1.Force/ListInbox") {
    for (int i = 0; i < n; ++i) {
      AuditEntry e{absl::FromUnixSeconds(1700001000 + i),
                   "spiffe://sarloop/force/NFK/psd",
                   user,
                   method,
                   "",
                   0,
                   ""};
      ASSERT_THAT(db_->Transact([&](Txn& t) { return AppendAudit(t, e); }), IsOk());
    }
  }

  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<Database> witness_db_;
  std::unique_ptr<Witness> witness_;
  std::string pem_;
  const Call nfk_ = CallAs("spiffe://sarloop/force/NFK");
};

TEST_F(WitnessTest, TakesAHeadThatContinuesAndRefusesOneThatGoesBack) {
  Make(5);
  const SignedHead first = Head();
  ASSERT_THAT(witness_->Record(nfk_, Request(first)), IsOk());
  Append(3);
  const SignedHead second = Head();
  ASSERT_EQ(second.seq, 8);
  // Past the witnessed head only with proof that the log still holds it.
  EXPECT_THAT(witness_->Record(nfk_, Request(second)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not continue")));
  ASSERT_THAT(witness_->Record(nfk_, Request(second, 5)), IsOk());
  auto held = witness_->Get(nfk_, "spiffe://sarloop/force/NFK");
  ASSERT_THAT(held, IsOk());
  EXPECT_EQ(held->head().seq(), 8);
  // The same head again is fine; an older one is a rollback.
  EXPECT_THAT(witness_->Record(nfk_, Request(second, 5)), IsOk());
  EXPECT_THAT(witness_->Record(nfk_, Request(first)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("went back")));
}

TEST_F(WitnessTest, RefusesForgedSignaturesOtherKeysAndOtherCallers) {
  Make(5);
  const SignedHead head = Head();
  SignedHead forged = head;
  forged.signature[0] ^= 1;
  EXPECT_EQ(FieldOf(witness_->Record(nfk_, Request(forged)).status()), "signature");
  ASSERT_THAT(witness_->Record(nfk_, Request(head)), IsOk());
  // A log re-signed with a new key (the old key lost, or never had): refused.
  std::filesystem::remove(key());
  std::filesystem::remove(key() + ".pub");
  Append(1);
  const SignedHead resigned = Head();
  EXPECT_THAT(witness_->Record(nfk_, Request(resigned, 5)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("audit key")));
  // Only a service reports its own head; a service reads only its own.
  EXPECT_THAT(witness_->Record(CallAs("spiffe://sarloop/force/NFK/psd"), Request(head)),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
  EXPECT_THAT(witness_->Get(CallAs("spiffe://sarloop/force/SFK"), "spiffe://sarloop/force/NFK"),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
  EXPECT_THAT(witness_->Get(CallAs("spiffe://sarloop/analyst/alice"), "spiffe://sarloop/force/NFK"),
              IsOk());
  EXPECT_THAT(witness_->Get(nfk_, "spiffe://sarloop/force/SFK").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
}

// Parsed keys are kept between verifications: each head still verifies with its own key only,
// whichever key was seen first, and text that is no Ed25519 key is refused every time.
TEST_F(WitnessTest, KeptKeysVerifyOnlyTheirOwnHeads) {
  Make(5);
  const SignedHead a = Head();
  const std::string pem_a = pem_;
  auto other = AuditCheckpointer::Create(*db_, dir_.File("other.key"), dir_.File("other.cp"));
  ASSERT_THAT(other, IsOk());
  ASSERT_THAT((*other)->Checkpoint(), IsOk());
  const SignedHead b = (*other)->LastHead();
  const std::string pem_b = (*other)->PublicKeyPem();
  ASSERT_NE(pem_a, pem_b);
  for (int round = 0; round < 3; ++round) {
    EXPECT_THAT(VerifyHeadSignature(pem_a, a), IsOk()) << round;
    EXPECT_THAT(VerifyHeadSignature(pem_b, b), IsOk()) << round;
    EXPECT_EQ(FieldOf(VerifyHeadSignature(pem_b, a)), "signature") << round;
    EXPECT_EQ(FieldOf(VerifyHeadSignature(pem_a, b)), "signature") << round;
    SignedHead forged = a;
    forged.hash[0] ^= 1;
    EXPECT_EQ(FieldOf(VerifyHeadSignature(pem_a, forged)), "signature") << round;
    EXPECT_EQ(FieldOf(VerifyHeadSignature("not a key", a)), "public_key") << round;
    std::string cut = pem_a;
    cut.erase(cut.size() / 2, 8);
    EXPECT_EQ(FieldOf(VerifyHeadSignature(cut, a)), "public_key") << round;
  }
  // The same from several threads at once.
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!VerifyHeadSignature(pem_a, a).ok() || VerifyHeadSignature(pem_a, b).ok()) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(WitnessTest, VerifyCatchesARollbackItsOwnDiskHides) {
  Make(5);
  const SignedHead first = Head();
  Append(3);
  const SignedHead second = Head();
  // The attacker cuts entries 6-8 and the checkpoint lines that covered them: the disk alone
  // verifies clean.
  Tamper("DELETE FROM audit WHERE seq > 5");
  {
    std::ofstream rewrite(checkpoints(), std::ios::trunc);
    rewrite << first.seq << " " << absl::BytesToHexString(first.hash) << " "
            << absl::BytesToHexString(first.signature) << "\n";
  }
  EXPECT_EQ(Verify().first_bad, 0);
  // Against the witnessed head it does not.
  auto report = VerifyAudit(db_path_, checkpoints(), key() + ".pub", &second);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->first_bad, 6);
  EXPECT_THAT(report->problem, HasSubstr("rolled back or cut"));
  // A log rewritten at the witnessed entry is caught too.
  Append(3, "someone else");
  report = VerifyAudit(db_path_, checkpoints(), key() + ".pub", &second);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->first_bad, 8);
  EXPECT_THAT(report->problem, HasSubstr("rewritten"));
}

// The NCA and UKFIU witness each other and audit every head they take: a log grown by those
// entries alone waits (or the two would report to each other for ever); anything else, a
// rollback, or the quiet limit sends it.
TEST_F(WitnessTest, ALogGrownOnlyByWitnessingWaitsAndAnythingElseGoesAtOnce) {
  Make(5);
  const SignedHead witnessed = Head();
  const WitnessedHead held{witnessed.seq, witnessed.hash};
  Append(3, "", "/sarloop.v1.AuditWitness/RecordAuditHead");
  const SignedHead witnessing = Head();
  ASSERT_EQ(witnessing.seq, 8);
  EXPECT_THAT(MustReportHead(*db_, held, witnessing, /*quiet_expired=*/false), IsOkAndHolds(false));
  EXPECT_THAT(MustReportHead(*db_, held, witnessing, /*quiet_expired=*/true), IsOkAndHolds(true));
  // The witness holds an entry of another hash there: a log rolled back and grown again.
  EXPECT_THAT(MustReportHead(*db_, {witnessed.seq, "another hash"}, witnessing, false),
              IsOkAndHolds(true));
  // Nothing witnessed yet, or a head that does not go past it.
  EXPECT_THAT(MustReportHead(*db_, {}, witnessing, false), IsOkAndHolds(true));
  EXPECT_THAT(MustReportHead(*db_, {witnessing.seq, witnessing.hash}, witnessed, false),
              IsOkAndHolds(true));
  // Any other entry, even a read of what the witness holds, goes at once with the tail.
  Append(1, "", "/sarloop.v1.AuditWitness/GetAuditHead");
  Append(2, "", "/sarloop.v1.AuditWitness/RecordAuditHead");
  EXPECT_THAT(MustReportHead(*db_, held, Head(), false), IsOkAndHolds(true));
  // Once that is witnessed, witnessing alone waits again.
  const SignedHead later = Head();
  Append(1, "", "/sarloop.v1.AuditWitness/RecordAuditHead");
  EXPECT_THAT(MustReportHead(*db_, {later.seq, later.hash}, Head(), false), IsOkAndHolds(false));
}

}  // namespace
}  // namespace sarloop
