#include "services/nca/aggregates.h"

#include <algorithm>
#include <array>
#include <bit>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/clocks.h"

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

constexpr bool HasOutcome(int state) {
  return state == v1::REFERRAL_STATE_CLOSED_BY_FORCE ||
         state == v1::REFERRAL_STATE_OUTCOME_RECORDED;
}
constexpr bool IsOpen(int state) {
  return state != v1::REFERRAL_STATE_DECLINED_BY_FORCE && !HasOutcome(state) &&
         state != v1::REFERRAL_STATE_WITHDRAWN && state != v1::REFERRAL_STATE_REDIRECTED;
}

std::string Strip(const std::string& name, absl::string_view prefix) {
  return name.substr(std::min(name.size(), prefix.size()));
}

// Values a group collects one per referral (days from dispatch to a step; subjects and joint cases
// to count distinct) are not kept per group: a scan appends (group << 32 | value) to one column per
// kind, and the finish scatters each column by group into one flat array (Columns). Per-group
// vectors grew, were copied when merged and freed on every query: a third of a grouped query's
// time.
enum Column {
  kFeedbackDays,
  kOutcomeDays,
  kAnswerDays,
  kAcknowledgeDays,
  kDecisionDays,
  kDayColumns,
  kRepeatSubjects = kDayColumns,
  kSubjects,
  kJointCases,
  kColumns
};
using ColumnSet = std::array<std::vector<uint64_t>, kColumns>;

// Exact order statistics of a group's days in time linear in its size: counted into `scratch`
// (all zero on entry and on return) over the span the days cover when that span is within a few
// times their number, else sorted (a few values far apart, or days past kHistogramDays from bad
// clocks).
constexpr int32_t kHistogramDays = 40000;
class DayQuantiles {
 public:
  // Sorts [begin, end) in place when it does not count them.
  DayQuantiles(uint32_t* begin, uint32_t* end, std::vector<int32_t>& scratch)
      : values_(begin), scratch_(scratch) {
    const auto [lo, hi] = std::minmax_element(begin, end);
    low_ = static_cast<int32_t>(std::min<uint32_t>(*lo, kHistogramDays));
    high_ = static_cast<int32_t>(std::min<uint32_t>(*hi, kHistogramDays));
    const int64_t span = static_cast<int64_t>(high_) - low_;
    counted_ = *hi < static_cast<uint32_t>(kHistogramDays) && span <= 8 * (end - begin) + 64;
    if (!counted_) {
      std::sort(begin, end);
      return;
    }
    for (const uint32_t* d = begin; d != end; ++d) ++scratch_[*d - low_];
    day_ = low_;
  }
  ~DayQuantiles() {
    if (counted_) std::fill(scratch_.begin(), scratch_.begin() + (high_ - low_) + 1, 0);
  }
  // The k-th smallest (0-based); calls must come in increasing k.
  int32_t Kth(int64_t k) {
    if (!counted_) return static_cast<int32_t>(values_[k]);
    while (below_ + scratch_[day_ - low_] <= k) below_ += scratch_[day_++ - low_];
    return day_;
  }

 private:
  uint32_t* values_;
  std::vector<int32_t>& scratch_;
  bool counted_ = false;
  int32_t low_ = 0;
  int32_t high_ = 0;
  int32_t day_ = 0;    // the walk's position
  int64_t below_ = 0;  // values below day_
};

struct Acc {
  std::array<int64_t, kCountMeasures> counts{};
  std::array<int64_t, 32> outcomes{};
  static constexpr uint32_t kNever = UINT32_MAX;
  uint32_t oldest_open_s = kNever;        // earliest dispatch of an open referral
  uint32_t oldest_unanswered_s = kNever;  // of an open one past due without a first decision
  // With count_distinct: referrals that are cases of their own.
  int64_t solo_cases = 0;
  // Taken from the columns at the finish.
  std::array<v1::DayStats, kDayColumns> days;
  int64_t distinct_repeat_subjects = 0;
  int64_t cases = -1;  // -1: not counted
  int64_t distinct_subjects = 0;
};

// The counts a referral's profile (AggregateIndex::ProfileOf) adds, `n` times.
void AddProfile(uint64_t profile, int64_t n, Acc& a) {
  for (uint32_t mask = static_cast<uint32_t>(profile >> 8); mask != 0; mask &= mask - 1) {
    a.counts[std::countr_zero(mask)] += n;
  }
  if (const uint8_t outcome = profile & 0xff; outcome != 0) a.outcomes[outcome - 1] += n;
}

// Everything but what the columns give.
void Merge(const Acc& from, Acc& into) {
  for (size_t i = 0; i < from.counts.size(); ++i) into.counts[i] += from.counts[i];
  for (size_t i = 0; i < from.outcomes.size(); ++i) into.outcomes[i] += from.outcomes[i];
  into.oldest_open_s = std::min(into.oldest_open_s, from.oldest_open_s);
  into.oldest_unanswered_s = std::min(into.oldest_unanswered_s, from.oldest_unanswered_s);
  into.solo_cases += from.solo_cases;
}

// Median: the mean of the two middle values when n is even. p90: nearest rank.
// Days from a histogram (`hist`: its count, then a cell per day from 0; null for none) and from
// [begin, end), every one of which lies past the histogram's days.
void FillDays(const uint32_t* hist, uint32_t* begin, uint32_t* end, std::vector<int32_t>& scratch,
              v1::DayStats* out) {
  const int64_t in_hist = hist == nullptr ? 0 : hist[0];
  const int64_t n = in_hist + (end - begin);
  out->set_n(n);
  if (n == 0) return;
  std::optional<DayQuantiles> rest;
  if (begin != end) rest.emplace(begin, end, scratch);
  int32_t day = 0;
  int64_t below = 0;  // histogram days below `day`
  auto kth = [&](int64_t k) -> int32_t {
    if (k >= in_hist) return rest->Kth(k - in_hist);
    while (below + hist[1 + day] <= k) below += hist[1 + day++];
    return day;
  };
  const int32_t p25 = kth((n + 3) / 4 - 1);  // ceil(0.25 n)
  const int32_t low = kth(n % 2 == 1 ? n / 2 : n / 2 - 1);
  const int32_t high = n % 2 == 1 ? low : kth(n / 2);
  const int32_t p75 = kth((3 * n + 3) / 4 - 1);   // ceil(0.75 n)
  const int32_t p90 = kth((9 * n + 9) / 10 - 1);  // ceil(0.9 n)
  out->set_median(n % 2 == 1 ? low : (low + high) / 2.0);
  out->set_p25(p25);
  out->set_p75(p75);
  out->set_p90(p90);
}

// Distinct values of [begin, end), with `bits` (all zero on entry and on return) one per value.
int64_t CountDistinct(const uint32_t* begin, const uint32_t* end, std::vector<uint64_t>& bits) {
  int64_t n = 0;
  for (const uint32_t* s = begin; s != end; ++s) {
    uint64_t& word = bits[*s / 64];
    const uint64_t bit = uint64_t{1} << (*s % 64);
    n += (word & bit) == 0;
    word |= bit;
  }
  for (const uint32_t* s = begin; s != end; ++s) bits[*s / 64] = 0;
  return n;
}

