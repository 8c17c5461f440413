// The staged clocks and regulation 19 (common/referral/clocks.h), with an injected time.
#include "common/referral/clocks.h"

#include "common/base/ids.h"
#include "common/referral/lifecycle.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

constexpr absl::Duration kDay = absl::Hours(24);
const absl::Time kStart = absl::FromUnixSeconds(1767225600);  // 2026-01-01

// One referral's events, each `days` after the start.
class History {
 public:
  History() {
    v1::LifecycleEvent& d = Add(v1::EVENT_TYPE_DISPATCHED, "UKFIU", 0);
    *d.mutable_due_at() = ToProto(kStart + 28 * kDay);
    *d.mutable_ack_due_at() = ToProto(kStart + 5 * kDay);
  }
  v1::LifecycleEvent& Add(v1::EventType type, const std::string& producer, double days) {
    v1::LifecycleEvent e;
    e.set_event_id(absl::StrCat("EV-", events_.size()));
    e.set_referral_id("REF-0123456789abcdef");
    e.set_type(type);
    e.set_producer(producer);
    e.set_organisation("NFK");
    *e.mutable_occurred_at() = ToProto(kStart + days * kDay);
    events_.push_back(e);
    return events_.back();
  }
  v1::RegisterEntry Fold() const { return sarloop::Fold(events_); }
  const std::vector<v1::LifecycleEvent>& events() const { return events_; }

 private:
  std::vector<v1::LifecycleEvent> events_;
};

TEST(Clocks, EachStageHasItsOwnDueTime) {
  History h;
  EXPECT_EQ(NextDue(h.Fold()).stage, v1::CLOCK_STAGE_ACKNOWLEDGEMENT);
  EXPECT_EQ(NextDue(h.Fold()).at, kStart + 5 * kDay);
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 0.1);
  h.Add(v1::EVENT_TYPE_ACKNOWLEDGED, "NFK", 2);
  EXPECT_EQ(NextDue(h.Fold()).stage, v1::CLOCK_STAGE_DECISION);
  EXPECT_EQ(NextDue(h.Fold()).at, kStart + 28 * kDay);
  h.Add(v1::EVENT_TYPE_RESEARCH_STARTED, "NFK", 3);
  EXPECT_EQ(NextDue(h.Fold()).stage, v1::CLOCK_STAGE_DECISION) << "research is not a decision";
  h.Add(v1::EVENT_TYPE_HANDED_OVER, "NFK", 20).set_priority(v1::PRIORITY_P1);
  v1::RegisterEntry e = h.Fold();
  EXPECT_EQ(e.clock_stage(), v1::CLOCK_STAGE_PROGRESS);
  EXPECT_EQ(FromProto(e.next_due_at()), kStart + 50 * kDay) << "P1: every 30 days";
  // The unit accepts at P3 (its own priority), then reports progress.
  h.Add(v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, "ERSOU", 25).set_priority(v1::PRIORITY_P3);
  EXPECT_EQ(FromProto(h.Fold().next_due_at()), kStart + 115 * kDay);
  h.Add(v1::EVENT_TYPE_PROGRESS_UPDATED, "ERSOU", 100)
      .set_progress(v1::PROGRESS_STATUS_AWAITING_CHARGING_DECISION);
  EXPECT_EQ(FromProto(h.Fold().next_due_at()), kStart + 190 * kDay);
  EXPECT_FALSE(IsOverdue(h.Fold(), kStart + 189 * kDay));
  EXPECT_TRUE(IsOverdue(h.Fold(), kStart + 190 * kDay));
  h.Add(v1::EVENT_TYPE_OUTCOME_RECORDED, "ERSOU", 150);
  EXPECT_EQ(NextDue(h.Fold()).stage, v1::CLOCK_STAGE_NONE);
  EXPECT_FALSE(IsOverdue(h.Fold(), kStart + 1000 * kDay));
}

// A thread's message: `thread` asked of or answered to `with`.
v1::LifecycleEvent& Thread(History& h, v1::EventType type, const std::string& producer,
                           const std::string& with, const std::string& thread, double days) {
  v1::LifecycleEvent& e = h.Add(type, producer, days);
  e.set_thread_id(thread);
  e.set_thread_with(with);
  if (producer == "ERSOU") e.set_unit("ERSOU");
  return e;
}

