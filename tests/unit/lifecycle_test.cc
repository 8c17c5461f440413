#include "common/referral/lifecycle.h"

#include <random>
#include <set>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/event_log.h"
#include "common/storage/storage.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;
using ::testing::HasSubstr;

TEST(ReferralStateMachine, FollowsTheHandoverPath) {
  v1::ReferralState s = v1::REFERRAL_STATE_UNSPECIFIED;
  for (v1::EventType t :
       {v1::EVENT_TYPE_DISPATCHED, v1::EVENT_TYPE_RECEIVED, v1::EVENT_TYPE_ACKNOWLEDGED,
        v1::EVENT_TYPE_RESEARCH_STARTED, v1::EVENT_TYPE_HANDED_OVER,
        v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, v1::EVENT_TYPE_OUTCOME_RECORDED}) {
    auto next = NextState(s, t);
    ASSERT_THAT(next, IsOk()) << EventName(t);
    s = *next;
  }
  EXPECT_EQ(s, v1::REFERRAL_STATE_OUTCOME_RECORDED);
  EXPECT_TRUE(IsTerminal(s));
  EXPECT_TRUE(IsFeedback(s));
}

// SQL queries use kTerminalStatesSql where code uses IsTerminal: the two must name the same states.
TEST(ReferralStateMachine, TerminalStatesSqlMatchesIsTerminal) {
  std::string expected;
  for (int s = v1::ReferralState_MIN; s <= v1::ReferralState_MAX; ++s) {
    if (!v1::ReferralState_IsValid(s) || !IsTerminal(static_cast<v1::ReferralState>(s))) continue;
    expected += expected.empty() ? "(" : ", ";
    expected += std::to_string(s);
  }
  EXPECT_EQ(std::string(kTerminalStatesSql), expected + ")");
}

// Partial indexes and statements on a call's path choose open referrals with kOpenStatesSql: the
// states it admits are those IsTerminal does not name (all but UNSPECIFIED, which no stored
// referral has).
TEST(ReferralStateMachine, OpenStatesSqlAdmitsExactlyTheStatesNotEnded) {
  TempDir dir;
  auto db = Database::Open(dir.File("states.db"),
                           std::vector<Migration>{{"states", "CREATE TABLE t (state INTEGER);"}},
                           TestKeys());
  ASSERT_THAT(db, IsOk());
  std::vector<int64_t> expected;
  ASSERT_THAT((*db)->Transact([&](Txn& t) -> absl::Status {
    for (int s = v1::ReferralState_MIN; s <= v1::ReferralState_MAX; ++s) {
      if (!v1::ReferralState_IsValid(s) || s == v1::REFERRAL_STATE_UNSPECIFIED) continue;
      RETURN_IF_ERROR(t.Exec("INSERT INTO t (state) VALUES (?)", {int64_t{s}}));
      if (!IsTerminal(static_cast<v1::ReferralState>(s))) expected.push_back(s);
    }
    return absl::OkStatus();
  }),
              IsOk());
  std::vector<int64_t> open;
  ASSERT_THAT((*db)->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query(absl::StrCat("SELECT state FROM t WHERE ", kOpenStatesSql,
                                                     " ORDER BY state")));
    for (const Row& r : rows) open.push_back(r.Int(0));
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(open, expected);
  EXPECT_EQ(std::string_view(kOpenStatesSql).find(" IN "), std::string_view::npos);
}

TEST(ReferralStateMachine, RejectsOutcomeBeforeHandover) {
  EXPECT_THAT(NextState(v1::REFERRAL_STATE_UNDER_RESEARCH, v1::EVENT_TYPE_OUTCOME_RECORDED),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("OUTCOME_RECORDED is not allowed in state UNDER_RESEARCH")));
}

TEST(ReferralStateMachine, DeclinedAssistanceReturnsToTheForce) {
  auto s = NextState(v1::REFERRAL_STATE_HANDED_OVER, v1::EVENT_TYPE_ASSISTANCE_DECLINED);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(*s, v1::REFERRAL_STATE_UNDER_RESEARCH);
  // ...from where the force may hand over again or close itself.
  EXPECT_THAT(NextState(*s, v1::EVENT_TYPE_HANDED_OVER), IsOk());
  EXPECT_THAT(NextState(*s, v1::EVENT_TYPE_CLOSED_BY_FORCE), IsOk());
}

