#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/rules.h"
#include "common/server/server.h"
#include "services/force/desk.h"
#include "tests/testutil/testutil.h"

namespace sarloop::force {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::SampleOutcome;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;
using ::testing::AllOf;
using ::testing::HasSubstr;

const Identity kUkfiu{"spiffe://sarloop/ukfiu", "ukfiu", "UKFIU", ""};
const Identity kErsou{"spiffe://sarloop/racu/ERSOU", "racu", "ERSOU", ""};

class ForceDeskTest : public ::testing::Test {
 protected:
  void Make(const std::vector<std::string>& units, bool on_receipt = false) {
    auto db = Database::Open(
        dir_.File(absl::StrCat("force", absl::StrJoin(units, "-"), on_receipt ? "-r" : "", ".db")),
        ServiceMigrations(DeskMigrations(), DeskMigrationsAfterAudit()), TestKeys());
    ASSERT_THAT(db, IsOk());
    db_ = std::move(*db);
    desk_ = std::make_unique<Desk>(*db_, clock_, DeskOptions{"NFK", units, on_receipt});
    actor_.set_identity("spiffe://sarloop/force/NFK/psd");
    call_.actor = actor_;
    call_.scope = "t";
  }
  void SetUp() override { Make({"ERSOU"}); }

  absl::Status Deliver(const Identity& peer, const v1::Envelope& env) {
    return db_->Transact([&](Txn& t) { return desk_->Receive(t, peer, env); });
  }

  v1::Envelope Dispatch(const std::string& org) {
    v1::Envelope env;
    *env.mutable_event() =
        NewEvent(v1::EVENT_TYPE_DISPATCHED, referral_id_, "UKFIU", org, v1::Actor(), clock_.Now());
    env.set_message_id(env.event().event_id());
    *env.mutable_event()->mutable_thr() = SampleThr();
    env.mutable_package()->set_referral_id(referral_id_);
    *env.mutable_package()->mutable_sar() = SampleSar();
    return env;
  }

