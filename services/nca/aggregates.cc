#include "services/nca/aggregates.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/referral/clocks.h"
#include "common/status.h"

namespace sarloop::nca {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr int kMaxDimensions = 4;
constexpr int kMaxFilterValues = 100;
constexpr int64_t kDay = 86400;

// The count measures, in the order of Acc::counts; names are Measures field names.
enum Count {
  kReferred,
  kFeedback,
  kDeclined,
  kClosedWithOutcome,
  kWithdrawn,
  kRedirected,
  kOpen,
  kHandedOver,
  kAssistanceDeclined,
  kOverdue,
  kEscalated,
  kOpenOver12Months,
  kReminded,
  kInformationRequests,
  kInformationAnswered,
  kDaml,
  kRecordedOnBehalf,
  kReferredToIopc,
  kPastDue,
  kPastDueAnswered,
  kCountMeasures
};
constexpr std::array<const char*, kCountMeasures> kCountNames = {"referred",
                                                                 "feedback_received",
                                                                 "declined_by_force",
                                                                 "closed_with_outcome",
                                                                 "withdrawn",
                                                                 "redirected",
                                                                 "open",
                                                                 "handed_over",
                                                                 "assistance_declined",
                                                                 "overdue",
                                                                 "escalated",
                                                                 "open_over_12_months",
                                                                 "reminded",
                                                                 "information_requests",
                                                                 "information_answered",
                                                                 "daml",
                                                                 "recorded_on_behalf",
                                                                 "referred_to_iopc",
                                                                 "past_due",
                                                                 "past_due_answered"};

bool HasOutcome(int state) {
  return state == v1::REFERRAL_STATE_CLOSED_BY_FORCE ||
         state == v1::REFERRAL_STATE_OUTCOME_RECORDED;
}
bool IsOpen(int state) {
  return state != v1::REFERRAL_STATE_DECLINED_BY_FORCE && !HasOutcome(state) &&
         state != v1::REFERRAL_STATE_WITHDRAWN && state != v1::REFERRAL_STATE_REDIRECTED;
}

std::string Strip(const std::string& name, absl::string_view prefix) {
  return name.substr(std::min(name.size(), prefix.size()));
}

// Whole days, counted: exact medians and percentiles without sorting a million values. Days
// from kHistogramDays on (a century and more: bad clocks) are kept apart, exactly.
constexpr int32_t kHistogramDays = 40000;
struct DayCounts {
  std::vector<int32_t> histogram;
  std::vector<int32_t> beyond;
  int64_t n = 0;

  void Add(int32_t day) {
    ++n;
    if (day >= kHistogramDays) {
      beyond.push_back(day);
      return;
    }
    if (static_cast<size_t>(day) >= histogram.size()) histogram.resize(day + 1, 0);
    ++histogram[day];
  }
  // The k-th smallest (0-based); `beyond` must be sorted.
  int32_t Kth(int64_t k) const {
    for (size_t d = 0; d < histogram.size(); ++d) {
      if (k < histogram[d]) return static_cast<int32_t>(d);
      k -= histogram[d];
    }
    return beyond[k];
  }
};

struct Acc;
void Merge(const Acc& from, Acc& into);

struct Acc {
  std::array<int64_t, kCountMeasures> counts{};
  std::array<int64_t, 32> outcomes{};
  DayCounts feedback_days;
  DayCounts outcome_days;
  DayCounts answer_days;
  DayCounts acknowledge_days;
  DayCounts decision_days;
  int64_t oldest_open_s = 0;        // earliest dispatch of an open referral; 0 none
  int64_t oldest_unanswered_s = 0;  // of an open one past due without a first decision
  std::vector<uint32_t> repeat_subjects;
  int64_t distinct_repeat_subjects = 0;
  // With count_distinct: referrals that are cases of their own, the joint cases met, and every
  // subject met; then their distinct counts.
  int64_t solo_cases = 0;
  std::vector<uint32_t> joint_cases;
  std::vector<uint32_t> subjects;
  int64_t cases = -1;  // -1: not counted
  int64_t distinct_subjects = 0;
};

void MergeDays(const DayCounts& from, DayCounts& into) {
  if (into.histogram.size() < from.histogram.size()) into.histogram.resize(from.histogram.size());
  for (size_t d = 0; d < from.histogram.size(); ++d) into.histogram[d] += from.histogram[d];
  into.beyond.insert(into.beyond.end(), from.beyond.begin(), from.beyond.end());
  into.n += from.n;
}

// Everything but the distinct count, which is taken after merging.
void Merge(const Acc& from, Acc& into) {
  for (size_t i = 0; i < from.counts.size(); ++i) into.counts[i] += from.counts[i];
  for (size_t i = 0; i < from.outcomes.size(); ++i) into.outcomes[i] += from.outcomes[i];
  MergeDays(from.feedback_days, into.feedback_days);
  MergeDays(from.outcome_days, into.outcome_days);
  MergeDays(from.answer_days, into.answer_days);
  MergeDays(from.acknowledge_days, into.acknowledge_days);
  MergeDays(from.decision_days, into.decision_days);
  auto earliest = [](int64_t a, int64_t b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); };
  into.oldest_open_s = earliest(into.oldest_open_s, from.oldest_open_s);
  into.oldest_unanswered_s = earliest(into.oldest_unanswered_s, from.oldest_unanswered_s);
  into.repeat_subjects.insert(into.repeat_subjects.end(), from.repeat_subjects.begin(),
                              from.repeat_subjects.end());
  into.solo_cases += from.solo_cases;
  into.joint_cases.insert(into.joint_cases.end(), from.joint_cases.begin(), from.joint_cases.end());
  into.subjects.insert(into.subjects.end(), from.subjects.begin(), from.subjects.end());
}

