#include "services/nca/aggregates.h"

#include <map>
#include <random>
#include <set>

#include "absl/strings/str_join.h"
#include "common/base/clock.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/outcomes.h"
#include "common/referral/rules.h"
#include "common/security/audit.h"
#include "common/server/server.h"
#include "services/nca/register.h"
#include "tests/testutil/testutil.h"

namespace sarloop::nca {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kStart = absl::FromCivil(absl::CivilDay(2025, 4, 1), absl::UTCTimeZone());

struct Spec {
  std::string org = "NFK";
  int dispatched_day = 0;  // days after 1 April 2025
  v1::ReferralState state = v1::REFERRAL_STATE_DISPATCHED;
  int feedback_day = -1;
  v1::OutcomeType outcome = v1::OUTCOME_TYPE_UNSPECIFIED;
  v1::CorruptionCategory category = v1::CORRUPTION_CATEGORY_UNSPECIFIED;
  std::vector<std::string> subjects{};
  v1::SubjectRole role = v1::SUBJECT_ROLE_OFFICER;
  bool escalated = false;
};

v1::RegisterEntry Entry(const Spec& s) {
  static int n = 0;
  v1::RegisterEntry e;
  e.set_referral_id(absl::StrCat("REF-", 1000000 + ++n));
  e.set_organisation(s.org);
  e.set_state(s.state);
  *e.mutable_dispatched_at() = ToProto(kStart + absl::Hours(24 * s.dispatched_day));
  *e.mutable_due_at() = ToProto(kStart + absl::Hours(24 * (s.dispatched_day + 90)));
  if (s.feedback_day >= 0) {
    *e.mutable_feedback_at() = ToProto(kStart + absl::Hours(24 * s.feedback_day + 1));
  }
  if (s.outcome != v1::OUTCOME_TYPE_UNSPECIFIED) {
    e.mutable_outcome()->set_type(s.outcome);
    e.mutable_outcome()->set_category(s.category);
  }
  for (const auto& ref : s.subjects) {
    e.add_subject_refs(ref);
    e.add_subject_roles(s.role);
  }
  e.set_route(v1::REFERRAL_ROUTE_DIRECT);
  e.set_escalated(s.escalated);
  return e;
}

v1::GetAggregatesRequest By(std::initializer_list<v1::Dimension> dims) {
  v1::GetAggregatesRequest r;
  for (auto d : dims) r.add_group_by(d);
  return r;
}

// Outcomes by track, the conduct finding and action, priority and unit (issue 20, item 7): "how
// many referrals about officers ended in dismissal, by region?"
TEST(AggregateIndex, GroupsByTrackFindingActionPriorityAndUnit) {
  AggregateIndex index(ReferenceData::BuiltIn());
  auto tracked = [](const std::string& org, v1::Priority p, const std::string& unit,
                    std::vector<v1::Outcome> tracks) {
    v1::RegisterEntry e = Entry({.org = org,
                                 .state = v1::REFERRAL_STATE_OUTCOME_RECORDED,
                                 .feedback_day = 200,
                                 .subjects = {}});
    e.set_priority(p);
    e.set_unit(unit);
    for (auto& t : tracks) {
      t.set_track(TrackOf(t.type()));
      *e.add_tracks() = t;
    }
    return e;
  };
  auto outcome = [](v1::OutcomeType type,
                    v1::ConductFinding finding = v1::CONDUCT_FINDING_UNSPECIFIED,
                    v1::MisconductResult action = v1::MISCONDUCT_RESULT_UNSPECIFIED) {
    v1::Outcome o;
    o.set_type(type);
    o.set_finding(finding);
    o.set_misconduct_result(action);
    return o;
  };
  const auto dismissed =
      outcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING, v1::CONDUCT_FINDING_GROSS_MISCONDUCT,
              v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE);
  const auto warned = outcome(v1::OUTCOME_TYPE_MISCONDUCT_MEETING, v1::CONDUCT_FINDING_MISCONDUCT,
                              v1::MISCONDUCT_RESULT_WRITTEN_WARNING);
  index.Upsert(tracked("NFK", v1::PRIORITY_P2, "ERSOU",
                       {outcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED), dismissed}));
  index.Upsert(tracked("SFK", v1::PRIORITY_P2, "ERSOU", {dismissed}));
  v1::RegisterEntry mps =
      tracked("MPS", v1::PRIORITY_P1, "", {outcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED)});
  index.Upsert(mps);
  index.Upsert(tracked("NFK", v1::PRIORITY_UNSPECIFIED, "", {warned}));
  auto groups = [&](std::initializer_list<v1::Dimension> dims) {
    auto r = index.Query(By(dims), kStart + absl::Hours(24 * 300), 0);
    EXPECT_THAT(r, IsOk());
    std::map<std::string, int64_t> out;
    for (const auto& g : r->groups()) out[absl::StrJoin(g.key(), "/")] = g.measures().referred();
    return out;
  };
  EXPECT_EQ(groups({v1::DIMENSION_REGION, v1::DIMENSION_CONDUCT_ACTION}),
            (std::map<std::string, int64_t>{{"EASTERN/DISMISSAL_WITHOUT_NOTICE", 2},
                                            {"EASTERN/WRITTEN_WARNING", 1},
                                            {"LONDON/NONE", 1}}));
  EXPECT_EQ(groups({v1::DIMENSION_CRIMINAL_TRACK}),
            (std::map<std::string, int64_t>{
                {"CRIMINAL_CHARGED", 1}, {"CRIMINAL_CONVICTED", 1}, {"NONE", 2}}));
  EXPECT_EQ(
      groups({v1::DIMENSION_CONDUCT_FINDING}),
      (std::map<std::string, int64_t>{{"GROSS_MISCONDUCT", 2}, {"MISCONDUCT", 1}, {"NONE", 1}}));
  EXPECT_EQ(groups({v1::DIMENSION_PRIORITY, v1::DIMENSION_UNIT}),
            (std::map<std::string, int64_t>{{"P2/ERSOU", 2}, {"P1/NONE", 1}, {"NONE/NONE", 1}}));
  // A track's update moves its referral between groups.
  mps.mutable_tracks(0)->set_type(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  index.Upsert(mps);
  EXPECT_EQ(groups({v1::DIMENSION_CRIMINAL_TRACK}),
            (std::map<std::string, int64_t>{{"CRIMINAL_CONVICTED", 2}, {"NONE", 2}}));
}

