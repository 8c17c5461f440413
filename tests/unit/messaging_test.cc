#include "common/messaging/messaging.h"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/delivery_service.h"
#include "common/referral/event_log.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::IsOkAndHolds;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;
using ::testing::HasSubstr;

v1::Envelope MakeEnvelope(const std::string& referral, int n) {
  v1::Envelope env;
  env.set_message_id(absl::StrCat("m-", referral, "-", n));
  env.mutable_event()->set_event_id(env.message_id());
  env.mutable_event()->set_referral_id(referral);
  return env;
}

// A receiver that fails on cue and records what it took, in order.
class FlakyTransport : public Transport {
 public:
  absl::StatusOr<v1::DeliverResponse> Deliver(const std::string& destination,
                                              const v1::DeliverRequest& request) override {
    std::lock_guard lock(mu_);
    ++calls_;
    largest_request_ = std::max(largest_request_, request.ByteSizeLong());
    if (fail_next_ > 0) {
      --fail_next_;
      return absl::UnavailableError("peer down");
    }
    v1::DeliverResponse response;
    for (int i = 0; i < request.envelopes_size(); ++i) {
      const auto& env = request.envelopes(i);
      // Take at most `take_per_call_` per call, to exercise partial answers.
      if (take_per_call_ > 0 && i >= take_per_call_) break;
      auto* r = response.add_results();
      r->set_message_id(env.message_id());
      if (answer_with_) {
        r->set_status(*answer_with_);
        continue;
      }
      if (env.message_id() == reject_) {
        r->set_status(v1::DELIVERY_STATUS_REJECTED);
        r->set_detail("not ours");
        continue;
      }
      const bool dup = !seen_.insert(env.message_id()).second;
      r->set_status(dup ? v1::DELIVERY_STATUS_DUPLICATE : v1::DELIVERY_STATUS_ACCEPTED);
      if (!dup) taken_.push_back(env.message_id());
    }
    return response;
  }

  std::mutex mu_;
  int fail_next_ = 0;
  int take_per_call_ = 0;
  // When set, every envelope is answered with this status and nothing is taken.
  std::optional<v1::DeliveryStatus> answer_with_;
  size_t largest_request_ = 0;
  int calls_ = 0;
  std::string reject_;
  std::set<std::string> seen_;
  std::vector<std::string> taken_;
};

using ::sarloop::testing::Eventually;

// The peer the receiving tests take batches from.
const std::string kSender = "spiffe://sarloop/force/PEER";

class OutboxTest : public ::testing::Test {
 protected:
  static std::vector<Migration> Schema() {
    return {kMessagingMigration, kRequestDigestMigration, kMessagingIndexesMigration,
            kInboxBySenderMigration};
  }
  void SetUp() override {
    auto db = Database::Open(dir_.File("o.db"), Schema(), TestKeys());
    ASSERT_THAT(db, IsOk());
    db_ = std::move(*db);
  }
  void EnqueueAll(int referrals, int per_referral, const std::string& prefix = "R") {
    // Interleaved across referrals, as concurrent work produces them.
    for (int n = 0; n < per_referral; ++n) {
      for (int r = 0; r < referrals; ++r) {
        ASSERT_THAT(db_->Transact([&](Txn& t) {
          return Enqueue(t, "PEER", MakeEnvelope(absl::StrCat(prefix, r), n), absl::Now());
        }),
                    IsOk());
      }
    }
  }
  int64_t Pending() {
    auto backlog = ReadBacklog(*db_);
    return backlog.ok() && !backlog->empty() ? (*backlog)[0].pending : -1;
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
};

// Records the wake-ups it is given.
class RecordingWorker : public DeliveryWorker {
 public:
  void Start(const std::vector<std::string>&) override {}
  void Notify(const std::string& destination, Urgency urgency) override {
    woken.push_back(destination);
    urgencies.push_back(urgency);
  }
  void Stop() override {}
  std::vector<std::string> woken;
  std::vector<Urgency> urgencies;
};

// What a service sends wakes the worker by itself, once the transaction that enqueued it has
// committed: never before (the worker would find nothing and sleep until its poll), never when it
// rolls back, never for a destination without a peer.
TEST_F(OutboxTest, SendWakesTheWorkerOnlyAfterTheCommit) {
  RecordingWorker worker;
  Outbox outbox(*db_, &worker, {"NFK", "NCA"});
  ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
    RETURN_IF_ERROR(outbox.Send(t, "NFK", MakeEnvelope("R1", 0), absl::Now()));
    EXPECT_TRUE(worker.woken.empty()) << "woken before the commit";
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(worker.woken, std::vector<std::string>{"NFK"});
  EXPECT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
    RETURN_IF_ERROR(outbox.Send(t, "NCA", MakeEnvelope("R2", 0), absl::Now()));
    return absl::AbortedError("rolled back");
  }),
              StatusIs(absl::StatusCode::kAborted, ::testing::_));
  EXPECT_EQ(worker.woken, std::vector<std::string>{"NFK"}) << "woken for a rolled-back send";
  EXPECT_THAT(db_->Transact([&](Txn& t) {
    return outbox.Send(t, "SFK", MakeEnvelope("R3", 0), absl::Now());
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("SFK")));
  EXPECT_EQ(Pending(), 1);
  // The wake-up carries how soon the message must leave.
  ASSERT_THAT(db_->Transact([&](Txn& t) {
    return outbox.Send(t, "NCA", MakeEnvelope("R4", 0), absl::Now(), Urgency::kInform);
  }),
              IsOk());
  EXPECT_EQ(worker.woken, (std::vector<std::string>{"NFK", "NCA"}));
  EXPECT_EQ(worker.urgencies, (std::vector<Urgency>{Urgency::kAtOnce, Urgency::kInform}));
}