  absl::StatusOr<v1::ForceStepResponse> Step(v1::EventType type) {
    v1::ForceStepRequest req;
    req.set_request_id(NewId("req-"));
    req.set_referral_id(referral_id_);
    if (type == v1::EVENT_TYPE_ACKNOWLEDGED) return desk_->Acknowledge(call_, req);
    return desk_->StartResearch(call_, req);
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<Desk> desk_;
  v1::Actor actor_;
  Call call_;
  const std::string referral_id_ = "REF-00000000000000aa";
};

TEST_F(ForceDeskTest, ReceivingARefferalRecordsReceiptAndReportsIt) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  EXPECT_EQ(got.referral().state(), v1::REFERRAL_STATE_RECEIVED);
  EXPECT_EQ(got.referral().package().sar().subjects(0).full_name(), "Jane Example");
  ASSERT_OK_AND_ASSIGN(auto backlog, ReadBacklog(*db_));
  ASSERT_EQ(backlog.size(), 2u);  // RECEIVED to NCA and UKFIU
}

TEST_F(ForceDeskTest, AReferralForAnotherForceIsRefused) {
  EXPECT_THAT(Deliver(kUkfiu, Dispatch("SFK")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("addressed to SFK")));
  EXPECT_THAT(desk_->Get(referral_id_), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(ForceDeskTest, OnlyUkfiuDispatches) {
  EXPECT_THAT(Deliver(kErsou, Dispatch("NFK")),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
}

TEST_F(ForceDeskTest, IllegalStepChangesNothing) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  v1::CloseReferralRequest close;
  close.set_request_id("c1");
  close.set_referral_id(referral_id_);
  *close.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  EXPECT_THAT(desk_->Close(call_, close),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("state RECEIVED")));
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  EXPECT_EQ(got.referral().state(), v1::REFERRAL_STATE_RECEIVED);
  EXPECT_EQ(got.events_size(), 2);  // DISPATCHED, RECEIVED
}

TEST_F(ForceDeskTest, ADeclineReasonNamingTheSubjectIsRefusedAndChangesNothing) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_ACKNOWLEDGED), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_RESEARCH_STARTED), IsOk());
  v1::DeclineReferralRequest decline;
  decline.set_request_id("d1");
  decline.set_referral_id(referral_id_);
  decline.set_reason_code(v1::DECLINE_REASON_FORMER_EMPLOYEE);
  decline.set_reason("The officer left the force last year");
  EXPECT_THAT(desk_->Decline(call_, decline),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stays with the force")))
      << "a former employee's referral stays with the force that employed them";
  decline.set_reason_code(v1::DECLINE_REASON_ACTIVITY_EXPLAINED);
  // SampleSar's subject is "Jane Example"; the reason travels to ukfiu and the NCA.
  decline.set_reason("Jane declared an inheritance last year");
  EXPECT_THAT(desk_->Decline(call_, decline),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  EXPECT_EQ(got.referral().state(), v1::REFERRAL_STATE_UNDER_RESEARCH);
  decline.set_request_id("d2");
  decline.set_reason("The officer declared an inheritance last year");
  EXPECT_THAT(desk_->Decline(call_, decline), IsOk());
}

TEST_F(ForceDeskTest, HandoverCarriesThePackageToTheUnitOnly) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_ACKNOWLEDGED), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_RESEARCH_STARTED), IsOk());
  v1::HandOverRequest h;
  h.set_request_id("h1");
  h.set_referral_id(referral_id_);
  h.set_notes("Research shows undeclared association.");
  *h.mutable_thr() = SampleThr();
  h.set_priority(v1::PRIORITY_P3);
  ASSERT_OK_AND_ASSIGN(auto resp, desk_->HandOver(call_, h));
  EXPECT_EQ(resp.referral().state(), v1::REFERRAL_STATE_HANDED_OVER);
  int with_package = 0;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, ReadOutbox(t));
    for (const OutboxEntry& r : rows) {
      const v1::Envelope& env = r.envelope;
      if (env.has_package()) {
        ++with_package;
        EXPECT_EQ(r.destination, "ERSOU");
        EXPECT_EQ(env.package().handover_notes(), h.notes());
      }
    }
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(with_package, 1);
  // The unit declines: the referral is back with the force, which may close it itself.
  v1::Envelope declined;
  *declined.mutable_event() = NewEvent(v1::EVENT_TYPE_ASSISTANCE_DECLINED, referral_id_, "ERSOU",
                                       "NFK", v1::Actor(), clock_.Now());
  declined.mutable_event()->set_unit("ERSOU");
  declined.set_message_id(declined.event().event_id());
  ASSERT_THAT(Deliver(kErsou, declined), IsOk());
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  EXPECT_EQ(got.referral().state(), v1::REFERRAL_STATE_UNDER_RESEARCH);
}

TEST_F(ForceDeskTest, AForceWithoutAUnitClosesItself) {
  Make({});
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_ACKNOWLEDGED), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_RESEARCH_STARTED), IsOk());
  v1::HandOverRequest h;
  h.set_request_id("h1");
  h.set_referral_id(referral_id_);
  h.set_notes("n");
  *h.mutable_thr() = SampleThr();
  h.set_priority(v1::PRIORITY_P3);
  EXPECT_THAT(desk_->HandOver(call_, h),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no investigating unit")));
}

// Who investigates is chosen per referral among the units the force is configured for; the
// package goes to the one chosen.
TEST_F(ForceDeskTest, TheUnitIsChosenPerReferralAmongTheConfiguredOnes) {
  Make({"ERSOU", "NCAACU"});
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  v1::HandOverRequest h;
  h.set_request_id("h1");
  h.set_referral_id(referral_id_);
  h.set_notes("Organised crime links: the NCA ACU should lead.");
  *h.mutable_thr() = SampleThr();
  h.set_priority(v1::PRIORITY_P1);
  h.set_unit("EMSOU");
  EXPECT_THAT(desk_->HandOver(call_, h),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("unit"), HasSubstr("EMSOU"), HasSubstr("ERSOU, NCAACU"))));
  // The force's own handover follows its research.
  h.set_request_id("h2");
  h.set_unit("NCAACU");
  EXPECT_THAT(desk_->HandOver(call_, h),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("RECEIVED")));
  ASSERT_THAT(Step(v1::EVENT_TYPE_ACKNOWLEDGED), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_RESEARCH_STARTED), IsOk());
  h.set_request_id("h3");
  ASSERT_OK_AND_ASSIGN(auto resp, desk_->HandOver(call_, h));
  EXPECT_EQ(resp.referral().state(), v1::REFERRAL_STATE_HANDED_OVER);
  EXPECT_EQ(resp.referral().unit(), "NCAACU");
  std::set<std::string> package_to;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, ReadOutbox(t));
    for (const OutboxEntry& r : rows) {
      if (r.envelope.has_package()) package_to.insert(r.destination);
    }
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(package_to, (std::set<std::string>{"NCAACU"}));
}