// Priority, unit, decline reason and THR filter as they group: a filtered total equals the
// matching group, and an unknown unit is refused naming the field.
TEST(AggregateIndex, FiltersByPriorityUnitDeclineReasonAndThr) {
  AggregateIndex index(ReferenceData::BuiltIn());
  auto entry = [](v1::Priority p, const std::string& unit, v1::DeclineReason reason,
                  v1::ThrLevel harm) {
    v1::RegisterEntry e = Entry({.state = reason == v1::DECLINE_REASON_UNSPECIFIED
                                              ? v1::REFERRAL_STATE_HANDED_OVER
                                              : v1::REFERRAL_STATE_DECLINED_BY_FORCE});
    e.set_priority(p);
    e.set_unit(unit);
    e.set_decline_reason(reason);
    e.mutable_thr()->set_threat(v1::THR_LEVEL_LOW);
    e.mutable_thr()->set_risk(v1::THR_LEVEL_LOW);
    e.mutable_thr()->set_harm(harm);
    return e;
  };
  index.Upsert(entry(v1::PRIORITY_P1, "ERSOU", v1::DECLINE_REASON_UNSPECIFIED, v1::THR_LEVEL_HIGH));
  index.Upsert(entry(v1::PRIORITY_P3, "ERSOU", v1::DECLINE_REASON_UNSPECIFIED, v1::THR_LEVEL_LOW));
  index.Upsert(
      entry(v1::PRIORITY_P3, "NCAACU", v1::DECLINE_REASON_UNSPECIFIED, v1::THR_LEVEL_MEDIUM));
  index.Upsert(entry(v1::PRIORITY_UNSPECIFIED, "", v1::DECLINE_REASON_ACTIVITY_EXPLAINED,
                     v1::THR_LEVEL_LOW));
  const absl::Time now = kStart + absl::Hours(24 * 30);
  auto referred = [&](const std::function<void(v1::AggregateFilter&)>& set) {
    v1::GetAggregatesRequest r;
    set(*r.mutable_filter());
    auto got = index.Query(r, now, 0);
    EXPECT_THAT(got, IsOk());
    return got.ok() ? got->total().referred() : -1;
  };
  EXPECT_EQ(referred([](auto& f) { f.add_priorities(v1::PRIORITY_P3); }), 2);
  EXPECT_EQ(referred([](auto& f) { f.add_units("ERSOU"); }), 2);
  EXPECT_EQ(referred([](auto& f) { f.add_units("SEROCU"); }), 0);  // a unit with nothing handed
  EXPECT_EQ(referred([](auto& f) { f.add_decline_reasons(v1::DECLINE_REASON_ACTIVITY_EXPLAINED); }),
            1);
  EXPECT_EQ(referred([](auto& f) { f.add_thr_levels(v1::THR_LEVEL_HIGH); }), 1);
  EXPECT_EQ(referred([](auto& f) {
              f.add_thr_levels(v1::THR_LEVEL_LOW);
              f.add_units("ERSOU");
            }),
            1);
  auto by_thr = index.Query(By({v1::DIMENSION_THR}), now, 0);
  ASSERT_THAT(by_thr, IsOk());
  std::map<std::string, int64_t> groups;
  for (const auto& g : by_thr->groups()) groups[g.key(0)] = g.measures().referred();
  EXPECT_EQ(groups, (std::map<std::string, int64_t>{{"HIGH", 1}, {"LOW", 2}, {"MEDIUM", 1}}));
  v1::GetAggregatesRequest bad;
  bad.mutable_filter()->add_units("NFK");
  EXPECT_THAT(index.Query(bad, now, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("filter.units[0]")));
}

TEST(FinancialYear, StartsOnTheFirstOfApril) {
  auto day = [](int y, int m, int d) {
    return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
  };
  EXPECT_EQ(FinancialYear(day(2025, 3, 31)), 2024);
  EXPECT_EQ(FinancialQuarter(day(2025, 3, 31)), 3);
  EXPECT_EQ(FinancialYear(day(2025, 4, 1)), 2025);
  EXPECT_EQ(FinancialQuarter(day(2025, 4, 1)), 0);
  EXPECT_EQ(FinancialQuarter(day(2025, 7, 1)), 1);
  EXPECT_EQ(FinancialQuarter(day(2025, 12, 31)), 2);
  EXPECT_EQ(FinancialYearName(2025), "2025-26");
  EXPECT_EQ(FinancialYearName(1999), "1999-00");
}

