#include <future>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/referral_store.h"
#include "common/server/server.h"
#include "services/ukfiu/desk.h"
#include "tests/testutil/testutil.h"

namespace sarloop::ukfiu {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class UkfiuDeskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db =
        Database::Open(dir_.File("ukfiu.db"),
                       ServiceMigrations(DeskMigrations(), DeskMigrationsAfterAudit()), TestKeys());
    ASSERT_THAT(db, IsOk());
    db_ = std::move(*db);
    DeskOptions options;
    options.subject_key = std::string(32, 'k');
    options.feedback.set_due_days(28);
    options.feedback.set_grace_days(28);
    options.feedback.set_ack_days(5);
    options.feedback.set_reminder_repeat_days(14);
    options.reachable = {"NFK", "SFK"};
    desk_ = std::make_unique<Desk>(*db_, clock_, ReferenceData::BuiltIn(), options);
    actor_.set_identity("spiffe://sarloop/ukfiu/intake");
    actor_.set_user("analyst1");
    call_.actor = actor_;
    call_.scope = "t";
  }

  std::string Submit(const std::string& name = "Jane Example") {
    v1::SubmitSarRequest req;
    req.set_request_id(NewId("req-"));
    *req.mutable_sar() = SampleSar(name);
    auto resp = desk_->SubmitSar(call_, req);
    EXPECT_THAT(resp, IsOk());
    return resp.ok() ? resp->sar().sar_id() : "";
  }

  absl::StatusOr<v1::ReferSarResponse> Refer(const std::string& sar_id, const std::string& org,
                                             const std::string& request_id = "") {
    v1::ReferSarRequest req;
    req.set_request_id(request_id.empty() ? NewId("req-") : request_id);
    req.set_sar_id(sar_id);
    req.set_organisation(org);
    *req.mutable_thr() = SampleThr();
    return desk_->Refer(call_, req);
  }

  // (destination, event type, carries package) of every outbox row, in order.
  std::vector<std::tuple<std::string, v1::EventType, bool>> Outbox() {
    std::vector<std::tuple<std::string, v1::EventType, bool>> out;
    EXPECT_THAT(db_->Read([&](Txn& t) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, ReadOutbox(t));
      for (const OutboxEntry& r : rows) {
        out.emplace_back(r.destination, r.envelope.event().type(), r.envelope.has_package());
      }
      return absl::OkStatus();
    }),
                IsOk());
    return out;
  }

  // 200 ended referrals (due from 0 to 39 days ago) and 3 open ones, due in 1, 2 and 0 days:
  // REF-open-2 first by due time.
  void SaveEndedAndOpenReferrals() {
    const v1::ReferralState kEndedStates[] = {
        v1::REFERRAL_STATE_DECLINED_BY_FORCE, v1::REFERRAL_STATE_CLOSED_BY_FORCE,
        v1::REFERRAL_STATE_OUTCOME_RECORDED, v1::REFERRAL_STATE_WITHDRAWN,
        v1::REFERRAL_STATE_REDIRECTED};
    const v1::ReferralState kOpenStates[] = {v1::REFERRAL_STATE_JOINT_INVESTIGATION,
                                             v1::REFERRAL_STATE_DISPATCHED,
                                             v1::REFERRAL_STATE_UNDER_RESEARCH};
    ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
      for (int i = 0; i < 200; ++i) {
        v1::Referral r;
        r.set_referral_id(absl::StrCat("REF-ended-", i));
        r.set_sar_id(absl::StrCat("SAR-", i));
        r.set_organisation("NFK");
        r.set_state(kEndedStates[i % 5]);
        *r.mutable_due_at() = ToProto(clock_.Now() - absl::Hours(24 * (i % 40)));
        RETURN_IF_ERROR(SaveReferral(t, r, clock_.Now()));
      }
      for (int i = 0; i < 3; ++i) {
        v1::Referral r;
        r.set_referral_id(absl::StrCat("REF-open-", i));
        r.set_sar_id(absl::StrCat("SAR-open-", i));
        r.set_organisation("SFK");
        r.set_state(kOpenStates[i]);
        // Due in the order 2, 0, 1.
        *r.mutable_due_at() = ToProto(clock_.Now() + absl::Hours(24 * ((i + 1) % 3)));
        RETURN_IF_ERROR(SaveReferral(t, r, clock_.Now()));
      }
      return absl::OkStatus();
    }),
                IsOk());
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<Desk> desk_;
  v1::Actor actor_;
  Call call_;
};

TEST_F(UkfiuDeskTest, ReferralGoesToTheForceWithItsPackageAndToTheNcaWithout) {
  const std::string sar = Submit();
  ASSERT_OK_AND_ASSIGN(auto resp, Refer(sar, "NFK"));
  EXPECT_EQ(resp.referral().state(), v1::REFERRAL_STATE_DISPATCHED);
  EXPECT_EQ(FromProto(resp.referral().due_at()) - FromProto(resp.referral().dispatched_at()),
            absl::Hours(24 * 28));
  EXPECT_THAT(Outbox(), ElementsAre(std::make_tuple("NFK", v1::EVENT_TYPE_DISPATCHED, true),
                                    std::make_tuple("NCA", v1::EVENT_TYPE_DISPATCHED, false)));
}