// Median: the mean of the two middle values when n is even. p90: nearest rank.
void FillDays(DayCounts& days, v1::DayStats* out) {
  const int64_t n = days.n;
  out->set_n(n);
  if (n == 0) return;
  std::sort(days.beyond.begin(), days.beyond.end());
  out->set_median(n % 2 == 1 ? days.Kth(n / 2) : (days.Kth(n / 2 - 1) + days.Kth(n / 2)) / 2.0);
  const int64_t rank = (9 * n + 9) / 10;  // ceil(0.9 n)
  out->set_p90(days.Kth(rank - 1));
  out->set_p25(days.Kth((n + 3) / 4 - 1));      // ceil(0.25 n)
  out->set_p75(days.Kth((3 * n + 3) / 4 - 1));  // ceil(0.75 n)
}

void FillMeasures(Acc& acc, v1::Measures* m, int64_t now_s) {
  const auto* d = v1::Measures::descriptor();
  const auto* r = v1::Measures::GetReflection();
  for (int i = 0; i < kCountMeasures; ++i) {
    r->SetInt64(m, d->FindFieldByName(kCountNames[i]), acc.counts[i]);
  }
  m->set_repeat_subjects(acc.distinct_repeat_subjects);
  if (acc.cases >= 0) {
    m->set_cases(acc.cases);
    m->set_distinct_subjects(acc.distinct_subjects);
  }
  const int64_t asked = acc.counts[kReferred] - acc.counts[kWithdrawn] - acc.counts[kRedirected];
  if (asked > 0) m->set_response_rate(static_cast<double>(acc.counts[kFeedback]) / asked);
  for (int t = 0; t < static_cast<int>(acc.outcomes.size()); ++t) {
    if (acc.outcomes[t] == 0) continue;
    auto* tally = m->add_outcomes();
    tally->set_type(static_cast<v1::OutcomeType>(t));
    tally->set_count(acc.outcomes[t]);
  }
  FillDays(acc.feedback_days, m->mutable_days_to_feedback());
  FillDays(acc.outcome_days, m->mutable_days_to_outcome());
  FillDays(acc.answer_days, m->mutable_days_to_answer());
  FillDays(acc.acknowledge_days, m->mutable_days_to_acknowledge());
  FillDays(acc.decision_days, m->mutable_days_to_decision());
  if (acc.counts[kPastDue] > 0) {
    m->set_response_rate_due(static_cast<double>(acc.counts[kPastDueAnswered]) /
                             acc.counts[kPastDue]);
  }
  auto age = [&](int64_t since) {
    return since == 0 ? 0 : std::max<int64_t>(0, (now_s - since) / kDay);
  };
  m->set_oldest_open_days(age(acc.oldest_open_s));
  m->set_oldest_unanswered_days(age(acc.oldest_unanswered_s));
}

// An allow-list per dimension value; empty means everything passes.
class Allow {
 public:
  bool Passes(size_t v) const { return all_ || (v < ok_.size() && ok_[v]); }
  void Add(size_t v) {
    all_ = false;
    if (ok_.size() <= v) ok_.resize(v + 1, false);
    ok_[v] = true;
  }
  bool all() const { return all_; }

 private:
  bool all_ = true;
  std::vector<bool> ok_;
};

template <typename Values, typename IsValid>
absl::Status AllowEnum(const Values& values, absl::string_view field, IsValid valid, Allow& allow) {
  if (values.size() > kMaxFilterValues) {
    return FieldError(field, absl::StrCat("at most ", kMaxFilterValues, " values"));
  }
  for (int i = 0; i < values.size(); ++i) {
    const int v = values.Get(i);
    if (!valid(v) || v < 0) {
      return FieldError(absl::StrCat(field, "[", i, "]"), "is not a known value");
    }
    allow.Add(static_cast<size_t>(v));
  }
  return absl::OkStatus();
}

}  // namespace

int FinancialYear(absl::Time t) {
  const absl::CivilDay day = absl::ToCivilDay(t, absl::UTCTimeZone());
  return static_cast<int>(day.month() >= 4 ? day.year() : day.year() - 1);
}

int FinancialQuarter(absl::Time t) {
  const absl::CivilDay day = absl::ToCivilDay(t, absl::UTCTimeZone());
  return ((day.month() + 8) % 12) / 3;  // April -> 0, ..., March -> 3
}

std::string FinancialYearName(int year) {
  return absl::StrFormat("%04d-%02d", year, (year + 1) % 100);
}

uint16_t AggregateIndex::OrgIndex(const std::string& code) {
  auto it = org_index_.find(code);
  if (it != org_index_.end()) return it->second;
  Org org{code, "UNKNOWN", v1::ORGANISATION_KIND_UNSPECIFIED};
  if (const v1::Organisation* o = reference_.FindOrganisation(code)) {
    // National agencies belong to no region.
    org.region = o->region().empty() ? "NATIONAL" : o->region();
    org.kind = o->kind();
  }
  const auto index = static_cast<uint16_t>(orgs_.size());
  orgs_.push_back(std::move(org));
  org_index_.emplace(code, index);
  return index;
}

uint16_t AggregateIndex::UnitIndex(const std::string& code) {
  if (code.empty()) return 0;
  auto [it, added] = unit_index_.emplace(code, static_cast<uint16_t>(units_.size()));
  if (added) units_.push_back(code);
  return it->second;
}

uint32_t AggregateIndex::SubjectIndex(const std::string& ref) {
  auto [it, added] = subject_index_.emplace(ref, static_cast<uint32_t>(subject_referrals_.size()));
  if (added) subject_referrals_.push_back(0);
  return it->second;
}

