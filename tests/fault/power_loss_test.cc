// Power loss: ukfiu's desk (validate, persist, outbox, idempotency record) runs on a database whose
// files keep only what was synced when the power is cut (power_vfs.h), at a random write, sync or
// truncate. After each cut the files are brought back as a disk would hold them and reopened:
// every SAR and referral the desk acknowledged must be there, with the DISPATCHED envelopes for
// the force and the NCA. The same run with synchronous=NORMAL, or with a commit acknowledged
// before it happens, must lose something: otherwise the test could not tell.
#include <random>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/fault.h"
#include "common/messaging/messaging.h"
#include "common/reference/reference.h"
#include "common/referral/referral_store.h"
#include "common/server/server.h"
#include "services/ukfiu/desk.h"
#include "tests/fault/power_vfs.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::PowerVfs;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;

// The unsafe mode under test, if any (fault.h's seam, installed for this process).
class UnsafeSwitch : public fault::Injector {
 public:
  void Reached(const char*) override {}
  bool Unsafe(const char* mode) override { return mode_ == mode; }
  int DuplicatePercent() override { return 0; }
  std::string mode_;
};

UnsafeSwitch& Switch() {
  static UnsafeSwitch* s = [] {
    auto* sw = new UnsafeSwitch;
    fault::Install(sw);
    PowerVfs::Install();
    return sw;
  }();
  return *s;
}

struct Acked {
  std::set<std::string> sars;
  std::set<std::string> referrals;
};

std::vector<Migration> Schema() {
  return ServiceMigrations(ukfiu::DeskMigrations(), ukfiu::DeskMigrationsAfterAudit());
}

// Runs the desk until the power goes (or `ops` operations are done), recording what it
// acknowledged.
Acked RunUntilCut(const std::string& path, int ops, int64_t cut_after, std::mt19937_64& rng) {
  Acked acked;
  auto db = Database::Open(path, Schema(), TestKeys());
  if (!db.ok()) return acked;  // the power went while opening: nothing acknowledged
  ManualClock clock(absl::FromUnixSeconds(1700000000));
  ukfiu::DeskOptions options;
  options.subject_key = std::string(32, 's');
  options.feedback.set_due_days(90);
  options.reachable = {"NFK", "SFK"};
  ukfiu::Desk desk(**db, clock, ReferenceData::BuiltIn(), options);
  Call call;
  call.actor.set_identity("spiffe://sarloop/ukfiu/intake");
  call.scope = "power";
  PowerVfs::CutAfter(cut_after);
  std::vector<std::string> sars;
  for (int i = 0; i < ops && !PowerVfs::PowerIsOff(); ++i) {
    if (sars.empty() || rng() % 2 == 0) {
      v1::SubmitSarRequest req;
      req.set_request_id(absl::StrCat("s", i));
      *req.mutable_sar() = SampleSar(absl::StrCat("Person ", i));
      auto resp = desk.SubmitSar(call, req);
      if (resp.ok()) {
        acked.sars.insert(resp->sar().sar_id());
        sars.push_back(resp->sar().sar_id());
      }
    } else {
      v1::ReferSarRequest req;
      req.set_request_id(absl::StrCat("r", i));
      req.set_sar_id(sars.back());
      req.set_organisation(rng() % 2 ? "NFK" : "SFK");
      *req.mutable_thr() = SampleThr();
      auto resp = desk.Refer(call, req);
      if (resp.ok()) acked.referrals.insert(resp->referral().referral_id());
    }
  }
  return acked;
}

// What survived: the number of acknowledged SARs and referrals missing after recovery (a referral
// counts as missing if its row or either DISPATCHED envelope is gone).
int Lost(const std::string& path, const Acked& acked) {
  auto db = Database::Open(path, Schema(), TestKeys());
  if (!db.ok()) {
    ADD_FAILURE() << "the database does not open after the cut: " << db.status();
    return static_cast<int>(acked.sars.size() + acked.referrals.size());
  }
  int lost = 0;
  EXPECT_THAT((*db)->Read([&](Txn& txn) -> absl::Status {
    for (const std::string& id : acked.sars) {
      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT 1 FROM sars WHERE sar_id = ?", {id}));
      lost += rows.empty();
    }
    ASSIGN_OR_RETURN(std::vector<OutboxEntry> outbox, ReadOutbox(txn));
    std::map<std::string, int> dispatched;
    for (const OutboxEntry& e : outbox) {
      if (e.envelope.event().type() == v1::EVENT_TYPE_DISPATCHED) {
        ++dispatched[e.envelope.event().referral_id()];
      }
    }
    for (const std::string& id : acked.referrals) {
      ASSIGN_OR_RETURN(bool has, HasReferral(txn, id));
      lost += !has || dispatched[id] != 2;
    }
    return absl::OkStatus();
  }),
              testing::IsOk());
  return lost;
}