// SAR and referral ids begin with the second they were made (so a referral's rows cluster at the
// end of the indexes keyed by it while it is in flight), keep their published form, and a drawn
// id already taken is drawn again.
TEST_F(UkfiuDeskTest, SarAndReferralIdsSortByTimeAndAreNeverReused) {
  const std::string first_sar = Submit();
  ASSERT_OK_AND_ASSIGN(auto first, Refer(first_sar, "NFK"));
  clock_.Advance(absl::Seconds(1));
  const std::string second_sar = Submit();
  ASSERT_OK_AND_ASSIGN(auto second, Refer(second_sar, "NFK"));
  EXPECT_EQ(first_sar.substr(0, 12), "SAR-6553f100") << first_sar;  // 1700000000 in hex
  EXPECT_EQ(first.referral().referral_id().substr(0, 12), "REF-6553f100");
  EXPECT_LT(first_sar, second_sar);
  EXPECT_LT(first.referral().referral_id(), second.referral().referral_id());
  for (const std::string& id : {first.referral().referral_id(), second.referral().referral_id()}) {
    EXPECT_THAT(CheckReferralId("referral_id", id), IsOk()) << id;
  }
  EXPECT_EQ(second_sar.size(), 20u);

  const std::string taken = first.referral().referral_id();
  const std::string fresh = NewTimeOrderedShortId("REF-", clock_.Now());
  ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
    std::vector<std::string> draws = {taken, taken, fresh};
    size_t next = 0;
    ASSIGN_OR_RETURN(std::string id, DrawUnusedId(
                                         t, [&] { return draws.at(next++); },
                                         "SELECT 1 FROM referrals WHERE referral_id = ?"));
    EXPECT_EQ(id, fresh);
    EXPECT_EQ(next, 3u);
    EXPECT_THAT(DrawUnusedId(
                    t, [&] { return taken; }, "SELECT 1 FROM referrals WHERE referral_id = ?"),
                StatusIs(absl::StatusCode::kInternal, ::testing::_));
    return absl::OkStatus();
  }),
              IsOk());
}

TEST_F(UkfiuDeskTest, TextBoundForTheNcaMayNotNameTheSubject) {
  const std::string sar = Submit("Morwenna Trelawney");
  v1::ReferSarRequest req;
  req.set_request_id("r1");
  req.set_sar_id(sar);
  req.set_organisation("NFK");
  *req.mutable_thr() = SampleThr();
  req.mutable_thr()->set_rationale("Trelawney has PNC access and debts");
  EXPECT_THAT(desk_->Refer(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("thr.rationale")));
  EXPECT_THAT(Outbox(), ElementsAre());  // nothing was dispatched
  ASSERT_OK_AND_ASSIGN(auto referred, Refer(sar, "NFK"));
  v1::WithdrawReferralRequest withdraw;
  withdraw.set_request_id("w1");
  withdraw.set_referral_id(referred.referral().referral_id());
  withdraw.set_reason("reporter says morwenna repaid");
  EXPECT_THAT(desk_->Withdraw(call_, withdraw),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
}

TEST_F(UkfiuDeskTest, SubjectReferencesArePseudonymousAndStable) {
  v1::Subject a;
  a.set_full_name("Jane  EXAMPLE");
  a.set_date_of_birth("1985-04-12");
  v1::Subject b;
  b.set_full_name("jane example");
  b.set_date_of_birth("1985-04-12");
  EXPECT_EQ(SubjectRef("key-1", a), SubjectRef("key-1", b));
  EXPECT_NE(SubjectRef("key-1", a), SubjectRef("key-2", a));
  EXPECT_EQ(SubjectRef("key-1", a).find("jane"), std::string::npos);
  EXPECT_EQ(SubjectRef("key-1", a).size(), 64u);
}

// A SAR naming far more subjects than it may is refused once, for the count, and not once per
// subject: each violation is a field in the error's details, and a million would be a message of
// tens of megabytes. An unknown employer is still named when the SAR is otherwise in bounds.
TEST_F(UkfiuDeskTest, ASarOfAMillionSubjectsIsRefusedForItsCount) {
  v1::SubmitSarRequest req;
  req.set_request_id(NewId("req-"));
  *req.mutable_sar() = SampleSar("Jane Example");
  v1::Subject unknown = req.sar().subjects(0);
  unknown.set_employer_code("ZZ");
  for (int i = 0; i < 1'000'000; ++i) *req.mutable_sar()->add_subjects() = unknown;
  const absl::Status refused = desk_->SubmitSar(call_, req).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 20")));
  EXPECT_LT(refused.message().size(), 2000u);
  req.mutable_sar()->mutable_subjects()->DeleteSubrange(2, 1'000'000 - 1);
  EXPECT_THAT(desk_->SubmitSar(call_, req), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     HasSubstr("sar.subjects[1].employer_code")));
}

TEST_F(UkfiuDeskTest, RefusesAReferralWithoutRationale) {
  const std::string sar = Submit();
  v1::ReferSarRequest req;
  req.set_request_id("r1");
  req.set_sar_id(sar);
  req.set_organisation("NFK");
  *req.mutable_thr() = SampleThr();
  req.mutable_thr()->clear_rationale();
  EXPECT_THAT(desk_->Refer(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("thr.rationale")));
  EXPECT_TRUE(Outbox().empty());
}