TEST(ReferralStateMachine, NothingFollowsAnEnd) {
  for (v1::ReferralState end :
       {v1::REFERRAL_STATE_DECLINED_BY_FORCE, v1::REFERRAL_STATE_CLOSED_BY_FORCE,
        v1::REFERRAL_STATE_OUTCOME_RECORDED, v1::REFERRAL_STATE_WITHDRAWN,
        v1::REFERRAL_STATE_REDIRECTED}) {
    for (int t = 1; t <= v1::EventType_MAX; ++t) {
      EXPECT_FALSE(NextState(end, static_cast<v1::EventType>(t)).ok())
          << StateName(end) << " then " << EventName(static_cast<v1::EventType>(t));
    }
  }
}

TEST(ReferralStateMachine, SideEventsKeepTheState) {
  auto s = NextState(v1::REFERRAL_STATE_ACKNOWLEDGED, v1::EVENT_TYPE_REMINDER_SENT);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(*s, v1::REFERRAL_STATE_ACKNOWLEDGED);
}

TEST(ReferralStateMachine, WithdrawalFromAnyOpenState) {
  for (v1::ReferralState open :
       {v1::REFERRAL_STATE_DISPATCHED, v1::REFERRAL_STATE_RECEIVED,
        v1::REFERRAL_STATE_UNDER_RESEARCH, v1::REFERRAL_STATE_JOINT_INVESTIGATION}) {
    auto s = NextState(open, v1::EVENT_TYPE_WITHDRAWN);
    ASSERT_THAT(s, IsOk());
    EXPECT_EQ(*s, v1::REFERRAL_STATE_WITHDRAWN);
  }
}

// One event of NFK's referral REF-0123456789abcdef.
v1::LifecycleEvent EventAt(v1::EventType type, const std::string& producer, absl::Time at) {
  v1::LifecycleEvent e;
  e.set_event_id(NewId("EV-", 32));
  e.set_referral_id("REF-0123456789abcdef");
  e.set_type(type);
  e.set_producer(producer);
  e.set_organisation("NFK");
  *e.mutable_occurred_at() = ToProto(at);
  return e;
}