void FillMeasures(const Acc& acc, v1::Measures* m, int64_t now_s) {
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
  *m->mutable_days_to_feedback() = acc.days[kFeedbackDays];
  *m->mutable_days_to_outcome() = acc.days[kOutcomeDays];
  *m->mutable_days_to_answer() = acc.days[kAnswerDays];
  *m->mutable_days_to_acknowledge() = acc.days[kAcknowledgeDays];
  *m->mutable_days_to_decision() = acc.days[kDecisionDays];
  if (acc.counts[kPastDue] > 0) {
    m->set_response_rate_due(static_cast<double>(acc.counts[kPastDueAnswered]) /
                             acc.counts[kPastDue]);
  }
  auto age = [&](uint32_t since) {
    return since == Acc::kNever ? 0 : std::max<int64_t>(0, (now_s - since) / kDay);
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

// A query's columns, kept between queries (up to two sets) so that a scan of a million referrals
// appends to memory already mapped instead of faulting in fresh pages every time.
struct AggregateIndex::ScanBuffers {
  std::array<ColumnSet, 2> cols;
  std::array<std::vector<uint32_t>, 2> hist;
  std::vector<uint32_t> flat;
};

AggregateIndex::Buffers::Buffers(const AggregateIndex& index) : index_(index) {
  MutexLock lock(&index_.pool_mu_);
  if (index_.pool_.empty()) {
    buffers_ = std::make_unique<ScanBuffers>();
  } else {
    buffers_ = std::move(index_.pool_.back());
    index_.pool_.pop_back();
  }
  for (ColumnSet& set : buffers_->cols) {
    for (auto& column : set) column.clear();
  }
  for (auto& hist : buffers_->hist) hist.clear();
}

AggregateIndex::Buffers::~Buffers() {
  MutexLock lock(&index_.pool_mu_);
  if (index_.pool_.size() < 2) index_.pool_.push_back(std::move(buffers_));
}

AggregateIndex::AggregateIndex(const ReferenceData& reference) : reference_(reference) {}
AggregateIndex::~AggregateIndex() = default;

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
  if (added) {
    subject_referrals_.push_back(0);
    if (subject_referrals_.size() > repeat_bits_.size() * 64) repeat_bits_.push_back(0);
  }
  return it->second;
}

void AggregateIndex::CountSubject(uint32_t s, int delta) {
  subject_referrals_[s] += delta;
  const uint64_t bit = uint64_t{1} << (s % 64);
  if (subject_referrals_[s] >= 2) {
    repeat_bits_[s / 64] |= bit;
  } else {
    repeat_bits_[s / 64] &= ~bit;
  }
}

namespace {

// Values this build does not know count as UNSPECIFIED, so every dimension stays small.
uint8_t Known(int v, bool (*valid)(int)) { return static_cast<uint8_t>(valid(v) ? v : 0); }

uint32_t Instant(int64_t seconds) {
  return static_cast<uint32_t>(std::clamp<int64_t>(seconds, 0, UINT32_MAX));
}

}  // namespace

void AggregateIndex::Upsert(const v1::RegisterEntry& e) {
  Fact f;
  f.org = OrgIndex(e.organisation());
  f.unit = UnitIndex(e.unit());
  if (!e.case_id().empty()) {
    f.case_index = case_index_.emplace(e.case_id(), static_cast<uint32_t>(case_index_.size()) + 1)
                       .first->second;
  }
  ReadDimensions(e, f);
  ReadTimes(e, f);
  f.profile = ProfileOf(f);
  Widen(f);
  AttachSubjects(e, f);
  Place(e.referral_id(), f);
}

void AggregateIndex::ReadDimensions(const v1::RegisterEntry& e, Fact& f) {
  f.state = Known(e.state(), v1::ReferralState_IsValid);
  f.route = Known(e.route(), v1::ReferralRoute_IsValid);
  auto flag = [&f](bool on, Fact::Flag bit) {
    if (on) f.flags |= bit;
  };
  flag(!e.unit().empty(), Fact::kHandedOver);
  flag(e.assistance_declines() > 0, Fact::kAssistanceDeclined);
  flag(e.escalated(), Fact::kEscalated);
  flag(e.reminders() > 0, Fact::kReminded);
  flag(e.daml(), Fact::kDaml);
  flag(e.recorded_on_behalf(), Fact::kRecordedOnBehalf);
  flag(e.referred_to_iopc(), Fact::kReferredToIopc);
  flag(e.has_decided_at() && e.decided_at().seconds() > 0, Fact::kDecided);
  f.thr = std::max({Known(e.thr().threat(), v1::ThrLevel_IsValid),
                    Known(e.thr().risk(), v1::ThrLevel_IsValid),
                    Known(e.thr().harm(), v1::ThrLevel_IsValid)});
  for (int role : e.subject_roles()) {
    if (role != v1::SUBJECT_ROLE_UNSPECIFIED) {
      f.role = Known(role, v1::SubjectRole_IsValid);
      break;
    }
  }
  if (HasOutcome(f.state)) {
    f.outcome = Known(e.outcome().type(), v1::OutcomeType_IsValid);
    f.category = Known(e.outcome().category(), v1::CorruptionCategory_IsValid);
    if (e.outcome().subject_role() != v1::SUBJECT_ROLE_UNSPECIFIED) {
      f.role = Known(e.outcome().subject_role(), v1::SubjectRole_IsValid);
    }
  }
  for (const v1::Outcome& t : e.tracks()) {
    if (t.track() < v1::OUTCOME_TRACK_CRIMINAL || t.track() > v1::OUTCOME_TRACK_STAFF) continue;
    f.track[t.track() - 1] = Known(t.type(), v1::OutcomeType_IsValid);
    if (t.track() == v1::OUTCOME_TRACK_CONDUCT) {
      f.finding = Known(t.finding(), v1::ConductFinding_IsValid);
      f.action = Known(t.misconduct_result(), v1::MisconductResult_IsValid);
    }
  }
  f.priority = Known(e.priority(), v1::Priority_IsValid);
  f.decline_reason = e.state() == v1::REFERRAL_STATE_DECLINED_BY_FORCE
                         ? Known(e.decline_reason(), v1::DeclineReason_IsValid)
                         : 0;
  f.information_requests = static_cast<uint16_t>(std::clamp(e.information_requests(), 0, 65535));
  f.information_answered = static_cast<uint16_t>(std::clamp(e.information_answered(), 0, 65535));
}

void AggregateIndex::ReadTimes(const v1::RegisterEntry& e, Fact& f) {
  int64_t dispatched_s = 0;
  if (e.information_answered() > 0) {
    f.answer_days = static_cast<uint32_t>(std::clamp<int64_t>(
        e.information_reply_seconds() / e.information_answered() / 86400, 0, Fact::kNoDays - 1));
  }
  if (e.has_dispatched_at()) {
    const absl::Time t = FromProto(e.dispatched_at());
    dispatched_s = absl::ToUnixSeconds(t);
    f.dispatched_s = Instant(dispatched_s);
    f.fy = static_cast<int16_t>(std::clamp(FinancialYear(t), 1900, 9999));
    f.quarter = static_cast<uint8_t>(FinancialQuarter(t));
    // Regulation 19's first report: 12 months after receipt (clocks.h), one definition.
    f.reg19_s = Instant(absl::ToUnixSeconds(Reg19DueAt(e, 1)));
  }
  // Overdue against the running clock (clocks.h); entries folded before staged clocks keep the
  // dispatch's due date.
  if (e.has_next_due_at()) {
    f.due_s = Instant(e.next_due_at().seconds());
  } else if (e.has_due_at() && !e.has_received_at() && !e.has_decision_paused_since()) {
    f.due_s = Instant(e.due_at().seconds());
  }
  if (e.has_due_at()) f.decision_due_s = Instant(e.due_at().seconds());
  // Days from dispatch to a step, when both are known and in order.
  auto days_to = [dispatched_s](bool has, int64_t at) {
    if (!has || dispatched_s <= 0 || at <= 0 || at < dispatched_s) return Fact::kNoDays;
    return static_cast<uint32_t>(std::min<int64_t>((at - dispatched_s) / 86400, Fact::kNoDays - 1));
  };
  f.feedback_days = days_to(e.has_feedback_at(), e.feedback_at().seconds());
  f.acknowledge_days = days_to(e.has_acknowledged_at(), e.acknowledged_at().seconds());
  f.decision_days = days_to(e.has_decided_at(), e.decided_at().seconds());
}

void AggregateIndex::Widen(const Fact& f) {
  if (f.fy != 0) {
    min_fy_ = min_fy_ == 0 ? f.fy : std::min<int>(min_fy_, f.fy);
    max_fy_ = std::max<int>(max_fy_, f.fy);
  }
  const uint32_t days[] = {f.feedback_days, f.feedback_days, f.answer_days, f.acknowledge_days,
                           f.decision_days};
  for (int c = 0; c < kDayColumns; ++c) {
    if (days[c] != Fact::kNoDays) max_days_[c] = std::max(max_days_[c], days[c]);
  }
}

void AggregateIndex::AttachSubjects(const v1::RegisterEntry& e, Fact& f) {
  std::set<std::string> refs(e.subject_refs().begin(), e.subject_refs().end());
  f.subjects_at = static_cast<uint32_t>(subject_pool_.size());
  f.subject_count = static_cast<uint32_t>(refs.size());
  for (const std::string& ref : refs) {
    const uint32_t s = SubjectIndex(ref);
    subject_pool_.push_back(s);
    CountSubject(s, 1);
  }
  live_subjects_ += refs.size();
}

void AggregateIndex::Place(const std::string& referral_id, const Fact& f) {
  auto it = by_referral_.find(referral_id);
  if (it == by_referral_.end()) {
    by_referral_.emplace(referral_id, static_cast<uint32_t>(position_.size()));
    position_.push_back(static_cast<uint32_t>(facts_.size()));
    id_of_.push_back(static_cast<uint32_t>(position_.size() - 1));
    facts_.push_back(f);
  } else {
    Fact& old = facts_[position_[it->second]];
    for (uint32_t i = 0; i < old.subject_count; ++i) {
      CountSubject(subject_pool_[old.subjects_at + i], -1);
    }
    live_subjects_ -= old.subject_count;
    old = f;
  }
  if (subject_pool_.size() > 2 * live_subjects_ + 4096) CompactSubjects();
}

uint16_t AggregateIndex::ProfileOf(const Fact& f) {
  const bool outcome = HasOutcome(f.state);
  uint32_t mask = 0;
  auto count = [&mask](Count c, bool on) {
    if (on) mask |= 1u << c;
  };
  count(kReferred, true);
  count(kFeedback, f.state == v1::REFERRAL_STATE_DECLINED_BY_FORCE || outcome);
  count(kDeclined, f.state == v1::REFERRAL_STATE_DECLINED_BY_FORCE);
  count(kClosedWithOutcome, outcome);
  count(kWithdrawn, f.state == v1::REFERRAL_STATE_WITHDRAWN);
  count(kRedirected, f.state == v1::REFERRAL_STATE_REDIRECTED);
  count(kOpen, IsOpen(f.state));
  count(kHandedOver, f.flags & Fact::kHandedOver);
  count(kAssistanceDeclined, f.flags & Fact::kAssistanceDeclined);
  count(kEscalated, f.flags & Fact::kEscalated);
  count(kReminded, f.flags & Fact::kReminded);
  count(kDaml, f.flags & Fact::kDaml);
  count(kRecordedOnBehalf, f.flags & Fact::kRecordedOnBehalf);
  count(kReferredToIopc, f.flags & Fact::kReferredToIopc);
  // The outcome's slot in Acc::outcomes, plus one (0: none).
  const uint64_t key = uint64_t{mask} << 8 | (outcome ? f.outcome % 32 + 1 : 0);
  auto [it, added] = profile_index_.emplace(key, static_cast<uint16_t>(profiles_.size()));
  if (added) profiles_.push_back(key);
  return it->second;
}

void AggregateIndex::Cluster() {
  const size_t n = facts_.size();
  if (n - clustered_ <= std::max<size_t>(n / 8, 1024)) return;
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
    return std::tie(facts_[a].org, facts_[a].fy) < std::tie(facts_[b].org, facts_[b].fy);
  });
  std::vector<Fact> facts(n);
  std::vector<uint32_t> ids(n);
  for (size_t k = 0; k < n; ++k) {
    facts[k] = facts_[order[k]];
    ids[k] = id_of_[order[k]];
    position_[ids[k]] = static_cast<uint32_t>(k);
  }
  facts_ = std::move(facts);
  id_of_ = std::move(ids);
  clustered_ = n;
  CompactSubjects();  // the subjects in the new order, so a scan reads them in sequence too
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