void AggregateIndex::Upsert(const v1::RegisterEntry& e) {
  // Values this build does not know count as UNSPECIFIED, so every dimension stays small.
  auto known = [](int v, bool (*valid)(int)) { return static_cast<uint8_t>(valid(v) ? v : 0); };
  Fact f;
  f.org = OrgIndex(e.organisation());
  f.state = known(e.state(), v1::ReferralState_IsValid);
  f.route = known(e.route(), v1::ReferralRoute_IsValid);
  f.handed_over = !e.unit().empty();
  f.assistance_declined = e.assistance_declines() > 0;
  f.escalated = e.escalated();
  f.reminded = e.reminders() > 0;
  f.daml = e.daml();
  f.recorded_on_behalf = e.recorded_on_behalf();
  f.referred_to_iopc = e.referred_to_iopc();
  if (!e.case_id().empty()) {
    f.case_index = case_index_.emplace(e.case_id(), static_cast<uint32_t>(case_index_.size()) + 1)
                       .first->second;
  }
  f.information_requests = static_cast<uint16_t>(std::clamp(e.information_requests(), 0, 65535));
  f.information_answered = static_cast<uint16_t>(std::clamp(e.information_answered(), 0, 65535));
  if (e.information_answered() > 0) {
    f.answer_days = static_cast<int32_t>(std::clamp<int64_t>(
        e.information_reply_seconds() / e.information_answered() / 86400, 0, INT32_MAX));
  }
  if (e.has_dispatched_at()) {
    const absl::Time t = FromProto(e.dispatched_at());
    f.dispatched_s = absl::ToUnixSeconds(t);
    f.fy = static_cast<int16_t>(std::clamp(FinancialYear(t), 1900, 9999));
    f.quarter = static_cast<uint8_t>(FinancialQuarter(t));
    min_fy_ = min_fy_ == 0 ? f.fy : std::min<int>(min_fy_, f.fy);
    max_fy_ = std::max<int>(max_fy_, f.fy);
  }
  // Overdue against the running clock (clocks.h); entries folded before staged clocks keep the
  // dispatch's due date.
  if (e.has_next_due_at()) {
    f.due_s = e.next_due_at().seconds();
  } else if (e.has_due_at() && !e.has_received_at() && !e.has_decision_paused_since()) {
    f.due_s = e.due_at().seconds();
  }
  // Regulation 19's first report: 12 months after receipt (clocks.h), one definition.
  if (e.has_dispatched_at()) f.reg19_s = absl::ToUnixSeconds(Reg19DueAt(e, 1));
  if (e.has_feedback_at()) f.feedback_s = e.feedback_at().seconds();
  f.thr = std::max({known(e.thr().threat(), v1::ThrLevel_IsValid),
                    known(e.thr().risk(), v1::ThrLevel_IsValid),
                    known(e.thr().harm(), v1::ThrLevel_IsValid)});
  if (e.has_acknowledged_at()) f.acknowledged_s = e.acknowledged_at().seconds();
  if (e.has_decided_at()) f.decided_s = e.decided_at().seconds();
  if (e.has_due_at()) f.decision_due_s = e.due_at().seconds();
  for (int role : e.subject_roles()) {
    if (role != v1::SUBJECT_ROLE_UNSPECIFIED) {
      f.role = known(role, v1::SubjectRole_IsValid);
      break;
    }
  }
  if (HasOutcome(f.state)) {
    f.outcome = known(e.outcome().type(), v1::OutcomeType_IsValid);
    f.category = known(e.outcome().category(), v1::CorruptionCategory_IsValid);
    if (e.outcome().subject_role() != v1::SUBJECT_ROLE_UNSPECIFIED) {
      f.role = known(e.outcome().subject_role(), v1::SubjectRole_IsValid);
    }
  }
  for (const v1::Outcome& t : e.tracks()) {
    if (t.track() < v1::OUTCOME_TRACK_CRIMINAL || t.track() > v1::OUTCOME_TRACK_STAFF) continue;
    f.track[t.track() - 1] = known(t.type(), v1::OutcomeType_IsValid);
    if (t.track() == v1::OUTCOME_TRACK_CONDUCT) {
      f.finding = known(t.finding(), v1::ConductFinding_IsValid);
      f.action = known(t.misconduct_result(), v1::MisconductResult_IsValid);
    }
  }
  f.priority = known(e.priority(), v1::Priority_IsValid);
  f.unit = UnitIndex(e.unit());
  f.decline_reason = e.state() == v1::REFERRAL_STATE_DECLINED_BY_FORCE
                         ? known(e.decline_reason(), v1::DeclineReason_IsValid)
                         : 0;
  std::set<std::string> refs(e.subject_refs().begin(), e.subject_refs().end());
  f.subjects_at = static_cast<uint32_t>(subject_pool_.size());
  f.subject_count = static_cast<uint32_t>(refs.size());
  for (const std::string& ref : refs) {
    const uint32_t s = SubjectIndex(ref);
    subject_pool_.push_back(s);
    ++subject_referrals_[s];
  }
  live_subjects_ += refs.size();

  auto it = by_referral_.find(e.referral_id());
  if (it == by_referral_.end()) {
    by_referral_.emplace(e.referral_id(), static_cast<uint32_t>(facts_.size()));
    facts_.push_back(f);
  } else {
    Fact& old = facts_[it->second];
    for (uint32_t i = 0; i < old.subject_count; ++i) {
      --subject_referrals_[subject_pool_[old.subjects_at + i]];
    }
    live_subjects_ -= old.subject_count;
    old = f;
  }
  if (subject_pool_.size() > 2 * live_subjects_ + 4096) CompactSubjects();
}

void AggregateIndex::CompactSubjects() {
  std::vector<uint32_t> pool;
  pool.reserve(live_subjects_);
  for (Fact& f : facts_) {
    const uint32_t at = static_cast<uint32_t>(pool.size());
    pool.insert(pool.end(), subject_pool_.begin() + f.subjects_at,
                subject_pool_.begin() + f.subjects_at + f.subject_count);
    f.subjects_at = at;
  }
  subject_pool_ = std::move(pool);
}