TEST(Clocks, TheForcesOpenRequestToUkfiuPausesTheDecisionClock) {
  History h;
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 0);
  h.Add(v1::EVENT_TYPE_ACKNOWLEDGED, "NFK", 1);
  h.Add(v1::EVENT_TYPE_RESEARCH_STARTED, "NFK", 2);
  Thread(h, v1::EVENT_TYPE_INFORMATION_REQUESTED, "NFK", "UKFIU", "RFI-1", 10);
  v1::RegisterEntry e = h.Fold();
  EXPECT_EQ(e.clock_stage(), v1::CLOCK_STAGE_DECISION);
  EXPECT_FALSE(e.has_next_due_at()) << "paused: nothing is due";
  EXPECT_EQ(FromProto(e.decision_paused_since()), kStart + 10 * kDay);
  EXPECT_FALSE(IsOverdue(e, kStart + 200 * kDay));
  EXPECT_EQ(ChaseNow(e, h.events(), kStart + 200 * kDay, ChasePolicy()).reminder, 0);
  EXPECT_EQ(e.information_open(), 1);
  // A second request overlaps the first: the clock stays paused until both are answered.
  Thread(h, v1::EVENT_TYPE_INFORMATION_REQUESTED, "NFK", "UKFIU", "RFI-2", 15);
  Thread(h, v1::EVENT_TYPE_INFORMATION_PROVIDED, "UKFIU", "NFK", "RFI-1", 20);
  EXPECT_FALSE(h.Fold().has_next_due_at());
  Thread(h, v1::EVENT_TYPE_INFORMATION_PROVIDED, "UKFIU", "NFK", "RFI-2", 25);
  e = h.Fold();
  EXPECT_FALSE(e.has_decision_paused_since());
  EXPECT_EQ(FromProto(e.next_due_at()), kStart + 43 * kDay) << "28 days plus the 15 waited";
  EXPECT_FALSE(IsOverdue(e, kStart + 42 * kDay));
  EXPECT_TRUE(IsOverdue(e, kStart + 43 * kDay));
  EXPECT_EQ(e.information_requests(), 2);
  EXPECT_EQ(e.information_answered(), 2);
  EXPECT_EQ(e.information_open(), 0);
  EXPECT_EQ(e.information_reply_seconds(), absl::ToInt64Seconds(20 * kDay));
}

TEST(Clocks, OnlyTheForcesRequestBeforeItsDecisionPauses) {
  History h;
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 0);
  // UKFIU's own question to the force leaves the force's clock running.
  Thread(h, v1::EVENT_TYPE_INFORMATION_REQUESTED, "UKFIU", "NFK", "RFI-1", 1);
  v1::RegisterEntry e = h.Fold();
  EXPECT_EQ(e.clock_stage(), v1::CLOCK_STAGE_ACKNOWLEDGEMENT);
  EXPECT_EQ(FromProto(e.next_due_at()), kStart + 5 * kDay);
  // The force's question acknowledges, and pauses the decision clock; its handover decides.
  Thread(h, v1::EVENT_TYPE_INFORMATION_REQUESTED, "NFK", "UKFIU", "RFI-2", 3);
  e = h.Fold();
  EXPECT_TRUE(e.has_acknowledged_at());
  EXPECT_TRUE(e.has_decision_paused_since());
  h.Add(v1::EVENT_TYPE_RESEARCH_STARTED, "NFK", 4);
  h.Add(v1::EVENT_TYPE_HANDED_OVER, "NFK", 6).set_unit("ERSOU");
  e = h.Fold();
  EXPECT_EQ(e.clock_stage(), v1::CLOCK_STAGE_PROGRESS);
  EXPECT_FALSE(e.has_decision_paused_since());
  // After the decision, a request (to the unit, or to UKFIU) pauses nothing.
  Thread(h, v1::EVENT_TYPE_INFORMATION_REQUESTED, "NFK", "UKFIU", "RFI-3", 10);
  Thread(h, v1::EVENT_TYPE_INFORMATION_REQUESTED, "ERSOU", "NFK", "RFI-4", 11);
  e = h.Fold();
  EXPECT_FALSE(e.has_decision_paused_since());
  EXPECT_EQ(FromProto(e.next_due_at()), kStart + 96 * kDay);
  EXPECT_EQ(e.information_requests(), 4);
  EXPECT_EQ(e.information_open(), 4);
}