namespace {

// The dimensions whose values are a protobuf enum's. A value's name is the enum's without its
// prefix, or "NONE" for 0 where 0 says the referral has none; the dense index's size is the enum's
// largest number plus one. Organisation, region, unit and the financial year and quarter are
// named and sized from the index itself (AggregateIndex::Plan).
struct EnumDimension {
  v1::Dimension dimension;
  const google::protobuf::EnumDescriptor* (*descriptor)();
  const char* prefix;
  bool zero_is_none;
};
constexpr EnumDimension kEnumDimensions[] = {
    {v1::DIMENSION_ORGANISATION_KIND, v1::OrganisationKind_descriptor, "ORGANISATION_KIND_", false},
    {v1::DIMENSION_CATEGORY, v1::CorruptionCategory_descriptor, "CORRUPTION_CATEGORY_", false},
    {v1::DIMENSION_SUBJECT_ROLE, v1::SubjectRole_descriptor, "SUBJECT_ROLE_", false},
    {v1::DIMENSION_OUTCOME_TYPE, v1::OutcomeType_descriptor, "OUTCOME_TYPE_", false},
    {v1::DIMENSION_ROUTE, v1::ReferralRoute_descriptor, "REFERRAL_ROUTE_", false},
    {v1::DIMENSION_STATE, v1::ReferralState_descriptor, "REFERRAL_STATE_", false},
    {v1::DIMENSION_CRIMINAL_TRACK, v1::OutcomeType_descriptor, "OUTCOME_TYPE_", true},
    {v1::DIMENSION_CONDUCT_TRACK, v1::OutcomeType_descriptor, "OUTCOME_TYPE_", true},
    {v1::DIMENSION_VETTING_TRACK, v1::OutcomeType_descriptor, "OUTCOME_TYPE_", true},
    {v1::DIMENSION_LISTING_TRACK, v1::OutcomeType_descriptor, "OUTCOME_TYPE_", true},
    {v1::DIMENSION_STAFF_TRACK, v1::OutcomeType_descriptor, "OUTCOME_TYPE_", true},
    {v1::DIMENSION_CONDUCT_FINDING, v1::ConductFinding_descriptor, "CONDUCT_FINDING_", true},
    {v1::DIMENSION_CONDUCT_ACTION, v1::MisconductResult_descriptor, "MISCONDUCT_RESULT_", true},
    {v1::DIMENSION_PRIORITY, v1::Priority_descriptor, "PRIORITY_", true},
    {v1::DIMENSION_DECLINE_REASON, v1::DeclineReason_descriptor, "DECLINE_REASON_", true},
    {v1::DIMENSION_THR, v1::ThrLevel_descriptor, "THR_LEVEL_", true},
};

const EnumDimension* FindEnumDimension(v1::Dimension d) {
  for (const EnumDimension& e : kEnumDimensions) {
    if (e.dimension == d) return &e;
  }
  return nullptr;
}

uint64_t EnumSize(const EnumDimension& e) {
  const google::protobuf::EnumDescriptor* descriptor = e.descriptor();
  int max = 0;
  for (int i = 0; i < descriptor->value_count(); ++i) {
    max = std::max(max, descriptor->value(i)->number());
  }
  return static_cast<uint64_t>(max) + 1;
}

std::string EnumName(const EnumDimension& e, uint64_t v) {
  if (v == 0 && e.zero_is_none) return "NONE";
  const google::protobuf::EnumValueDescriptor* value =
      e.descriptor()->FindValueByNumber(static_cast<int>(v));
  return value == nullptr ? "" : Strip(value->name(), e.prefix);
}

absl::StatusOr<std::vector<v1::Dimension>> CompileDimensions(
    const v1::GetAggregatesRequest& request) {
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
  return dims;
}

// What a referral's state says, by table: the scan reads one byte instead of running chains of
// comparisons whose outcome differs from one referral to the next.
enum StateBit : uint8_t { kIsOpen = 1, kHasOutcome = 2, kAsked = 4 };
constexpr std::array<uint8_t, 256> StateBits() {
  std::array<uint8_t, 256> bits{};
  for (int st = 0; st < 256; ++st) {
    bits[st] =
        (IsOpen(st) ? kIsOpen : 0) | (HasOutcome(st) ? kHasOutcome : 0) |
        (st != v1::REFERRAL_STATE_WITHDRAWN && st != v1::REFERRAL_STATE_REDIRECTED ? kAsked : 0);
  }
  return bits;
}

}  // namespace

