// The outcome vocabulary's rules (common/referral/outcomes.h), each against a table written out
// here rather than derived from the code under test.
#include "common/referral/outcomes.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "common/base/clock.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/reference/reference.h"
#include "common/storage/storage.h"
#include "services/nca/register.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::SampleOutcome;
using ::sarloop::testing::StatusIs;
using ::testing::HasSubstr;
using T = v1::OutcomeType;
using R = v1::SubjectRole;

const absl::Time kNow = absl::FromUnixSeconds(1796300000);  // 2026-12-03

// Every outcome a force or unit may give (DISMISSED and NOT_OUR_PERSONNEL are read from old data
// only).
std::vector<T> GivenTypes() {
  std::vector<T> out;
  for (int t = v1::OutcomeType_MIN + 1; t <= v1::OutcomeType_MAX; ++t) {
    if (v1::OutcomeType_IsValid(t) && t != v1::OUTCOME_TYPE_DISMISSED &&
        t != v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL) {
      out.push_back(T(t));
    }
  }
  return out;
}

TEST(Outcomes, EveryTypeHasATrackAndTheOpenOnesAreNamed) {
  const std::map<T, v1::OutcomeTrack> kTrack = {
      {v1::OUTCOME_TYPE_CRIMINAL_NO_FURTHER_ACTION, v1::OUTCOME_TRACK_CRIMINAL},
      {v1::OUTCOME_TYPE_CRIMINAL_CHARGED, v1::OUTCOME_TRACK_CRIMINAL},
      {v1::OUTCOME_TYPE_CRIMINAL_CONVICTED, v1::OUTCOME_TRACK_CRIMINAL},
      {v1::OUTCOME_TYPE_CRIMINAL_ACQUITTED, v1::OUTCOME_TRACK_CRIMINAL},
      {v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER, v1::OUTCOME_TRACK_CONDUCT},
      {v1::OUTCOME_TYPE_CASE_TO_ANSWER, v1::OUTCOME_TRACK_CONDUCT},
      {v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE, v1::OUTCOME_TRACK_CONDUCT},
      {v1::OUTCOME_TYPE_MISCONDUCT_MEETING, v1::OUTCOME_TRACK_CONDUCT},
      {v1::OUTCOME_TYPE_MISCONDUCT_HEARING, v1::OUTCOME_TRACK_CONDUCT},
      {v1::OUTCOME_TYPE_ACCELERATED_HEARING, v1::OUTCOME_TRACK_CONDUCT},
      {v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION, v1::OUTCOME_TRACK_CONDUCT},
      {v1::OUTCOME_TYPE_VETTING_CLEARANCE_MAINTAINED, v1::OUTCOME_TRACK_VETTING},
      {v1::OUTCOME_TYPE_VETTING_MAINTAINED_WITH_CONDITIONS, v1::OUTCOME_TRACK_VETTING},
      {v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN, v1::OUTCOME_TRACK_VETTING},
      {v1::OUTCOME_TYPE_DISMISSED_AFTER_VETTING_WITHDRAWAL, v1::OUTCOME_TRACK_VETTING},
      {v1::OUTCOME_TYPE_BARRED_LIST_ENTRY, v1::OUTCOME_TRACK_LISTING},
      {v1::OUTCOME_TYPE_ADVISORY_LIST_ENTRY, v1::OUTCOME_TRACK_LISTING},
      {v1::OUTCOME_TYPE_STAFF_MISCONDUCT_PROCEDURE, v1::OUTCOME_TRACK_STAFF},
      {v1::OUTCOME_TYPE_CONTRACT_ENDED, v1::OUTCOME_TRACK_STAFF},
      {v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL, v1::OUTCOME_TRACK_NONE},
      {v1::OUTCOME_TYPE_INTELLIGENCE_ONLY, v1::OUTCOME_TRACK_NONE},
  };
  // NOT_OUR_PERSONNEL is read from old data only, on the NONE track.
  ASSERT_EQ(kTrack.size(), GivenTypes().size() + 1) << "a new outcome type needs a row here";
  EXPECT_EQ(TrackOf(v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL), v1::OUTCOME_TRACK_NONE);
  for (T t : GivenTypes()) {
    EXPECT_EQ(TrackOf(t), kTrack.at(t)) << v1::OutcomeType_Name(t);
    const bool open =
        t == v1::OUTCOME_TYPE_CRIMINAL_CHARGED || t == v1::OUTCOME_TYPE_CASE_TO_ANSWER;
    EXPECT_EQ(IsOpenOutcome(t), open) << v1::OutcomeType_Name(t);
    // The sample is valid for each, so the checks below change one thing at a time.
    EXPECT_THAT(CheckOutcome("outcome", SampleOutcome(t), kNow), IsOk()) << v1::OutcomeType_Name(t);
  }
}

