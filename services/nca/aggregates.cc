#include "services/nca/aggregates.h"

#include <algorithm>
#include <array>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
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
                                                                 "open_over_12_months"};

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

struct Acc {
  std::array<int64_t, kCountMeasures> counts{};
  std::array<int64_t, 32> outcomes{};
  std::vector<int32_t> feedback_days;
  std::vector<int32_t> outcome_days;
  std::vector<uint32_t> repeat_subjects;
};

// Median: the mean of the two middle values when n is even. p90: nearest rank.
void FillDays(std::vector<int32_t>& days, v1::DayStats* out) {
  const int64_t n = static_cast<int64_t>(days.size());
  out->set_n(n);
  if (n == 0) return;
  std::sort(days.begin(), days.end());
  out->set_median(n % 2 == 1 ? days[n / 2] : (days[n / 2 - 1] + days[n / 2]) / 2.0);
  const int64_t rank = (9 * n + 9) / 10;  // ceil(0.9 n)
  out->set_p90(days[rank - 1]);
}

void FillMeasures(Acc& acc, v1::Measures* m) {
  const auto* d = v1::Measures::descriptor();
  const auto* r = v1::Measures::GetReflection();
  for (int i = 0; i < kCountMeasures; ++i) {
    r->SetInt64(m, d->FindFieldByName(kCountNames[i]), acc.counts[i]);
  }
  std::sort(acc.repeat_subjects.begin(), acc.repeat_subjects.end());
  m->set_repeat_subjects(std::unique(acc.repeat_subjects.begin(), acc.repeat_subjects.end()) -
                         acc.repeat_subjects.begin());
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

uint32_t AggregateIndex::SubjectIndex(const std::string& ref) {
  auto [it, added] = subject_index_.emplace(ref, static_cast<uint32_t>(subject_referrals_.size()));
  if (added) subject_referrals_.push_back(0);
  return it->second;
}

void AggregateIndex::Upsert(const v1::RegisterEntry& e) {
  Fact f;
  f.org = OrgIndex(e.organisation());
  f.state = static_cast<uint8_t>(e.state());
  f.route = static_cast<uint8_t>(e.route());
  f.handed_over = !e.unit().empty();
  f.assistance_declined = e.assistance_declines() > 0;
  f.escalated = e.escalated();
  if (e.has_dispatched_at()) {
    const absl::Time t = FromProto(e.dispatched_at());
    f.dispatched_s = absl::ToUnixSeconds(t);
    f.fy = static_cast<int16_t>(FinancialYear(t));
    f.quarter = static_cast<uint8_t>(FinancialQuarter(t));
  }
  if (e.has_due_at()) f.due_s = e.due_at().seconds();
  if (e.has_feedback_at()) f.feedback_s = e.feedback_at().seconds();
  for (int role : e.subject_roles()) {
    if (role != v1::SUBJECT_ROLE_UNSPECIFIED) {
      f.role = static_cast<uint8_t>(role);
      break;
    }
  }
  if (HasOutcome(f.state)) {
    f.outcome = static_cast<uint8_t>(e.outcome().type());
    f.category = static_cast<uint8_t>(e.outcome().category());
    if (e.outcome().subject_role() != v1::SUBJECT_ROLE_UNSPECIFIED) {
      f.role = static_cast<uint8_t>(e.outcome().subject_role());
    }
  }
  std::set<std::string> refs(e.subject_refs().begin(), e.subject_refs().end());
  for (const std::string& ref : refs) f.subjects.push_back(SubjectIndex(ref));

  auto [it, added] = by_referral_.emplace(e.referral_id(), static_cast<uint32_t>(facts_.size()));
  if (added) {
    facts_.push_back(std::move(f));
  } else {
    for (uint32_t s : facts_[it->second].subjects) --subject_referrals_[s];
    facts_[it->second] = std::move(f);
  }
  for (uint32_t s : facts_[it->second].subjects) ++subject_referrals_[s];
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
  Allow orgs, regions, kinds, years, categories, roles, outcomes, routes, states;
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
    years.Add(static_cast<size_t>(y));
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
      default:
        return "";
    }
  };

  const int64_t now_s = absl::ToUnixSeconds(as_of);
  Acc total;
  std::vector<Acc> groups;
  std::vector<uint64_t> group_keys;
  std::unordered_map<uint64_t, uint32_t> slot_of;
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
    a.counts[kOpenOver12Months] +=
        open && f.dispatched_s > 0 && f.dispatched_s < now_s - 365 * kDay;
    if (outcome) a.outcomes[f.outcome % a.outcomes.size()]++;
    if (f.feedback_s > 0 && f.dispatched_s > 0 && f.feedback_s >= f.dispatched_s) {
      const auto days = static_cast<int32_t>((f.feedback_s - f.dispatched_s) / kDay);
      a.feedback_days.push_back(days);
      if (outcome) a.outcome_days.push_back(days);
    }
    for (uint32_t s : f.subjects) {
      if (subject_referrals_[s] >= 2) a.repeat_subjects.push_back(s);
    }
  };

  for (const Fact& f : facts_) {
    if (!org_passes[f.org] || !years.Passes(static_cast<size_t>(f.fy)) ||
        !categories.Passes(f.category) || !roles.Passes(f.role) || !outcomes.Passes(f.outcome) ||
        !routes.Passes(f.route) || !states.Passes(f.state)) {
      continue;
    }
    add(total, f);
    if (dims.empty()) continue;
    uint64_t key = 0;
    for (v1::Dimension d : dims) key = (key << 16) | (value_of(d, f) & 0xffff);
    auto [it, added] = slot_of.emplace(key, static_cast<uint32_t>(groups.size()));
    if (added) {
      groups.emplace_back();
      group_keys.push_back(key);
    }
    add(groups[it->second], f);
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
    FillMeasures(groups[g], group->mutable_measures());
  }
  FillMeasures(total, response.mutable_total());
  if (request.publication()) {
    response.set_publication(true);
    response.set_min_count(min_count);
    Suppress(response, min_count);
  }
  return response;
}