// A realistic referral history: dispatch, handover, a declined request for assistance, a second
// handover, a reminder, an escalation, then the unit's outcome.
std::vector<v1::LifecycleEvent> History() {
  std::vector<v1::LifecycleEvent> events;
  int64_t t = 1700000000;
  auto add = [&](v1::EventType type, const std::string& producer) -> v1::LifecycleEvent& {
    events.push_back(EventAt(type, producer, absl::FromUnixSeconds(t += 3600)));
    return events.back();
  };
  {
    v1::LifecycleEvent& d = add(v1::EVENT_TYPE_DISPATCHED, "UKFIU");
    d.add_subject_refs("abc");
    d.set_daml(true);
    d.add_glossary_codes("XXS99XX");
  }
  add(v1::EVENT_TYPE_RECEIVED, "NFK");
  add(v1::EVENT_TYPE_ACKNOWLEDGED, "NFK");
  add(v1::EVENT_TYPE_RESEARCH_STARTED, "NFK");
  // Threads: the force asks UKFIU (answered), UKFIU asks the force (answered later), and the unit
  // asks the force (never answered).
  auto thread = [&](v1::EventType type, const std::string& producer, const std::string& with,
                    const std::string& id) {
    v1::LifecycleEvent& e = add(type, producer);
    e.set_thread_id(id);
    e.set_thread_with(with);
    if (producer == "ERSOU") e.set_unit("ERSOU");
  };
  thread(v1::EVENT_TYPE_INFORMATION_REQUESTED, "NFK", "UKFIU", "RFI-0000000000000001");
  thread(v1::EVENT_TYPE_INFORMATION_REQUESTED, "UKFIU", "NFK", "RFI-0000000000000002");
  thread(v1::EVENT_TYPE_INFORMATION_PROVIDED, "UKFIU", "NFK", "RFI-0000000000000001");
  add(v1::EVENT_TYPE_HANDED_OVER, "NFK").set_unit("ERSOU");
  thread(v1::EVENT_TYPE_INFORMATION_PROVIDED, "NFK", "UKFIU", "RFI-0000000000000002");
  add(v1::EVENT_TYPE_ASSISTANCE_DECLINED, "ERSOU").set_reason("capacity");
  add(v1::EVENT_TYPE_REMINDER_SENT, "UKFIU");
  add(v1::EVENT_TYPE_SAR_ATTACHED, "UKFIU").add_subject_refs("def");
  add(v1::EVENT_TYPE_HANDED_OVER, "NFK").set_unit("ERSOU");
  add(v1::EVENT_TYPE_ESCALATED, "UKFIU");
  add(v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, "ERSOU");
  // Referred to the IOPC, which decides the force investigates under its direction.
  add(v1::EVENT_TYPE_REFERRED_TO_IOPC, "NFK");
  add(v1::EVENT_TYPE_REFERRED_TO_IOPC, "NFK").set_iopc_mode(v1::IOPC_MODE_DIRECTED);
  thread(v1::EVENT_TYPE_INFORMATION_REQUESTED, "ERSOU", "NFK", "RFI-0000000000000003");
  // Charged, then a case to answer beside it; convicted, then the hearing; the unit finishes.
  *add(v1::EVENT_TYPE_OUTCOME_UPDATED, "ERSOU").mutable_outcome() =
      testing::SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED);
  *add(v1::EVENT_TYPE_OUTCOME_UPDATED, "NFK").mutable_outcome() =
      testing::SampleOutcome(v1::OUTCOME_TYPE_CASE_TO_ANSWER);
  *add(v1::EVENT_TYPE_OUTCOME_UPDATED, "ERSOU").mutable_outcome() =
      testing::SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  *add(v1::EVENT_TYPE_OUTCOME_UPDATED, "NFK").mutable_outcome() =
      testing::SampleOutcome(v1::OUTCOME_TYPE_ACCELERATED_HEARING);
  *add(v1::EVENT_TYPE_OUTCOME_RECORDED, "ERSOU").mutable_outcome() =
      testing::SampleOutcome(v1::OUTCOME_TYPE_BARRED_LIST_ENTRY);
  return events;
}

