// The pieces of watch streams a unit test reaches without a network: the signed tokens, the feed
// a force's events go into, and where a watch request starts.
#include "common/messaging/watch.h"

#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "common/referral/event_log.h"
#include "common/referral/watch_rpc.h"
#include "common/security/token.h"
#include "common/server/server.h"
#include "services/force/desk.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;
using ::testing::HasSubstr;

TEST(TokenSigner, OpensOnlyWhatItSignedForTheSameKindAndQuery) {
  TokenSigner signer(std::string(32, 'k'));
  const std::string token = signer.Sign("page", "state=1", "payload 42");
  ASSERT_OK_AND_ASSIGN(std::string payload, signer.Open("page_token", "page", "state=1", token));
  EXPECT_EQ(payload, "payload 42");
  // Another query, another kind, another service's secret, an altered token, garbage.
  EXPECT_THAT(signer.Open("page_token", "page", "state=2", token),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  EXPECT_THAT(signer.Open("cursor", "watch", "state=1", token),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cursor")));
  EXPECT_THAT(TokenSigner(std::string(32, 'x')).Open("page_token", "page", "state=1", token),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  std::string altered = token;
  altered[0] = altered[0] == 'A' ? 'B' : 'A';
  EXPECT_THAT(signer.Open("page_token", "page", "state=1", altered),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  for (const char* junk : {"", ".", "abc", "a.b.c", "%%%.%%%"}) {
    EXPECT_THAT(signer.Open("page_token", "page", "state=1", junk),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")))
        << junk;
  }
}

class FeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::Open(
        dir_.File("force.db"),
        ServiceMigrations(force::DeskMigrations(), force::DeskMigrationsAfterAudit()), TestKeys());
    ASSERT_THAT(db, IsOk());
    db_ = std::move(*db);
    desk_ = std::make_unique<force::Desk>(*db_, clock_, force::DeskOptions{"NFK", {"ERSOU"}});
  }

  absl::Status Dispatch(const std::string& referral_id) {
    v1::Envelope env;
    *env.mutable_event() =
        NewEvent(v1::EVENT_TYPE_DISPATCHED, referral_id, "UKFIU", "NFK", v1::Actor(), clock_.Now());
    env.set_message_id(env.event().event_id());
    *env.mutable_event()->mutable_thr() = SampleThr();
    env.mutable_package()->set_referral_id(referral_id);
    *env.mutable_package()->mutable_sar() = SampleSar();
    const Identity ukfiu{"spiffe://sarloop/ukfiu", "ukfiu", "UKFIU", ""};
    RETURN_IF_ERROR(db_->Transact([&](Txn& t) { return desk_->Receive(t, ukfiu, env); }));
    // The same envelope again (a retried delivery) stores nothing new.
    return db_->Transact([&](Txn& t) { return desk_->Receive(t, ukfiu, env); });
  }

  TempDir dir_;
  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<Database> db_;
  std::unique_ptr<force::Desk> desk_;
};

TEST_F(FeedTest, HoldsEachEventOnceInTheOrderStoredWithTheReferralAsItStands) {
  ASSERT_THAT(Dispatch("REF-00000000000000a1"), IsOk());
  ASSERT_THAT(Dispatch("REF-00000000000000a2"), IsOk());
  Call call;
  call.actor.set_identity("spiffe://sarloop/force/NFK/psd");
  call.scope = "t";
  v1::ForceStepRequest ack;
  ack.set_request_id("r1");
  ack.set_referral_id("REF-00000000000000a1");
  ASSERT_THAT(desk_->Acknowledge(call, ack), IsOk());

  std::vector<std::pair<int64_t, v1::WatchEvent>> all;
  ASSERT_THAT(referral::ReadReferralFeed(*db_, 0, 64, all), IsOk());
  // Each delivery stores DISPATCHED and the force's receipt; the retried deliveries nothing.
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].second.event().type(), v1::EVENT_TYPE_DISPATCHED);
  EXPECT_EQ(all[0].second.event().referral_id(), "REF-00000000000000a1");
  EXPECT_EQ(all[2].second.event().type(), v1::EVENT_TYPE_DISPATCHED);
  EXPECT_EQ(all[2].second.event().referral_id(), "REF-00000000000000a2");
  EXPECT_EQ(all[4].second.event().type(), v1::EVENT_TYPE_ACKNOWLEDGED);
  std::set<std::string> ids;
  for (size_t i = 0; i < all.size(); ++i) {
    ids.insert(all[i].second.event().event_id());
    if (i > 0) {
      EXPECT_LT(all[i - 1].first, all[i].first);
    }
  }
  EXPECT_EQ(ids.size(), all.size());
  // Each referral as it stands now, without its package.
  EXPECT_EQ(all[0].second.referral().state(), v1::REFERRAL_STATE_ACKNOWLEDGED);
  EXPECT_FALSE(all[0].second.referral().has_package());
  EXPECT_TRUE(all[0].second.has_recorded_at());

  std::vector<std::pair<int64_t, v1::WatchEvent>> after_first, limited;
  ASSERT_THAT(referral::ReadReferralFeed(*db_, all[0].first, 64, after_first), IsOk());
  ASSERT_EQ(after_first.size(), 4u);
  EXPECT_EQ(after_first[0].first, all[1].first);
  ASSERT_THAT(referral::ReadReferralFeed(*db_, 0, 1, limited), IsOk());
  EXPECT_EQ(limited.size(), 1u);
  ASSERT_OK_AND_ASSIGN(int64_t head, referral::ReferralFeedHead(*db_));
  EXPECT_EQ(head, all[4].first);
}

TEST_F(FeedTest, WhereAWatchStarts) {
  ASSERT_THAT(Dispatch("REF-00000000000000b1"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const TokenSigner> signer, TokenSigner::ForDatabase(*db_));
  auto head = [&] { return referral::ReferralFeedHead(*db_); };
  v1::WatchRequest request;
  ASSERT_OK_AND_ASSIGN(WatchStart now, ParseWatchRequest(request, *signer, head));
  EXPECT_EQ(now.after, *head());
  EXPECT_EQ(now.heartbeat, absl::Seconds(15));
  request.set_start(v1::WATCH_START_BEGINNING);
  request.set_heartbeat_seconds(2);
  ASSERT_OK_AND_ASSIGN(WatchStart beginning, ParseWatchRequest(request, *signer, head));
  EXPECT_EQ(beginning.after, 0);
  EXPECT_EQ(beginning.heartbeat, absl::Seconds(2));

  v1::WatchRequest resume;
  resume.set_cursor(WatchCursor(*signer, 7));
  ASSERT_OK_AND_ASSIGN(WatchStart from_cursor, ParseWatchRequest(resume, *signer, head));
  EXPECT_EQ(from_cursor.after, 7);
  resume.set_start(v1::WATCH_START_BEGINNING);
  EXPECT_THAT(ParseWatchRequest(resume, *signer, head),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("start")));
  v1::WatchRequest bad;
  bad.set_heartbeat_seconds(301);
  EXPECT_THAT(ParseWatchRequest(bad, *signer, head),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("heartbeat_seconds")));
  bad.set_heartbeat_seconds(0);
  bad.set_cursor(TokenSigner(std::string(32, 'z')).Sign("watch", "", "7"));
  EXPECT_THAT(ParseWatchRequest(bad, *signer, head),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cursor")));

  // The secret is the database's: a cursor outlives a restart.
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const TokenSigner> again, TokenSigner::ForDatabase(*db_));
  v1::WatchRequest kept;
  kept.set_cursor(WatchCursor(*signer, 7));
  ASSERT_OK_AND_ASSIGN(WatchStart same, ParseWatchRequest(kept, *again, head));
  EXPECT_EQ(same.after, 7);
}