// A request compiled against the index: its dimensions, what passes its filter, and the values,
// dense indexes and names of each dimension.
struct AggregateIndex::Plan {
  static absl::StatusOr<Plan> Compile(const AggregateIndex& index,
                                      const v1::GetAggregatesRequest& request, absl::Time as_of);

  // Read for every referral: inlined (GCC called it, and the call cost dense scans 5-9%).
  __attribute__((always_inline)) bool Passes(const Fact& f) const {
    return org_passes[f.org] && years.Passes(static_cast<size_t>(f.fy)) &&
           categories.Passes(f.category) && roles.Passes(f.role) && outcomes.Passes(f.outcome) &&
           routes.Passes(f.route) && states.Passes(f.state) && priorities.Passes(f.priority) &&
           units.Passes(f.unit) && decline_reasons.Passes(f.decline_reason) &&
           thr_levels.Passes(f.thr);
  }

  // A referral's value on a dimension: what a group's key holds (16 bits of it).
  uint64_t Value(v1::Dimension d, const Fact& f) const {
    switch (d) {
      case v1::DIMENSION_ORGANISATION:
        return f.org;
      case v1::DIMENSION_REGION:
        return org_region[f.org];
      case v1::DIMENSION_ORGANISATION_KIND:
        return static_cast<uint64_t>(index->orgs_[f.org].kind);
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
  }

  // The packed key of a referral's group: 16 bits per dimension, the first dimension highest.
  uint64_t Key(const Fact& f) const {
    uint64_t key = 0;
    for (v1::Dimension d : dims) key = (key << 16) | (Value(d, f) & 0xffff);
    return key;
  }

  // A referral's number among a dimension's values, below DenseSize(d): a group's slot is a
  // mixed-radix index of these when the dimensions' sizes allow (no hashing per referral).
  uint64_t DenseValue(v1::Dimension d, const Fact& f) const {
    switch (d) {
      case v1::DIMENSION_FINANCIAL_YEAR:
        return f.fy == 0 ? 0 : static_cast<uint64_t>(f.fy - index->min_fy_) + 1;
      case v1::DIMENSION_FINANCIAL_QUARTER:
        return f.fy == 0 ? 0 : static_cast<uint64_t>(f.fy - index->min_fy_) * 4 + f.quarter + 1;
      default:
        return Value(d, f);
    }
  }

  uint64_t DenseSize(v1::Dimension d) const {
    const int years = index->max_fy_ >= index->min_fy_ && index->min_fy_ > 0
                          ? index->max_fy_ - index->min_fy_ + 1
                          : 1;
    switch (d) {
      case v1::DIMENSION_ORGANISATION:
        return std::max<size_t>(index->orgs_.size(), 1);
      case v1::DIMENSION_REGION:
        return std::max<size_t>(region_names.size(), 1);
      case v1::DIMENSION_FINANCIAL_YEAR:
        return static_cast<uint64_t>(years) + 1;
      case v1::DIMENSION_FINANCIAL_QUARTER:
        return static_cast<uint64_t>(years) * 4 + 1;
      case v1::DIMENSION_UNIT:
        return std::max<size_t>(index->units_.size(), 1);
      default: {
        const EnumDimension* e = FindEnumDimension(d);
        return e == nullptr ? 1 : EnumSize(*e);
      }
    }
  }

  // What the answer calls a dimension's value.
  std::string Name(v1::Dimension d, uint64_t v) const {
    switch (d) {
      case v1::DIMENSION_ORGANISATION:
        return index->orgs_[v].code;
      case v1::DIMENSION_REGION:
        return region_names[v];
      case v1::DIMENSION_FINANCIAL_YEAR:
        return v == 0 ? "UNKNOWN" : FinancialYearName(static_cast<int>(v));
      case v1::DIMENSION_FINANCIAL_QUARTER:
        return v == 0 ? "UNKNOWN"
                      : absl::StrCat(FinancialYearName(static_cast<int>(v / 4)), " Q", v % 4 + 1);
      case v1::DIMENSION_UNIT:
        return v == 0 || v >= index->units_.size() ? "NONE" : index->units_[v];
      default: {
        const EnumDimension* e = FindEnumDimension(d);
        return e == nullptr ? "" : EnumName(*e, v);
      }
    }
  }

  const AggregateIndex* index = nullptr;
  std::vector<v1::Dimension> dims;
  int64_t now_s = 0;
  bool count_distinct = false;
  // Per organisation: whether it passes the organisation, region and kind filters, and its
  // region's number in region_names.
  std::vector<bool> org_passes;
  std::vector<uint16_t> org_region;
  std::vector<std::string> region_names;
  Allow years, categories, roles, outcomes, routes, states, priorities, units, decline_reasons,
      thr_levels;

 private:
  absl::Status CompileOrganisations(const v1::AggregateFilter& filter);
  absl::Status CompileValues(const v1::AggregateFilter& filter);
};

absl::StatusOr<AggregateIndex::Plan> AggregateIndex::Plan::Compile(
    const AggregateIndex& index, const v1::GetAggregatesRequest& request, absl::Time as_of) {
  Plan plan;
  plan.index = &index;
  ASSIGN_OR_RETURN(plan.dims, CompileDimensions(request));
  plan.now_s = absl::ToUnixSeconds(as_of);
  plan.count_distinct = request.count_distinct();
  RETURN_IF_ERROR(plan.CompileOrganisations(request.filter()));
  RETURN_IF_ERROR(plan.CompileValues(request.filter()));
  return plan;
}

// The filters on organisations, their regions and kinds, worked out once per organisation.
absl::Status AggregateIndex::Plan::CompileOrganisations(const v1::AggregateFilter& filter) {
  Allow orgs, kinds;
  if (filter.organisations_size() > kMaxFilterValues) {
    return FieldError("filter.organisations", "at most 100 values");
  }
  for (int i = 0; i < filter.organisations_size(); ++i) {
    const std::string& code = filter.organisations(i);
    if (index->reference_.FindOrganisation(code) == nullptr && index->org_index_.count(code) == 0) {
      return FieldError(absl::StrCat("filter.organisations[", i, "]"),
                        absl::StrCat("unknown organisation \"", code.substr(0, 20), "\""));
    }
    auto it = index->org_index_.find(code);
    if (it != index->org_index_.end()) orgs.Add(it->second);
  }
  const bool no_org_known = filter.organisations_size() > 0 && orgs.all();
  if (filter.regions_size() > kMaxFilterValues) {
    return FieldError("filter.regions", "at most 100 values");
  }
  std::set<std::string> region_codes;
  for (int i = 0; i < filter.regions_size(); ++i) {
    if (index->reference_.FindRegion(filter.regions(i)) == nullptr) {
      return FieldError(absl::StrCat("filter.regions[", i, "]"),
                        absl::StrCat("unknown region \"", filter.regions(i).substr(0, 30), "\""));
    }
    region_codes.insert(filter.regions(i));
  }
  RETURN_IF_ERROR(AllowEnum(filter.organisation_kinds(), "filter.organisation_kinds",
                            v1::OrganisationKind_IsValid, kinds));
  const std::vector<Org>& all = index->orgs_;
  org_region.resize(all.size());
  org_passes.assign(all.size(), true);
  for (size_t i = 0; i < all.size(); ++i) {
    auto it = std::find(region_names.begin(), region_names.end(), all[i].region);
    org_region[i] = static_cast<uint16_t>(it - region_names.begin());
    if (it == region_names.end()) region_names.push_back(all[i].region);
    org_passes[i] = (!no_org_known && orgs.Passes(i)) &&
                    (region_codes.empty() || region_codes.count(all[i].region) > 0) &&
                    kinds.Passes(static_cast<size_t>(all[i].kind));
  }
  return absl::OkStatus();
}

// The filters on a referral's own values.
absl::Status AggregateIndex::Plan::CompileValues(const v1::AggregateFilter& filter) {
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
  if (filter.units_size() > kMaxFilterValues) {
    return FieldError("filter.units", "at most 100 values");
  }
  for (int i = 0; i < filter.units_size(); ++i) {
    const std::string& code = filter.units(i);
    if (!index->reference_.IsUnit(code)) {
      return FieldError(absl::StrCat("filter.units[", i, "]"),
                        absl::StrCat("unknown unit \"", code.substr(0, 20), "\""));
    }
    auto it = index->unit_index_.find(code);
    // A unit no referral was handed to matches nothing (index 0 is "none", never listed here).
    units.Add(it == index->unit_index_.end() ? index->units_.size() : it->second);
  }
  return absl::OkStatus();
}

// One query's work after its plan: the scan (in two halves on two threads when the register is big
// enough for it to pay), the halves merged, each group's days and distinct counts measured, and
// the answer.
class AggregateIndex::Run {
 public:
  Run(const AggregateIndex& index, const Plan& plan);
  void Scan();
  void MergeHalves();
  void Measure();
  v1::GetAggregatesResponse Answer(absl::Time as_of) const;