struct Tally {
  int cuts = 0;
  int acknowledged = 0;
  int lost = 0;
};

// Cuts power `cuts` times, or (stop_at_first_loss) until the first loss, at most `cuts` times.
Tally CutMany(const std::string& mode, int cuts, uint64_t seed, bool stop_at_first_loss = false) {
  Switch().mode_ = mode;
  std::mt19937_64 rng(seed);
  Tally t;
  for (int i = 0; i < cuts; ++i) {
    TempDir dir;
    const std::string path = dir.File("ukfiu.db");
    // About 40 write calls per acknowledged operation: cut anywhere in the first ~25 operations.
    const int64_t cut_after = static_cast<int64_t>(rng() % 1000);
    Acked acked = RunUntilCut(path, 40, cut_after, rng);
    PowerVfs::CutPower();  // if the run ended first, cut now: nothing unsynced may survive either
    PowerVfs::Restore();
    t.cuts++;
    t.acknowledged += static_cast<int>(acked.sars.size() + acked.referrals.size());
    t.lost += Lost(path, acked);
    if (stop_at_first_loss && t.lost > 0) break;
  }
  Switch().mode_.clear();
  return t;
}

constexpr int kCuts = 150;

// SARLOOP_FAULT_SEED replays a run; otherwise a fresh seed. Printed (and recorded in the test's
// XML) before the test runs, so a failure, a crash or a hang can be replayed.
uint64_t Seed() {
  const char* env = std::getenv("SARLOOP_FAULT_SEED");
  uint64_t seed = 0;
  if (env == nullptr || !absl::SimpleAtoi(env, &seed)) seed = std::random_device{}();
  std::cout << "seed " << seed << " (replay: SARLOOP_FAULT_SEED=" << seed << ")" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

// The unsafe modes lose an acknowledged operation only when a cut falls in the window they open,
// so the teeth tests cut until they see a loss (at most this many times) instead of a fixed count
// that a lucky seed could pass without one.
constexpr int kMaxCutsForALoss = 400;

TEST(PowerLoss, EveryAcknowledgedReferralSurvivesEveryCut) {
  const uint64_t seed = Seed();
  Tally t = CutMany("", kCuts, seed);
  std::cout << "power loss: " << t.cuts << " cuts, " << t.acknowledged
            << " acknowledged operations checked, " << t.lost << " lost (seed " << seed << ")\n";
  RecordProperty("cuts", t.cuts);
  RecordProperty("acknowledged", t.acknowledged);
  EXPECT_GT(t.acknowledged, kCuts);  // the cuts fell after real work, not only at the start
  EXPECT_EQ(t.lost, 0) << "seed " << seed;
}

// The teeth: the same test must catch a service that does not sync its commits.
TEST(PowerLoss, CatchesSynchronousNormal) {
  const uint64_t seed = Seed();
  Tally t = CutMany("sync_normal", kMaxCutsForALoss, seed, true);
  std::cout << "synchronous=NORMAL: " << t.lost << " of " << t.acknowledged
            << " acknowledged operations lost in " << t.cuts << " cuts\n";
  EXPECT_GT(t.lost, 0) << "seed " << seed;
}

// ... and one that replies before its commit.
TEST(PowerLoss, CatchesAcknowledgingBeforeCommit) {
  const uint64_t seed = Seed();
  Tally t = CutMany("ack_before_commit", kMaxCutsForALoss, seed, true);
  std::cout << "ack before commit: " << t.lost << " of " << t.acknowledged
            << " acknowledged operations lost in " << t.cuts << " cuts\n";
  EXPECT_GT(t.lost, 0) << "seed " << seed;
}

}  // namespace
}  // namespace sarloop