TEST(RegisterFold, InOrderHistoryEndsWithTheOutcome) {
  v1::RegisterEntry e = Fold(History());
  EXPECT_EQ(e.state(), v1::REFERRAL_STATE_OUTCOME_RECORDED);
  EXPECT_EQ(e.outcome().type(), v1::OUTCOME_TYPE_BARRED_LIST_ENTRY);
  // The latest on each track, in track order.
  ASSERT_EQ(e.tracks_size(), 3);
  EXPECT_EQ(e.tracks(0).type(), v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  EXPECT_EQ(e.tracks(0).track(), v1::OUTCOME_TRACK_CRIMINAL);
  EXPECT_EQ(e.tracks(1).type(), v1::OUTCOME_TYPE_ACCELERATED_HEARING);
  EXPECT_EQ(e.tracks(2).type(), v1::OUTCOME_TYPE_BARRED_LIST_ENTRY);
  EXPECT_EQ(e.assistance_declines(), 1);
  EXPECT_EQ(e.reminders(), 1);
  EXPECT_TRUE(e.escalated());
  EXPECT_EQ(e.unit(), "ERSOU");
  EXPECT_EQ(e.event_count(), 23);
  EXPECT_EQ(e.supplementary_sars(), 1);
  EXPECT_THAT(e.subject_refs(), ::testing::ElementsAre("abc", "def"));
  EXPECT_TRUE(e.daml());
  EXPECT_TRUE(e.referred_to_iopc());
  EXPECT_EQ(e.iopc_mode(), v1::IOPC_MODE_DIRECTED);
  EXPECT_EQ(e.information_requests(), 3);
  EXPECT_EQ(e.information_answered(), 2);
  EXPECT_EQ(e.information_open(), 0) << "ended: nothing can be answered now";
  EXPECT_EQ(e.information_reply_seconds(), 2 * 3600 + 3 * 3600);
  EXPECT_TRUE(e.has_feedback_at());
}

// A unit's decline gives the force back the time it had for its first decision, and at least a
// day: a referral recorded due at its own dispatch does not owe the new decision in the past.
TEST(RegisterFold, ADeclineNeverLeavesTheNewDecisionDueBeforeIt) {
  std::vector<v1::LifecycleEvent> events;
  const absl::Time start = absl::FromUnixSeconds(1700000000);
  auto add = [&](v1::EventType type, const std::string& producer, absl::Duration at) {
    events.push_back(EventAt(type, producer, start + at));
    return &events.back();
  };
  *add(v1::EVENT_TYPE_DISPATCHED, "UKFIU", absl::ZeroDuration())->mutable_due_at() =
      ToProto(start - absl::Hours(24 * 3));
  add(v1::EVENT_TYPE_RECEIVED, "NFK", absl::Hours(1));
  add(v1::EVENT_TYPE_HANDED_OVER, "NFK", absl::Hours(2))->set_unit("ERSOU");
  add(v1::EVENT_TYPE_ASSISTANCE_DECLINED, "ERSOU", absl::Hours(3))->set_reason("capacity");
  const v1::RegisterEntry e = Fold(events);
  EXPECT_EQ(FromProto(e.decision_due_at()), start + absl::Hours(3) + absl::Hours(24));
}

// The property DESIGN §3 promises: any order and any duplication of the same events converge.
TEST(RegisterFold, ConvergesForAnyOrderAndDuplication) {
  const std::vector<v1::LifecycleEvent> events = History();
  const std::string expected = Fold(events).SerializeAsString();
  std::mt19937 rng(20240430);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<v1::LifecycleEvent> delivered = events;
    std::uniform_int_distribution<size_t> pick(0, events.size() - 1);
    const int dups = std::uniform_int_distribution<int>(0, 10)(rng);
    for (int d = 0; d < dups; ++d) delivered.push_back(events[pick(rng)]);
    std::shuffle(delivered.begin(), delivered.end(), rng);
    ASSERT_EQ(Fold(delivered).SerializeAsString(), expected) << "trial " << trial;
  }
}

// Every prefix of an arrival order is a state the register can show on the way; once the last
// event arrives it must match, and no prefix may ever show a state the full set does not explain.
TEST(RegisterFold, PartialArrivalNeverInventsAnOutcome) {
  std::vector<v1::LifecycleEvent> events = History();
  events.pop_back();  // the outcome has not arrived
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::shuffle(events.begin(), events.end(), rng);
    v1::RegisterEntry e = Fold(events);
    EXPECT_FALSE(e.has_outcome());
    EXPECT_FALSE(IsTerminal(e.state()));
    // The updates are tracks on the way, whatever order they came in: the latest on each.
    ASSERT_EQ(e.tracks_size(), 2);
    EXPECT_EQ(e.tracks(0).type(), v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
    EXPECT_EQ(e.tracks(1).type(), v1::OUTCOME_TYPE_ACCELERATED_HEARING);
  }
}

// Producers' clocks differ: the force's receipt may carry an earlier time than UKFIU's dispatch.
// The register must not move backwards to DISPATCHED.
TEST(RegisterFold, AStepStampedEarlierByASlowClockDoesNotMoveBack) {
  std::vector<v1::LifecycleEvent> events = History();
  events.resize(3);  // DISPATCHED, RECEIVED, ACKNOWLEDGED
  *events[0].mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1900000000));
  v1::RegisterEntry e = Fold(events);
  EXPECT_EQ(e.state(), v1::REFERRAL_STATE_ACKNOWLEDGED);
  EXPECT_TRUE(e.has_due_at() || e.has_dispatched_at());
}