 private:
  // A scan's part: its own groups, histograms and columns, so two threads share nothing while they
  // run. Without dimensions everything falls in one group, key 0.
  struct Part {
    std::vector<Acc> groups;
    std::vector<uint64_t> keys;
    ColumnSet* cols = nullptr;
    std::vector<uint32_t>* hist = nullptr;  // groups x row
  };
  // A group's row of cells: one per profile, then for each day column its count and a cell per
  // day up to its span, then `nowhere`, where absent days are counted and never read.
  struct Layout {
    std::array<uint32_t, kDayColumns> span{};
    std::array<uint32_t, kDayColumns> base{};
    uint32_t row = 0;
    uint32_t nowhere = 0;
  };

  template <bool kDense>
  void ScanRange(size_t begin, size_t end, Part& part) const;
  template <bool kDense>
  void Add(const Layout& layout, Acc& a, uint64_t slot, const Fact& f, Part& part) const;
  void MeasureColumn(int c, std::vector<int32_t>& day_scratch, std::vector<uint64_t>& subject_bits,
                     std::vector<uint64_t>& case_bits);

  static constexpr std::array<uint8_t, 256> kStateBits = StateBits();
  const AggregateIndex& index_;
  const Plan& plan_;
  Layout layout_;
  // The groups' dense slots (dense_cells_ of them, with dense_days_), and whether days go to the
  // groups' histograms (when the dense slots and every group's row fit the memory budget) or to
  // the columns.
  uint64_t dense_cells_ = 1;
  bool dense_days_ = false;
  std::vector<uint64_t> dim_sizes_;  // worked out once, not per referral
  Buffers buffers_;
  Part first_, second_;
  std::vector<uint32_t> remap_;  // the second half's groups in the first's numbering
  std::vector<uint32_t> total_hist_;
  Acc total_;
};

AggregateIndex::Run::Run(const AggregateIndex& index, const Plan& plan)
    : index_(index), plan_(plan), buffers_(index) {
  // Days go to the group's histograms (a count, then one cell per day) when they fit, else to
  // the columns, as do days past a histogram's width.
  constexpr uint32_t kDenseDays = 4096;
  uint32_t row = static_cast<uint32_t>(index_.profiles_.size());  // a row: profiles, then days
  for (int c = 0; c < kDayColumns; ++c) {
    layout_.span[c] = std::min(index_.max_days_[c] + 1, kDenseDays);
    layout_.base[c] = row;
    row += layout_.span[c] + 1;
  }
  layout_.nowhere = row++;
  layout_.row = row;
  for (v1::Dimension d : plan_.dims) {
    dense_cells_ = std::min<uint64_t>(dense_cells_ * plan_.DenseSize(d), 1 << 23);
    dim_sizes_.push_back(plan_.DenseSize(d));
  }
  const bool dense = dense_cells_ <= (1 << 22);
  dense_days_ = dense && dense_cells_ * row <= (uint64_t{8} << 20);
  first_.cols = &buffers_->cols[0];
  second_.cols = &buffers_->cols[1];
  first_.hist = &buffers_->hist[0];
  second_.hist = &buffers_->hist[1];
}

// A referral's part of its group, without a branch on a step not yet taken, the state or a
// deadline passed: these differ from one referral to the next, and in a scan of a million the
// mispredicted branches cost more than the arithmetic (10-15% of a query, measured). `kDense`
// says whether days go to the group's histograms or to the columns. The subjects keep their
// branch: writing each and keeping only the repeats was 1.5 times slower.
template <bool kDense>
void AggregateIndex::Run::Add(const Layout& layout, Acc& a, uint64_t slot, const Fact& f,
                              Part& part) const {
  ColumnSet& cols = *part.cols;
  const uint64_t tag = slot << 32;
  uint32_t* h = kDense ? part.hist->data() + slot * layout.row : nullptr;
  // Inlined at each of its five uses: left to itself, GCC calls it.
  auto put = [&](Column c, uint32_t days) __attribute__((always_inline)) {
    if constexpr (kDense) {
      const bool in = days < layout.span[c];
      h[layout.base[c]] += in;
      ++h[in ? layout.base[c] + 1 + days : layout.nowhere];
      if (!in && days != Fact::kNoDays) [[unlikely]] {
        cols[c].push_back(tag | days);
      }
    } else if (days != Fact::kNoDays) {
      cols[c].push_back(tag | days);
    }
  };
  const int64_t now_s = plan_.now_s;
  const uint8_t state = kStateBits[f.state];
  const bool open = state & kIsOpen;
  // The counts fixed by the referral's profile: one cell per profile in the group's row, added
  // up at the finish, else the profile's counts here.
  if constexpr (kDense) {
    ++h[f.profile];
  } else {
    AddProfile(index_.profiles_[f.profile], 1, a);
  }
  a.counts[kOverdue] += open & (f.due_s > 0) & (f.due_s <= now_s);
  a.counts[kInformationRequests] += f.information_requests;
  a.counts[kInformationAnswered] += f.information_answered;
  put(kAnswerDays, f.answer_days);  // kNoDays unless an answer came
  a.counts[kOpenOver12Months] += open & (f.reg19_s > 0) & (f.reg19_s <= now_s);
  put(kAcknowledgeDays, f.acknowledge_days);
  put(kDecisionDays, f.decision_days);
  put(kFeedbackDays, f.feedback_days);
  put(kOutcomeDays, (state & kHasOutcome) ? f.feedback_days : Fact::kNoDays);
  const bool dispatched = f.dispatched_s > 0;
  const bool decided = (f.flags & Fact::kDecided) != 0;
  const bool past_due =
      dispatched & ((state & kAsked) != 0) & (f.decision_due_s > 0) & (f.decision_due_s <= now_s);
  a.counts[kPastDue] += past_due;
  a.counts[kPastDueAnswered] += past_due & decided;
  a.oldest_unanswered_s =
      std::min(a.oldest_unanswered_s, past_due & open & !decided ? f.dispatched_s : Acc::kNever);
  a.oldest_open_s = std::min(a.oldest_open_s, dispatched & open ? f.dispatched_s : Acc::kNever);
  const bool count_distinct = plan_.count_distinct;
  for (uint32_t i = 0; i < f.subject_count; ++i) {
    const uint32_t s = index_.subject_pool_[f.subjects_at + i];
    if (index_.IsRepeat(s)) cols[kRepeatSubjects].push_back(tag | s);
    if (count_distinct) cols[kSubjects].push_back(tag | s);
  }
  if (count_distinct) {
    if (f.case_index == 0) {
      ++a.solo_cases;
    } else {
      cols[kJointCases].push_back(tag | f.case_index);
    }
  }
}

// A group's slot: by a dense mixed-radix index when the dimensions' sizes allow (no hashing per
// referral), else by a hash of the packed key. The dense index is taken only with the days in
// histograms (kDense): dense slots for the other groupings too were measured and gained nothing
// (README, "A dense slot for every grouping").
template <bool kDense>
void AggregateIndex::Run::ScanRange(size_t begin, size_t end, Part& part) const {
  const Layout layout = layout_;  // a copy the group rows' stores cannot alias
  const std::vector<v1::Dimension>& dims = plan_.dims;
  std::vector<int32_t> dense_slot(kDense ? dense_cells_ : 0, -1);
  std::unordered_map<uint64_t, int32_t> hashed_slot;
  for (size_t i = begin; i < end; ++i) {
    const Fact& f = index_.facts_[i];
    if (!plan_.Passes(f)) continue;
    int32_t* slot = nullptr;
    if (kDense) {
      uint64_t index = 0;
      for (size_t k = 0; k < dims.size(); ++k) {
        index = index * dim_sizes_[k] + plan_.DenseValue(dims[k], f);
      }
      slot = &dense_slot[index];
    } else {
      slot = &hashed_slot.try_emplace(plan_.Key(f), -1).first->second;
    }
    if (*slot < 0) {
      *slot = static_cast<int32_t>(part.groups.size());
      part.groups.emplace_back();
      part.keys.push_back(plan_.Key(f));
      if (dense_days_) part.hist->resize(part.groups.size() * layout.row);
    }
    Add<kDense>(layout, part.groups[*slot], static_cast<uint64_t>(*slot), f, part);
  }
}

void AggregateIndex::Run::Scan() {
  auto scan_part = [this](size_t begin, size_t end, Part& part) {
    if (dense_days_) {
      ScanRange<true>(begin, end, part);
    } else {
      ScanRange<false>(begin, end, part);
    }
  };
  const size_t n = index_.facts_.size();
  if (n >= 50000) {
    std::thread other([&] { scan_part(n / 2, n, second_); });
    scan_part(0, n / 2, first_);
    other.join();
  } else {
    scan_part(0, n, first_);
  }
}

// The second half's groups added to the first's; with days in histograms, the rows too, each
// group's profiles counted, and the total's days.
void AggregateIndex::Run::MergeHalves() {
  std::vector<Acc>& groups = first_.groups;
  std::vector<uint64_t>& group_keys = first_.keys;
  remap_.resize(second_.groups.size());
  std::unordered_map<uint64_t, size_t> index;
  for (size_t g = 0; g < group_keys.size(); ++g) index.emplace(group_keys[g], g);
  for (size_t g = 0; g < second_.groups.size(); ++g) {
    auto [it, added] = index.emplace(second_.keys[g], groups.size());
    remap_[g] = static_cast<uint32_t>(it->second);
    if (added) {
      groups.push_back(std::move(second_.groups[g]));
      group_keys.push_back(second_.keys[g]);
    } else {
      Merge(second_.groups[g], groups[it->second]);
    }
  }
  const uint32_t row = layout_.row;
  const size_t profiles = index_.profiles_.size();
  std::vector<uint32_t>& hist = *first_.hist;
  total_hist_.assign(dense_days_ ? row : 0, 0);
  if (dense_days_) {
    hist.resize(groups.size() * row);
    for (size_t g = 0; g < remap_.size(); ++g) {
      const uint32_t* from = second_.hist->data() + g * row;
      uint32_t* into = hist.data() + size_t{remap_[g]} * row;
      for (uint32_t i = 0; i < row; ++i) into[i] += from[i];
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      const uint32_t* from = hist.data() + g * row;
      for (size_t p = 0; p < profiles; ++p) {
        if (from[p] != 0) AddProfile(index_.profiles_[p], from[p], groups[g]);
      }
      for (uint32_t i = static_cast<uint32_t>(profiles); i < row; ++i) total_hist_[i] += from[i];
    }
  }
  for (const Acc& g : groups) Merge(g, total_);
}

// Each column scattered by group into one flat array (a counting sort on the group), then each
// group's run and the whole array (the total) measured. Without dimensions the only group is the
// total and is not answered, so it is measured once, as the total.
void AggregateIndex::Run::Measure() {
  std::vector<int32_t> day_scratch(kHistogramDays, 0);
  std::vector<uint64_t> subject_bits(index_.subject_referrals_.size() / 64 + 1, 0);
  std::vector<uint64_t> case_bits(plan_.count_distinct ? index_.case_index_.size() / 64 + 2 : 0, 0);
  for (int c = 0; c < kColumns; ++c) {
    if (!plan_.count_distinct && (c == kSubjects || c == kJointCases)) continue;
    MeasureColumn(c, day_scratch, subject_bits, case_bits);
  }
}

void AggregateIndex::Run::MeasureColumn(int c, std::vector<int32_t>& day_scratch,
                                        std::vector<uint64_t>& subject_bits,
                                        std::vector<uint64_t>& case_bits) {
  std::vector<Acc>& groups = first_.groups;
  const size_t group_count = groups.size();
  const size_t measured_groups = plan_.dims.empty() ? 0 : group_count;
  const std::vector<uint64_t>& one = first_.cols->at(c);
  const std::vector<uint64_t>& two = second_.cols->at(c);
  std::vector<size_t> offsets(group_count + 1, 0);
  for (uint64_t e : one) ++offsets[(e >> 32) + 1];
  for (uint64_t e : two) ++offsets[remap_[e >> 32] + 1];
  for (size_t g = 0; g < group_count; ++g) offsets[g + 1] += offsets[g];
  std::vector<size_t> at(offsets.begin(), offsets.end() - 1);
  std::vector<uint32_t>& flat = buffers_->flat;
  flat.resize(offsets[group_count]);
  for (uint64_t e : one) flat[at[e >> 32]++] = static_cast<uint32_t>(e);
  for (uint64_t e : two) flat[at[remap_[e >> 32]]++] = static_cast<uint32_t>(e);
  auto measure = [&](Acc& a, const uint32_t* hist_row, uint32_t* begin, uint32_t* end) {
    if (c < kDayColumns) {
      FillDays(dense_days_ ? hist_row + layout_.base[c] : nullptr, begin, end, day_scratch,
               &a.days[c]);
    } else if (c == kRepeatSubjects) {
      a.distinct_repeat_subjects = CountDistinct(begin, end, subject_bits);
    } else if (c == kSubjects) {
      a.distinct_subjects = CountDistinct(begin, end, subject_bits);
    } else {
      a.cases = a.solo_cases + CountDistinct(begin, end, case_bits);
    }
  };
  const uint32_t* hist = first_.hist->data();
  for (size_t g = 0; g < measured_groups; ++g) {
    measure(groups[g], hist + g * layout_.row, flat.data() + offsets[g],
            flat.data() + offsets[g + 1]);
  }
  // Last: FillDays may sort the whole array in place.
  measure(total_, total_hist_.data(), flat.data(), flat.data() + flat.size());
}

// The groups in the order of their names, then the total.
v1::GetAggregatesResponse AggregateIndex::Run::Answer(absl::Time as_of) const {
  const std::vector<v1::Dimension>& dims = plan_.dims;
  v1::GetAggregatesResponse response;
  *response.mutable_as_of() = ToProto(as_of);
  for (v1::Dimension d : dims) response.add_group_by(d);
  std::vector<std::pair<std::vector<std::string>, uint32_t>> order;
  for (uint32_t g = 0; g < first_.groups.size() && !dims.empty(); ++g) {
    std::vector<std::string> names(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) {
      const int shift = 16 * static_cast<int>(dims.size() - 1 - i);
      names[i] = plan_.Name(dims[i], (first_.keys[g] >> shift) & 0xffff);
    }
    order.emplace_back(std::move(names), g);
  }
  std::sort(order.begin(), order.end());
  for (auto& [names, g] : order) {
    v1::AggregateGroup* group = response.add_groups();
    for (auto& n : names) group->add_key(std::move(n));
    FillMeasures(first_.groups[g], group->mutable_measures(), plan_.now_s);
  }
  FillMeasures(total_, response.mutable_total(), plan_.now_s);
  return response;
}

absl::StatusOr<v1::GetAggregatesResponse> AggregateIndex::Query(
    const v1::GetAggregatesRequest& request, absl::Time as_of, int min_count) const {
  ASSIGN_OR_RETURN(const Plan plan, Plan::Compile(*this, request, as_of));
  Run run(*this, plan);
  run.Scan();
  run.MergeHalves();
  run.Measure();
  v1::GetAggregatesResponse response = run.Answer(as_of);
  if (request.publication()) {
    response.set_publication(true);
    response.set_min_count(min_count);
    Suppress(response, min_count);
  }
  return response;
}

namespace {

// The counts a line of the secondary suppression can name, besides the outcome tallies.
constexpr std::array<const char*, kCountMeasures + 3> kCellNames = [] {
  std::array<const char*, kCountMeasures + 3> names{};
  for (size_t i = 0; i < kCountMeasures; ++i) names[i] = kCountNames[i];
  names[kCountMeasures] = "repeat_subjects";
  names[kCountMeasures + 1] = "cases";
  names[kCountMeasures + 2] = "distinct_subjects";
  return names;
}();

const std::array<const FieldDescriptor*, kCellNames.size()>& CellFields() {
  static const auto* fields = [] {
    auto* out = new std::array<const FieldDescriptor*, kCellNames.size()>();
    for (size_t i = 0; i < kCellNames.size(); ++i) {
      (*out)[i] = v1::Measures::descriptor()->FindFieldByName(kCellNames[i]);
    }
    return out;
  }();
  return *fields;
}

// Every count of a response as plain values, read once through reflection: the rounds of the
// secondary suppression look at each many times, and reflection per look cost more than the
// query's scan. A hidden count is written back (cleared and named) once, at the end, in the
// order the rounds hid it.
class Cells {
 public:
  explicit Cells(const std::vector<v1::Measures*>& all) {
    const auto& fields = CellFields();
    for (size_t m = 0; m < all.size(); ++m) {
      const auto* r = all[m]->GetReflection();
      for (size_t i = 0; i < fields.size(); ++i) {
        Add({all[m], all[m], fields[i], kCellNames[i]}, r->HasField(*all[m], fields[i]),
            r->GetInt64(*all[m], fields[i]));
      }
    }
    outcomes_.resize(all.size());
    for (size_t m = 0; m < all.size(); ++m) {
      for (auto& tally : *all[m]->mutable_outcomes()) {
        outcomes_[m].push_back(
            Add({&tally, all[m], nullptr, nullptr}, tally.has_count(), tally.count()));
      }
    }
  }