absl::StatusOr<v1::GetAggregatesResponse> AggregateIndex::Query(
    const v1::GetAggregatesRequest& request, absl::Time as_of, int min_count) const {
  // Validate and compile the request.
  if (request.group_by_size() > kMaxDimensions) {
    return FieldError("group_by", absl::StrCat("at most ", kMaxDimensions, " dimensions"));
  }
  std::vector<v1::Dimension> dims;
  for (int i = 0; i < request.group_by_size(); ++i) {
    const auto d = request.group_by(i);
    if (d == v1::DIMENSION_UNSPECIFIED || !v1::Dimension_IsValid(d)) {
      return FieldError(absl::StrCat("group_by[", i, "]"), "is not a known dimension");
    }
    if (std::find(dims.begin(), dims.end(), d) != dims.end()) {
      return FieldError(absl::StrCat("group_by[", i, "]"), "repeats a dimension");
    }
    dims.push_back(d);
  }
  const v1::AggregateFilter& filter = request.filter();
  Allow orgs, regions, kinds, years_allowed, categories, roles, outcomes, routes, states;
  Allow priorities, units, decline_reasons, thr_levels;
  if (filter.organisations_size() > kMaxFilterValues) {
    return FieldError("filter.organisations", "at most 100 values");
  }
  for (int i = 0; i < filter.organisations_size(); ++i) {
    const std::string& code = filter.organisations(i);
    if (reference_.FindOrganisation(code) == nullptr && org_index_.count(code) == 0) {
      return FieldError(absl::StrCat("filter.organisations[", i, "]"),
                        absl::StrCat("unknown organisation \"", code.substr(0, 20), "\""));
    }
    auto it = org_index_.find(code);
    if (it != org_index_.end()) orgs.Add(it->second);
  }
  const bool no_org_known = filter.organisations_size() > 0 && orgs.all();
  if (filter.regions_size() > kMaxFilterValues) {
    return FieldError("filter.regions", "at most 100 values");
  }
  std::set<std::string> region_codes;
  for (int i = 0; i < filter.regions_size(); ++i) {
    if (reference_.FindRegion(filter.regions(i)) == nullptr) {
      return FieldError(absl::StrCat("filter.regions[", i, "]"),
                        absl::StrCat("unknown region \"", filter.regions(i).substr(0, 30), "\""));
    }
    region_codes.insert(filter.regions(i));
  }
  if (filter.financial_years_size() > kMaxFilterValues) {
    return FieldError("filter.financial_years", "at most 100 values");
  }
  for (int i = 0; i < filter.financial_years_size(); ++i) {
    const int y = filter.financial_years(i);
    if (y < 1990 || y > 2200) {
      return FieldError(absl::StrCat("filter.financial_years[", i, "]"),
                        "must be a starting year from 1990 to 2200");
    }
    years_allowed.Add(static_cast<size_t>(y));
  }
  RETURN_IF_ERROR(AllowEnum(filter.organisation_kinds(), "filter.organisation_kinds",
                            v1::OrganisationKind_IsValid, kinds));
  RETURN_IF_ERROR(AllowEnum(filter.categories(), "filter.categories",
                            v1::CorruptionCategory_IsValid, categories));
  RETURN_IF_ERROR(
      AllowEnum(filter.subject_roles(), "filter.subject_roles", v1::SubjectRole_IsValid, roles));
  RETURN_IF_ERROR(
      AllowEnum(filter.outcome_types(), "filter.outcome_types", v1::OutcomeType_IsValid, outcomes));
  RETURN_IF_ERROR(AllowEnum(filter.routes(), "filter.routes", v1::ReferralRoute_IsValid, routes));
  RETURN_IF_ERROR(AllowEnum(filter.states(), "filter.states", v1::ReferralState_IsValid, states));
  RETURN_IF_ERROR(
      AllowEnum(filter.priorities(), "filter.priorities", v1::Priority_IsValid, priorities));
  RETURN_IF_ERROR(AllowEnum(filter.decline_reasons(), "filter.decline_reasons",
                            v1::DeclineReason_IsValid, decline_reasons));
  RETURN_IF_ERROR(
      AllowEnum(filter.thr_levels(), "filter.thr_levels", v1::ThrLevel_IsValid, thr_levels));
  if (filter.units_size() > kMaxFilterValues)
    return FieldError("filter.units", "at most 100 values");
  for (int i = 0; i < filter.units_size(); ++i) {
    const std::string& code = filter.units(i);
    if (!reference_.IsUnit(code)) {
      return FieldError(absl::StrCat("filter.units[", i, "]"),
                        absl::StrCat("unknown unit \"", code.substr(0, 20), "\""));
    }
    auto it = unit_index_.find(code);
    // A unit no referral was handed to matches nothing (index 0 is "none", never listed here).
    units.Add(it == unit_index_.end() ? units_.size() : it->second);
  }

  // Per-organisation facts that several dimensions and filters need.
  std::vector<uint16_t> org_region(orgs_.size());
  std::vector<std::string> region_names;
  std::vector<bool> org_passes(orgs_.size(), true);
  for (size_t i = 0; i < orgs_.size(); ++i) {
    auto it = std::find(region_names.begin(), region_names.end(), orgs_[i].region);
    org_region[i] = static_cast<uint16_t>(it - region_names.begin());
    if (it == region_names.end()) region_names.push_back(orgs_[i].region);
    org_passes[i] = (!no_org_known && orgs.Passes(i)) &&
                    (region_codes.empty() || region_codes.count(orgs_[i].region) > 0) &&
                    kinds.Passes(static_cast<size_t>(orgs_[i].kind));
  }

  auto value_of = [&](v1::Dimension d, const Fact& f) -> uint64_t {
    switch (d) {
      case v1::DIMENSION_ORGANISATION:
        return f.org;
      case v1::DIMENSION_REGION:
        return org_region[f.org];
      case v1::DIMENSION_ORGANISATION_KIND:
        return static_cast<uint64_t>(orgs_[f.org].kind);
      case v1::DIMENSION_FINANCIAL_YEAR:
        return static_cast<uint64_t>(f.fy);
      case v1::DIMENSION_FINANCIAL_QUARTER:
        return static_cast<uint64_t>(f.fy) * 4 + f.quarter;
      case v1::DIMENSION_CATEGORY:
        return f.category;
      case v1::DIMENSION_SUBJECT_ROLE:
        return f.role;
      case v1::DIMENSION_OUTCOME_TYPE:
        return f.outcome;
      case v1::DIMENSION_ROUTE:
        return f.route;
      case v1::DIMENSION_STATE:
        return f.state;
      case v1::DIMENSION_CRIMINAL_TRACK:
      case v1::DIMENSION_CONDUCT_TRACK:
      case v1::DIMENSION_VETTING_TRACK:
      case v1::DIMENSION_LISTING_TRACK:
      case v1::DIMENSION_STAFF_TRACK:
        return f.track[d - v1::DIMENSION_CRIMINAL_TRACK];
      case v1::DIMENSION_CONDUCT_FINDING:
        return f.finding;
      case v1::DIMENSION_CONDUCT_ACTION:
        return f.action;
      case v1::DIMENSION_PRIORITY:
        return f.priority;
      case v1::DIMENSION_UNIT:
        return f.unit;
      case v1::DIMENSION_DECLINE_REASON:
        return f.decline_reason;
      case v1::DIMENSION_THR:
        return f.thr;
      default:
        return 0;
    }
  };
  auto name_of = [&](v1::Dimension d, uint64_t v) -> std::string {
    switch (d) {
      case v1::DIMENSION_ORGANISATION:
        return orgs_[v].code;
      case v1::DIMENSION_REGION:
        return region_names[v];
      case v1::DIMENSION_ORGANISATION_KIND:
        return Strip(v1::OrganisationKind_Name(static_cast<int>(v)), "ORGANISATION_KIND_");
      case v1::DIMENSION_FINANCIAL_YEAR:
        return v == 0 ? "UNKNOWN" : FinancialYearName(static_cast<int>(v));
      case v1::DIMENSION_FINANCIAL_QUARTER:
        return v == 0 ? "UNKNOWN"
                      : absl::StrCat(FinancialYearName(static_cast<int>(v / 4)), " Q", v % 4 + 1);
      case v1::DIMENSION_CATEGORY:
        return Strip(v1::CorruptionCategory_Name(static_cast<int>(v)), "CORRUPTION_CATEGORY_");
      case v1::DIMENSION_SUBJECT_ROLE:
        return Strip(v1::SubjectRole_Name(static_cast<int>(v)), "SUBJECT_ROLE_");
      case v1::DIMENSION_OUTCOME_TYPE:
        return Strip(v1::OutcomeType_Name(static_cast<int>(v)), "OUTCOME_TYPE_");
      case v1::DIMENSION_ROUTE:
        return Strip(v1::ReferralRoute_Name(static_cast<int>(v)), "REFERRAL_ROUTE_");
      case v1::DIMENSION_STATE:
        return Strip(v1::ReferralState_Name(static_cast<int>(v)), "REFERRAL_STATE_");
      case v1::DIMENSION_CRIMINAL_TRACK:
      case v1::DIMENSION_CONDUCT_TRACK:
      case v1::DIMENSION_VETTING_TRACK:
      case v1::DIMENSION_LISTING_TRACK:
      case v1::DIMENSION_STAFF_TRACK:
        return v == 0 ? "NONE" : Strip(v1::OutcomeType_Name(static_cast<int>(v)), "OUTCOME_TYPE_");
      case v1::DIMENSION_CONDUCT_FINDING:
        return v == 0 ? "NONE"
                      : Strip(v1::ConductFinding_Name(static_cast<int>(v)), "CONDUCT_FINDING_");
      case v1::DIMENSION_CONDUCT_ACTION:
        return v == 0 ? "NONE"
                      : Strip(v1::MisconductResult_Name(static_cast<int>(v)), "MISCONDUCT_RESULT_");
      case v1::DIMENSION_PRIORITY:
        return v == 0 ? "NONE" : Strip(v1::Priority_Name(static_cast<int>(v)), "PRIORITY_");
      case v1::DIMENSION_UNIT:
        return v == 0 || v >= units_.size() ? "NONE" : units_[v];
      case v1::DIMENSION_DECLINE_REASON:
        return v == 0 ? "NONE"
                      : Strip(v1::DeclineReason_Name(static_cast<int>(v)), "DECLINE_REASON_");
      case v1::DIMENSION_THR:
        return v == 0 ? "NONE" : Strip(v1::ThrLevel_Name(static_cast<int>(v)), "THR_LEVEL_");
      default:
        return "";
    }
  };

  const int64_t now_s = absl::ToUnixSeconds(as_of);
  const bool count_distinct = request.count_distinct();
  auto add = [&](Acc& a, const Fact& f) {
    const bool open = IsOpen(f.state);
    const bool outcome = HasOutcome(f.state);
    a.counts[kReferred]++;
    a.counts[kFeedback] += f.state == v1::REFERRAL_STATE_DECLINED_BY_FORCE || outcome;
    a.counts[kDeclined] += f.state == v1::REFERRAL_STATE_DECLINED_BY_FORCE;
    a.counts[kClosedWithOutcome] += outcome;
    a.counts[kWithdrawn] += f.state == v1::REFERRAL_STATE_WITHDRAWN;
    a.counts[kRedirected] += f.state == v1::REFERRAL_STATE_REDIRECTED;
    a.counts[kOpen] += open;
    a.counts[kHandedOver] += f.handed_over;
    a.counts[kAssistanceDeclined] += f.assistance_declined;
    a.counts[kOverdue] += open && f.due_s > 0 && f.due_s < now_s;
    a.counts[kEscalated] += f.escalated;
    a.counts[kReminded] += f.reminded;
    a.counts[kInformationRequests] += f.information_requests;
    a.counts[kInformationAnswered] += f.information_answered;
    a.counts[kDaml] += f.daml;
    a.counts[kRecordedOnBehalf] += f.recorded_on_behalf;
    a.counts[kReferredToIopc] += f.referred_to_iopc;
    if (f.information_answered > 0) a.answer_days.Add(f.answer_days);
    a.counts[kOpenOver12Months] += open && f.reg19_s > 0 && f.reg19_s <= now_s;
    if (outcome) a.outcomes[f.outcome % a.outcomes.size()]++;
    auto days_since_dispatch = [&](int64_t t) {
      return static_cast<int32_t>(std::min<int64_t>((t - f.dispatched_s) / kDay, INT32_MAX));
    };
    if (f.dispatched_s > 0) {
      if (f.acknowledged_s >= f.dispatched_s)
        a.acknowledge_days.Add(days_since_dispatch(f.acknowledged_s));
      if (f.decided_s >= f.dispatched_s) a.decision_days.Add(days_since_dispatch(f.decided_s));
      const bool asked =
          f.state != v1::REFERRAL_STATE_WITHDRAWN && f.state != v1::REFERRAL_STATE_REDIRECTED;
      if (asked && f.decision_due_s > 0 && f.decision_due_s <= now_s) {
        a.counts[kPastDue]++;
        a.counts[kPastDueAnswered] += f.decided_s > 0;
        if (open && f.decided_s == 0 &&
            (a.oldest_unanswered_s == 0 || f.dispatched_s < a.oldest_unanswered_s)) {
          a.oldest_unanswered_s = f.dispatched_s;
        }
      }
      if (open && (a.oldest_open_s == 0 || f.dispatched_s < a.oldest_open_s)) {
        a.oldest_open_s = f.dispatched_s;
      }
    }
    if (f.feedback_s > 0 && f.dispatched_s > 0 && f.feedback_s >= f.dispatched_s) {
      const auto days = static_cast<int32_t>(
          std::min<int64_t>((f.feedback_s - f.dispatched_s) / kDay, INT32_MAX));
      a.feedback_days.Add(days);
      if (outcome) a.outcome_days.Add(days);
    }
    for (uint32_t i = 0; i < f.subject_count; ++i) {
      const uint32_t s = subject_pool_[f.subjects_at + i];
      if (subject_referrals_[s] >= 2) a.repeat_subjects.push_back(s);
      if (count_distinct) a.subjects.push_back(s);
    }
    if (count_distinct) {
      if (f.case_index == 0) {
        ++a.solo_cases;
      } else {
        a.joint_cases.push_back(f.case_index);
      }
    }
  };

  // A group's slot: by a dense mixed-radix index when the dimensions' sizes allow (no hashing per
  // referral), else by a hash of the packed key.
  const int years = max_fy_ >= min_fy_ && min_fy_ > 0 ? max_fy_ - min_fy_ + 1 : 1;
  auto dense_size = [&](v1::Dimension d) -> uint64_t {
    switch (d) {
      case v1::DIMENSION_ORGANISATION:
        return std::max<size_t>(orgs_.size(), 1);
      case v1::DIMENSION_REGION:
        return std::max<size_t>(region_names.size(), 1);
      case v1::DIMENSION_ORGANISATION_KIND:
        return v1::OrganisationKind_MAX + 1;
      case v1::DIMENSION_FINANCIAL_YEAR:
        return static_cast<uint64_t>(years) + 1;
      case v1::DIMENSION_FINANCIAL_QUARTER:
        return static_cast<uint64_t>(years) * 4 + 1;
      case v1::DIMENSION_CATEGORY:
        return v1::CorruptionCategory_MAX + 1;
      case v1::DIMENSION_SUBJECT_ROLE:
        return v1::SubjectRole_MAX + 1;
      case v1::DIMENSION_OUTCOME_TYPE:
        return v1::OutcomeType_MAX + 1;
      case v1::DIMENSION_ROUTE:
        return v1::ReferralRoute_MAX + 1;
      case v1::DIMENSION_STATE:
        return v1::ReferralState_MAX + 1;
      case v1::DIMENSION_CRIMINAL_TRACK:
      case v1::DIMENSION_CONDUCT_TRACK:
      case v1::DIMENSION_VETTING_TRACK:
      case v1::DIMENSION_LISTING_TRACK:
      case v1::DIMENSION_STAFF_TRACK:
        return v1::OutcomeType_MAX + 1;
      case v1::DIMENSION_CONDUCT_FINDING:
        return v1::ConductFinding_MAX + 1;
      case v1::DIMENSION_CONDUCT_ACTION:
        return v1::MisconductResult_MAX + 1;
      case v1::DIMENSION_PRIORITY:
        return v1::Priority_MAX + 1;
      case v1::DIMENSION_UNIT:
        return std::max<size_t>(units_.size(), 1);
      case v1::DIMENSION_DECLINE_REASON:
        return v1::DeclineReason_MAX + 1;
      case v1::DIMENSION_THR:
        return v1::ThrLevel_MAX + 1;
      default:
        return 1;
    }
  };
  auto dense_value = [&](v1::Dimension d, const Fact& f) -> uint64_t {
    switch (d) {
      case v1::DIMENSION_FINANCIAL_YEAR:
        return f.fy == 0 ? 0 : static_cast<uint64_t>(f.fy - min_fy_) + 1;
      case v1::DIMENSION_FINANCIAL_QUARTER:
        return f.fy == 0 ? 0 : static_cast<uint64_t>(f.fy - min_fy_) * 4 + f.quarter + 1;
      default:
        return value_of(d, f);
    }
  };
  uint64_t dense_cells = 1;
  for (v1::Dimension d : dims)
    dense_cells = std::min<uint64_t>(dense_cells * dense_size(d), 1 << 23);
  const bool dense = dense_cells <= (1 << 22);
  // One part of the scan: its own groups, so two threads share nothing while they run.
  struct Part {
    Acc total;
    std::vector<Acc> groups;
    std::vector<uint64_t> keys;
  };
  auto scan = [&](size_t begin, size_t end, Part& part) {
    std::vector<int32_t> dense_slot(dense && !dims.empty() ? dense_cells : 0, -1);
    std::unordered_map<uint64_t, int32_t> hashed_slot;
    for (size_t i = begin; i < end; ++i) {
      const Fact& f = facts_[i];
      if (!org_passes[f.org] || !years_allowed.Passes(static_cast<size_t>(f.fy)) ||
          !categories.Passes(f.category) || !roles.Passes(f.role) || !outcomes.Passes(f.outcome) ||
          !routes.Passes(f.route) || !states.Passes(f.state) || !priorities.Passes(f.priority) ||
          !units.Passes(f.unit) || !decline_reasons.Passes(f.decline_reason) ||
          !thr_levels.Passes(f.thr)) {
        continue;
      }
      // Grouped, each referral is added to its group only; the total is the groups' sum.
      if (dims.empty()) {
        add(part.total, f);
        continue;
      }
      int32_t* slot = nullptr;
      if (dense) {
        uint64_t index = 0;
        for (v1::Dimension d : dims) index = index * dense_size(d) + dense_value(d, f);
        slot = &dense_slot[index];
      } else {
        uint64_t key = 0;
        for (v1::Dimension d : dims) key = (key << 16) | (value_of(d, f) & 0xffff);
        slot = &hashed_slot.try_emplace(key, -1).first->second;
      }
      if (*slot < 0) {
        *slot = static_cast<int32_t>(part.groups.size());
        part.groups.emplace_back();
        uint64_t key = 0;
        for (v1::Dimension d : dims) key = (key << 16) | (value_of(d, f) & 0xffff);
        part.keys.push_back(key);
      }
      add(part.groups[*slot], f);
    }
  };
  // Two halves on two threads when the register is big enough for it to pay.
  Part first, second;
  const size_t n = facts_.size();
  if (n >= 50000) {
    std::thread other([&] { scan(n / 2, n, second); });
    scan(0, n / 2, first);
    other.join();
  } else {
    scan(0, n, first);
  }
  Acc& total = first.total;
  Merge(second.total, total);
  std::vector<Acc>& groups = first.groups;
  std::vector<uint64_t>& group_keys = first.keys;
  {
    std::unordered_map<uint64_t, size_t> index;
    for (size_t g = 0; g < group_keys.size(); ++g) index.emplace(group_keys[g], g);
    for (size_t g = 0; g < second.groups.size(); ++g) {
      auto [it, added] = index.emplace(second.keys[g], groups.size());
      if (added) {
        groups.push_back(std::move(second.groups[g]));
        group_keys.push_back(second.keys[g]);
      } else {
        Merge(second.groups[g], groups[it->second]);
      }
    }
  }

  // Distinct repeat subjects per group, with one bitmap reused group after group.
  std::vector<uint64_t> seen(subject_referrals_.size() / 64 + 1, 0);
  auto distinct = [&seen](Acc& a) {
    int64_t n = 0;
    for (uint32_t s : a.repeat_subjects) {
      uint64_t& word = seen[s / 64];
      const uint64_t bit = uint64_t{1} << (s % 64);
      n += (word & bit) == 0;
      word |= bit;
    }
    for (uint32_t s : a.repeat_subjects) seen[s / 64] = 0;
    a.distinct_repeat_subjects = n;
    a.repeat_subjects = {};
  };
  // Cases and distinct subjects the same way, when asked for.
  auto count_in = [](std::vector<uint64_t>& bits, std::vector<uint32_t>& ids) {
    int64_t n = 0;
    for (uint32_t s : ids) {
      uint64_t& word = bits[s / 64];
      const uint64_t bit = uint64_t{1} << (s % 64);
      n += (word & bit) == 0;
      word |= bit;
    }
    for (uint32_t s : ids) bits[s / 64] = 0;
    ids = {};
    return n;
  };
  std::vector<uint64_t> case_bits(count_distinct ? case_index_.size() / 64 + 2 : 0, 0);
  auto distinct_cases = [&](Acc& a) {
    if (!count_distinct) return;
    a.cases = a.solo_cases + count_in(case_bits, a.joint_cases);
    a.distinct_subjects = count_in(seen, a.subjects);
  };
  for (const Acc& g : groups) Merge(g, total);
  distinct(total);
  distinct_cases(total);
  for (Acc& g : groups) {
    distinct(g);
    distinct_cases(g);
  }

  v1::GetAggregatesResponse response;
  *response.mutable_as_of() = ToProto(as_of);
  for (v1::Dimension d : dims) response.add_group_by(d);
  std::vector<std::pair<std::vector<std::string>, uint32_t>> order;
  for (uint32_t g = 0; g < groups.size(); ++g) {
    std::vector<std::string> names(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) {
      const int shift = 16 * static_cast<int>(dims.size() - 1 - i);
      names[i] = name_of(dims[i], (group_keys[g] >> shift) & 0xffff);
    }
    order.emplace_back(std::move(names), g);
  }
  std::sort(order.begin(), order.end());
  for (auto& [names, g] : order) {
    v1::AggregateGroup* group = response.add_groups();
    for (auto& n : names) group->add_key(std::move(n));
    FillMeasures(groups[g], group->mutable_measures(), now_s);
  }
  FillMeasures(total, response.mutable_total(), now_s);
  if (request.publication()) {
    response.set_publication(true);
    response.set_min_count(min_count);
    Suppress(response, min_count);
  }
  return response;
}