TEST(AggregateIndex, CountsRatesAndDaysByOrganisation) {
  AggregateIndex index(ReferenceData::BuiltIn());
  // NFK: feedback after 10, 20, 30 and 40 days (two declines, two outcomes), one open and overdue,
  // one withdrawn. SFK: one outcome after 5 days, sharing a subject with NFK.
  index.Upsert(Entry({.state = v1::REFERRAL_STATE_DECLINED_BY_FORCE, .feedback_day = 10}));
  index.Upsert(Entry({.state = v1::REFERRAL_STATE_DECLINED_BY_FORCE, .feedback_day = 20}));
  index.Upsert(Entry({.state = v1::REFERRAL_STATE_OUTCOME_RECORDED,
                      .feedback_day = 30,
                      .outcome = v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
                      .category = v1::CORRUPTION_CATEGORY_SEXUAL_MISCONDUCT,
                      .subjects = {"s1"}}));
  index.Upsert(Entry({.state = v1::REFERRAL_STATE_CLOSED_BY_FORCE,
                      .feedback_day = 40,
                      .outcome = v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER,
                      .category = v1::CORRUPTION_CATEGORY_SEXUAL_MISCONDUCT}));
  index.Upsert(Entry({.state = v1::REFERRAL_STATE_ACKNOWLEDGED, .escalated = true}));
  index.Upsert(Entry({.state = v1::REFERRAL_STATE_WITHDRAWN}));
  index.Upsert(Entry({.org = "SFK",
                      .state = v1::REFERRAL_STATE_OUTCOME_RECORDED,
                      .feedback_day = 5,
                      .outcome = v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
                      .category = v1::CORRUPTION_CATEGORY_THEFT_AND_FRAUD,
                      .subjects = {"s1", "s2"}}));

  auto r = index.Query(By({v1::DIMENSION_ORGANISATION}), kStart + absl::Hours(24 * 200), 5);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->groups_size(), 2);
  const v1::AggregateGroup& nfk = r->groups(0);
  EXPECT_THAT(nfk.key(), ElementsAre("NFK"));
  const v1::Measures& m = nfk.measures();
  EXPECT_EQ(m.referred(), 6);
  EXPECT_EQ(m.feedback_received(), 4);
  EXPECT_EQ(m.declined_by_force(), 2);
  EXPECT_EQ(m.closed_with_outcome(), 2);
  EXPECT_EQ(m.withdrawn(), 1);
  EXPECT_EQ(m.open(), 1);
  EXPECT_EQ(m.overdue(), 1);
  EXPECT_EQ(m.escalated(), 1);
  EXPECT_EQ(m.repeat_subjects(), 1);
  EXPECT_DOUBLE_EQ(m.response_rate(), 4.0 / 5.0);
  EXPECT_EQ(m.days_to_feedback().n(), 4);
  EXPECT_DOUBLE_EQ(m.days_to_feedback().median(), 25);
  EXPECT_DOUBLE_EQ(m.days_to_feedback().p90(), 40);
  EXPECT_DOUBLE_EQ(m.days_to_outcome().median(), 35);
  ASSERT_EQ(m.outcomes_size(), 2);
  EXPECT_EQ(m.outcomes(0).type(), v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  EXPECT_EQ(r->total().referred(), 7);
  EXPECT_EQ(r->total().repeat_subjects(), 1);
  EXPECT_FALSE(r->publication());

  // Replacing an entry changes the answer, and repeat subjects follow.
  v1::RegisterEntry later = Entry({.org = "SFK",
                                   .state = v1::REFERRAL_STATE_OUTCOME_RECORDED,
                                   .feedback_day = 5,
                                   .outcome = v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
                                   .subjects = {"s2"}});
  index.Upsert(later);
  later.clear_subject_refs();
  index.Upsert(later);
  auto again = index.Query(By({}), kStart + absl::Hours(24 * 200), 5);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->total().referred(), 8);
  EXPECT_EQ(again->total().repeat_subjects(), 1);
}