// delivery.inform_within_ms: unset keeps the default window, a value sets it, a negative value
// sends every message at once.
TEST(DeliveryOptionsTest, TheInformWindowFollowsTheConfiguration) {
  v1::DeliveryConfig config;
  EXPECT_EQ(DeliveryOptionsFrom(config).inform_within, absl::Milliseconds(100));
  config.set_inform_within_ms(250);
  EXPECT_EQ(DeliveryOptionsFrom(config).inform_within, absl::Milliseconds(250));
  config.set_inform_within_ms(-1);
  EXPECT_EQ(DeliveryOptionsFrom(config).inform_within, absl::ZeroDuration());
}

// Messages that only inform wait for company: three of them go nowhere while their window is
// open (an hour here), and the next message sent at once takes them along, in order, in one call.
TEST_F(OutboxTest, InformingMessagesWaitAndLeaveWithTheNextUrgentOne) {
  FlakyTransport transport;
  DeliveryOptions options;
  options.poll_interval = absl::Hours(1);
  options.inform_within = absl::Hours(1);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  const auto send = [&](const std::string& referral, Urgency urgency) {
    ASSERT_THAT(db_->Transact([&](Txn& t) {
      return Enqueue(t, "PEER", MakeEnvelope(referral, 0), absl::Now());
    }),
                IsOk());
    worker->Notify("PEER", urgency);
  };
  // Once this has gone, the loop's first step (at Start) is behind it.
  send("first", Urgency::kAtOnce);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  for (int i = 0; i < 3; ++i) send(absl::StrCat("told", i), Urgency::kInform);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Pending(), 3) << "an informing message left before its window closed";
  send("urgent", Urgency::kAtOnce);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  worker->Stop();
  std::lock_guard lock(transport.mu_);
  EXPECT_EQ(transport.calls_, 2);
  EXPECT_EQ(transport.taken_, (std::vector<std::string>{"m-first-0", "m-told0-0", "m-told1-0",
                                                        "m-told2-0", "m-urgent-0"}));
}

// With nothing sent at once after them, informing messages leave when their window closes, not
// at the next poll (an hour here); and a window of zero sends them at once.
TEST_F(OutboxTest, InformingMessagesLeaveWhenTheirWindowCloses) {
  for (const absl::Duration window : {absl::Milliseconds(50), absl::ZeroDuration()}) {
    FlakyTransport transport;
    DeliveryOptions options;
    options.poll_interval = absl::Hours(1);
    options.inform_within = window;
    auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
    worker->Start({"PEER"});
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 4; ++i) {
        ASSERT_THAT(db_->Transact([&](Txn& t) {
          return Enqueue(
              t, "PEER",
              MakeEnvelope(absl::StrCat("W", absl::FormatDuration(window), "-", round), i),
              absl::Now());
        }),
                    IsOk());
        worker->Notify("PEER", Urgency::kInform);
      }
      ASSERT_TRUE(Eventually([&] { return Pending() == 0; }))
          << "window " << window << ", round " << round << ": waited for the poll";
    }
    worker->Stop();
    std::lock_guard lock(transport.mu_);
    EXPECT_EQ(transport.taken_.size(), 12u);
  }
}

TEST_F(OutboxTest, DeliversEverythingOnceInOrderThroughFailures) {
  EnqueueAll(7, 30);
  FlakyTransport transport;
  transport.fail_next_ = 3;
  transport.take_per_call_ = 17;
  DeliveryOptions options;
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(5);
  options.batch_size = 50;
  options.poll_interval = absl::Milliseconds(10);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; })) << "pending " << Pending();
  worker->Stop();
  std::lock_guard lock(transport.mu_);
  ASSERT_EQ(transport.taken_.size(), 7u * 30u);
  // Per referral, messages arrived in the order they were enqueued.
  std::map<std::string, int> last;
  for (const std::string& id : transport.taken_) {
    const std::string referral = id.substr(2, id.rfind('-') - 2);
    const int n = std::stoi(id.substr(id.rfind('-') + 1));
    auto it = last.find(referral);
    EXPECT_EQ(n, it == last.end() ? 0 : it->second + 1) << id;
    last[referral] = n;
  }
  EXPECT_GE(transport.calls_, 3 + (7 * 30) / 17);
}