TEST_F(UkfiuDeskTest, UnknownAndUnreachableOrganisationsAreDifferentErrors) {
  const std::string sar = Submit();
  EXPECT_THAT(Refer(sar, "XYZ"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("organisation")));
  EXPECT_THAT(Refer(sar, "MPS"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no sarloop endpoint")));
  EXPECT_THAT(Refer("SAR-0000000000000000", "NFK"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("sar_id")));
}

TEST_F(UkfiuDeskTest, RepeatedRequestReturnsTheSameReferral) {
  const std::string sar = Submit();
  ASSERT_OK_AND_ASSIGN(auto first, Refer(sar, "NFK", "same"));
  ASSERT_OK_AND_ASSIGN(auto again, Refer(sar, "NFK", "same"));
  EXPECT_EQ(first.referral().referral_id(), again.referral().referral_id());
  EXPECT_EQ(Outbox().size(), 2u);
  // A different request for the same SAR and force while it is open is refused.
  EXPECT_THAT(Refer(sar, "NFK"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already referred")));
}

TEST_F(UkfiuDeskTest, FlagsDeconflictionWhenASubjectIsOpenElsewhere) {
  ASSERT_THAT(Refer(Submit("John Smith"), "NFK"), IsOk());
  ASSERT_OK_AND_ASSIGN(auto second, Refer(Submit("john  smith"), "SFK"));
  EXPECT_THAT(second.referral().deconfliction_with(), ElementsAre("NFK"));
  auto out = Outbox();
  EXPECT_EQ(std::get<1>(out.back()), v1::EVENT_TYPE_DECONFLICTION_FLAG);
  // Norfolk, which referred first, is told on its own referral that Suffolk now has one.
  int to_nfk = 0;
  for (const auto& [dest, type, package] : out) {
    if (dest == "NFK" && type == v1::EVENT_TYPE_DECONFLICTION_FLAG) ++to_nfk;
  }
  EXPECT_EQ(to_nfk, 1);
  ASSERT_OK_AND_ASSIGN(auto unrelated, Refer(Submit("Someone Else"), "SFK"));
  EXPECT_TRUE(unrelated.referral().deconfliction_with().empty());
}

// A subject can have hundreds of SARs whose referrals have ended: deconfliction must find the open
// ones through an index of open referrals, not by reading every SAR's referral row.
TEST_F(UkfiuDeskTest, DeconflictionReadsOnlyTheOpenReferralsOfASubjectsSars) {
  std::vector<std::string> referrals;
  for (int i = 0; i < 30; ++i) {
    ASSERT_OK_AND_ASSIGN(auto made, Refer(Submit("John Smith"), "NFK"));
    referrals.push_back(made.referral().referral_id());
  }
  // All but the last end.
  for (size_t i = 0; i + 1 < referrals.size(); ++i) {
    v1::WithdrawReferralRequest withdraw;
    withdraw.set_request_id(NewId("req-"));
    withdraw.set_referral_id(referrals[i]);
    withdraw.set_reason("reporter retracted the report");
    ASSERT_THAT(desk_->Withdraw(call_, withdraw), IsOk());
  }
  const std::string sar = Submit("John Smith");
  std::vector<std::pair<std::string, std::string>> open;
  std::vector<std::string> plan;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(open, OpenReferralsSharingASubject(t, sar, "SFK"));
    ASSIGN_OR_RETURN(
        auto rows, t.Query(absl::StrCat("EXPLAIN QUERY PLAN ", DeconflictionSql()), {sar, "SFK"}));
    for (const Row& r : rows) plan.push_back(r.Text(3));
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_THAT(open, ElementsAre(std::make_pair(referrals.back(), std::string("NFK"))));
  EXPECT_THAT(plan, ::testing::Contains("SEARCH r USING INDEX referrals_open_by_sar (sar_id=?)"));
  ASSERT_OK_AND_ASSIGN(auto second, Refer(sar, "SFK"));
  EXPECT_THAT(second.referral().deconfliction_with(), ElementsAre("NFK"));

  v1::WithdrawReferralRequest last;
  last.set_request_id(NewId("req-"));
  last.set_referral_id(referrals.back());
  last.set_reason("reporter retracted the report");
  ASSERT_THAT(desk_->Withdraw(call_, last), IsOk());
  ASSERT_OK_AND_ASSIGN(auto third, Refer(Submit("John Smith"), "NFK"));
  EXPECT_THAT(third.referral().deconfliction_with(), ElementsAre("SFK"));
}

// Silence at the first stage (acknowledgement, due in 5 days): reminded, reminded again, then the
// ladder to real people, one rung per grace period, and no further.
TEST_F(UkfiuDeskTest, SilenceIsRemindedThenClimbsTheLadder) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  ASSERT_OK_AND_ASSIGN(auto early, desk_->RunClock());
  EXPECT_EQ(early.reminders_sent(), 0);
  clock_.Advance(absl::Hours(24 * 5));
  ASSERT_OK_AND_ASSIGN(auto due, desk_->RunClock());
  EXPECT_EQ(due.reminders_sent(), 1);
  ASSERT_OK_AND_ASSIGN(auto again, desk_->RunClock());
  EXPECT_EQ(again.reminders_sent() + again.escalations(), 0);
  clock_.Advance(absl::Hours(24 * 14));
  ASSERT_OK_AND_ASSIGN(auto repeat, desk_->RunClock());
  EXPECT_EQ(repeat.reminders_sent(), 1) << "a reminder repeats every 14 days";
  EXPECT_EQ(repeat.escalations(), 0);
  std::vector<std::string> addressees;
  for (int rung = 1; rung <= 4; ++rung) {
    clock_.Advance(absl::Hours(24 * 28));
    ASSERT_OK_AND_ASSIGN(auto run, desk_->RunClock());
    EXPECT_EQ(run.escalations(), rung <= 3 ? 1 : 0) << "rung " << rung;
  }
  ASSERT_OK_AND_ASSIGN(auto view, desk_->GetReferral(ref.referral().referral_id()));
  for (const auto& e : view.events()) {
    if (e.type() == v1::EVENT_TYPE_ESCALATED) addressees.push_back(e.addressee());
  }
  ASSERT_EQ(addressees.size(), 3u);
  EXPECT_THAT(addressees[0], HasSubstr("Head of Professional Standards, Norfolk Constabulary"));
  EXPECT_THAT(addressees[1], HasSubstr("Deputy Chief Constable, Norfolk Constabulary"));
  EXPECT_THAT(addressees[2], HasSubstr("Police and Crime Commissioner"));
  EXPECT_TRUE(view.referral().escalated());
}

// The clock scans its open referrals every scan_interval_seconds (each second on a local chain):
// it must read those alone, not every referral that ever ended.
TEST_F(UkfiuDeskTest, TheClockReadsOnlyTheOpenReferralsThroughTheirIndex) {
  SaveEndedAndOpenReferrals();
  std::vector<std::string> open, plan;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(open, OpenReferralIdsByDue(t));
    // OpenReferralIdsByDue's statement, as the planner takes it.
    ASSIGN_OR_RETURN(auto rows,
                     t.Query(absl::StrCat("EXPLAIN QUERY PLAN ", OpenReferralIdsByDueSql())));
    for (const Row& r : rows) plan.push_back(r.Text(3));
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_THAT(open, ElementsAre("REF-open-2", "REF-open-0", "REF-open-1"));
  EXPECT_THAT(plan, ElementsAre("SCAN referrals USING INDEX referrals_open_by_due"));
  ASSERT_OK_AND_ASSIGN(auto run, desk_->RunClock());
  EXPECT_EQ(run.reminders_sent() + run.escalations(), 0);
}

// A metrics scrape reads the gauges: from the indexes, never the referral rows with their packages,
// however many referrals have ended.
TEST_F(UkfiuDeskTest, TheReferralGaugesReadIndexesOnly) {
  SaveEndedAndOpenReferrals();
  clock_.Advance(absl::Hours(24 + 1));  // REF-open-2 and REF-open-0 are now past due
  MetricsText text;
  ASSERT_THAT(WriteReferralGauges(*db_, clock_.Now(), text), IsOk());
  EXPECT_THAT(text.text(), HasSubstr("sarloop_referrals_overdue 2\n"));
  // The gauge follows each referral's running clock, not the dispatch's due date: an
  // investigation reporting progress on time is not overdue past it, a paused decision is not
  // overdue, and a late acknowledgement is overdue before it.
  ASSERT_THAT(db_->Transact([&](Txn& t) -> absl::Status {
    v1::Referral on_time;
    on_time.set_referral_id("REF-progress");
    on_time.set_organisation("SFK");
    on_time.set_state(v1::REFERRAL_STATE_JOINT_INVESTIGATION);
    *on_time.mutable_due_at() = ToProto(clock_.Now() - absl::Hours(24 * 100));
    *on_time.mutable_next_due_at() = ToProto(clock_.Now() + absl::Hours(24 * 10));
    RETURN_IF_ERROR(SaveReferral(t, on_time, clock_.Now()));
    v1::Referral paused = on_time;
    paused.set_referral_id("REF-paused");
    paused.set_state(v1::REFERRAL_STATE_UNDER_RESEARCH);
    paused.clear_next_due_at();
    paused.set_decision_clock_paused(true);
    RETURN_IF_ERROR(SaveReferral(t, paused, clock_.Now()));
    v1::Referral unacknowledged = on_time;
    unacknowledged.set_referral_id("REF-unacknowledged");
    unacknowledged.set_state(v1::REFERRAL_STATE_DISPATCHED);
    *unacknowledged.mutable_due_at() = ToProto(clock_.Now() + absl::Hours(24 * 20));
    *unacknowledged.mutable_next_due_at() = ToProto(clock_.Now());  // due this very moment
    return SaveReferral(t, unacknowledged, clock_.Now());
  }),
              IsOk());
  MetricsText after;
  ASSERT_THAT(WriteReferralGauges(*db_, clock_.Now(), after), IsOk());
  EXPECT_THAT(after.text(), HasSubstr("sarloop_referrals_overdue 3\n"));
  EXPECT_THAT(text.text(), HasSubstr("sarloop_referrals{state=\"WITHDRAWN\"} 40\n"));
  EXPECT_THAT(text.text(), HasSubstr("sarloop_referrals{state=\"DISPATCHED\"} 1\n"));
  std::vector<std::string> by_state, overdue;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto a, t.Query(absl::StrCat("EXPLAIN QUERY PLAN ", kReferralsByStateSql)));
    for (const Row& r : a) by_state.push_back(r.Text(3));
    ASSIGN_OR_RETURN(
        auto b, t.Query(absl::StrCat("EXPLAIN QUERY PLAN ", OverdueReferralsSql()), {int64_t{0}}));
    for (const Row& r : b) overdue.push_back(r.Text(3));
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_THAT(by_state, ElementsAre("SCAN referrals USING COVERING INDEX referrals_by_state"));
  EXPECT_THAT(
      overdue,
      ElementsAre("SEARCH referrals USING INDEX referrals_open_by_due (due_at>? AND due_at<?)"));
}

// Most open referrals owe nothing at a given scan: the clock judges them in a read and writes
// only for those that owe something.
TEST_F(UkfiuDeskTest, AScanThatOwesNothingWritesNothing) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_THAT(Refer(Submit(absl::StrCat("Person ", i)), i % 2 ? "NFK" : "SFK"), IsOk());
  }
  const int64_t writes_before = db_->Stats().transactions;
  ASSERT_OK_AND_ASSIGN(auto early, desk_->RunClock());
  EXPECT_EQ(early.reminders_sent() + early.escalations() + early.open_investigation_flags(), 0);
  EXPECT_EQ(db_->Stats().transactions, writes_before);
  clock_.Advance(absl::Hours(24 * 5));
  ASSERT_OK_AND_ASSIGN(auto due, desk_->RunClock());
  EXPECT_EQ(due.reminders_sent(), 6);
  EXPECT_EQ(db_->Stats().transactions, writes_before + 6);
  ASSERT_OK_AND_ASSIGN(auto again, desk_->RunClock());
  EXPECT_EQ(again.reminders_sent() + again.escalations(), 0);
  EXPECT_EQ(db_->Stats().transactions, writes_before + 6);
}