TEST(Clocks, AnAnswerCountsOnlyFromThePartyAskedAndAClockBehindCostsNothing) {
  History h;
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 0);
  h.Add(v1::EVENT_TYPE_ACKNOWLEDGED, "NFK", 1);
  Thread(h, v1::EVENT_TYPE_INFORMATION_REQUESTED, "NFK", "UKFIU", "RFI-1", 10);
  // From a party that was not asked: no answer.
  Thread(h, v1::EVENT_TYPE_INFORMATION_PROVIDED, "ERSOU", "NFK", "RFI-1", 12);
  EXPECT_TRUE(h.Fold().has_decision_paused_since());
  // UKFIU's answer stamped before the question by a clock running behind: the clock resumes with
  // nothing added.
  Thread(h, v1::EVENT_TYPE_INFORMATION_PROVIDED, "UKFIU", "NFK", "RFI-1", 9.5);
  const v1::RegisterEntry e = h.Fold();
  EXPECT_FALSE(e.has_decision_paused_since());
  EXPECT_EQ(FromProto(e.next_due_at()), kStart + 28 * kDay);
  EXPECT_EQ(e.information_answered(), 1);
  EXPECT_EQ(e.information_reply_seconds(), 0);
}

TEST(Clocks, PriorityToInterval) {
  EXPECT_EQ(ProgressInterval(v1::PRIORITY_P1), 30 * kDay);
  EXPECT_EQ(ProgressInterval(v1::PRIORITY_P2), 60 * kDay);
  EXPECT_EQ(ProgressInterval(v1::PRIORITY_P3), 90 * kDay);
  EXPECT_EQ(ProgressInterval(v1::PRIORITY_P4), 180 * kDay);
  EXPECT_EQ(ProgressInterval(v1::PRIORITY_UNSPECIFIED), 90 * kDay);
}

TEST(Clocks, AForceReportingItsOwnInvestigationHasDecided) {
  History h;
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 0);
  h.Add(v1::EVENT_TYPE_ACKNOWLEDGED, "NFK", 1);
  h.Add(v1::EVENT_TYPE_RESEARCH_STARTED, "NFK", 2);
  h.Add(v1::EVENT_TYPE_PROGRESS_UPDATED, "NFK", 10)
      .set_progress(v1::PROGRESS_STATUS_INVESTIGATION_OPEN);
  EXPECT_EQ(h.Fold().clock_stage(), v1::CLOCK_STAGE_PROGRESS);
  EXPECT_EQ(FromProto(h.Fold().next_due_at()), kStart + 100 * kDay) << "no priority: 90 days";
}

TEST(Clocks, AUnitDecliningAssistanceRestartsTheDecisionClock) {
  History h;
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 0);
  h.Add(v1::EVENT_TYPE_ACKNOWLEDGED, "NFK", 1);
  h.Add(v1::EVENT_TYPE_RESEARCH_STARTED, "NFK", 2);
  h.Add(v1::EVENT_TYPE_HANDED_OVER, "NFK", 10);
  h.Add(v1::EVENT_TYPE_ASSISTANCE_DECLINED, "ERSOU", 40);
  const v1::RegisterEntry e = h.Fold();
  EXPECT_EQ(e.clock_stage(), v1::CLOCK_STAGE_DECISION);
  EXPECT_EQ(FromProto(e.next_due_at()), kStart + 68 * kDay) << "28 days, as the first time";
}