// Marking a batch done rides on a later commit (Database::Ride). If that commit fails, the mark
// is lost: the rows stay pending, are not sent again while the loop is busy, and are sent again
// once it has been idle a while; the peer answers DUPLICATE and nothing is taken twice.
// A kick sends at once, whatever the poll timer is armed for, and a burst of kicks sends each row
// once.
TEST_F(OutboxTest, AKickSendsAtOnceWhateverThePollIsArmedFor) {
  FlakyTransport transport;
  DeliveryOptions options;
  options.poll_interval = absl::Hours(1);  // only a kick can send within the test
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  for (int round = 0; round < 3; ++round) {
    ASSERT_THAT(db_->Transact([&](Txn& t) {
      return Enqueue(t, "PEER", MakeEnvelope(absl::StrCat("K", round), 0), absl::Now());
    }),
                IsOk());
    for (int i = 0; i < 1000; ++i) worker->Notify("PEER", Urgency::kAtOnce);
    ASSERT_TRUE(Eventually([&] { return Pending() == 0; }))
        << "round " << round << ": a kicked row waited for the poll";
  }
  worker->Stop();
  std::lock_guard lock(transport.mu_);
  EXPECT_EQ(transport.taken_.size(), 3u);
  EXPECT_EQ(transport.calls_, 3);
}

// A failed send retries on its backoff even though the poll timer was already armed for later.
TEST_F(OutboxTest, ARetryIsNotHeldBehindAnArmedPoll) {
  FlakyTransport transport;
  transport.fail_next_ = 2;
  DeliveryOptions options;
  options.poll_interval = absl::Hours(1);
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(5);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});  // finds nothing and arms the hour's poll
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EnqueueAll(1, 2);
  worker->Notify("PEER", Urgency::kAtOnce);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; })) << "the retry waited for the poll";
  worker->Stop();
  std::lock_guard lock(transport.mu_);
  EXPECT_EQ(transport.taken_.size(), 2u);
  EXPECT_GE(transport.calls_, 3);
}

TEST_F(OutboxTest, AMarkLostWithItsCommitIsSentAgainAndTakenOnce) {
  EnqueueAll(1, 3);
  // The outbox refuses updates on cue: every mark fails.
  ASSERT_THAT(db_->Transact([](Txn& t) -> absl::Status {
    RETURN_IF_ERROR(t.Exec("CREATE TABLE refuse_marks (on_cue INTEGER NOT NULL)"));
    RETURN_IF_ERROR(t.Exec("INSERT INTO refuse_marks (on_cue) VALUES (1)"));
    return t.Exec(
        "CREATE TRIGGER refuse_mark BEFORE UPDATE OF status ON outbox "
        "WHEN (SELECT on_cue FROM refuse_marks) = 1 BEGIN SELECT RAISE(ABORT, 'no'); END");
  }),
              IsOk());
  FlakyTransport transport;
  DeliveryOptions options;
  options.poll_interval = absl::Milliseconds(10);
  options.mark_within = absl::Milliseconds(5);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(transport.mu_);
    return transport.taken_.size() == 3;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Pending(), 3) << "a mark survived a refused update";
  int calls_while_refused = 0;
  {
    std::lock_guard lock(transport.mu_);
    calls_while_refused = transport.calls_;
  }
  // The loop is kept busy, never idle for a poll: the lost marks are sent again all the same.
  ASSERT_THAT(db_->Transact([](Txn& t) { return t.Exec("UPDATE refuse_marks SET on_cue = 0"); }),
              IsOk());
  auto first_three_pending = [&] {
    int64_t n = -1;
    EXPECT_THAT(db_->Read([&](Txn& t) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, t.Query("SELECT count(*) FROM outbox WHERE status = 0 AND "
                                          "message_id LIKE 'm-R0-%'"));
      n = rows[0].Int(0);
      return absl::OkStatus();
    }),
                IsOk());
    return n;
  };
  int busy = 0;
  for (; busy < 200 && first_three_pending() != 0; ++busy) {
    EnqueueAll(1, 1, absl::StrCat("BUSY", busy));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; })) << "pending " << Pending();
  worker->Stop();
  std::lock_guard lock(transport.mu_);
  EXPECT_EQ(transport.taken_.size(), 3u + static_cast<size_t>(busy)) << "a message taken twice";
  EXPECT_LT(busy, 200) << "the lost marks' rows waited for the loop to go idle";
  EXPECT_GE(calls_while_refused, 2) << "the unmarked rows were not sent again while refused";
}