// Where a stream's read runs: on the thread that woke it while few streams are open, on the
// executor once more than the hub's inline_streams are.
TEST(WatchHub, ReadsWhereWokenWhileFewStreamsAreOpenAndOnTheExecutorPastThat) {
  class Holder : public Executor {
   public:
    void Post(std::function<void()> task) override { held.push_back(std::move(task)); }
    void Join() override {}
    std::vector<std::function<void()>> held;
  };
  class Quiet : public internal::WatchStreamBase {
    void Wake() override {}
    void Tick(std::chrono::steady_clock::time_point) override {}
    void Stop() override {}
  };
  Holder executor;
  WatchHub hub(&executor, /*max_streams=*/4, /*inline_streams=*/1);
  Quiet first, second;
  const std::thread::id here = std::this_thread::get_id();
  std::thread::id ran_on;
  const auto read = [&] { ran_on = std::this_thread::get_id(); };

  ASSERT_TRUE(hub.Add(&first));
  hub.Run(read);
  EXPECT_EQ(ran_on, here) << "one stream open: its read runs on the thread that woke it";
  EXPECT_TRUE(executor.held.empty());

  ASSERT_TRUE(hub.Add(&second));
  ran_on = std::thread::id();
  hub.Run(read);
  EXPECT_EQ(ran_on, std::thread::id()) << "two open, past one: the read waits for the executor";
  ASSERT_EQ(executor.held.size(), 1u);
  executor.held.front()();
  EXPECT_EQ(ran_on, here);

  hub.Remove(&second);
  executor.held.clear();
  hub.Run(read);
  EXPECT_TRUE(executor.held.empty()) << "back to one open: read where woken again";
  hub.Remove(&first);
}

}  // namespace
}  // namespace sarloop