// Steps within one clock tick still fold in lifecycle order.
TEST(RegisterFold, SameInstantStepsFoldInLifecycleOrder) {
  std::vector<v1::LifecycleEvent> events = History();
  for (auto& e : events) *e.mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1700000000));
  events.resize(8);  // ... HANDED_OVER (three thread messages on the way)
  for (int trial = 0; trial < 50; ++trial) {
    for (auto& e : events) e.set_event_id(NewId("EV-", 32));
    EXPECT_EQ(Fold(events).state(), v1::REFERRAL_STATE_HANDED_OVER);
  }
}

// A peer's outcome without a type is no outcome, as the stored entry reads back (found by
// fuzz_register: the stored entry differed from the fold of its events).
TEST(RegisterFold, AnOutcomeWithoutATypeIsNone) {
  std::vector<v1::LifecycleEvent> events = History();
  events.back().mutable_outcome()->clear_type();
  events[events.size() - 2].mutable_outcome()->clear_type();  // the last update too
  v1::RegisterEntry e = Fold(events);
  EXPECT_EQ(e.state(), v1::REFERRAL_STATE_OUTCOME_RECORDED);
  EXPECT_FALSE(e.has_outcome());
  for (const auto& t : e.tracks()) EXPECT_NE(t.type(), v1::OUTCOME_TYPE_UNSPECIFIED);
  EXPECT_EQ(e.tracks_size(), 2);
}

TEST(RegisterFold, FirstEndWins) {
  std::vector<v1::LifecycleEvent> events = History();
  events.resize(4);  // up to UNDER_RESEARCH
  v1::LifecycleEvent withdrawn = events[0];
  withdrawn.set_event_id("EV-withdrawn");
  withdrawn.set_type(v1::EVENT_TYPE_WITHDRAWN);
  *withdrawn.mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1800000000));
  v1::LifecycleEvent closed = events[0];
  closed.set_event_id("EV-closed");
  closed.set_type(v1::EVENT_TYPE_CLOSED_BY_FORCE);
  *closed.mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1800000100));
  events.push_back(closed);
  events.push_back(withdrawn);
  EXPECT_EQ(Fold(events).state(), v1::REFERRAL_STATE_WITHDRAWN);
}

// Event ids sort by the time they were made (the event log's key and a receiver's record of
// messages seen then grow at their end), are "EV-" + 32 hex digits + "-" + their producer, and
// are unique by their random part however many are made in the same millisecond.
TEST(EventIds, SortByTheirTimeAndNeverRepeat) {
  const absl::Time t = absl::FromUnixMillis(1764892800123);  // 2025-12-05 00:00:00.123 UTC
  const auto id_at = [](absl::Time at) {
    return NewEvent(v1::EVENT_TYPE_DISPATCHED, "REF-1", "UKFIU", "NFK", v1::Actor(), at).event_id();
  };
  const std::string first = id_at(t);
  ASSERT_EQ(first.size(), 3u + 32u + 6u);
  EXPECT_EQ(first.substr(0, 15), "EV-019aebcef47b") << first;  // 1764892800123 in hex
  EXPECT_EQ(first.substr(3, 32).find_first_not_of("0123456789abcdef"), std::string::npos) << first;
  EXPECT_EQ(first.substr(35), "-UKFIU") << first;
  EXPECT_EQ(ProducerNamedBy(first), "UKFIU");
  EXPECT_EQ(ProducerNamedBy("EV-019aebcef47b00000000000000000001"), "");  // the older form
  EXPECT_EQ(ProducerNamedBy("EV-1"), "");
  EXPECT_LT(first, id_at(t + absl::Milliseconds(1)));
  EXPECT_LT(id_at(t + absl::Milliseconds(1)), id_at(t + absl::Hours(24 * 365 * 30)));
  EXPECT_EQ(id_at(absl::FromUnixSeconds(-5)).substr(0, 15), "EV-000000000000");
  std::set<std::string> same_instant;
  for (int i = 0; i < 20000; ++i) same_instant.insert(id_at(t));
  EXPECT_EQ(same_instant.size(), 20000u);
  for (const std::string& id : same_instant) ASSERT_EQ(id.substr(0, 15), first.substr(0, 15));
}

}  // namespace
}  // namespace sarloop