TEST_F(OutboxTest, BacklogShowsWhatWaitsAndWhy) {
  EnqueueAll(1, 3);
  FlakyTransport transport;
  transport.fail_next_ = 1000000;
  DeliveryOptions options;
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(2);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(transport.mu_);
    return transport.calls_ >= 5;
  }));
  worker->Stop();
  ASSERT_OK_AND_ASSIGN(auto backlog, ReadBacklog(*db_));
  ASSERT_EQ(backlog.size(), 1u);
  EXPECT_EQ(backlog[0].pending, 3);
  EXPECT_NE(backlog[0].last_error.find("peer down"), std::string::npos);
  EXPECT_NE(backlog[0].oldest_pending, absl::InfinitePast());
}

// A database written before kMessagingIndexesMigration: once it runs, what was delivered stays
// delivered and what was pending is sent, once; the new index holds exactly the pending rows,
// however many were marked since; and the receiver still knows every message it took or refused.
TEST_F(OutboxTest, AnOutboxFromBeforeThePendingIndexCarriesOn) {
  db_.reset();
  const std::string path = dir_.File("old.db");
  FlakyTransport transport;
  DeliveryOptions options;
  options.poll_interval = absl::Milliseconds(5);
  options.batch_size = 4;
  // Received before the change: one taken, one refused; the third arrives after it.
  v1::DeliverRequest inbound;
  for (int i = 0; i < 2; ++i) *inbound.add_envelopes() = MakeEnvelope("IN", i);
  int applied = 0;
  auto refuse_one = [&](Txn&, const v1::Envelope& env) -> absl::Status {
    ++applied;
    if (env.message_id() == "m-IN-1") return absl::InvalidArgumentError("not for us");
    return absl::OkStatus();
  };
  {
    ASSERT_OK_AND_ASSIGN(
        db_,
        Database::Open(path, std::vector<Migration>{kMessagingMigration, kRequestDigestMigration},
                       TestKeys()));
    EnqueueAll(2, 3);
    auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
    worker->Start({"PEER"});
    ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
    worker->Stop();
    EnqueueAll(3, 2, "S");  // six more, pending when the schema changes
    ASSERT_EQ(Pending(), 6);
    // As that version's receiver recorded them: by message id alone.
    ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
      RETURN_IF_ERROR(
          t.Exec("INSERT INTO inbox_seen (message_id, received_at, status, detail) "
                 "VALUES ('m-IN-0', 1, ?, '')",
                 {int64_t{v1::DELIVERY_STATUS_ACCEPTED}}));
      return t.Exec(
          "INSERT INTO inbox_seen (message_id, received_at, status, detail) "
          "VALUES ('m-IN-1', 1, ?, 'not for us')",
          {int64_t{v1::DELIVERY_STATUS_REJECTED}});
    }),
                IsOk());
    db_.reset();
  }
  ASSERT_OK_AND_ASSIGN(db_, Database::Open(path, Schema(), TestKeys()));
  *inbound.add_envelopes() = MakeEnvelope("IN", 2);
  ASSERT_OK_AND_ASSIGN(auto replayed, ReceiveBatch(*db_, clock_, kSender, inbound, refuse_one));
  ASSERT_EQ(replayed.results_size(), 3);
  EXPECT_EQ(replayed.results(0).status(), v1::DELIVERY_STATUS_DUPLICATE);
  EXPECT_EQ(replayed.results(1).status(), v1::DELIVERY_STATUS_REJECTED);
  EXPECT_EQ(replayed.results(1).detail(), "not for us");
  EXPECT_EQ(replayed.results(2).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(applied, 1);
  auto indexed = [&]() -> int64_t {
    int64_t n = -1;
    EXPECT_THAT(db_->Read([&](Txn& t) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, t.Query("SELECT COUNT(*) FROM outbox INDEXED BY outbox_pending "
                                          "WHERE status = 0"));
      n = rows[0].Int(0);
      return absl::OkStatus();
    }),
                IsOk());
    return n;
  };
  EXPECT_EQ(indexed(), 6);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  worker->Stop();
  EXPECT_EQ(indexed(), 0);
  std::lock_guard lock(transport.mu_);
  EXPECT_EQ(transport.taken_.size(), 12u);
  EXPECT_EQ(transport.seen_.size(), 12u);
  ASSERT_OK_AND_ASSIGN(auto backlog, ReadBacklog(*db_));
  EXPECT_EQ(backlog[0].delivered, 12);
}

TEST_F(OutboxTest, RejectedMessagesAreParkedNotRetried) {
  EnqueueAll(1, 3);
  FlakyTransport transport;
  transport.reject_ = "m-R0-1";
  DeliveryOptions options;
  options.poll_interval = absl::Milliseconds(5);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  worker->Stop();
  ASSERT_OK_AND_ASSIGN(auto backlog, ReadBacklog(*db_));
  EXPECT_EQ(backlog[0].rejected, 1);
  EXPECT_EQ(backlog[0].delivered, 2);
}