// The scan keeps a group's days in a histogram as wide as the longest time seen (up to 4096 days)
// and the rest aside, in columns when the groups' histograms would not fit, and orders the facts
// by organisation once enough have arrived (Cluster). Every path must give the exact order
// statistics and distinct counts a plain computation gives, and the same answer before and after
// clustering.
TEST(AggregateIndex, DaysAndRepeatsAreExactOnEveryPathAndUnchangedByClustering) {
  AggregateIndex index(ReferenceData::BuiltIn());
  std::mt19937 rng(7);
  const std::vector<std::string> orgs = {"NFK", "SFK", "MPS", "BF", "NCA"};
  struct Known {
    std::string id{};
    std::string org{};
    int days = 0;
    std::string subject{};
  };
  std::vector<Known> known;
  // Mostly weeks, some years; BF's clock is decades out, so its quantiles lie past any histogram.
  auto upsert = [&](Known k) {
    const int dispatched = static_cast<int>(rng() % 600);
    v1::RegisterEntry e = Entry({.org = k.org,
                                 .dispatched_day = dispatched,
                                 .state = v1::REFERRAL_STATE_DECLINED_BY_FORCE,
                                 .feedback_day = dispatched + k.days,
                                 .subjects = {k.subject}});
    if (k.id.empty()) {
      k.id = e.referral_id();
      known.push_back(k);
    } else {
      e.set_referral_id(k.id);
      for (Known& old : known) {
        if (old.id == k.id) old = k;
      }
    }
    index.Upsert(e);
  };
  auto random_known = [&]() {
    Known k;
    k.org = orgs[rng() % orgs.size()];
    k.days = static_cast<int>(rng() % 60);
    if (rng() % 10 == 0) k.days = 300 + static_cast<int>(rng() % 3000);
    if (k.org == "BF" && rng() % 4 != 0) k.days = 5000 + static_cast<int>(rng() % 30000);
    k.subject = absl::StrCat("s", rng() % 2500);
    return k;
  };
  auto check_days = [&](const v1::DayStats& got, std::vector<int> want, const std::string& where) {
    std::sort(want.begin(), want.end());
    const int64_t n = static_cast<int64_t>(want.size());
    ASSERT_EQ(got.n(), n) << where;
    EXPECT_DOUBLE_EQ(got.median(), n % 2 ? want[n / 2] : (want[n / 2 - 1] + want[n / 2]) / 2.0)
        << where;
    EXPECT_DOUBLE_EQ(got.p25(), want[(n + 3) / 4 - 1]) << where;
    EXPECT_DOUBLE_EQ(got.p75(), want[(3 * n + 3) / 4 - 1]) << where;
    EXPECT_DOUBLE_EQ(got.p90(), want[(9 * n + 9) / 10 - 1]) << where;
  };
  // By organisation: dense histograms. By four wide dimensions: past the histograms' budget, so
  // the days go through the columns. Without dimensions: one group.
  const std::vector<v1::GetAggregatesRequest> requests = {
      By({v1::DIMENSION_ORGANISATION}),
      By({v1::DIMENSION_ORGANISATION, v1::DIMENSION_FINANCIAL_QUARTER, v1::DIMENSION_UNIT,
          v1::DIMENSION_SUBJECT_ROLE}),
      By({})};
  const absl::Time now = kStart + absl::Hours(24 * 4000);
  // Checks every request against a plain computation over `known`; returns the answers.
  auto check = [&](const std::string& when) {
    std::map<std::string, std::vector<int>> days_by_org;
    std::vector<int> all_days;
    std::map<std::string, int> uses;  // a subject is a repeat when two referrals name it
    std::map<std::string, std::set<std::string>> subjects_by_org;
    for (const Known& k : known) {
      days_by_org[k.org].push_back(k.days);
      all_days.push_back(k.days);
      uses[k.subject]++;
      subjects_by_org[k.org].insert(k.subject);
    }
    auto repeats = [&](const std::set<std::string>& subjects) {
      int n = 0;
      for (const std::string& subject : subjects) n += uses[subject] >= 2;
      return n;
    };
    std::set<std::string> all_subjects;
    for (const auto& [subject, n] : uses) all_subjects.insert(subject);
    std::vector<std::string> answers;
    for (size_t q = 0; q < requests.size(); ++q) {
      const std::string where = absl::StrCat(when, ", request ", q);
      auto r = index.Query(requests[q], now, 5);
      EXPECT_THAT(r, IsOk()) << where;
      if (!r.ok()) return answers;
      check_days(r->total().days_to_feedback(), all_days, absl::StrCat(where, ", total"));
      EXPECT_EQ(r->total().repeat_subjects(), repeats(all_subjects)) << where;
      if (q == 0) {
        EXPECT_EQ(r->groups_size(), static_cast<int>(days_by_org.size())) << where;
        for (const v1::AggregateGroup& g : r->groups()) {
          check_days(g.measures().days_to_feedback(), days_by_org[g.key(0)],
                     absl::StrCat(where, ", ", g.key(0)));
          EXPECT_EQ(g.measures().repeat_subjects(), repeats(subjects_by_org[g.key(0)]))
              << where << ", " << g.key(0);
        }
      }
      answers.push_back(r->SerializeAsString());
    }
    return answers;
  };

  for (int i = 0; i < 3000; ++i) upsert(random_known());
  for (int days : {4095, 4096, 4097}) upsert({.org = "SFK", .days = days, .subject = "edge"});
  const std::vector<std::string> before = check("in arrival order");
  index.Cluster();
  EXPECT_EQ(check("clustered"), before);
  // Replaced after clustering (found through the new order), then enough new ones to cluster
  // again.
  for (int i = 0; i < 3000; i += 5) {
    Known k = random_known();
    k.id = known[i].id;
    upsert(k);
  }
  check("replaced after clustering");
  for (int i = 0; i < 1500; ++i) upsert(random_known());
  const std::vector<std::string> grown = check("grown");
  index.Cluster();
  EXPECT_EQ(check("clustered again"), grown);
  // New referrals naming subjects already named once: the referral named first must count its
  // subject as a repeat now, without another Cluster.
  for (int i = 0; i < 1500; ++i) upsert(random_known());
  check("named again after clustering");
  // Some referrals lose their subject (a repeat may drop back to one referral), then more arrive.
  for (int i = 0; i < 3000; i += 7) {
    Known k = known[i];
    k.subject = absl::StrCat("gone", i);
    upsert(k);
  }
  check("subjects dropped");
  index.Cluster();
  check("subjects dropped, clustered");
  for (int i = 0; i < 1000; ++i) upsert(random_known());
  check("named again after the recount");
}