namespace {

// Whether a count is published, and its value: read once from the message, then kept here, so
// the secondary-suppression rounds do not go through reflection for every look.
struct CellState {
  bool known;
  int64_t value;
};

class CellStates {
 public:
  CellState* Get(Message* msg, const FieldDescriptor* field) {
    auto [it, added] = states_.try_emplace({msg, field});
    if (added) {
      const auto* r = msg->GetReflection();
      it->second = {r->HasField(*msg, field), r->GetInt64(*msg, field)};
    }
    return &it->second;
  }

 private:
  std::map<std::pair<const Message*, const FieldDescriptor*>, CellState> states_;
};

// One published-or-suppressed count: an optional int64 field of a Measures or an OutcomeTally.
struct Cell {
  Message* msg;
  const FieldDescriptor* field;
  v1::Measures* owner;
  // The Measures field's name; null for an outcome tally (named when hidden).
  const char* name;
  CellState* state;

  bool known() const { return state->known; }
  int64_t value() const { return state->value; }
  void Hide() const {
    if (!state->known) return;
    msg->GetReflection()->ClearField(msg, field);
    if (name != nullptr) {
      owner->add_suppressed(name);
    } else {
      owner->add_suppressed(absl::StrCat(
          "outcomes.", Strip(v1::OutcomeType_Name(static_cast<v1::OutcomeTally*>(msg)->type()),
                             "OUTCOME_TYPE_")));
    }
    state->known = false;
  }
};

Cell MeasureCell(CellStates& states, v1::Measures& m, const char* name) {
  static const auto* fields = [] {
    auto* map = new std::map<std::string, const FieldDescriptor*>();
    const auto* d = v1::Measures::descriptor();
    for (int i = 0; i < d->field_count(); ++i) (*map)[d->field(i)->name()] = d->field(i);
    return map;
  }();
  const FieldDescriptor* field = fields->at(name);
  return {&m, field, &m, name, states.Get(&m, field)};
}

std::vector<Cell> OutcomeCells(CellStates& states, v1::Measures& m) {
  static const FieldDescriptor* count = v1::OutcomeTally::descriptor()->FindFieldByName("count");
  std::vector<Cell> cells;
  for (auto& tally : *m.mutable_outcomes()) {
    cells.push_back({&tally, count, &m, nullptr, states.Get(&tally, count)});
  }
  return cells;
}

// total = the sum of parts: solvable for any single unknown.
struct Line {
  Cell total;
  std::vector<Cell> parts;
};

void HideDays(v1::Measures& m, v1::DayStats* days, const char* name) {
  if (!days->has_n() && !days->has_median() && !days->has_p90()) return;
  days->Clear();
  m.add_suppressed(name);
}

}  // namespace