// A batch stops before its envelopes pass batch_bytes, so a backlog of large messages never makes
// a call the receiver refuses for its size (which would be sent the same again, for ever); one
// envelope larger than the bound still goes, alone; and an envelope no receiver could take is
// refused when it is made, failing the step that made it, not stuck at the head of the queue.
TEST_F(OutboxTest, BatchesAreBoundedInBytesAndAnEnvelopeNoPeerTakesIsRefused) {
  auto large = [](int n, size_t bytes) {
    v1::Envelope env = MakeEnvelope("BIG", n);
    env.mutable_event()->set_reason(std::string(bytes, 'x'));
    return env;
  };
  ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
    for (int n = 0; n < 12; ++n) {
      RETURN_IF_ERROR(Enqueue(t, "PEER", large(n, n == 5 ? 1'500'000 : 300'000), absl::Now()));
    }
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_THAT(db_->Transact([&](Txn& t) {
    return Enqueue(t, "PEER", large(12, kMaxEnvelopeBytes + 1), absl::Now());
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("a peer takes")));
  EXPECT_EQ(Pending(), 12);
  FlakyTransport transport;
  DeliveryOptions options;
  options.poll_interval = absl::Milliseconds(5);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; })) << "pending " << Pending();
  worker->Stop();
  std::lock_guard lock(transport.mu_);
  EXPECT_EQ(transport.taken_.size(), 12u);
  EXPECT_LE(transport.largest_request_, 1'500'100u);  // the large one alone
  // 300 kB each: three to a call, and the large one alone.
  EXPECT_GE(transport.calls_, 5);
}

// Only ACCEPTED, DUPLICATE and REJECTED are answers: a status this service does not know (none,
// or a newer peer's) leaves the message pending, and it goes again until it is answered.
TEST_F(OutboxTest, AnAnswerWithAStatusItDoesNotKnowLeavesTheMessagePending) {
  EnqueueAll(1, 3);
  FlakyTransport transport;
  transport.answer_with_ = v1::DELIVERY_STATUS_UNSPECIFIED;
  DeliveryOptions options;
  options.poll_interval = absl::Milliseconds(5);
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(5);
  auto worker = NewDeliveryWorker(*db_, transport, clock_, options);
  worker->Start({"PEER"});
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(transport.mu_);
    return transport.calls_ >= 3;
  }));
  {
    std::lock_guard lock(transport.mu_);
    transport.answer_with_ = static_cast<v1::DeliveryStatus>(7);
  }
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(transport.mu_);
    return transport.calls_ >= 6;
  }));
  EXPECT_EQ(Pending(), 3);
  ASSERT_OK_AND_ASSIGN(auto backlog, ReadBacklog(*db_));
  EXPECT_NE(backlog[0].last_error.find("does not know"), std::string::npos)
      << backlog[0].last_error;
  {
    std::lock_guard lock(transport.mu_);
    transport.answer_with_.reset();
  }
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  worker->Stop();
  std::lock_guard lock(transport.mu_);
  EXPECT_EQ(transport.taken_.size(), 3u);
}

TEST_F(OutboxTest, APackageNeverEntersTheRegistersOutbox) {
  v1::Envelope env = MakeEnvelope("R1", 0);
  env.mutable_package()->set_referral_id("R1");
  EXPECT_THAT(db_->Transact([&](Txn& t) { return Enqueue(t, kRegisterCode, env, absl::Now()); }),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("NCA register")));
  EXPECT_EQ(Pending(), -1);  // the transaction failed: nothing is waiting anywhere
  EXPECT_THAT(db_->Transact([&](Txn& t) { return Enqueue(t, "NFK", env, absl::Now()); }), IsOk());
}

// The health check's question, in one read: the oldest message still waiting for any of the
// destinations asked about.
TEST_F(OutboxTest, OldestPendingIsTheOldestOfTheDestinationsAsked) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
    RETURN_IF_ERROR(Enqueue(t, "NFK", MakeEnvelope("A", 0), t0 + absl::Hours(2)));
    RETURN_IF_ERROR(Enqueue(t, "NFK", MakeEnvelope("B", 0), t0 + absl::Hours(3)));
    return Enqueue(t, "SFK", MakeEnvelope("C", 0), t0 + absl::Hours(1));
  }),
              IsOk());
  EXPECT_THAT(OldestPending(*db_, {"NFK"}), IsOkAndHolds(t0 + absl::Hours(2)));
  EXPECT_THAT(OldestPending(*db_, {"NFK", "SFK", "MPS"}), IsOkAndHolds(t0 + absl::Hours(1)));
  EXPECT_THAT(OldestPending(*db_, {"MPS"}), IsOkAndHolds(absl::InfiniteFuture()));
  EXPECT_THAT(OldestPending(*db_, {}), IsOkAndHolds(absl::InfiniteFuture()));
}