TEST(AggregateIndex, FiltersAndGroupsByEveryDimension) {
  AggregateIndex index(ReferenceData::BuiltIn());
  index.Upsert(Entry({.org = "NFK", .dispatched_day = 10}));
  index.Upsert(Entry({.org = "MPS", .dispatched_day = 100}));
  index.Upsert(Entry({.org = "NFK", .dispatched_day = 400}));
  v1::GetAggregatesRequest req = By({v1::DIMENSION_REGION, v1::DIMENSION_FINANCIAL_QUARTER});
  auto r = index.Query(req, kStart, 5);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->groups_size(), 3);
  EXPECT_THAT(r->groups(0).key(), ElementsAre("EASTERN", "2025-26 Q1"));
  EXPECT_THAT(r->groups(1).key(), ElementsAre("EASTERN", "2026-27 Q1"));
  EXPECT_THAT(r->groups(2).key(), ElementsAre("LONDON", "2025-26 Q2"));

  req.mutable_filter()->add_financial_years(2025);
  req.mutable_filter()->add_regions("EASTERN");
  r = index.Query(req, kStart, 5);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->total().referred(), 1);

  for (int d = 1; d <= 10; ++d) {
    auto all = index.Query(By({static_cast<v1::Dimension>(d)}), kStart, 5);
    ASSERT_THAT(all, IsOk()) << d;
    int64_t sum = 0;
    for (const auto& g : all->groups()) sum += g.measures().referred();
    EXPECT_EQ(sum, 3) << v1::Dimension_Name(d);
  }
}

TEST(AggregateIndex, RefusesBadRequestsNamingTheField) {
  AggregateIndex index(ReferenceData::BuiltIn());
  auto field = [&](const v1::GetAggregatesRequest& req) {
    return FieldOf(index.Query(req, kStart, 5).status());
  };
  EXPECT_EQ(field(By({v1::DIMENSION_REGION, v1::DIMENSION_REGION})), "group_by[1]");
  EXPECT_EQ(field(By({v1::DIMENSION_UNSPECIFIED})), "group_by[0]");
  EXPECT_EQ(field(By({v1::DIMENSION_REGION, v1::DIMENSION_STATE, v1::DIMENSION_ROUTE,
                      v1::DIMENSION_CATEGORY, v1::DIMENSION_ORGANISATION})),
            "group_by");
  v1::GetAggregatesRequest req;
  req.mutable_filter()->add_organisations("NOPE");
  EXPECT_EQ(field(req), "filter.organisations[0]");
  req.Clear();
  req.mutable_filter()->add_regions("ATLANTIS");
  EXPECT_EQ(field(req), "filter.regions[0]");
  req.Clear();
  req.mutable_filter()->add_financial_years(25);
  EXPECT_EQ(field(req), "filter.financial_years[0]");
  req.Clear();
  req.mutable_filter()->add_states(static_cast<v1::ReferralState>(99));
  EXPECT_EQ(field(req), "filter.states[0]");
  // A known organisation with no referrals is simply empty.
  req.Clear();
  req.mutable_filter()->add_organisations("DUR");
  auto empty = index.Query(req, kStart, 5);
  ASSERT_THAT(empty, IsOk());
  EXPECT_EQ(empty->total().referred(), 0);
}

TEST(Suppression, HidesSmallCountsAndWhatWouldRevealThem) {
  AggregateIndex index(ReferenceData::BuiltIn());
  // NFK 10 declines; SFK 2 declines; MPS 8 declines. Grouped by organisation with a total of 20,
  // SFK's 2 is hidden, and the next smallest (MPS's 8) too, or 20 - 10 - 8 would give it away.
  for (int i = 0; i < 10; ++i) {
    index.Upsert(
        Entry({.org = "NFK", .state = v1::REFERRAL_STATE_DECLINED_BY_FORCE, .feedback_day = 3}));
  }
  for (int i = 0; i < 2; ++i) {
    index.Upsert(
        Entry({.org = "SFK", .state = v1::REFERRAL_STATE_DECLINED_BY_FORCE, .feedback_day = 3}));
  }
  for (int i = 0; i < 8; ++i) {
    index.Upsert(
        Entry({.org = "MPS", .state = v1::REFERRAL_STATE_DECLINED_BY_FORCE, .feedback_day = 3}));
  }
  v1::GetAggregatesRequest req = By({v1::DIMENSION_ORGANISATION});
  req.set_publication(true);
  auto r = index.Query(req, kStart, 5);
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->publication());
  EXPECT_EQ(r->min_count(), 5);
  ASSERT_EQ(r->groups_size(), 3);
  const auto& mps = r->groups(0).measures();
  const auto& nfk = r->groups(1).measures();
  const auto& sfk = r->groups(2).measures();
  EXPECT_FALSE(sfk.has_referred());
  EXPECT_FALSE(sfk.has_response_rate());
  EXPECT_FALSE(sfk.days_to_feedback().has_median());
  EXPECT_THAT(sfk.suppressed(), ::testing::Contains("referred"));
  EXPECT_FALSE(mps.has_referred());
  EXPECT_EQ(nfk.referred(), 10);
  EXPECT_EQ(r->total().referred(), 20);
  EXPECT_DOUBLE_EQ(nfk.days_to_feedback().median(), 3);
  // Zeros are published.
  EXPECT_TRUE(sfk.has_withdrawn());
  EXPECT_EQ(sfk.withdrawn(), 0);
}