  // The count `name_index` (into kCellNames) of the m-th Measures.
  uint32_t Named(size_t m, size_t name_index) const {
    return static_cast<uint32_t>(m * kCellNames.size() + name_index);
  }
  const std::vector<uint32_t>& Outcomes(size_t m) const { return outcomes_[m]; }
  v1::OutcomeType OutcomeTypeOf(uint32_t cell) const {
    return static_cast<v1::OutcomeTally*>(refs_[cell].msg)->type();
  }

  bool known(uint32_t cell) const { return known_[cell]; }
  int64_t value(uint32_t cell) const { return value_[cell]; }
  void Hide(uint32_t cell) {
    if (!known_[cell]) return;
    known_[cell] = false;
    hidden_.push_back(cell);
  }

  void WriteBack() {
    for (uint32_t cell : hidden_) {
      const Ref& ref = refs_[cell];
      if (ref.field != nullptr) {
        ref.msg->GetReflection()->ClearField(ref.msg, ref.field);
        ref.owner->add_suppressed(ref.name);
      } else {
        auto* tally = static_cast<v1::OutcomeTally*>(ref.msg);
        tally->clear_count();
        ref.owner->add_suppressed(
            absl::StrCat("outcomes.", Strip(v1::OutcomeType_Name(tally->type()), "OUTCOME_TYPE_")));
      }
    }
    hidden_.clear();
  }

