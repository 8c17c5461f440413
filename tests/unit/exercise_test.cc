// The national exercise's model (tools/synth/exercise_model.h) and the published workforce
// figures it weighs organisations by (common/reference/workforce.h): pure, no chain.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "absl/time/civil_time.h"
#include "common/reference/workforce.h"
#include "common/referral/rules.h"
#include "tools/synth/exercise_model.h"

namespace sarloop::synth::exercise {
namespace {

absl::Time Date(int y, int m, int d) {
  return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
}

Options ThreeYears(uint64_t seed) {
  Options o;
  o.seed = seed;
  o.start = Date(2023, 4, 1);
  o.end = Date(2026, 3, 31);
  o.referrals_per_year = 1000;
  o.orgs = {{"MPS", "", false, 34315},  {"NFK", "ERSOU", false, 0},
            {"SFK", "ERSOU", false, 0}, {"CAM", "ERSOU", false, 1747},
            {"BF", "NCAACU", true, 0},  {"GMP", "NWROCU", false, 8141}};
  return o;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double DaysBetween(absl::Time a, absl::Time b) { return absl::ToDoubleHours(b - a) / 24; }

TEST(ExerciseModelTest, TheSameSeedGivesTheSameExercise) {
  const Exercise a = MakeExercise(ThreeYears(42));
  const Exercise b = MakeExercise(ThreeYears(42));
  const Exercise c = MakeExercise(ThreeYears(43));
  ASSERT_EQ(a.referrals.size(), b.referrals.size());
  for (size_t i = 0; i < a.referrals.size(); ++i) {
    EXPECT_EQ(a.referrals[i].sar.SerializeAsString(), b.referrals[i].sar.SerializeAsString());
    ASSERT_EQ(a.referrals[i].steps.size(), b.referrals[i].steps.size());
    for (size_t k = 0; k < a.referrals[i].steps.size(); ++k) {
      EXPECT_EQ(a.referrals[i].steps[k].at, b.referrals[i].steps[k].at);
    }
  }
  EXPECT_NE(a.referrals[0].sar.SerializeAsString(), c.referrals[0].sar.SerializeAsString());
}

TEST(ExerciseModelTest, StepsFallOnWeekdaysInOrderWithinTheExercise) {
  const Options o = ThreeYears(1);
  const Exercise ex = MakeExercise(o);
  EXPECT_EQ(ex.years, 3);
  for (const Referral& r : ex.referrals) {
    ASSERT_FALSE(r.steps.empty());
    EXPECT_EQ(r.steps.front().act, Act::kRefer);
    for (size_t k = 0; k < r.steps.size(); ++k) {
      const absl::Time at = r.steps[k].at;
      EXPECT_LE(at, o.end);
      EXPECT_GE(at, o.start);
      const absl::CivilSecond c = absl::ToCivilSecond(at, absl::UTCTimeZone());
      EXPECT_EQ(c.hour(), 10);
      const absl::Weekday w = absl::GetWeekday(absl::CivilDay(c));
      EXPECT_NE(w, absl::Weekday::saturday);
      EXPECT_NE(w, absl::Weekday::sunday);
      if (k > 0) {
        EXPECT_GE(at, r.steps[k - 1].at);
      }
    }
    // The SAR came in before UKFIU referred it.
    EXPECT_LE(r.sar.submitted_at().seconds(), absl::ToUnixSeconds(r.steps.front().at));
  }
}

// Every referral's steps are a path the referral rules allow, ending in the state
// ExpectedState names.
TEST(ExerciseModelTest, EveryPlanIsALegalPathThroughTheRules) {
  const Exercise ex = MakeExercise(ThreeYears(7));
  for (const Referral& r : ex.referrals) {
    v1::ReferralState state =
        r.on_receipt ? v1::REFERRAL_STATE_HANDED_OVER : v1::REFERRAL_STATE_RECEIVED;
    for (size_t k = 1; k < r.steps.size(); ++k) {
      const referral::EventRule* rule = referral::RuleFor(EventOf(r.steps[k].act));
      ASSERT_NE(rule, nullptr);
      if (rule->from_kind == referral::From::kListed) {
        EXPECT_NE(std::find(rule->from.begin(), rule->from.end(), state), rule->from.end())
            << ActName(r.steps[k].act) << " from " << v1::ReferralState_Name(state) << " ("
            << DecisionName(r.decision) << ")";
      }
      if (rule->target != v1::REFERRAL_STATE_UNSPECIFIED) state = rule->target;
    }
    EXPECT_EQ(state, ExpectedState(r));
    const bool concluded = std::any_of(r.steps.begin(), r.steps.end(), [](const Step& s) {
      return s.act == Act::kClose || s.act == Act::kUnitOutcome;
    });
    EXPECT_EQ(concluded, r.outcome.type() != v1::OUTCOME_TYPE_UNSPECIFIED);
    if (concluded) {
      EXPECT_LE(r.outcome.opened_at().seconds(), r.outcome.closed_at().seconds());
      EXPECT_NE(r.outcome.category(), v1::CORRUPTION_CATEGORY_UNSPECIFIED);
    }
  }
}

// The stated distributions show in what is drawn: time passes inside a case.
TEST(ExerciseModelTest, MilestonesFollowTheStatedDistributions) {
  const Exercise ex = MakeExercise(ThreeYears(11));
  std::vector<double> ack_prompt, local_outcome, declines;
  std::map<Decision, int> decisions;
  int concluded_same_day = 0, concluded = 0;
  for (const Referral& r : ex.referrals) {
    decisions[r.decision]++;
    const absl::Time dispatch = r.steps.front().at;
    for (const Step& s : r.steps) {
      if (s.act == Act::kAcknowledge && r.behaviour == Behaviour::kPrompt) {
        ack_prompt.push_back(DaysBetween(dispatch, s.at));
      }
      if (s.act == Act::kClose && r.decision == Decision::kLocalInvestigation) {
        local_outcome.push_back(DaysBetween(dispatch, s.at));
      }
      if (s.act == Act::kDecline) declines.push_back(DaysBetween(dispatch, s.at));
      if (s.act == Act::kClose || s.act == Act::kUnitOutcome) {
        ++concluded;
        if (s.at == dispatch) ++concluded_same_day;
      }
    }
  }
  // Medians (3 days to acknowledge; 20-35 to decline; 200 x 0.8-1.8 for a local outcome,
  // shortened by the exercise's end) within a band; weekends push days up a little.
  EXPECT_GE(Median(ack_prompt), 2);
  EXPECT_LE(Median(ack_prompt), 6);
  EXPECT_GE(Median(declines), 15);
  EXPECT_LE(Median(declines), 60);
  EXPECT_GE(Median(local_outcome), 90);
  EXPECT_LE(Median(local_outcome), 300);
  EXPECT_LT(concluded_same_day, concluded / 50);
  // Shares of first decisions near the stated ones (a third of volume is MPS, without a unit).
  const double n = static_cast<double>(ex.referrals.size());
  EXPECT_NEAR(decisions[Decision::kIntelligenceOnly] / n, 0.27, 0.07);
  EXPECT_NEAR(decisions[Decision::kDeclined] / n, 0.22, 0.06);
  EXPECT_GT(decisions[Decision::kHandover], 0);
  EXPECT_GT(decisions[Decision::kIopc], 0);
  EXPECT_GT(decisions[Decision::kWithdrawn], 0);
}

TEST(ExerciseModelTest, VolumeFollowsWorkforceAndGrowsAndOrganisationsImprove) {
  const Exercise ex = MakeExercise(ThreeYears(5));
  std::map<std::string, int> by_org;
  std::map<int, int> by_year;
  for (const Referral& r : ex.referrals) {
    by_org[r.organisation]++;
    by_year[r.year]++;
  }
  // MPS (34,315 officers) against Cambridgeshire (1,747): about 20 to 1.
  EXPECT_GT(by_org["MPS"], 10 * by_org["CAM"]);
  EXPECT_GT(by_org["CAM"], 0);
  // Unknown figures weigh as the median of the known (8,141 here): NFK near GMP.
  EXPECT_NEAR(by_org["NFK"], by_org["GMP"], 0.3 * by_org["GMP"]);
  EXPECT_GT(by_year[2], by_year[0]);
  EXPECT_NEAR(by_year[0], 1000, 60);
  for (const auto& [org, years] : ex.behaviour) {
    ASSERT_EQ(years.size(), 3u);
    EXPECT_NE(years[1], Behaviour::kNearSilent) << org;
    EXPECT_LE(static_cast<int>(years[2]), static_cast<int>(years[0])) << org;
  }
}

// UKFIU's THR is somewhat predictive in the model: high-threat or high-harm referrals are
// investigated more often than all-low ones, so the STA's THR-against-outcome table has a signal.
TEST(ExerciseModelTest, AHighThrIsInvestigatedMoreOftenThanALowOne) {
  const Exercise ex = MakeExercise(ThreeYears(19));
  int high = 0, high_investigated = 0, low = 0, low_investigated = 0;
  for (const Referral& r : ex.referrals) {
    if (r.decision == Decision::kUnanswered || r.on_receipt) continue;
    const bool investigated = r.decision == Decision::kLocalInvestigation ||
                              r.decision == Decision::kHandover || r.decision == Decision::kIopc;
    if (r.thr.threat() == v1::THR_LEVEL_HIGH || r.thr.harm() == v1::THR_LEVEL_HIGH) {
      ++high;
      high_investigated += investigated;
    } else if (r.thr.threat() == v1::THR_LEVEL_LOW && r.thr.harm() == v1::THR_LEVEL_LOW &&
               r.thr.risk() == v1::THR_LEVEL_LOW) {
      ++low;
      low_investigated += investigated;
    }
  }
  ASSERT_GT(high, 100);
  ASSERT_GT(low, 50);
  EXPECT_GT(static_cast<double>(high_investigated) / high,
            static_cast<double>(low_investigated) / low + 0.05);
}

TEST(ExerciseModelTest, FinancialYearsStartOnTheFirstOfApril) {
  EXPECT_EQ(FinancialYearStart(Date(2025, 3, 31)), Date(2024, 4, 1));
  EXPECT_EQ(FinancialYearStart(Date(2025, 4, 1)), Date(2025, 4, 1));
  EXPECT_EQ(FinancialYearStart(Date(2025, 12, 25)), Date(2025, 4, 1));
}

TEST(WorkforceTest, TheBuiltInFiguresParseAndNameTheirSource) {
  const auto& w = PublishedWorkforce();
  ASSERT_TRUE(w.count("MPS"));
  EXPECT_EQ(w.at("MPS").officers_fte, 34315);
  EXPECT_EQ(w.at("MPS").as_at, "2024-03-31");
  EXPECT_NE(w.at("MPS").source.find("https://"), std::string::npos);
  // No invented figures: organisations without a published one have none.
  EXPECT_FALSE(w.count("NFK"));
  for (const auto& [code, f] : w) EXPECT_FALSE(f.source.empty()) << code;
}

TEST(WorkforceTest, MalformedRowsAreRefusedNamingTheLine) {
  EXPECT_TRUE(ParseWorkforce("# note\ncode,officers_fte,as_at,source\nX,10,2024-03-31,s\n").ok());
  auto bad = ParseWorkforce("code,officers_fte,as_at,source\nX,ten,2024-03-31,s\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseWorkforce("code,officers_fte,as_at,source\nX,10,2024-03-31\n").ok());
  EXPECT_FALSE(ParseWorkforce("code,officers_fte,as_at,source\nX,10,,s\n").ok());
  EXPECT_FALSE(ParseWorkforce("code,officers_fte,as_at,source\nX,10,a,s\nX,11,a,s\n").ok());
}

}  // namespace
}  // namespace sarloop::synth::exercise