// Who each outcome can befall. o: officer, s: special, S: staff, P: PCSO, v: volunteer,
// c: contractor, f: family or associate, x: another body's personnel.
TEST(Outcomes, TheOutcomeFitsThePerson) {
  const std::map<T, std::string> kWho = {
      {v1::OUTCOME_TYPE_CRIMINAL_NO_FURTHER_ACTION, "osSPvcfx"},
      {v1::OUTCOME_TYPE_CRIMINAL_CHARGED, "osSPvcfx"},
      {v1::OUTCOME_TYPE_CRIMINAL_CONVICTED, "osSPvcfx"},
      {v1::OUTCOME_TYPE_CRIMINAL_ACQUITTED, "osSPvcfx"},
      {v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER, "os"},
      {v1::OUTCOME_TYPE_CASE_TO_ANSWER, "os"},
      {v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE, "os"},
      {v1::OUTCOME_TYPE_MISCONDUCT_MEETING, "os"},
      {v1::OUTCOME_TYPE_MISCONDUCT_HEARING, "os"},
      {v1::OUTCOME_TYPE_ACCELERATED_HEARING, "os"},
      {v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION, "osSP"},
      {v1::OUTCOME_TYPE_VETTING_CLEARANCE_MAINTAINED, "osSPvcf"},
      {v1::OUTCOME_TYPE_VETTING_MAINTAINED_WITH_CONDITIONS, "osSPvcf"},
      {v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN, "osSPvcf"},
      {v1::OUTCOME_TYPE_DISMISSED_AFTER_VETTING_WITHDRAWAL, "os"},
      {v1::OUTCOME_TYPE_BARRED_LIST_ENTRY, "osSP"},
      {v1::OUTCOME_TYPE_ADVISORY_LIST_ENTRY, "osSP"},
      {v1::OUTCOME_TYPE_STAFF_MISCONDUCT_PROCEDURE, "SP"},
      {v1::OUTCOME_TYPE_CONTRACT_ENDED, "vc"},
      {v1::OUTCOME_TYPE_INTELLIGENCE_ONLY, "osSPvcfx"},
  };
  const std::map<char, R> kRole = {{'o', v1::SUBJECT_ROLE_OFFICER},
                                   {'s', v1::SUBJECT_ROLE_SPECIAL_CONSTABLE},
                                   {'S', v1::SUBJECT_ROLE_STAFF},
                                   {'P', v1::SUBJECT_ROLE_PCSO},
                                   {'v', v1::SUBJECT_ROLE_VOLUNTEER},
                                   {'c', v1::SUBJECT_ROLE_CONTRACTOR},
                                   {'f', v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE},
                                   {'x', v1::SUBJECT_ROLE_OTHER_LAW_ENFORCEMENT}};
  ASSERT_EQ(kWho.size(), GivenTypes().size());
  int cells = 0;
  for (T t : GivenTypes()) {
    for (const auto& [letter, role] : kRole) {
      const bool allowed = kWho.at(t).find(letter) != std::string::npos;
      v1::Outcome o = SampleOutcome(t);
      o.set_subject_role(role);
      const absl::Status s = CheckOutcome("outcome", o, kNow);
      EXPECT_EQ(s.ok(), allowed) << v1::SubjectRole_Name(role) << " x " << v1::OutcomeType_Name(t)
                                 << ": " << s;
      if (!allowed) {
        EXPECT_EQ(FieldOf(s), "outcome.type");
      }
      ++cells;
    }
  }
  EXPECT_EQ(cells, 20 * 8);
  // The refusal says where that person's case goes instead.
  v1::Outcome o = SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  o.set_subject_role(v1::SUBJECT_ROLE_CONTRACTOR);
  EXPECT_THAT(CheckOutcome("outcome", o, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contract")));
}

// Reg 42: which actions follow which finding at which forum.
TEST(Outcomes, AFindingAllowsTheActionsOfRegulation42) {
  using M = v1::MisconductResult;
  const M kNo = v1::MISCONDUCT_RESULT_NOT_PROVEN,
          kRpr = v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW,
          kWw = v1::MISCONDUCT_RESULT_WRITTEN_WARNING,
          kFww = v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING,
          kRir = v1::MISCONDUCT_RESULT_REDUCTION_IN_RANK,
          kDwn = v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE;
  struct Row {
    T forum;
    v1::ConductFinding finding;
    std::set<M> actions;
  };
  const Row kRows[] = {
      {v1::OUTCOME_TYPE_MISCONDUCT_MEETING, v1::CONDUCT_FINDING_NONE, {kNo, kRpr}},
      {v1::OUTCOME_TYPE_MISCONDUCT_MEETING, v1::CONDUCT_FINDING_MISCONDUCT, {kWw, kFww, kRpr}},
      {v1::OUTCOME_TYPE_MISCONDUCT_MEETING, v1::CONDUCT_FINDING_GROSS_MISCONDUCT, {}},
      {v1::OUTCOME_TYPE_MISCONDUCT_HEARING, v1::CONDUCT_FINDING_NONE, {kNo, kRpr}},
      {v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
       v1::CONDUCT_FINDING_MISCONDUCT,
       {kWw, kFww, kRpr, kRir, kDwn}},
      {v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
       v1::CONDUCT_FINDING_GROSS_MISCONDUCT,
       {kFww, kRir, kDwn}},
      {v1::OUTCOME_TYPE_ACCELERATED_HEARING, v1::CONDUCT_FINDING_NONE, {kNo, kRpr}},
      {v1::OUTCOME_TYPE_ACCELERATED_HEARING, v1::CONDUCT_FINDING_MISCONDUCT, {}},
      {v1::OUTCOME_TYPE_ACCELERATED_HEARING,
       v1::CONDUCT_FINDING_GROSS_MISCONDUCT,
       {kFww, kRir, kDwn}},
  };
  for (const Row& row : kRows) {
    for (M action : {kNo, kRpr, kWw, kFww, kRir, kDwn}) {
      v1::Outcome o = SampleOutcome(row.forum);
      o.set_finding(row.finding);
      o.set_misconduct_result(action);
      const absl::Status s = CheckOutcome("outcome", o, kNow);
      const bool allowed = row.actions.count(action) > 0;
      EXPECT_EQ(s.ok(), allowed) << v1::OutcomeType_Name(row.forum) << " "
                                 << v1::ConductFinding_Name(row.finding) << " "
                                 << v1::MisconductResult_Name(action) << ": " << s;
      if (!allowed) {
        EXPECT_TRUE(FieldOf(s) == "outcome.misconduct_result" || FieldOf(s) == "outcome.finding")
            << s;
      }
    }
  }
  // Finding and action belong to a forum; a case to answer carries its severity.
  v1::Outcome o = SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  o.clear_finding();
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.finding");
  o = SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_MEETING);
  o.clear_misconduct_result();
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.misconduct_result");
  o = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  o.set_misconduct_result(kWw);
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.misconduct_result");
  o = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  o.set_finding(v1::CONDUCT_FINDING_MISCONDUCT);
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.finding");
  o = SampleOutcome(v1::OUTCOME_TYPE_CASE_TO_ANSWER);
  o.set_finding(v1::CONDUCT_FINDING_NONE);
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.finding");
}

TEST(Outcomes, OpenOutcomesHaveNotClosedAndFinalOnesHave) {
  v1::Outcome o = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED);
  *o.mutable_closed_at() = o.opened_at();
  EXPECT_THAT(CheckOutcome("outcome", o, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is open")));
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.closed_at");
  o = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  o.clear_closed_at();
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.closed_at");
}

TEST(Outcomes, NoProceedingsNeedNoCategoryOrRole) {
  v1::Outcome none = SampleOutcome(v1::OUTCOME_TYPE_INTELLIGENCE_ONLY);
  none.clear_category();
  none.clear_subject_role();
  EXPECT_THAT(CheckOutcome("outcome", none, kNow), IsOk());
  // "Not ours" is a decline, not an outcome: one way to say it.
  none.set_type(v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL);
  EXPECT_THAT(CheckOutcome("outcome", none, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NOT_OUR_EMPLOYEE")));
  v1::Outcome o = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  o.clear_category();
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.category");
  o = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  o.clear_subject_role();
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.subject_role");
  o = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  o.set_track(v1::OUTCOME_TRACK_CONDUCT);
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.track");
}

// Data recorded before tracks: read in today's vocabulary, refused as new input.
TEST(Outcomes, OldOutcomesReadInTodaysVocabulary) {
  v1::Outcome dismissed = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  dismissed.set_type(v1::OUTCOME_TYPE_DISMISSED);
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", dismissed, kNow)), "outcome.type");
  UpgradeOutcome(dismissed);
  EXPECT_EQ(dismissed.type(), v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  EXPECT_EQ(dismissed.finding(), v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
  EXPECT_EQ(dismissed.misconduct_result(), v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE);
  EXPECT_EQ(dismissed.track(), v1::OUTCOME_TRACK_CONDUCT);
  EXPECT_THAT(CheckOutcome("outcome", dismissed, kNow), IsOk());

  // Management advice (2, abolished in 2020), as an old meeting stored it: no finding then.
  v1::Outcome advice = SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_MEETING);
  advice.clear_finding();
  advice.set_misconduct_result(static_cast<v1::MisconductResult>(2));
  EXPECT_THAT(CheckOutcome("outcome", advice, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("abolished")));
  UpgradeOutcome(advice);
  EXPECT_EQ(advice.misconduct_result(), v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW);
  EXPECT_EQ(advice.finding(), v1::CONDUCT_FINDING_NONE);
  EXPECT_THAT(CheckOutcome("outcome", advice, kNow), IsOk());
  const std::string once = advice.SerializeAsString();
  UpgradeOutcome(advice);
  EXPECT_EQ(advice.SerializeAsString(), once) << "idempotent";

  // An old warning from a meeting: misconduct was found.
  v1::Outcome warning = SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_MEETING);
  warning.clear_finding();
  UpgradeOutcome(warning);
  EXPECT_EQ(warning.finding(), v1::CONDUCT_FINDING_MISCONDUCT);

  // A stored referral that ended before tracks has its outcome as its one track.
  v1::Outcome ending = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  OutcomeTracks tracks;
  UpgradeStoredOutcomes(ending, tracks);
  ASSERT_EQ(tracks.size(), 1);
  EXPECT_EQ(tracks[0].type(), v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
}

TEST(Outcomes, ATrackHoldsItsLatestAndTheReferralFinishesWhenEveryTrackIsFinal) {
  OutcomeTracks tracks;
  SetTrack(tracks, SampleOutcome(v1::OUTCOME_TYPE_CASE_TO_ANSWER));
  SetTrack(tracks, SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED));
  ASSERT_EQ(tracks.size(), 2);
  EXPECT_EQ(tracks[0].track(), v1::OUTCOME_TRACK_CRIMINAL) << "in track order";

  // Convicted finishes the criminal track, but the case to answer is still open.
  absl::Status s = CheckCanFinish(tracks, SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CONDUCT track")));
  // An open outcome never finishes a referral.
  EXPECT_EQ(CheckCanFinish({}, SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED)).code(),
            absl::StatusCode::kFailedPrecondition);

  SetTrack(tracks, SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING));
  ASSERT_EQ(tracks.size(), 2);
  EXPECT_EQ(tracks[1].type(), v1::OUTCOME_TYPE_MISCONDUCT_HEARING) << "replaced, not added";
  // The ending replaces the open criminal track: every track is then final.
  EXPECT_THAT(CheckCanFinish(tracks, SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED)), IsOk());
  // Ending on another track leaves the charge open.
  EXPECT_EQ(CheckCanFinish(tracks, SampleOutcome(v1::OUTCOME_TYPE_BARRED_LIST_ENTRY)).code(),
            absl::StatusCode::kFailedPrecondition);
}

// A register written before tracks (an entry and its events with DISMISSED and management advice,
// the outcome column at 5) reads in today's vocabulary after the upgrade: entry, tracks, events and
// the aggregates all say "misconduct hearing".
TEST(Outcomes, AnOldRegisterUpgradesByMigration) {
  testing::TempDir dir;
  const std::string path = dir.File("nca.db");
  std::vector<Migration> schema = nca::RegisterSchema();
  const std::string id = "REF-00000000000000aa";
  {
    // Everything before the outcome-tracks migration.
    auto tracks = std::find_if(schema.begin(), schema.end(), [](const Migration& m) {
      return absl::StartsWith(m.description, "outcome tracks");
    });
    ASSERT_NE(tracks, schema.end());
    std::vector<Migration> before(schema.begin(), tracks);
    auto db = Database::Open(path, before, testing::TestKeys());
    ASSERT_TRUE(db.ok()) << db.status();
    v1::LifecycleEvent dispatched;
    dispatched.set_event_id("EV-00000000000000000000000000000001");
    dispatched.set_referral_id(id);
    dispatched.set_type(v1::EVENT_TYPE_DISPATCHED);
    dispatched.set_producer("UKFIU");
    dispatched.set_organisation("MPS");
    *dispatched.mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1700000000));
    *dispatched.mutable_due_at() = ToProto(absl::FromUnixSeconds(1708000000));
    v1::LifecycleEvent closed = dispatched;
    closed.set_event_id("EV-00000000000000000000000000000002");
    closed.set_type(v1::EVENT_TYPE_CLOSED_BY_FORCE);
    closed.set_producer("MPS");
    *closed.mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1701000000));
    v1::Outcome old = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
    old.set_type(v1::OUTCOME_TYPE_DISMISSED);
    *closed.mutable_outcome() = old;
    v1::RegisterEntry entry;
    entry.set_referral_id(id);
    entry.set_organisation("MPS");
    entry.set_state(v1::REFERRAL_STATE_CLOSED_BY_FORCE);
    *entry.mutable_dispatched_at() = dispatched.occurred_at();
    *entry.mutable_due_at() = dispatched.due_at();
    *entry.mutable_feedback_at() = closed.occurred_at();
    *entry.mutable_outcome() = old;
    ASSERT_THAT((*db)->Transact([&](Txn& txn) -> absl::Status {
      for (const auto* e : {&dispatched, &closed}) {
        RETURN_IF_ERROR(txn.Exec(
            "INSERT INTO events (event_id, referral_id, occurred_at, event) VALUES (?,?,?,?)",
            {e->event_id(), e->referral_id(), int64_t{e->occurred_at().seconds()} * 1000000,
             Blob{e->SerializeAsString()}}));
      }
      return txn.Exec(
          "INSERT INTO entries (referral_id, organisation, state, dispatched_at, due_at, "
          "outcome_type, handed_over, assistance_declines, reminders, escalated, entry, seq) "
          "VALUES (?,?,?,?,?,?,0,0,0,0,?,1)",
          {id, std::string("MPS"), int64_t{entry.state()}, int64_t{1700000000} * 1000000,
           int64_t{1708000000} * 1000000, int64_t{v1::OUTCOME_TYPE_DISMISSED},
           Blob{entry.SerializeAsString()}});
    }),
                IsOk());
  }
  auto db = Database::Open(path, schema, testing::TestKeys());
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_THAT((*db)->Read([&](Txn& txn) -> absl::Status {
    auto rows = txn.Query("SELECT outcome_type FROM entries WHERE referral_id = ?", {id});
    if (!rows.ok()) return rows.status();
    EXPECT_EQ((*rows)[0].Int(0), v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
    return absl::OkStatus();
  }),
              IsOk());
  ManualClock clock(absl::FromUnixSeconds(1710000000));
  nca::Register reg(**db, ReferenceData::BuiltIn(), clock);
  auto timeline = reg.Timeline(id);
  ASSERT_TRUE(timeline.ok()) << timeline.status();
  EXPECT_EQ(timeline->entry().outcome().type(), v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  EXPECT_EQ(timeline->entry().outcome().finding(), v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
  ASSERT_EQ(timeline->entry().tracks_size(), 1);
  EXPECT_EQ(timeline->entry().tracks(0).track(), v1::OUTCOME_TRACK_CONDUCT);
  ASSERT_EQ(timeline->events_size(), 2);
  EXPECT_EQ(timeline->events(1).outcome().type(), v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  auto summary = reg.Summary(absl::FromUnixSeconds(1710000000));
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->total().outcomes_size(), 1);
  EXPECT_EQ(summary->total().outcomes(0).type(), v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
}

}  // namespace
}  // namespace sarloop