// Whatever the data, no published relation leaves exactly one unknown, and every published
// number equals the unsuppressed one.
TEST(Suppression, NoSuppressedCountCanBeWorkedOut) {
  std::mt19937_64 rng(42);
  const char* orgs[] = {"NFK", "SFK", "MPS", "BF", "ESX", "DUR"};
  const v1::ReferralState states[] = {
      v1::REFERRAL_STATE_DISPATCHED,      v1::REFERRAL_STATE_DECLINED_BY_FORCE,
      v1::REFERRAL_STATE_CLOSED_BY_FORCE, v1::REFERRAL_STATE_OUTCOME_RECORDED,
      v1::REFERRAL_STATE_WITHDRAWN,       v1::REFERRAL_STATE_REDIRECTED};
  for (int trial = 0; trial < 200; ++trial) {
    AggregateIndex index(ReferenceData::BuiltIn());
    const int n = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      Spec s;
      s.org = orgs[rng() % 6];
      s.state = states[rng() % 6];
      s.dispatched_day = static_cast<int>(rng() % 700);
      if (s.state == v1::REFERRAL_STATE_DECLINED_BY_FORCE ||
          s.state == v1::REFERRAL_STATE_CLOSED_BY_FORCE ||
          s.state == v1::REFERRAL_STATE_OUTCOME_RECORDED) {
        s.feedback_day = s.dispatched_day + static_cast<int>(rng() % 300);
      }
      if (s.state == v1::REFERRAL_STATE_CLOSED_BY_FORCE ||
          s.state == v1::REFERRAL_STATE_OUTCOME_RECORDED) {
        s.outcome = static_cast<v1::OutcomeType>(1 + rng() % 4);
      }
      index.Upsert(Entry(s));
    }
    v1::GetAggregatesRequest req =
        By({rng() % 2 ? v1::DIMENSION_ORGANISATION : v1::DIMENSION_FINANCIAL_QUARTER});
    const absl::Time as_of = kStart + absl::Hours(24 * 800);
    auto plain = index.Query(req, as_of, 5);
    req.set_publication(true);
    auto pub = index.Query(req, as_of, 5);
    ASSERT_THAT(plain, IsOk());
    ASSERT_THAT(pub, IsOk());
    ASSERT_EQ(plain->groups_size(), pub->groups_size());

    std::vector<std::pair<const v1::Measures*, const v1::Measures*>> pairs;
    for (int g = 0; g < pub->groups_size(); ++g) {
      pairs.emplace_back(&plain->groups(g).measures(), &pub->groups(g).measures());
    }
    pairs.emplace_back(&plain->total(), &pub->total());
    auto outcome_of = [](const v1::Measures& m, v1::OutcomeType t) -> std::optional<int64_t> {
      for (const auto& o : m.outcomes()) {
        if (o.type() == t) return o.has_count() ? std::optional(o.count()) : std::nullopt;
      }
      return 0;
    };
    auto unknowns = [](std::initializer_list<bool> known) {
      int u = 0;
      for (bool k : known) u += !k;
      return u;
    };
    for (const auto& [full, shown] : pairs) {
      if (shown->has_referred()) {
        EXPECT_EQ(shown->referred(), full->referred());
        EXPECT_TRUE(shown->referred() == 0 || shown->referred() >= 5);
      }
      if (shown->has_response_rate()) {
        EXPECT_EQ(shown->response_rate(), full->response_rate());
      }
      EXPECT_NE(unknowns({shown->has_referred(), shown->has_feedback_received(),
                          shown->has_withdrawn(), shown->has_redirected(), shown->has_open()}),
                1);
      EXPECT_NE(unknowns({shown->has_feedback_received(), shown->has_declined_by_force(),
                          shown->has_closed_with_outcome()}),
                1);
      std::vector<bool> line = {shown->has_closed_with_outcome()};
      for (int t = 1; t <= 4; ++t) {
        line.push_back(outcome_of(*shown, static_cast<v1::OutcomeType>(t)).has_value());
      }
      EXPECT_NE(std::count(line.begin(), line.end(), false), 1);
    }
    for (const char* field : {"referred", "open", "withdrawn", "overdue"}) {
      const auto* f = v1::Measures::descriptor()->FindFieldByName(field);
      int u = 0;
      for (const auto& [full, shown] : pairs) {
        u += !shown->GetReflection()->HasField(*shown, f);
      }
      EXPECT_NE(u, 1) << field << " trial " << trial;
    }
  }
}