TEST(Clocks, SilenceIsRemindedRepeatedlyThenClimbsTheLadderOneRungAtATime) {
  History h;
  const ChasePolicy policy;  // repeat 14 days, grace 28 days, 3 rungs
  std::vector<v1::LifecycleEvent> chased;
  auto chase = [&](double day) {
    const v1::RegisterEntry e = h.Fold();
    Chase c = ChaseNow(e, h.events(), kStart + day * kDay, policy);
    if (c.reminder > 0) h.Add(v1::EVENT_TYPE_REMINDER_SENT, "UKFIU", day).set_sequence(c.reminder);
    if (c.rung > 0) h.Add(v1::EVENT_TYPE_ESCALATED, "UKFIU", day).set_sequence(c.rung);
    return c;
  };
  EXPECT_EQ(chase(4).reminder, 0);
  EXPECT_EQ(chase(5).reminder, 1) << "acknowledgement due at day 5";
  EXPECT_EQ(chase(6).reminder, 0);
  EXPECT_EQ(chase(19).reminder, 2) << "repeated after 14 days";
  EXPECT_EQ(chase(32).rung, 0);
  EXPECT_EQ(chase(33).rung, 1);
  EXPECT_EQ(chase(34).rung, 0) << "one rung per grace period";
  EXPECT_EQ(chase(61).rung, 2);
  EXPECT_EQ(chase(89).rung, 3);
  EXPECT_EQ(chase(400).rung, 0) << "the ladder has three rungs";
  // An answer ends the spell: the next stage has its own due time.
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 400);
  h.Add(v1::EVENT_TYPE_ACKNOWLEDGED, "NFK", 400);
  h.Add(v1::EVENT_TYPE_RESEARCH_STARTED, "NFK", 400);
  h.Add(v1::EVENT_TYPE_HANDED_OVER, "NFK", 401).set_priority(v1::PRIORITY_P2);
  const Chase quiet = chase(402);
  EXPECT_EQ(quiet.reminder + quiet.rung, 0);
  EXPECT_EQ(chase(461).reminder, 1) << "P2: progress due 60 days after the handover";
}

TEST(Clocks, Regulation19CountsFromReceiptInEveryOpenState) {
  History h;
  h.Add(v1::EVENT_TYPE_RECEIVED, "NFK", 3);
  // Never acknowledged: still open, still counted.
  const v1::RegisterEntry e = h.Fold();
  const absl::Time received = kStart + 3 * kDay;
  EXPECT_EQ(Reg19DueAt(e, 1), received + 365 * kDay);  // 2026-01-04 -> 2027-01-04
  EXPECT_EQ(Reg19DueAt(e, 2), absl::FromCivil(absl::CivilSecond(2027, 7, 4), absl::UTCTimeZone()));
  EXPECT_FALSE(IsOpenOver12Months(e, received + 364 * kDay));
  EXPECT_TRUE(IsOpenOver12Months(e, received + 365 * kDay));
  h.Add(v1::EVENT_TYPE_WITHDRAWN, "UKFIU", 300);
  EXPECT_FALSE(IsOpenOver12Months(h.Fold(), received + 400 * kDay)) << "ended";
  // Without a receipt, from the dispatch.
  History unreceived;
  EXPECT_EQ(Reg19DueAt(unreceived.Fold(), 1), kStart + 365 * kDay);
}

// Received on a day the month it falls due has not: due on that month's last day, never carried
// into the next month.
TEST(Clocks, Regulation19ReportsAtAMonthsEndStayInTheirMonth) {
  auto received_on = [](absl::CivilDay day) {
    v1::RegisterEntry e;
    e.set_state(v1::REFERRAL_STATE_UNDER_RESEARCH);
    *e.mutable_received_at() = ToProto(absl::FromCivil(day, absl::UTCTimeZone()));
    return e;
  };
  auto day = [](int y, int m, int d) {
    return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
  };
  EXPECT_EQ(Reg19DueAt(received_on(absl::CivilDay(2024, 2, 29)), 1), day(2025, 2, 28));
  EXPECT_EQ(Reg19DueAt(received_on(absl::CivilDay(2024, 2, 29)), 3), day(2026, 2, 28));
  EXPECT_EQ(Reg19DueAt(received_on(absl::CivilDay(2025, 8, 31)), 1), day(2026, 8, 31));
  EXPECT_EQ(Reg19DueAt(received_on(absl::CivilDay(2025, 8, 31)), 2), day(2027, 2, 28));
  EXPECT_EQ(Reg19DueAt(received_on(absl::CivilDay(2023, 8, 31)), 2), day(2025, 2, 28));
  EXPECT_EQ(Reg19DueAt(received_on(absl::CivilDay(2022, 8, 31)), 2), day(2024, 2, 29));
  EXPECT_EQ(Reg19DueAt(received_on(absl::CivilDay(2025, 12, 31)), 2), day(2027, 6, 30));
}

}  // namespace
}  // namespace sarloop