namespace {

// One published-or-suppressed count: an optional int64 field of a Measures or an OutcomeTally.
struct Cell {
  Message* msg;
  const FieldDescriptor* field;
  v1::Measures* owner;
  std::string name;

  bool known() const { return msg->GetReflection()->HasField(*msg, field); }
  int64_t value() const { return msg->GetReflection()->GetInt64(*msg, field); }
  void Hide() const {
    msg->GetReflection()->ClearField(msg, field);
    owner->add_suppressed(name);
  }
};

Cell MeasureCell(v1::Measures& m, const char* name) {
  return {&m, v1::Measures::descriptor()->FindFieldByName(name), &m, name};
}

std::vector<Cell> OutcomeCells(v1::Measures& m) {
  std::vector<Cell> cells;
  for (auto& tally : *m.mutable_outcomes()) {
    cells.push_back(
        {&tally, v1::OutcomeTally::descriptor()->FindFieldByName("count"), &m,
         absl::StrCat("outcomes.", Strip(v1::OutcomeType_Name(tally.type()), "OUTCOME_TYPE_"))});
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
  std::vector<v1::Measures*> all;
  for (auto& g : *response.mutable_groups()) all.push_back(g.mutable_measures());
  all.push_back(response.mutable_total());

  // Primary: every small count.
  for (v1::Measures* m : all) {
    std::vector<Cell> cells = OutcomeCells(*m);
    for (const char* name : kCountNames) cells.push_back(MeasureCell(*m, name));
    cells.push_back(MeasureCell(*m, "repeat_subjects"));
    for (const Cell& c : cells) {
      if (c.known() && c.value() > 0 && c.value() < min_count) c.Hide();
    }
  }

  std::vector<Line> lines;
  for (v1::Measures* m : all) {
    lines.push_back({MeasureCell(*m, "referred"),
                     {MeasureCell(*m, "feedback_received"), MeasureCell(*m, "withdrawn"),
                      MeasureCell(*m, "redirected"), MeasureCell(*m, "open")}});
    lines.push_back(
        {MeasureCell(*m, "feedback_received"),
         {MeasureCell(*m, "declined_by_force"), MeasureCell(*m, "closed_with_outcome")}});
    lines.push_back({MeasureCell(*m, "closed_with_outcome"), OutcomeCells(*m)});
  }
  v1::Measures& total = *response.mutable_total();
  if (response.groups_size() > 0) {
    for (const char* name : kCountNames) {
      Line line{MeasureCell(total, name), {}};
      for (auto& g : *response.mutable_groups()) {
        line.parts.push_back(MeasureCell(*g.mutable_measures(), name));
      }
      lines.push_back(std::move(line));
    }
    for (const Cell& t : OutcomeCells(total)) {
      Line line{t, {}};
      const auto type = static_cast<v1::OutcomeTally*>(t.msg)->type();
      for (auto& g : *response.mutable_groups()) {
        for (const Cell& c : OutcomeCells(*g.mutable_measures())) {
          if (static_cast<v1::OutcomeTally*>(c.msg)->type() == type) line.parts.push_back(c);
        }
      }
      lines.push_back(std::move(line));
    }
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
  }
}

}  // namespace sarloop::nca