// RunFeedbackClock runs the scan as a write call, inside a job on the writer: its writes are
// savepoints of that job's batch, one commit for all, and it must not wait for jobs of its own.
TEST_F(UkfiuDeskTest, TheClockRunsInsideAWriteJobInOneCommit) {
  for (int i = 0; i < 40; ++i) {
    ASSERT_THAT(Refer(Submit(absl::StrCat("Person ", i)), i % 2 ? "NFK" : "SFK"), IsOk());
  }
  clock_.Advance(absl::Hours(24 * 5));
  const CommitStats before = db_->Stats();
  std::promise<absl::StatusOr<v1::RunFeedbackClockResponse>> ran;
  db_->Submit([&]() -> Database::Completion {
    auto r = std::make_shared<absl::StatusOr<v1::RunFeedbackClockResponse>>(desk_->RunClock());
    return [&, r](const absl::Status& commit) {
      ran.set_value(commit.ok() ? *r : absl::StatusOr<v1::RunFeedbackClockResponse>(commit));
    };
  });
  std::future<absl::StatusOr<v1::RunFeedbackClockResponse>> result = ran.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the scan waited for jobs queued behind its own";
  ASSERT_OK_AND_ASSIGN(auto run, result.get());
  EXPECT_EQ(run.reminders_sent(), 40);
  EXPECT_EQ(db_->Stats().commits, before.commits + 1);
  EXPECT_EQ(db_->Stats().transactions, before.transactions + 40);
}