// An organisation with no anti-corruption department hands each referral to its unit as it
// arrives, package and all; its own desk then has nothing to decide.
TEST_F(ForceDeskTest, AnOrganisationWithoutAnAcuHandsOverOnReceipt) {
  Make({"NCAACU"}, /*on_receipt=*/true);
  const v1::Envelope dispatched = Dispatch("NFK");
  ASSERT_THAT(Deliver(kUkfiu, dispatched), IsOk());
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  EXPECT_EQ(got.referral().state(), v1::REFERRAL_STATE_HANDED_OVER);
  EXPECT_EQ(got.referral().unit(), "NCAACU");
  EXPECT_TRUE(got.referral().handed_over_on_receipt());
  ASSERT_GE(got.events_size(), 3);
  EXPECT_EQ(got.events(got.events_size() - 1).type(), v1::EVENT_TYPE_HANDED_OVER);
  EXPECT_TRUE(got.events(got.events_size() - 1).on_receipt());
  int with_package = 0;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, ReadOutbox(t));
    for (const OutboxEntry& r : rows) {
      if (!r.envelope.has_package()) continue;
      ++with_package;
      EXPECT_EQ(r.destination, "NCAACU");
      EXPECT_EQ(r.envelope.package().sar().reporter_reference(), SampleSar().reporter_reference());
    }
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(with_package, 1);
  EXPECT_THAT(Step(v1::EVENT_TYPE_ACKNOWLEDGED),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("HANDED_OVER")));
  // The same delivery again changes nothing: one handover.
  ASSERT_THAT(Deliver(kUkfiu, dispatched), IsOk());
  ASSERT_OK_AND_ASSIGN(auto again, desk_->Get(referral_id_));
  EXPECT_EQ(again.events_size(), got.events_size());
}

// The corruption categories can be recorded when research starts (issue 20, item 2); they
// travel on the event to the register's entry.
// The IOPC: a referral recorded, then the mode it decided; investigating independently, the IOPC is
// the investigating body on the outcomes that follow.
TEST_F(ForceDeskTest, AReferralToTheIopcAndItsModeAreRecorded) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  v1::ReferToIopcRequest iopc;
  iopc.set_request_id("i0");
  iopc.set_referral_id(referral_id_);
  EXPECT_THAT(desk_->ReferToIopc(call_, iopc),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("acknowledge")));
  ASSERT_THAT(Step(v1::EVENT_TYPE_ACKNOWLEDGED), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_RESEARCH_STARTED), IsOk());
  iopc.set_request_id("i1");
  iopc.set_mode(v1::IOPC_MODE_INDEPENDENT);
  EXPECT_THAT(desk_->ReferToIopc(call_, iopc),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("referral first")));
  iopc.set_request_id("i2");
  iopc.clear_mode();
  ASSERT_OK_AND_ASSIGN(auto referred, desk_->ReferToIopc(call_, iopc));
  EXPECT_TRUE(referred.referral().referred_to_iopc());
  EXPECT_EQ(referred.referral().state(), v1::REFERRAL_STATE_UNDER_RESEARCH);
  iopc.set_request_id("i3");
  EXPECT_THAT(desk_->ReferToIopc(call_, iopc),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already")));
  iopc.set_request_id("i4");
  iopc.set_mode(v1::IOPC_MODE_INDEPENDENT);
  ASSERT_OK_AND_ASSIGN(auto decided, desk_->ReferToIopc(call_, iopc));
  EXPECT_EQ(decided.referral().iopc_mode(), v1::IOPC_MODE_INDEPENDENT);
  v1::CloseReferralRequest close;
  close.set_request_id("c1");
  close.set_referral_id(referral_id_);
  *close.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  ASSERT_OK_AND_ASSIGN(auto closed, desk_->Close(call_, close));
  EXPECT_EQ(closed.referral().outcome().investigating_org(), "IOPC");
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  int iopc_events = 0;
  for (const auto& e : got.events()) iopc_events += e.type() == v1::EVENT_TYPE_REFERRED_TO_IOPC;
  EXPECT_EQ(iopc_events, 2);
}