// A register big enough to be scanned in two halves on two threads gives what a naive count gives.
TEST(AggregateIndex, TheTwoHalfScanMatchesANaiveCount) {
  AggregateIndex index(ReferenceData::BuiltIn());
  std::mt19937_64 rng(7);
  const char* orgs[] = {"NFK", "SFK", "MPS", "BF", "ESX", "DUR", "CLE"};
  const v1::ReferralState states[] = {
      v1::REFERRAL_STATE_DISPATCHED, v1::REFERRAL_STATE_DECLINED_BY_FORCE,
      v1::REFERRAL_STATE_OUTCOME_RECORDED, v1::REFERRAL_STATE_WITHDRAWN};
  std::map<std::pair<std::string, int>, int64_t> referred;
  std::map<std::string, std::vector<int>> feedback_days;
  std::map<std::string, int> subject_uses;
  std::vector<std::pair<std::string, std::string>> org_subject;
  for (int i = 0; i < 60000; ++i) {
    Spec s;
    s.org = orgs[rng() % 7];
    s.state = states[rng() % 4];
    s.dispatched_day = static_cast<int>(rng() % 900);
    if (s.state == v1::REFERRAL_STATE_DECLINED_BY_FORCE ||
        s.state == v1::REFERRAL_STATE_OUTCOME_RECORDED) {
      s.feedback_day = s.dispatched_day + static_cast<int>(rng() % 400);
      feedback_days[s.org].push_back(s.feedback_day - s.dispatched_day);
    }
    if (s.state == v1::REFERRAL_STATE_OUTCOME_RECORDED)
      s.outcome = v1::OUTCOME_TYPE_MISCONDUCT_HEARING;
    const std::string subject = absl::StrCat("p", rng() % 50000);
    s.subjects = {subject};
    ++subject_uses[subject];
    org_subject.emplace_back(s.org, subject);
    referred[{s.org, FinancialYear(kStart + absl::Hours(24 * s.dispatched_day))}]++;
    index.Upsert(Entry(s));
  }
  auto r = index.Query(By({v1::DIMENSION_ORGANISATION, v1::DIMENSION_FINANCIAL_YEAR}), kStart, 5);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->groups_size(), static_cast<int>(referred.size()));
  int64_t sum = 0;
  for (const auto& g : r->groups()) {
    const int year = std::stoi(g.key(1).substr(0, 4));
    EXPECT_EQ(g.measures().referred(), (referred[{g.key(0), year}])) << g.key(0) << " " << year;
    sum += g.measures().referred();
  }
  EXPECT_EQ(sum, 60000);
  EXPECT_EQ(r->total().referred(), 60000);

  auto by_org = index.Query(By({v1::DIMENSION_ORGANISATION}), kStart, 5);
  ASSERT_THAT(by_org, IsOk());
  for (const auto& g : by_org->groups()) {
    std::vector<int> days = feedback_days[g.key(0)];
    std::sort(days.begin(), days.end());
    const size_t n = days.size();
    const double median = n % 2 ? days[n / 2] : (days[n / 2 - 1] + days[n / 2]) / 2.0;
    EXPECT_EQ(g.measures().days_to_feedback().n(), static_cast<int64_t>(n));
    EXPECT_DOUBLE_EQ(g.measures().days_to_feedback().median(), median) << g.key(0);
    EXPECT_DOUBLE_EQ(g.measures().days_to_feedback().p90(), days[(9 * n + 9) / 10 - 1]);
    std::set<std::string> repeat;
    for (const auto& [org, subject] : org_subject) {
      if (org == g.key(0) && subject_uses[subject] >= 2) repeat.insert(subject);
    }
    EXPECT_EQ(g.measures().repeat_subjects(), static_cast<int64_t>(repeat.size())) << g.key(0);
  }
}