// An investigation that reports progress on time is never chased, over 20 months; when it falls
// silent, the progress clock its priority sets reminds it.
TEST_F(UkfiuDeskTest, AnInvestigationThatUpdatesOnTimeIsNotOverdue) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  const std::string id = ref.referral().referral_id();
  Identity nfk{"spiffe://sarloop/force/NFK", "force", "NFK", ""};
  Identity ersou{"spiffe://sarloop/racu/ERSOU", "racu", "ERSOU", ""};
  int n = 0;
  auto deliver = [&](const Identity& from, v1::LifecycleEvent e) {
    v1::Envelope env;
    *env.mutable_event() = std::move(e);
    env.set_message_id(absl::StrCat("m", n++));
    return db_->Transact([&](Txn& txn) { return desk_->Receive(txn, from, env); });
  };
  for (v1::EventType t :
       {v1::EVENT_TYPE_RECEIVED, v1::EVENT_TYPE_ACKNOWLEDGED, v1::EVENT_TYPE_RESEARCH_STARTED}) {
    ASSERT_THAT(deliver(nfk, NewEvent(t, id, "NFK", "NFK", actor_, clock_.Now())), IsOk());
  }
  clock_.Advance(absl::Hours(24 * 20));
  v1::LifecycleEvent handed =
      NewEvent(v1::EVENT_TYPE_HANDED_OVER, id, "NFK", "NFK", actor_, clock_.Now());
  handed.set_unit("ERSOU");
  handed.set_priority(v1::PRIORITY_P2);
  ASSERT_THAT(deliver(nfk, handed), IsOk());
  v1::LifecycleEvent opened =
      NewEvent(v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, id, "ERSOU", "NFK", actor_, clock_.Now());
  opened.set_unit("ERSOU");
  ASSERT_THAT(deliver(ersou, opened), IsOk());
  int chased = 0;
  for (int month = 0; month < 11; ++month) {  // 11 x 55 days: about 20 months
    clock_.Advance(absl::Hours(24 * 55));
    v1::LifecycleEvent progress =
        NewEvent(v1::EVENT_TYPE_PROGRESS_UPDATED, id, "ERSOU", "NFK", actor_, clock_.Now());
    progress.set_unit("ERSOU");
    progress.set_progress(v1::PROGRESS_STATUS_AWAITING_TRIAL);
    ASSERT_THAT(deliver(ersou, progress), IsOk());
    ASSERT_OK_AND_ASSIGN(auto run, desk_->RunClock());
    chased += run.reminders_sent() + run.escalations();
  }
  EXPECT_EQ(chased, 0);
  clock_.Advance(absl::Hours(24 * 61));
  ASSERT_OK_AND_ASSIGN(auto silent, desk_->RunClock());
  EXPECT_EQ(silent.reminders_sent(), 1) << "P2: a progress update was due after 60 days";
}

TEST_F(UkfiuDeskTest, WithdrawnReferralCannotBeWithdrawnAgain) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  v1::WithdrawReferralRequest req;
  req.set_request_id("w1");
  req.set_referral_id(ref.referral().referral_id());
  req.set_reason("duplicate SAR");
  ASSERT_OK_AND_ASSIGN(auto w, desk_->Withdraw(call_, req));
  EXPECT_EQ(w.referral().state(), v1::REFERRAL_STATE_WITHDRAWN);
  req.set_request_id("w2");
  EXPECT_THAT(desk_->Withdraw(call_, req),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("WITHDRAWN")));
}