TEST_F(ForceDeskTest, ResearchRecordsItsCorruptionCategories) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  v1::ForceStepRequest req;
  req.set_request_id("a1");
  req.set_referral_id(referral_id_);
  req.add_categories(v1::CORRUPTION_CATEGORY_THEFT_AND_FRAUD);
  EXPECT_THAT(desk_->Acknowledge(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("categories")));
  req.clear_categories();
  ASSERT_THAT(desk_->Acknowledge(call_, req), IsOk());
  req.set_request_id("r1");
  req.add_categories(v1::CORRUPTION_CATEGORY_THEFT_AND_FRAUD);
  req.add_categories(v1::CORRUPTION_CATEGORY_THEFT_AND_FRAUD);
  EXPECT_THAT(desk_->StartResearch(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("categories[1]")));
  req.set_request_id("r2");
  req.set_categories(1, static_cast<v1::CorruptionCategory>(999));
  EXPECT_THAT(desk_->StartResearch(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("categories[1]")));
  req.set_request_id("r3");
  req.set_categories(1, v1::CORRUPTION_CATEGORY_UNSPECIFIED);
  EXPECT_THAT(desk_->StartResearch(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("categories[1]")));
  req.set_request_id("r4");
  req.set_categories(1, v1::CORRUPTION_CATEGORY_INAPPROPRIATE_ASSOCIATION);
  ASSERT_THAT(desk_->StartResearch(call_, req), IsOk());
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  const v1::LifecycleEvent& research = got.events(got.events_size() - 1);
  ASSERT_EQ(research.type(), v1::EVENT_TYPE_RESEARCH_STARTED);
  ASSERT_EQ(research.categories_size(), 2);
  const v1::RegisterEntry folded = Fold({got.events().begin(), got.events().end()});
  EXPECT_EQ(folded.research_categories_size(), 2);
  EXPECT_EQ(folded.research_categories(1), v1::CORRUPTION_CATEGORY_INAPPROPRIATE_ASSOCIATION);
}

// A delivered event's dates are held to the referral's: one dated before the dispatch is
// refused, and a question must say when its answer is due, within the days a question may give.
TEST_F(ForceDeskTest, ADeliveredEventIsHeldToTheReferralsDates) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  v1::Envelope reminder;
  *reminder.mutable_event() = NewEvent(v1::EVENT_TYPE_REMINDER_SENT, referral_id_, "UKFIU", "NFK",
                                       v1::Actor(), clock_.Now() - absl::Hours(24));
  reminder.set_message_id(reminder.event().event_id());
  EXPECT_THAT(Deliver(kUkfiu, reminder),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("event.occurred_at"), HasSubstr("before"))));
  // Within the clocks' tolerance is taken.
  *reminder.mutable_event()->mutable_occurred_at() = ToProto(clock_.Now() - absl::Minutes(4));
  EXPECT_THAT(Deliver(kUkfiu, reminder), IsOk());

  auto question = [&](std::optional<absl::Duration> due_in) {
    v1::Envelope env;
    *env.mutable_event() = NewEvent(v1::EVENT_TYPE_INFORMATION_REQUESTED, referral_id_, "UKFIU",
                                    "NFK", v1::Actor(), clock_.Now());
    env.mutable_event()->set_thread_id(NewId("RFI-", 16));
    env.mutable_event()->set_thread_with("NFK");
    if (due_in) *env.mutable_event()->mutable_reply_due_at() = ToProto(clock_.Now() + *due_in);
    env.set_message_id(env.event().event_id());
    v1::ThreadMessage* m = env.mutable_thread_message();
    m->set_event_id(env.event().event_id());
    m->set_thread_id(env.event().thread_id());
    m->set_referral_id(referral_id_);
    m->set_from("UKFIU");
    m->set_to("NFK");
    m->set_text("Which team was the officer in?");
    return env;
  };
  for (const std::optional<absl::Duration> bad :
       {std::optional<absl::Duration>(), std::optional(absl::Hours(-1)),
        std::optional(absl::Hours(24 * 200))}) {
    EXPECT_THAT(Deliver(kUkfiu, question(bad)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("event.reply_due_at")));
  }
  EXPECT_THAT(Deliver(kUkfiu, question(absl::Hours(24 * 10))), IsOk());
}