void Suppress(v1::GetAggregatesResponse& response, int min_count) {
  CellStates states;
  std::vector<v1::Measures*> all;
  for (auto& g : *response.mutable_groups()) all.push_back(g.mutable_measures());
  all.push_back(response.mutable_total());

  // Primary: every small count.
  for (v1::Measures* m : all) {
    std::vector<Cell> cells = OutcomeCells(states, *m);
    for (const char* name : kCountNames) cells.push_back(MeasureCell(states, *m, name));
    cells.push_back(MeasureCell(states, *m, "repeat_subjects"));
    cells.push_back(MeasureCell(states, *m, "cases"));
    cells.push_back(MeasureCell(states, *m, "distinct_subjects"));
    for (const Cell& c : cells) {
      if (c.known() && c.value() > 0 && c.value() < min_count) c.Hide();
    }
  }

  std::vector<Line> lines;
  for (v1::Measures* m : all) {
    lines.push_back(
        {MeasureCell(states, *m, "referred"),
         {MeasureCell(states, *m, "feedback_received"), MeasureCell(states, *m, "withdrawn"),
          MeasureCell(states, *m, "redirected"), MeasureCell(states, *m, "open")}});
    lines.push_back({MeasureCell(states, *m, "feedback_received"),
                     {MeasureCell(states, *m, "declined_by_force"),
                      MeasureCell(states, *m, "closed_with_outcome")}});
    lines.push_back({MeasureCell(states, *m, "closed_with_outcome"), OutcomeCells(states, *m)});
  }
  v1::Measures& total = *response.mutable_total();
  if (response.groups_size() > 0) {
    for (const char* name : kCountNames) {
      Line line{MeasureCell(states, total, name), {}};
      for (auto& g : *response.mutable_groups()) {
        line.parts.push_back(MeasureCell(states, *g.mutable_measures(), name));
      }
      lines.push_back(std::move(line));
    }
    std::map<int, Line> by_type;
    for (const Cell& t : OutcomeCells(states, total)) {
      by_type.emplace(static_cast<v1::OutcomeTally*>(t.msg)->type(), Line{t, {}});
    }
    for (auto& g : *response.mutable_groups()) {
      for (const Cell& c : OutcomeCells(states, *g.mutable_measures())) {
        auto it = by_type.find(static_cast<v1::OutcomeTally*>(c.msg)->type());
        if (it != by_type.end()) it->second.parts.push_back(c);
      }
    }
    for (auto& [type, line] : by_type) lines.push_back(std::move(line));
  }

  // Secondary: while some line has exactly one unknown, hide one more of its cells (the smallest
  // non-zero part, else the smallest part, else the total). Each round hides a cell, so it ends.
  for (bool changed = true; changed;) {
    changed = false;
    for (const Line& line : lines) {
      int unknown = !line.total.known();
      for (const Cell& c : line.parts) unknown += !c.known();
      if (unknown != 1) continue;
      const Cell* pick = nullptr;
      for (const Cell& c : line.parts) {
        if (!c.known()) continue;
        const bool better = pick == nullptr || (c.value() > 0 && pick->value() == 0) ||
                            ((c.value() > 0) == (pick->value() > 0) && c.value() < pick->value());
        if (better) pick = &c;
      }
      if (pick != nullptr) {
        pick->Hide();
      } else if (line.total.known()) {
        line.total.Hide();
      } else {
        continue;
      }
      changed = true;
    }
  }

  // What depends on a hidden count.
  const int64_t k = min_count;
  for (v1::Measures* m : all) {
    if (m->has_response_rate() && (!m->has_referred() || !m->has_feedback_received() ||
                                   !m->has_withdrawn() || !m->has_redirected())) {
      m->clear_response_rate();
      m->add_suppressed("response_rate");
    }
    const int64_t nf = m->days_to_feedback().n();
    if (!m->has_feedback_received() || (nf > 0 && nf < k)) {
      HideDays(*m, m->mutable_days_to_feedback(), "days_to_feedback");
    }
    const int64_t no = m->days_to_outcome().n();
    if (!m->has_closed_with_outcome() || (no > 0 && no < k)) {
      HideDays(*m, m->mutable_days_to_outcome(), "days_to_outcome");
    }
    const int64_t na = m->days_to_answer().n();
    if (!m->has_information_answered() || (na > 0 && na < k)) {
      HideDays(*m, m->mutable_days_to_answer(), "days_to_answer");
    }
    for (auto [days, name] : {std::pair{m->mutable_days_to_acknowledge(), "days_to_acknowledge"},
                              std::pair{m->mutable_days_to_decision(), "days_to_decision"}}) {
      if (days->n() > 0 && days->n() < k) HideDays(*m, days, name);
    }
    if (m->has_response_rate_due() && (!m->has_past_due() || !m->has_past_due_answered())) {
      m->clear_response_rate_due();
      m->add_suppressed("response_rate_due");
    }
    // The age of one referral points at that referral.
    for (const char* name : {"oldest_open_days", "oldest_unanswered_days"}) {
      const auto* field = v1::Measures::descriptor()->FindFieldByName(name);
      if (m->GetReflection()->HasField(*m, field)) {
        m->GetReflection()->ClearField(m, field);
        m->add_suppressed(name);
      }
    }
  }
}

}  // namespace sarloop::nca