TEST_F(UkfiuDeskTest, WithdrawalReachesTheUnitHoldingTheReferral) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  const std::string id = ref.referral().referral_id();
  Identity nfk{"spiffe://sarloop/force/NFK", "force", "NFK", ""};
  int n = 0;
  for (v1::EventType t : {v1::EVENT_TYPE_RECEIVED, v1::EVENT_TYPE_ACKNOWLEDGED,
                          v1::EVENT_TYPE_RESEARCH_STARTED, v1::EVENT_TYPE_HANDED_OVER}) {
    clock_.Advance(absl::Minutes(1));
    v1::Envelope env;
    *env.mutable_event() = NewEvent(t, id, "NFK", "NFK", actor_, clock_.Now());
    if (t == v1::EVENT_TYPE_HANDED_OVER) env.mutable_event()->set_unit("ERSOU");
    env.set_message_id(absl::StrCat("m", n++));
    ASSERT_THAT(db_->Transact([&](Txn& txn) { return desk_->Receive(txn, nfk, env); }), IsOk());
  }
  v1::WithdrawReferralRequest req;
  req.set_request_id("w1");
  req.set_referral_id(id);
  req.set_reason("the reporter withdrew the SAR");
  ASSERT_OK_AND_ASSIGN(auto w, desk_->Withdraw(call_, req));
  EXPECT_EQ(w.referral().state(), v1::REFERRAL_STATE_WITHDRAWN);
  auto out = Outbox();
  std::set<std::string> told;
  for (const auto& [dest, type, package] : out) {
    if (type == v1::EVENT_TYPE_WITHDRAWN) told.insert(dest);
  }
  EXPECT_EQ(told, (std::set<std::string>{"NFK", "NCA", "ERSOU"}));
}

TEST_F(UkfiuDeskTest, OpenInvestigationIsFlaggedAtTwelveMonthsThenEverySix) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  const std::string id = ref.referral().referral_id();
  Identity nfk{"spiffe://sarloop/force/NFK", "force", "NFK", ""};
  int n = 0;
  for (v1::EventType t :
       {v1::EVENT_TYPE_RECEIVED, v1::EVENT_TYPE_ACKNOWLEDGED, v1::EVENT_TYPE_RESEARCH_STARTED}) {
    v1::Envelope env;
    *env.mutable_event() = NewEvent(t, id, "NFK", "NFK", actor_, clock_.Now());
    env.set_message_id(absl::StrCat("m", n++));
    ASSERT_THAT(db_->Transact([&](Txn& txn) { return desk_->Receive(txn, nfk, env); }), IsOk());
  }
  auto flags_after = [&](absl::Duration d) {
    clock_.Advance(d);
    auto r = desk_->RunClock();
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->open_investigation_flags() : -1;
  };
  EXPECT_EQ(flags_after(absl::Hours(24 * 360)), 0);  // under 12 months
  EXPECT_EQ(flags_after(absl::Hours(24 * 6)), 1);    // 366 days
  EXPECT_EQ(flags_after(absl::Hours(24 * 30)), 0);
  // The force records that a report would prejudice the investigation: the next flag says so,
  // and is addressed to nobody.
  v1::Envelope env;
  *env.mutable_event() =
      NewEvent(v1::EVENT_TYPE_PROGRESS_UPDATED, id, "NFK", "NFK", actor_, clock_.Now());
  env.mutable_event()->set_progress(v1::PROGRESS_STATUS_REG19_NOT_REPORTED_PREJUDICE);
  env.set_message_id("m-reg19");
  ASSERT_THAT(db_->Transact([&](Txn& txn) { return desk_->Receive(txn, nfk, env); }), IsOk());
  EXPECT_EQ(flags_after(absl::Hours(24 * 160)), 1);  // 18 months
  ASSERT_OK_AND_ASSIGN(auto view, desk_->GetReferral(id));
  std::vector<v1::LifecycleEvent> flags;
  for (const auto& e : view.events()) {
    if (e.type() == v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG) flags.push_back(e);
  }
  ASSERT_EQ(flags.size(), 2u);
  EXPECT_THAT(flags[0].addressee(), HasSubstr("Police and Crime Commissioner"));
  EXPECT_EQ(flags[1].addressee(), "");
  EXPECT_THAT(flags[1].reason(), HasSubstr("would prejudice the investigation"));
}

TEST_F(UkfiuDeskTest, RedirectLinksTheNewReferral) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  v1::RedirectReferralRequest req;
  req.set_request_id("r1");
  req.set_referral_id(ref.referral().referral_id());
  req.set_organisation("SFK");
  *req.mutable_thr() = SampleThr();
  req.set_reason("subject transferred to Suffolk");
  ASSERT_OK_AND_ASSIGN(auto r, desk_->Redirect(call_, req));
  EXPECT_EQ(r.redirected().state(), v1::REFERRAL_STATE_REDIRECTED);
  EXPECT_EQ(r.redirected().linked_referral_id(), r.referral().referral_id());
  EXPECT_EQ(r.referral().linked_referral_id(), ref.referral().referral_id());
  EXPECT_EQ(r.referral().organisation(), "SFK");
  EXPECT_TRUE(r.referral().deconfliction_with().empty());
}

TEST_F(UkfiuDeskTest, OnlyTheAddressedForceMayReportOnAReferral) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  v1::Envelope env;
  env.set_message_id("m1");
  *env.mutable_event() = NewEvent(v1::EVENT_TYPE_RECEIVED, ref.referral().referral_id(), "SFK",
                                  "SFK", actor_, clock_.Now());
  Identity sfk{"spiffe://sarloop/force/SFK", "force", "SFK", ""};
  absl::Status s = db_->Transact([&](Txn& t) { return desk_->Receive(t, sfk, env); });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_));
}