TEST_F(OutboxTest, EnqueueingTheSameMessageTwiceKeepsOne) {
  ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
    RETURN_IF_ERROR(Enqueue(t, "PEER", MakeEnvelope("R", 0), absl::Now()));
    return Enqueue(t, "PEER", MakeEnvelope("R", 0), absl::Now());
  }),
              IsOk());
  EXPECT_EQ(Pending(), 1);
}

TEST_F(OutboxTest, ReceiverAppliesEachMessageOnce) {
  int applied = 0;
  v1::DeliverRequest request;
  for (int i = 0; i < 5; ++i) *request.add_envelopes() = MakeEnvelope("R", i);
  *request.add_envelopes() = MakeEnvelope("R", 2);  // duplicate inside the batch
  auto apply = [&](Txn&, const v1::Envelope&) {
    ++applied;
    return absl::OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(auto first, ReceiveBatch(*db_, clock_, kSender, request, apply));
  ASSERT_EQ(first.results_size(), 6);
  EXPECT_EQ(first.results(5).status(), v1::DELIVERY_STATUS_DUPLICATE);
  ASSERT_OK_AND_ASSIGN(auto again, ReceiveBatch(*db_, clock_, kSender, request, apply));
  for (const auto& r : again.results()) EXPECT_EQ(r.status(), v1::DELIVERY_STATUS_DUPLICATE);
  EXPECT_EQ(applied, 5);
}

// A receiver's record of messages seen is each sender's own: a peer that sends a message id it
// learnt from another peer (it received that peer's event too) neither makes the real message a
// duplicate nor, by having its own envelope refused, makes the real one refused again.
TEST_F(OutboxTest, AMessageIdSeenFromOneSenderIsNotSeenFromAnother) {
  const std::string other = "spiffe://sarloop/force/OTHER";
  std::vector<std::string> applied;
  auto apply = [&](Txn&, const v1::Envelope& env) -> absl::Status {
    if (env.event().producer() == "OTHER") return absl::PermissionDeniedError("not OTHER's event");
    applied.push_back(env.message_id());
    return absl::OkStatus();
  };
  v1::DeliverRequest stolen;
  *stolen.add_envelopes() = MakeEnvelope("R", 0);
  *stolen.add_envelopes() = MakeEnvelope("R", 1);
  stolen.mutable_envelopes(1)->mutable_event()->set_producer("OTHER");
  ASSERT_OK_AND_ASSIGN(auto taken, ReceiveBatch(*db_, clock_, other, stolen, apply));
  ASSERT_EQ(taken.results(1).status(), v1::DELIVERY_STATUS_REJECTED);
  v1::DeliverRequest real;
  *real.add_envelopes() = MakeEnvelope("R", 0);
  *real.add_envelopes() = MakeEnvelope("R", 1);
  ASSERT_OK_AND_ASSIGN(auto first, ReceiveBatch(*db_, clock_, kSender, real, apply));
  ASSERT_EQ(first.results_size(), 2);
  EXPECT_EQ(first.results(0).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(first.results(1).status(), v1::DELIVERY_STATUS_ACCEPTED);
  ASSERT_OK_AND_ASSIGN(auto again, ReceiveBatch(*db_, clock_, kSender, real, apply));
  EXPECT_EQ(again.results(0).status(), v1::DELIVERY_STATUS_DUPLICATE);
  EXPECT_EQ(again.results(1).status(), v1::DELIVERY_STATUS_DUPLICATE);
  EXPECT_EQ(applied.size(), 3u);  // the other's first, then the real two, once each
}

// An event from a peer whose clock runs ahead of ours beyond the tolerance is not taken yet: the
// batch stops at it (the peer sends it again, after the delay it is given) and it is taken once
// our clock is near; one dated years on never moves a referral's dates out of the chase's reach.
TEST_F(OutboxTest, AnEventFromThePeersFutureIsTakenWhenOurClockGetsThere) {
  int applied = 0;
  DeliveryService service(Edge{}, *db_, clock_, [&](Txn&, const Identity&, const v1::Envelope&) {
    ++applied;
    return absl::OkStatus();
  });
  v1::DeliverRequest request;
  for (int i = 0; i < 2; ++i) {
    v1::Envelope* env = request.add_envelopes();
    env->set_message_id(absl::StrCat("EVT-future-", i));
    v1::LifecycleEvent* e = env->mutable_event();
    e->set_event_id(env->message_id());
    e->set_referral_id("REF-0123456789abcdef");
    e->set_type(v1::EVENT_TYPE_PROGRESS_UPDATED);
    e->set_producer("NFK");
    e->set_organisation("NFK");
    *e->mutable_occurred_at() =
        ToProto(clock_.Now() + (i == 0 ? absl::Minutes(4) : absl::Hours(1)));
  }
  const Identity peer{"spiffe://sarloop/force/NFK", "force", "NFK", ""};
  ASSERT_OK_AND_ASSIGN(v1::DeliverResponse early, service.DeliverFrom(peer, request, nullptr));
  ASSERT_EQ(early.results_size(), 1);  // the second is not answered: sent again later
  EXPECT_EQ(early.results(0).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(applied, 1);
  clock_.Advance(absl::Minutes(56));
  ASSERT_OK_AND_ASSIGN(v1::DeliverResponse later, service.DeliverFrom(peer, request, nullptr));
  ASSERT_EQ(later.results_size(), 2);
  EXPECT_EQ(later.results(0).status(), v1::DELIVERY_STATUS_DUPLICATE);
  EXPECT_EQ(later.results(1).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(applied, 2);
}

TEST_F(OutboxTest, APeersEnvelopeWithControlCharactersIsRejectedAloneNamingTheField) {
  // A batch from a peer is checked envelope by envelope (common/rpc/request_checks.h): the bad one
  // is rejected and the rest behind it still taken, so one envelope cannot hold up an outbox.
  int applied = 0;
  DeliveryService service(Edge{}, *db_, clock_, [&](Txn&, const Identity&, const v1::Envelope&) {
    ++applied;
    return absl::OkStatus();
  });
  v1::DeliverRequest request;
  for (int i = 0; i < 3; ++i) {
    v1::Envelope* env = request.add_envelopes();
    env->set_message_id(absl::StrCat("EVT-", i));
    v1::LifecycleEvent* e = env->mutable_event();
    e->set_event_id(env->message_id());
    e->set_referral_id("REF-0123456789abcdef");
    e->set_type(v1::EVENT_TYPE_DECLINED_BY_FORCE);
    e->set_producer("NFK");
    e->set_organisation("NFK");
    *e->mutable_occurred_at() = ToProto(clock_.Now());
    e->set_reason(i == 1 ? "declined\x1b[2J" : "declined\nafter research");
  }
  const Identity peer{"spiffe://sarloop/force/NFK", "force", "NFK", ""};
  ASSERT_OK_AND_ASSIGN(v1::DeliverResponse response, service.DeliverFrom(peer, request, nullptr));
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(response.results(1).status(), v1::DELIVERY_STATUS_REJECTED);
  EXPECT_THAT(response.results(1).detail(), HasSubstr("event.reason"));
  EXPECT_THAT(response.results(1).detail(), HasSubstr("U+001B"));
  EXPECT_EQ(response.results(2).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(applied, 2);
}

// Who acted on a delivered event is one of the producer's own identities: a force's event naming a
// UKFIU analyst as the actor is refused, alone; its own service and systems are taken.
TEST_F(OutboxTest, AnEventWhoseActorIsAnotherOrganisationsIsRejected) {
  int applied = 0;
  DeliveryService service(Edge{}, *db_, clock_, [&](Txn&, const Identity&, const v1::Envelope&) {
    ++applied;
    return absl::OkStatus();
  });
  v1::DeliverRequest request;
  const std::vector<std::string> actors = {
      "spiffe://sarloop/force/NFK", "spiffe://sarloop/ukfiu/intake",
      "spiffe://sarloop/force/NFK/psd", "", "spiffe://sarloop/force/NFKX/psd"};
  for (size_t i = 0; i < actors.size(); ++i) {
    v1::Envelope* env = request.add_envelopes();
    env->set_message_id(absl::StrCat("EVT-", i));
    v1::LifecycleEvent* e = env->mutable_event();
    e->set_event_id(env->message_id());
    e->set_referral_id("REF-0123456789abcdef");
    e->set_type(v1::EVENT_TYPE_PROGRESS_UPDATED);
    e->set_producer("NFK");
    e->set_organisation("NFK");
    e->mutable_actor()->set_identity(actors[i]);
    *e->mutable_occurred_at() = ToProto(clock_.Now());
  }
  const Identity peer{"spiffe://sarloop/force/NFK", "force", "NFK", ""};
  ASSERT_OK_AND_ASSIGN(v1::DeliverResponse response, service.DeliverFrom(peer, request, nullptr));
  ASSERT_EQ(response.results_size(), 5);
  EXPECT_EQ(response.results(0).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(response.results(1).status(), v1::DELIVERY_STATUS_REJECTED);
  EXPECT_THAT(response.results(1).detail(), HasSubstr("event.actor.identity"));
  EXPECT_EQ(response.results(2).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(response.results(3).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(response.results(4).status(), v1::DELIVERY_STATUS_REJECTED);
  EXPECT_EQ(applied, 3);
}

// A peer's message id is refused before it is looked up or recorded when it is empty or longer
// than any id we make; the envelopes around it are taken as usual.
TEST_F(OutboxTest, AMessageIdOfNoSizeOrAMegabyteIsRefusedAndNotKept) {
  v1::DeliverRequest request;
  *request.add_envelopes() = MakeEnvelope("R", 0);
  v1::Envelope empty = MakeEnvelope("R", 1);
  empty.set_message_id("");
  *request.add_envelopes() = empty;
  v1::Envelope huge = MakeEnvelope(std::string(1 << 20, 'x'), 2);
  huge.set_message_id(std::string(1 << 20, 'm'));
  *request.add_envelopes() = huge;
  *request.add_envelopes() = MakeEnvelope("R", 3);
  int applied = 0;
  auto apply = [&](Txn&, const v1::Envelope&) {
    ++applied;
    return absl::OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(auto response, ReceiveBatch(*db_, clock_, kSender, request, apply));
  ASSERT_EQ(response.results_size(), 4);
  EXPECT_EQ(response.results(0).status(), v1::DELIVERY_STATUS_ACCEPTED);
  for (int i : {1, 2}) {
    EXPECT_EQ(response.results(i).status(), v1::DELIVERY_STATUS_REJECTED) << i;
    EXPECT_THAT(response.results(i).detail(), HasSubstr("message_id")) << i;
    EXPECT_LE(response.results(i).message_id().size(), kMaxMessageIdLength) << i;
  }
  EXPECT_EQ(response.results(3).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(applied, 2);
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto seen,
                     t.Query("SELECT MAX(LENGTH(message_id)), COUNT(*) FROM inbox_seen"));
    EXPECT_EQ(seen[0].Int(1), 2);
    EXPECT_LE(seen[0].Int(0), 10);
    return absl::OkStatus();
  }),
              IsOk());
}

TEST_F(OutboxTest, ReceiverStopsAtATransientFailureAndKeepsNothingOfIt) {
  v1::DeliverRequest request;
  for (int i = 0; i < 4; ++i) *request.add_envelopes() = MakeEnvelope("R", i);
  auto apply = [&](Txn& t, const v1::Envelope& env) -> absl::Status {
    RETURN_IF_ERROR(t.Exec("CREATE TABLE IF NOT EXISTS effects (id TEXT)"));
    RETURN_IF_ERROR(t.Exec("INSERT INTO effects VALUES (?)", {env.message_id()}));
    if (env.message_id() == "m-R-2") return absl::UnavailableError("disk hiccup");
    if (env.message_id() == "m-R-1") return absl::FailedPreconditionError("not ours");
    return absl::OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(auto response, ReceiveBatch(*db_, clock_, kSender, request, apply));
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).status(), v1::DELIVERY_STATUS_ACCEPTED);
  EXPECT_EQ(response.results(1).status(), v1::DELIVERY_STATUS_REJECTED);
  std::vector<std::string> effects;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("SELECT id FROM effects"));
    for (const auto& r : rows) effects.push_back(r.Text(0));
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(effects, std::vector<std::string>{"m-R-0"});
}

TEST_F(OutboxTest, RepeatedRequestIdReturnsTheFirstAnswer) {
  int runs = 0;
  v1::Envelope request;
  request.set_message_id("the request");
  auto run = [&](const std::string& id) {
    v1::Envelope response;
    absl::Status s = RunIdempotent(
        *db_, "scope", request, id, &response,
        [&](Txn&) {
          ++runs;
          response.set_message_id(absl::StrCat("answer-", runs));
          return absl::OkStatus();
        },
        absl::Now());
    EXPECT_THAT(s, IsOk());
    return response.message_id();
  };
  EXPECT_EQ(run("req-1"), "answer-1");
  EXPECT_EQ(run("req-1"), "answer-1");
  EXPECT_EQ(run("req-2"), "answer-2");
  EXPECT_EQ(runs, 2);
}

// The same request_id with another request is refused, naming request_id, and changes nothing:
// the caller must not believe the second action happened. The same request again still gets the
// first answer.
TEST_F(OutboxTest, ARequestIdUsedForAnotherRequestIsRefused) {
  int runs = 0;
  auto run = [&](const std::string& body) {
    v1::Envelope request, response;
    request.set_message_id(body);
    return RunIdempotent(
        *db_, "scope", request, "req-1", &response,
        [&](Txn&) {
          ++runs;
          return absl::OkStatus();
        },
        absl::Now());
  };
  EXPECT_THAT(run("withdraw REF-1"), IsOk());
  absl::Status other = run("withdraw REF-2");
  EXPECT_THAT(other, StatusIs(absl::StatusCode::kInvalidArgument,
                              HasSubstr("was used before for a different request")));
  EXPECT_EQ(FieldOf(other), "request_id");
  EXPECT_THAT(run("withdraw REF-1"), IsOk());
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace sarloop