// One organisation's updates and messages on one referral are bounded, so no client can grow a
// referral (and the fold and fan-out of each of its steps) for ever; the steps that move it are
// still taken, and a receiver holds every other producer to the same bound.
TEST_F(ForceDeskTest, AReferralTakesABoundedNumberOfUpdatesFromEachOrganisation) {
  ASSERT_THAT(Deliver(kUkfiu, Dispatch("NFK")), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_ACKNOWLEDGED), IsOk());
  ASSERT_THAT(Step(v1::EVENT_TYPE_RESEARCH_STARTED), IsOk());
  v1::ReportProgressRequest progress;
  progress.set_referral_id(referral_id_);
  progress.set_status(v1::PROGRESS_STATUS_INVESTIGATION_OPEN);
  for (int i = 0; i < referral::kMostRequestedSideEvents; ++i) {
    progress.set_request_id(absl::StrCat("p", i));
    ASSERT_THAT(desk_->ReportProgress(call_, progress), IsOk()) << i;
  }
  auto outbox_size = [&] {
    size_t n = 0;
    EXPECT_THAT(db_->Read([&](Txn& t) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, ReadOutbox(t));
      n = rows.size();
      return absl::OkStatus();
    }),
                IsOk());
    return n;
  };
  const size_t sent = outbox_size();
  progress.set_request_id("one-too-many");
  EXPECT_THAT(desk_->ReportProgress(call_, progress),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(referral_id_), HasSubstr("from NFK"), HasSubstr("1000"))));
  ASSERT_OK_AND_ASSIGN(auto got, desk_->Get(referral_id_));
  EXPECT_EQ(got.events_size(), 4 + referral::kMostRequestedSideEvents);
  EXPECT_EQ(outbox_size(), sent);

  // The handover moves the referral: taken.
  v1::HandOverRequest h;
  h.set_request_id("h1");
  h.set_referral_id(referral_id_);
  h.set_notes("n");
  *h.mutable_thr() = SampleThr();
  h.set_priority(v1::PRIORITY_P3);
  ASSERT_THAT(desk_->HandOver(call_, h), IsOk());

  // The unit has a bound of its own, which the force, receiving, holds it to.
  auto unit_progress = [&] {
    v1::Envelope env;
    *env.mutable_event() = NewEvent(v1::EVENT_TYPE_PROGRESS_UPDATED, referral_id_, "ERSOU", "NFK",
                                    v1::Actor(), clock_.Now());
    env.mutable_event()->set_unit("ERSOU");
    env.mutable_event()->set_progress(v1::PROGRESS_STATUS_INVESTIGATION_OPEN);
    env.set_message_id(env.event().event_id());
    return env;
  };
  for (int i = 0; i < referral::kMostRequestedSideEvents; ++i) {
    ASSERT_THAT(Deliver(kErsou, unit_progress()), IsOk()) << i;
  }
  EXPECT_THAT(Deliver(kErsou, unit_progress()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("from ERSOU")));
  ASSERT_OK_AND_ASSIGN(got, desk_->Get(referral_id_));
  EXPECT_EQ(got.events_size(), 5 + 2 * referral::kMostRequestedSideEvents);
}

}  // namespace
}  // namespace sarloop::force