// A DAML request: the flag and the glossary code go together, and the referral's first decision
// is due when the 7-working-day notice period ends (here sooner than 28 days).
TEST_F(UkfiuDeskTest, ADamlRequestsReferralIsDueWithinTheNoticePeriod) {
  v1::SubmitSarRequest req;
  req.set_request_id("daml-1");
  *req.mutable_sar() = SampleSar("Jane Example");
  req.mutable_sar()->add_glossary_codes("XXS99XX");
  req.mutable_sar()->add_glossary_codes("XXPCPXX");
  ASSERT_OK_AND_ASSIGN(auto sar, desk_->SubmitSar(call_, req));
  EXPECT_TRUE(sar.sar().daml()) << "XXS99XX marks a DAML request";
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(sar.sar().sar_id(), "NFK"));
  // Tuesday 14 November 2023: 7 working days end with Thursday 23 November.
  EXPECT_EQ(FromProto(ref.referral().due_at()),
            absl::FromCivil(absl::CivilDay(2023, 11, 24), absl::UTCTimeZone()));
  EXPECT_TRUE(ref.referral().daml());
  ASSERT_OK_AND_ASSIGN(auto got, desk_->GetReferral(ref.referral().referral_id()));
  ASSERT_GE(got.events_size(), 1);
  EXPECT_TRUE(got.events(0).daml());
  EXPECT_THAT(got.events(0).glossary_codes(), ElementsAre("XXS99XX", "XXPCPXX"));

  // The flag alone adds the code.
  req.set_request_id("daml-2");
  req.mutable_sar()->clear_glossary_codes();
  req.mutable_sar()->set_daml(true);
  ASSERT_OK_AND_ASSIGN(auto flagged, desk_->SubmitSar(call_, req));
  EXPECT_THAT(flagged.sar().glossary_codes(), ElementsAre("XXS99XX"));

  // Codes have one shape, each once.
  for (const char* bad : {"S99", "XXs99XX", "XXXX", "XX1234567XX"}) {
    req.set_request_id(absl::StrCat("daml-bad-", bad));
    req.mutable_sar()->clear_glossary_codes();
    req.mutable_sar()->add_glossary_codes(bad);
    EXPECT_THAT(desk_->SubmitSar(call_, req),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sar.glossary_codes[0]")))
        << bad;
  }
  req.mutable_sar()->clear_glossary_codes();
  req.mutable_sar()->add_glossary_codes("XXD9XX");
  req.mutable_sar()->add_glossary_codes("XXD9XX");
  EXPECT_THAT(desk_->SubmitSar(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sar.glossary_codes[1]")));

  // Referred an hour before the notice period ends: due in a day, not in an hour.
  clock_.Advance(
      absl::Hours(24 * 10) - absl::Hours(1) -
      (clock_.Now() - absl::FromCivil(absl::CivilDay(2023, 11, 14), absl::UTCTimeZone())));
  ASSERT_EQ(clock_.Now(),
            absl::FromCivil(absl::CivilSecond(2023, 11, 23, 23, 0, 0), absl::UTCTimeZone()));
  ASSERT_OK_AND_ASSIGN(auto near_end, Refer(flagged.sar().sar_id(), "NFK"));
  EXPECT_EQ(FromProto(near_end.referral().due_at()), clock_.Now() + absl::Hours(24));
  // Referred after the notice period has ended (late, or redirected to the employer named by
  // the first force): due as any referral, not overdue from the moment it is made.
  clock_.Advance(absl::Hours(24 * 14));
  ASSERT_OK_AND_ASSIGN(auto late, Refer(flagged.sar().sar_id(), "SFK"));
  EXPECT_EQ(FromProto(late.referral().due_at()), clock_.Now() + absl::Hours(24 * 28));
}

// Coverage: an organisation not on sarloop can be referred to; UKFIU records its replies on its
// behalf, and the NCA's own personnel go to NCAPSU.
TEST_F(UkfiuDeskTest, AnOffSystemOrganisationsRepliesAreRecordedOnItsBehalf) {
  const std::string sar = Submit();
  EXPECT_THAT(Refer(sar, "CLE"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("off_system")));
  EXPECT_THAT(Refer(sar, "NCA"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NCAPSU")));
  v1::ReferSarRequest req;
  req.set_request_id("off-1");
  req.set_sar_id(sar);
  req.set_organisation("NFK");
  *req.mutable_thr() = SampleThr();
  req.set_off_system(true);
  EXPECT_THAT(desk_->Refer(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("off_system")))
      << "NFK runs sarloop";
  req.set_request_id("off-2");
  req.set_organisation("CLE");
  ASSERT_OK_AND_ASSIGN(auto ref, desk_->Refer(call_, req));
  EXPECT_TRUE(ref.referral().recorded_on_behalf());
  const std::string id = ref.referral().referral_id();

  v1::RecordOnBehalfRequest step;
  step.set_request_id("ob-1");
  step.set_referral_id(id);
  step.set_step(v1::EVENT_TYPE_RECEIVED);
  EXPECT_THAT(desk_->RecordOnBehalf(call_, step),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("received_by")));
  step.set_received_by("secure email from Cleveland PSD");
  ASSERT_THAT(desk_->RecordOnBehalf(call_, step), IsOk());
  step.set_request_id("ob-2");
  step.set_step(v1::EVENT_TYPE_CLOSED_BY_FORCE);
  EXPECT_THAT(desk_->RecordOnBehalf(call_, step),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outcome")));
  step.set_request_id("ob-3");
  step.set_step(v1::EVENT_TYPE_DECLINED_BY_FORCE);
  step.set_reason_code(v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION);
  step.set_named_organisation("DUR");
  ASSERT_OK_AND_ASSIGN(auto declined, desk_->RecordOnBehalf(call_, step));
  EXPECT_EQ(declined.referral().state(), v1::REFERRAL_STATE_DECLINED_BY_FORCE);
  EXPECT_EQ(declined.referral().named_organisation(), "DUR");
  ASSERT_OK_AND_ASSIGN(auto got, desk_->GetReferral(id));
  for (const auto& e : got.events()) {
    EXPECT_TRUE(e.recorded_on_behalf()) << EventName(e.type());
    EXPECT_EQ(e.producer(), "UKFIU");
  }

  // Not for an organisation that runs sarloop.
  ASSERT_OK_AND_ASSIGN(auto on_system, Refer(Submit("Sam Other"), "NFK"));
  step.set_request_id("ob-4");
  step.set_referral_id(on_system.referral().referral_id());
  step.set_step(v1::EVENT_TYPE_RECEIVED);
  step.clear_reason_code();
  step.clear_named_organisation();
  EXPECT_THAT(desk_->RecordOnBehalf(call_, step),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("runs sarloop")));

  // The NCA's own personnel: its professional standards unit, off-system here.
  req.set_request_id("off-3");
  req.set_sar_id(Submit("Nia Agency"));
  req.set_organisation("NCAPSU");
  EXPECT_THAT(desk_->Refer(call_, req), IsOk());
}

// A SAR about people in two organisations: one case, a referral each, one lead; the two are no
// deconfliction for each other.
TEST_F(UkfiuDeskTest, AJointReferralIsOneCaseWithALead) {
  const std::string sar = Submit();
  v1::ReferSarRequest req;
  req.set_request_id("j1");
  req.set_sar_id(sar);
  req.set_organisation("NFK");
  *req.mutable_thr() = SampleThr();
  req.add_joint_with("NFK");
  EXPECT_THAT(desk_->Refer(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("joint_with[0]")));
  req.clear_joint_with();
  req.add_joint_with("SFK");
  req.set_lead_organisation("MPS");
  EXPECT_THAT(desk_->Refer(call_, req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lead_organisation")));
  req.set_lead_organisation("SFK");
  ASSERT_OK_AND_ASSIGN(auto made, desk_->Refer(call_, req));
  ASSERT_EQ(made.joint_size(), 1);
  EXPECT_EQ(made.joint(0).organisation(), "SFK");
  EXPECT_THAT(made.referral().case_id(), ::testing::StartsWith("CASE-"));
  EXPECT_EQ(made.referral().case_id(), made.joint(0).case_id());
  EXPECT_EQ(made.referral().lead_organisation(), "SFK");
  EXPECT_TRUE(made.referral().deconfliction_with().empty());
  EXPECT_TRUE(made.joint(0).deconfliction_with().empty());
  int flags = 0;
  for (const auto& [dest, type, package] : Outbox()) {
    flags += type == v1::EVENT_TYPE_DECONFLICTION_FLAG;
  }
  EXPECT_EQ(flags, 0);
}

// A further SAR joins the open referral: to the force with the SAR, to the NCA without it, and
// the clock is not restarted.
TEST_F(UkfiuDeskTest, AFurtherSarIsAttachedWithoutRestartingTheClock) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  const std::string further = Submit("Kit Further");
  clock_.Advance(absl::Hours(24 * 3));
  v1::AttachSarRequest attach;
  attach.set_request_id("a1");
  attach.set_referral_id(ref.referral().referral_id());
  attach.set_sar_id(ref.referral().sar_id());
  EXPECT_THAT(desk_->AttachSar(call_, attach),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already part")));
  attach.set_request_id("a2");
  attach.set_sar_id(further);
  ASSERT_OK_AND_ASSIGN(auto attached, desk_->AttachSar(call_, attach));
  EXPECT_THAT(attached.referral().supplementary_sar_ids(), ElementsAre(further));
  EXPECT_EQ(attached.referral().due_at().seconds(), ref.referral().due_at().seconds());
  attach.set_request_id("a3");
  EXPECT_THAT(desk_->AttachSar(call_, attach),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already part")));
  bool to_force = false, to_nca = false;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, ReadOutbox(t));
    for (const OutboxEntry& row : rows) {
      if (row.envelope.event().type() != v1::EVENT_TYPE_SAR_ATTACHED) continue;
      if (row.destination == "NFK") {
        to_force = row.envelope.supplementary_sar().sar_id() == further;
      }
      if (row.destination == "NCA") {
        to_nca =
            !row.envelope.has_supplementary_sar() && row.envelope.event().subject_refs_size() == 1;
      }
    }
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_TRUE(to_force);
  EXPECT_TRUE(to_nca);
}

// A redirect's new package carries what happened before.
TEST_F(UkfiuDeskTest, ARedirectedReferralCarriesItsHistory) {
  ASSERT_OK_AND_ASSIGN(auto ref, Refer(Submit(), "NFK"));
  v1::RedirectReferralRequest req;
  req.set_request_id("r1");
  req.set_referral_id(ref.referral().referral_id());
  req.set_organisation("SFK");
  *req.mutable_thr() = SampleThr();
  req.set_reason("transferred to Suffolk");
  ASSERT_OK_AND_ASSIGN(auto r, desk_->Redirect(call_, req));
  bool found = false;
  ASSERT_THAT(db_->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, ReadOutbox(t));
    for (const OutboxEntry& row : rows) {
      if (row.destination != "SFK" || !row.envelope.has_package()) continue;
      found = true;
      const auto& history = row.envelope.package().history();
      EXPECT_GE(history.size(), 2);
      EXPECT_EQ(history[0].referral_id(), ref.referral().referral_id());
      EXPECT_EQ(history[0].type(), v1::EVENT_TYPE_DISPATCHED);
      EXPECT_EQ(history[history.size() - 1].type(), v1::EVENT_TYPE_REDIRECTED);
    }
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace sarloop::ukfiu