// Groupings of the same referrals that the index scans different ways: by organisation x quarter
// each group takes a dense slot and its row holds the days; with the outcome type too (and again
// with the category), the groups are too many for rows, so each referral's group is found by a
// hash of its key and the days go to the columns. Each must count what a plain computation counts.
TEST(AggregateIndex, EverySlotPathCountsWhatAPlainComputationCounts) {
  AggregateIndex index(ReferenceData::BuiltIn());
  std::mt19937_64 rng(11);
  const char* orgs[] = {"NFK", "SFK", "MPS", "BF", "ESX", "DUR", "CLE"};
  const v1::OutcomeType outcomes[] = {v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
                                      v1::OUTCOME_TYPE_CRIMINAL_NO_FURTHER_ACTION,
                                      v1::OUTCOME_TYPE_CRIMINAL_CHARGED};
  // Per grouping, each group's key (the names the answer gives) -> the days to feedback.
  std::map<std::vector<std::string>, std::vector<int>> by_quarter, by_outcome, by_category;
  auto strip = [](const std::string& name, size_t prefix) { return name.substr(prefix); };
  for (int i = 0; i < 20000; ++i) {
    Spec s;
    s.org = orgs[rng() % 7];
    // Sixty years of quarters: 7 x 241 groups by organisation and quarter.
    s.dispatched_day = static_cast<int>(rng() % 21900);
    s.state = v1::REFERRAL_STATE_OUTCOME_RECORDED;
    s.feedback_day = s.dispatched_day + static_cast<int>(rng() % 700);
    s.outcome = outcomes[rng() % 3];
    s.category = static_cast<v1::CorruptionCategory>(1 + rng() % (v1::CorruptionCategory_MAX));
    const absl::Time at = kStart + absl::Hours(24 * s.dispatched_day);
    const std::string quarter =
        absl::StrCat(FinancialYearName(FinancialYear(at)), " Q", FinancialQuarter(at) + 1);
    const std::string outcome = strip(v1::OutcomeType_Name(s.outcome), 13);
    const std::string category = strip(v1::CorruptionCategory_Name(s.category), 20);
    const int days = s.feedback_day - s.dispatched_day;
    by_quarter[{s.org, quarter}].push_back(days);
    by_outcome[{s.org, quarter, outcome}].push_back(days);
    by_category[{s.org, quarter, outcome, category}].push_back(days);
    index.Upsert(Entry(s));
  }
  const absl::Time now = kStart + absl::Hours(24 * 23000);
  const std::vector<
      std::pair<v1::GetAggregatesRequest, std::map<std::vector<std::string>, std::vector<int>>*>>
      groupings = {{By({v1::DIMENSION_ORGANISATION, v1::DIMENSION_FINANCIAL_QUARTER}), &by_quarter},
                   {By({v1::DIMENSION_ORGANISATION, v1::DIMENSION_FINANCIAL_QUARTER,
                        v1::DIMENSION_OUTCOME_TYPE}),
                    &by_outcome},
                   {By({v1::DIMENSION_ORGANISATION, v1::DIMENSION_FINANCIAL_QUARTER,
                        v1::DIMENSION_OUTCOME_TYPE, v1::DIMENSION_CATEGORY}),
                    &by_category}};
  for (const auto& [request, want] : groupings) {
    auto r = index.Query(request, now, 5);
    ASSERT_THAT(r, IsOk());
    ASSERT_EQ(r->groups_size(), static_cast<int>(want->size()));
    for (const v1::AggregateGroup& g : r->groups()) {
      const std::vector<std::string> key(g.key().begin(), g.key().end());
      ASSERT_EQ(want->count(key), 1u) << absl::StrJoin(key, " / ");
      std::vector<int> days = want->at(key);
      std::sort(days.begin(), days.end());
      const size_t n = days.size();
      EXPECT_EQ(g.measures().referred(), static_cast<int64_t>(n)) << absl::StrJoin(key, " / ");
      EXPECT_EQ(g.measures().days_to_feedback().n(), static_cast<int64_t>(n));
      EXPECT_DOUBLE_EQ(g.measures().days_to_feedback().median(),
                       n % 2 ? days[n / 2] : (days[n / 2 - 1] + days[n / 2]) / 2.0)
          << absl::StrJoin(key, " / ");
      EXPECT_DOUBLE_EQ(g.measures().days_to_feedback().p90(), days[(9 * n + 9) / 10 - 1]);
    }
    EXPECT_EQ(r->total().referred(), 20000);
  }
}

// A register created before the change sequence existed (messaging, event log, entries, audit)
// upgrades in place: the new migration goes after the audit log's, and old entries are indexed,
// every one, though they all share seq 0 and outnumber a page of the catch-up.
TEST(RegisterSchema, UpgradesADatabaseFromBeforeTheChangeSequence) {
  constexpr int kOld = 20001;
  testing::TempDir dir;
  const std::string path = dir.File("nca.db");
  {
    std::vector<Migration> released = {kMessagingMigration, RegisterMigrations()[0],
                                       RegisterMigrations()[1], kAuditMigration};
    auto db = Database::Open(path, released, testing::TestKeys());
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT((*db)->Transact([&](Txn& txn) -> absl::Status {
      for (int i = 0; i < kOld; ++i) {
        v1::RegisterEntry e = Entry({.org = "NFK"});
        RETURN_IF_ERROR(txn.Exec(
            "INSERT INTO entries (referral_id, organisation, state, dispatched_at, due_at, "
            "outcome_type, handed_over, assistance_declines, reminders, escalated, entry) "
            "VALUES (?, 'NFK', 1, 0, 0, 0, 0, 0, 0, 0, ?)",
            {e.referral_id(), Blob{e.SerializeAsString()}}));
      }
      return absl::OkStatus();
    }),
                IsOk());
  }
  auto db = Database::Open(
      path,
      ServiceMigrations(RegisterMigrations().first(kRegisterMigrationsBeforeAudit),
                        RegisterMigrations().subspan(kRegisterMigrationsBeforeAudit)),
      testing::TestKeys());
  ASSERT_THAT(db, IsOk());
  ManualClock clock(kStart);
  Register reg(**db, ReferenceData::BuiltIn(), clock);
  v1::LifecycleEvent ev;
  ev.set_event_id("EV-1");
  ev.set_referral_id("REF-2000000000000001");
  ev.set_type(v1::EVENT_TYPE_DISPATCHED);
  ev.set_producer("UKFIU");
  ev.set_organisation("SFK");
  *ev.mutable_occurred_at() = ToProto(kStart);
  ASSERT_THAT((*db)->Transact(
                  [&](Txn& txn) { return reg.Receive(txn, referral::ProducerIdentity(ev), ev); }),
              IsOk());
  auto r = reg.Aggregates(By({v1::DIMENSION_ORGANISATION}), kStart, 5);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->groups_size(), 2);
  EXPECT_EQ(r->total().referred(), kOld + 1);
}

}  // namespace
}  // namespace sarloop::nca