 private:
  struct Ref {
    Message* msg;
    v1::Measures* owner;
    const FieldDescriptor* field;  // null for an outcome tally's count
    const char* name;
  };
  uint32_t Add(Ref ref, bool known, int64_t value) {
    refs_.push_back(ref);
    known_.push_back(known);
    value_.push_back(value);
    return static_cast<uint32_t>(refs_.size() - 1);
  }

  std::vector<Ref> refs_;
  std::vector<uint8_t> known_;
  std::vector<int64_t> value_;
  std::vector<std::vector<uint32_t>> outcomes_;
  std::vector<uint32_t> hidden_;
};

// total = the sum of parts: solvable for any single unknown.
struct Line {
  uint32_t total;
  std::vector<uint32_t> parts;
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
  Cells cells(all);

  // Primary: every small count.
  for (size_t m = 0; m < all.size(); ++m) {
    auto primary = [&](uint32_t c) {
      if (cells.known(c) && cells.value(c) > 0 && cells.value(c) < min_count) cells.Hide(c);
    };
    for (uint32_t c : cells.Outcomes(m)) primary(c);
    for (size_t i = 0; i < kCellNames.size(); ++i) primary(cells.Named(m, i));
  }

  std::vector<Line> lines;
  for (size_t m = 0; m < all.size(); ++m) {
    auto named = [&](Count c) { return cells.Named(m, c); };
    lines.push_back({named(kReferred),
                     {named(kFeedback), named(kWithdrawn), named(kRedirected), named(kOpen)}});
    lines.push_back({named(kFeedback), {named(kDeclined), named(kClosedWithOutcome)}});
    lines.push_back({named(kClosedWithOutcome), cells.Outcomes(m)});
  }
  const size_t total = all.size() - 1;
  if (response.groups_size() > 0) {
    for (size_t i = 0; i < kCountMeasures; ++i) {
      Line line{cells.Named(total, i), {}};
      for (size_t g = 0; g < total; ++g) line.parts.push_back(cells.Named(g, i));
      lines.push_back(std::move(line));
    }
    std::map<int, Line> by_type;
    for (uint32_t t : cells.Outcomes(total)) by_type.emplace(cells.OutcomeTypeOf(t), Line{t, {}});
    for (size_t g = 0; g < total; ++g) {
      for (uint32_t c : cells.Outcomes(g)) {
        auto it = by_type.find(cells.OutcomeTypeOf(c));
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
      int unknown = !cells.known(line.total);
      for (uint32_t c : line.parts) unknown += !cells.known(c);
      if (unknown != 1) continue;
      int64_t pick = -1;
      for (uint32_t c : line.parts) {
        if (!cells.known(c)) continue;
        const int64_t v = cells.value(c);
        const bool better = pick < 0 || (v > 0 && cells.value(pick) == 0) ||
                            ((v > 0) == (cells.value(pick) > 0) && v < cells.value(pick));
        if (better) pick = c;
      }
      if (pick >= 0) {
        cells.Hide(static_cast<uint32_t>(pick));
      } else if (cells.known(line.total)) {
        cells.Hide(line.total);
      } else {
        continue;
      }
      changed = true;
    }
  }
  cells.WriteBack();

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
