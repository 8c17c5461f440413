#include "tools/synth/exercise_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/referral/clocks.h"
#include "common/referral/outcomes.h"
#include "common/referral/rules.h"
#include "tools/synth/invented.h"

namespace sarloop::synth::exercise {
namespace {

constexpr int64_t kDay = 24 * 3600;

// ---------------------------------------------------------------- the model --
//
// Every number below is an ESTIMATE for test design, not a published figure: no public statistic
// exists for SARs about law-enforcement personnel or for how forces handle them. The starting
// point is section 3 of the practitioner's domain review (shared/reference/domain-review.md);
// where a range is given there, the middle is taken.

// Days from one milestone to the next: log-normal with this median and 90th percentile.
struct Days {
  double median;
  double p90;
};

struct Model {
  // Volume: national referrals grow this much a year (estimate), so the trend is visible.
  double growth = 0.08;
  // Organisation behaviour in the first year (percent): prompt, slow, near-silent. Each later
  // year a near-silent organisation becomes slow and a slow one becomes prompt with probability
  // `improve` (Recommendation 4 taking effect).
  std::array<int, 3> behaviour = {60, 25, 15};
  int improve = 50;
  // A near-silent organisation never answers this share of its referrals (percent).
  int never_answered = 70;
  // Multipliers on decision times: prompt, slow, near-silent (when it answers at all); and on
  // the time to acknowledge.
  std::array<double, 3> decision_factor = {0.8, 1.8, 3.0};
  std::array<double, 3> ack_factor = {1.0, 3.0, 5.0};
  // First decision shares (percent): not ours, declined, intelligence only, local
  // investigation, handover, IOPC, withdrawn. The handover share goes to local investigation
  // where the organisation has no unit; ERSOU's forces hand over more (domain review: "higher in
  // ERSOU forces"), taken from intelligence only.
  std::array<int, 7> decision = {15, 25, 30, 17, 8, 2, 3};
  int ersou_extra_handover = 4;
  // Milestones (days from dispatch unless said).
  Days acknowledge = {3, 15};
  Days not_ours = {20, 60};
  Days decline = {35, 90};
  Days intelligence_close = {60, 180};
  Days report_open = {14, 40};           // a local investigation reported open
  Days local_outcome = {200, 450};       // local conduct or vetting outcome
  Days handover = {40, 120};             // research, then the handover
  Days unit_decision = {10, 30};         // from the handover: accept or decline to assist
  Days joint_outcome = {400, 900};       // from acceptance to the unit's outcome
  Days after_unit_declined = {60, 180};  // from the unit's decline to the force's close
  Days iopc_referral = {20, 50};
  Days withdrawal = {20, 60};          // UKFIU's timing; not scaled by behaviour
  Days sar_before_referral = {5, 20};  // the SAR's submission before UKFIU refers it
  // Points of the decision shares a high THR (threat or harm HIGH) moves from not ours and
  // declined to local investigation and handover, and an all-low THR moves back.
  int thr_shift = 4;
  // A unit declines to assist this share of handovers (percent).
  int unit_declines = 20;
  // Subjects (percent): officer, staff, special constable, PCSO, volunteer, contractor, family
  // member or associate (found only by an indirect link).
  std::array<int, 7> roles = {50, 33, 3, 3, 2, 2, 7};
  // Progress on an open investigation: a prompt holder reports 3-10 days before it is due, a
  // slow one 5-40 days after; a near-silent one does not report.
};

const Model kModel;

// A typology of SAR: the pattern the report describes, who reports it, and the corruption
// categories it tends to show (weights).
struct Typology {
  const char* name;
  int weight;  // share of referrals
  const char* sector;
  const char* narrative;  // {amount}, {name}, {months}
  int64_t min_pounds, max_pounds;
  std::array<int, 12> categories;  // by CorruptionCategory 1..12
};

// Categories: 1 infiltration, 2 disclosure, 3 perverting justice, 4 sexual misconduct,
// 5 controlled drugs, 6 theft and fraud, 7 misuse of systems, 8 abuse of authority,
// 9 inappropriate association, 10 vulnerability, 11 assisting offenders, 12 other.
constexpr Typology kTypologies[] = {
    {"debt and gambling",
     25,
     "gambling operator",
     "Gambling spend of {amount} by {name} over {months} months, funded by short-term loans and "
     "unexplained third-party credits.",
     2000,
     60000,
     {0, 0, 0, 0, 0, 2, 0, 0, 1, 7, 0, 0}},
    {"cash inconsistent with salary",
     25,
     "bank",
     "Regular cash deposits totalling {amount} into the personal account of {name} over {months} "
     "months, inconsistent with the declared salary.",
     5000,
     120000,
     {0, 1, 0, 0, 2, 4, 0, 0, 2, 0, 1, 0}},
    {"payments linked to organised crime",
     15,
     "bank",
     "Incoming transfers of {amount} to {name} from accounts linked to an organised crime group, "
     "over {months} months.",
     3000,
     250000,
     {1, 5, 1, 0, 0, 0, 1, 0, 10, 0, 4, 0}},
    {"fraud",
     20,
     "building society",
     "Loan and benefit applications by {name} over {months} months misstated income; {amount} of "
     "undisclosed credits identified.",
     2000,
     90000,
     {0, 0, 0, 0, 0, 17, 3, 0, 0, 0, 0, 0}},
    {"drug-market payments",
     8,
     "money service business",
     "Payments of {amount} to {name} from several individuals linked to drug supply, over "
     "{months} months.",
     1000,
     80000,
     {0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0}},
    {"payments for information",
     7,
     "credit card issuer",
     "Unexplained credits of {amount} to {name} over {months} months from a private "
     "investigator's business account.",
     800,
     40000,
     {0, 12, 0, 1, 0, 0, 6, 1, 0, 0, 0, 0}},
};

struct DeclineText {
  v1::DeclineReason code;
  const char* text;
};
constexpr DeclineText kNotOurs[] = {
    {v1::DECLINE_REASON_NOT_OUR_EMPLOYEE,
     "Research found no link between the subject and the force's workforce."},
    {v1::DECLINE_REASON_NOT_OUR_EMPLOYEE,
     "No match on HR, vetting or volunteer records for the subject's identifiers."},
    {v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION,
     "HR records show the subject is employed by another organisation."},
};
constexpr DeclineText kDeclines[] = {
    {v1::DECLINE_REASON_ACTIVITY_EXPLAINED,
     "Activity explained by a documented inheritance; no corruption indicators."},
    {v1::DECLINE_REASON_ACTIVITY_EXPLAINED,
     "Credits are a declared business interest's income; no further action."},
    {v1::DECLINE_REASON_ALREADY_KNOWN_AND_MANAGED,
     "Known to the counter-corruption unit and managed under an intelligence development plan."},
    {v1::DECLINE_REASON_INSUFFICIENT_IDENTIFIERS,
     "Insufficient information to identify the subject on force systems."},
};
constexpr const char* kAssistanceReasons[] = {
    "Unit capacity is committed to higher-threat operations; the force can investigate locally.",
    "Threshold for regional investigation not met; no organised crime nexus identified.",
    "No covert tactics required; recommend force professional standards investigation.",
};
constexpr const char* kWithdrawReasons[] = {
    "Reporter retracted the SAR after confirming a data-entry error.",
    "Duplicate of an earlier referral for the same activity.",
    "Further analysis shows the subject is not law-enforcement personnel.",
};

// Outcome types and weights for a force's own investigation and a unit's joint investigation;
// an open type (a case to answer, charged) is recorded first and followed by its ending.
constexpr v1::OutcomeType kLocalTypes[] = {v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER,
                                           v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE,
                                           v1::OUTCOME_TYPE_MISCONDUCT_MEETING,
                                           v1::OUTCOME_TYPE_CASE_TO_ANSWER,
                                           v1::OUTCOME_TYPE_ACCELERATED_HEARING,
                                           v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN,
                                           v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION,
                                           v1::OUTCOME_TYPE_CRIMINAL_NO_FURTHER_ACTION,
                                           v1::OUTCOME_TYPE_CRIMINAL_CHARGED,
                                           v1::OUTCOME_TYPE_INTELLIGENCE_ONLY};
constexpr std::array<int, 10> kLocalWeights = {24, 20, 12, 10, 3, 12, 4, 8, 4, 3};
constexpr v1::OutcomeType kUnitTypes[] = {v1::OUTCOME_TYPE_CRIMINAL_CHARGED,
                                          v1::OUTCOME_TYPE_CRIMINAL_NO_FURTHER_ACTION,
                                          v1::OUTCOME_TYPE_CASE_TO_ANSWER,
                                          v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER,
                                          v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN,
                                          v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION,
                                          v1::OUTCOME_TYPE_ACCELERATED_HEARING};
constexpr std::array<int, 7> kUnitWeights = {25, 25, 15, 12, 10, 8, 5};

int Index(Behaviour b) { return static_cast<int>(b); }

class Builder {
 public:
  explicit Builder(const Options& o) : o_(o), rng_(o.seed) {}

  Exercise Build() {
    Weights();
    const absl::Time first = FinancialYearStart(o_.start);
    for (absl::Time y = first; y < o_.end; y = NextYear(y)) ++ex_.years;
    Behaviours();
    int year = 0;
    for (absl::Time y = first; y < o_.end; y = NextYear(y), ++year) {
      const absl::Time from = std::max(y, o_.start);
      const absl::Time to = std::min(NextYear(y), o_.end);
      const double share =
          absl::ToDoubleSeconds(to - from) / absl::ToDoubleSeconds(NextYear(y) - y);
      const int n = static_cast<int>(
          std::lround(o_.referrals_per_year * std::pow(1 + kModel.growth, year) * share));
      const int64_t days = std::max<int64_t>(1, (to - from) / absl::Seconds(kDay));
      std::vector<absl::Time> dispatch;
      for (int i = 0; i < n; ++i) {
        dispatch.push_back(Weekday(DayOf(from) + absl::Seconds(kDay * rng_.Below(days))));
      }
      std::sort(dispatch.begin(), dispatch.end());
      for (absl::Time t : dispatch) {
        if (t > o_.end) continue;
        ex_.referrals.push_back(Make(year, t));
      }
    }
    return std::move(ex_);
  }

 private:
  static absl::Time NextYear(absl::Time fy_start) {
    const absl::CivilSecond c = absl::ToCivilSecond(fy_start, absl::UTCTimeZone());
    return absl::FromCivil(absl::CivilDay(c.year() + 1, 4, 1), absl::UTCTimeZone());
  }
  // 10:00 UTC on t's day.
  static absl::Time DayOf(absl::Time t) {
    const absl::CivilDay d = absl::ToCivilDay(t, absl::UTCTimeZone());
    return absl::FromCivil(absl::CivilHour(d.year(), d.month(), d.day(), 10), absl::UTCTimeZone());
  }
  // The next weekday on or after t (professional standards work office days).
  static absl::Time Weekday(absl::Time t) {
    for (;;) {
      const absl::Weekday w = absl::GetWeekday(absl::ToCivilDay(t, absl::UTCTimeZone()));
      if (w != absl::Weekday::saturday && w != absl::Weekday::sunday) return t;
      t += absl::Seconds(kDay);
    }
  }

  double Draw(const Days& d) {
    const double sigma = std::log(d.p90 / d.median) / 1.2815515655446004;
    return d.median * std::exp(sigma * rng_.Normal());
  }
  // `days` after t, on a weekday, never before t.
  absl::Time After(absl::Time t, double days) {
    return Weekday(t + absl::Seconds(kDay * std::max<int64_t>(0, std::llround(days))));
  }

  void Weights() {
    std::vector<double> known;
    for (const OrgSpec& org : o_.orgs) {
      if (org.weight > 0) known.push_back(org.weight);
    }
    std::sort(known.begin(), known.end());
    const double median = known.empty() ? 1.0 : known[known.size() / 2];
    double total = 0;
    for (const OrgSpec& org : o_.orgs) total += org.weight > 0 ? org.weight : median;
    double cumulative = 0;
    for (const OrgSpec& org : o_.orgs) {
      cumulative += (org.weight > 0 ? org.weight : median) / total;
      cumulative_.push_back(cumulative);
    }
  }

  const OrgSpec& PickOrg() {
    const double u = rng_.Unit();
    for (size_t i = 0; i < cumulative_.size(); ++i) {
      if (u < cumulative_[i]) return o_.orgs[i];
    }
    return o_.orgs.back();
  }

  void Behaviours() {
    for (const OrgSpec& org : o_.orgs) {
      std::vector<Behaviour> years;
      Behaviour b = static_cast<Behaviour>(rng_.Weighted(kModel.behaviour));
      for (int y = 0; y < ex_.years; ++y) {
        if (y > 0) {
          if (b == Behaviour::kNearSilent) {
            b = Behaviour::kSlow;
          } else if (b == Behaviour::kSlow && rng_.Percent(kModel.improve)) {
            b = Behaviour::kPrompt;
          }
        }
        years.push_back(b);
      }
      ex_.behaviour[org.code] = std::move(years);
    }
  }

  Decision PickDecision(const OrgSpec& org, Behaviour b, const v1::ThrAssessment& thr) {
    if (b == Behaviour::kNearSilent && rng_.Percent(kModel.never_answered)) {
      return Decision::kUnanswered;
    }
    if (org.hands_over_on_receipt) {
      return rng_.Percent(kModel.decision[6]) ? Decision::kWithdrawn : Decision::kHandover;
    }
    std::array<int, 7> w = kModel.decision;
    if (org.unit.empty()) {
      w[3] += w[4];
      w[4] = 0;
    } else if (org.unit == "ERSOU") {
      w[2] -= kModel.ersou_extra_handover;
      w[4] += kModel.ersou_extra_handover;
    }
    // UKFIU's THR is taken to be somewhat predictive: a high threat or harm moves points from
    // the declines to investigation, an all-low one the other way.
    const bool high = thr.threat() == v1::THR_LEVEL_HIGH || thr.harm() == v1::THR_LEVEL_HIGH;
    const bool low = thr.threat() == v1::THR_LEVEL_LOW && thr.harm() == v1::THR_LEVEL_LOW &&
                     thr.risk() == v1::THR_LEVEL_LOW;
    if (high || low) {
      const int investigate = w[4] > 0 ? 4 : 3;
      const int from[2] = {high ? 0 : 3, high ? 1 : investigate};
      const int to[2] = {high ? 3 : 0, high ? investigate : 1};
      for (int k = 0; k < 2; ++k) {
        const int moved = std::min(kModel.thr_shift, w[from[k]]);
        w[from[k]] -= moved;
        w[to[k]] += moved;
      }
    }
    constexpr Decision kOrder[] = {Decision::kNotOurs,          Decision::kDeclined,
                                   Decision::kIntelligenceOnly, Decision::kLocalInvestigation,
                                   Decision::kHandover,         Decision::kIopc,
                                   Decision::kWithdrawn};
    return kOrder[rng_.Weighted(w)];
  }

  // The SAR and its subject; returns the subject's role.
  v1::SubjectRole MakeSar(Referral& r, const Typology& typ, absl::Time referred) {
    constexpr v1::SubjectRole kRoles[] = {v1::SUBJECT_ROLE_OFFICER,
                                          v1::SUBJECT_ROLE_STAFF,
                                          v1::SUBJECT_ROLE_SPECIAL_CONSTABLE,
                                          v1::SUBJECT_ROLE_PCSO,
                                          v1::SUBJECT_ROLE_VOLUNTEER,
                                          v1::SUBJECT_ROLE_CONTRACTOR,
                                          v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE};
    v1::SubjectRole role = kRoles[rng_.Weighted(kModel.roles)];
    // Agencies have no specials, PCSOs or volunteers: their officers.
    if (r.organisation == "BF" || r.organisation == "HMRC" || r.organisation == "HMPPS" ||
        r.organisation == "NCAPSU") {
      if (role == v1::SUBJECT_ROLE_OFFICER || role == v1::SUBJECT_ROLE_SPECIAL_CONSTABLE ||
          role == v1::SUBJECT_ROLE_PCSO || role == v1::SUBJECT_ROLE_VOLUNTEER) {
        role = v1::SUBJECT_ROLE_OTHER_LAW_ENFORCEMENT;
      }
    }
    r.indirect = role == v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE;
    v1::Subject* s = r.sar.add_subjects();
    // Unique names and dates of birth: equal subject references then mean the same person.
    for (;;) {
      s->set_full_name(InventName(rng_));
      s->set_date_of_birth(InventDob(rng_));
      if (people_.insert(absl::StrCat(s->full_name(), "|", s->date_of_birth())).second) break;
    }
    s->set_address(InventAddress(rng_, r.organisation));
    s->set_role(role);
    if (!r.indirect) s->set_employer_code(r.organisation);
    const int64_t pence =
        100 * (typ.min_pounds + rng_.Below(static_cast<int>(typ.max_pounds - typ.min_pounds + 1)));
    r.sar.set_amount_pence(pence);
    r.sar.set_reporter_sector(typ.sector);
    r.sar.set_reporter_reference(absl::StrFormat("EX-%d-%06d", r.year + 1, rng_.Below(1000000)));
    std::string text =
        absl::StrReplaceAll(typ.narrative, {{"{amount}", Pounds(pence)},
                                            {"{name}", s->full_name()},
                                            {"{months}", absl::StrCat(rng_.Between(2, 30))}});
    absl::StrAppend(&text, r.indirect ? " The subject is a close associate of a member of "
                                        "the organisation's workforce."
                                      : absl::StrCat(" The subject is a ", RoleText(role), "."));
    r.sar.set_narrative(text);
    const absl::Time submitted =
        referred - absl::Seconds(kDay * std::llround(Draw(kModel.sar_before_referral)));
    r.sar.mutable_submitted_at()->set_seconds(absl::ToUnixSeconds(submitted));
    return role;
  }

  v1::ThrAssessment Thr(const Referral& r, const Typology& typ) {
    static constexpr std::array<int, 3> kLevels = {30, 45, 25};
    v1::ThrAssessment thr;
    thr.set_threat(static_cast<v1::ThrLevel>(1 + rng_.Weighted(kLevels)));
    thr.set_harm(static_cast<v1::ThrLevel>(1 + rng_.Weighted(kLevels)));
    thr.set_risk(static_cast<v1::ThrLevel>(1 + rng_.Weighted(kLevels)));
    thr.set_rationale(absl::StrCat("Typology: ", typ.name, "; ", Pounds(r.sar.amount_pence()),
                                   ". Refer to the employing organisation."));
    return thr;
  }

  // The outcome of `type` for the subject, fitted to the role; an open type becomes the interim
  // and is followed by its ending on the same track.
  void Outcome(Referral& r, v1::OutcomeType type, v1::SubjectRole role,
               v1::CorruptionCategory category, absl::Time opened, absl::Time closed) {
    type = FitOutcomeToRole(type, role);
    if (IsOpenOutcome(type)) {
      r.interim = PlainOutcome(rng_, type, role, category);
      r.interim.mutable_opened_at()->set_seconds(absl::ToUnixSeconds(opened));
      type = type == v1::OUTCOME_TYPE_CRIMINAL_CHARGED
                 ? (rng_.Percent(70) ? v1::OUTCOME_TYPE_CRIMINAL_CONVICTED
                                     : v1::OUTCOME_TYPE_CRIMINAL_ACQUITTED)
                 : (rng_.Percent(70) ? v1::OUTCOME_TYPE_MISCONDUCT_HEARING
                                     : v1::OUTCOME_TYPE_MISCONDUCT_MEETING);
      type = FitOutcomeToRole(type, role);
    }
    r.outcome = PlainOutcome(rng_, type, role, category);
    r.outcome.mutable_opened_at()->set_seconds(absl::ToUnixSeconds(opened));
    r.outcome.mutable_closed_at()->set_seconds(absl::ToUnixSeconds(closed));
  }

  // Progress reports on an investigation open from `open` until `until`, at `interval`.
  void Progress(Referral& r, Act act, Behaviour b, absl::Time open, absl::Time until,
                absl::Duration interval) {
    if (b == Behaviour::kNearSilent) return;
    absl::Time last = open;
    for (;;) {
      const int64_t shift = b == Behaviour::kPrompt ? -rng_.Between(3, 10) : rng_.Between(5, 40);
      const absl::Time next = Weekday(last + interval + absl::Seconds(kDay * shift));
      if (next >= until) return;
      Add(r, next, act);
      last = next;
    }
  }

  void Add(Referral& r, absl::Time at, Act act) {
    // Never before the previous step: the driver runs a referral's steps in order.
    if (!r.steps.empty()) at = std::max(at, r.steps.back().at);
    r.steps.push_back(Step{at, act});
  }

  Referral Make(int year, absl::Time dispatch) {
    const OrgSpec& org = PickOrg();
    Referral r;
    r.organisation = org.code;
    r.year = year;
    r.behaviour = ex_.behaviour[org.code][year];
    const int bi = Index(r.behaviour);
    std::array<int, std::size(kTypologies)> tw{};
    for (size_t i = 0; i < tw.size(); ++i) tw[i] = kTypologies[i].weight;
    const Typology& typ = kTypologies[rng_.Weighted(tw)];
    const v1::SubjectRole role = MakeSar(r, typ, dispatch);
    const auto category = static_cast<v1::CorruptionCategory>(1 + rng_.Weighted(typ.categories));
    r.thr = Thr(r, typ);
    r.decision = PickDecision(org, r.behaviour, r.thr);
    const double m = kModel.decision_factor[bi];
    Add(r, dispatch, Act::kRefer);
    if (org.hands_over_on_receipt) {
      r.on_receipt = true;
      r.unit = org.unit;
    }

    const absl::Time ack = After(dispatch, Draw(kModel.acknowledge) * kModel.ack_factor[bi]);
    const absl::Time research = After(ack, rng_.Between(0, 3));
    switch (r.decision) {
      case Decision::kUnanswered:
        break;
      case Decision::kWithdrawn: {
        r.withdraw_reason = rng_.Pick(kWithdrawReasons);
        const absl::Time at = After(dispatch, Draw(kModel.withdrawal));
        if (!org.hands_over_on_receipt && ack < at && rng_.Percent(50))
          Add(r, ack, Act::kAcknowledge);
        Add(r, at, Act::kWithdraw);
        break;
      }
      case Decision::kNotOurs:
      case Decision::kDeclined: {
        const DeclineText& d =
            r.decision == Decision::kNotOurs ? rng_.Pick(kNotOurs) : rng_.Pick(kDeclines);
        r.decline_code = d.code;
        r.decline_text = d.text;
        if (d.code == v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION) {
          do r.named_employer = PickOrg().code;
          while (r.named_employer == r.organisation && o_.orgs.size() > 1);
          if (r.named_employer == r.organisation) {
            r.decline_code = v1::DECLINE_REASON_NOT_OUR_EMPLOYEE;
            r.named_employer.clear();
          }
        }
        Add(r, ack, Act::kAcknowledge);
        Add(r, research, Act::kStartResearch);
        Add(r,
            After(dispatch,
                  Draw(r.decision == Decision::kNotOurs ? kModel.not_ours : kModel.decline) * m),
            Act::kDecline);
        break;
      }
      case Decision::kIntelligenceOnly: {
        Add(r, ack, Act::kAcknowledge);
        Add(r, research, Act::kStartResearch);
        const absl::Time close = After(dispatch, Draw(kModel.intelligence_close) * m);
        Outcome(r, v1::OUTCOME_TYPE_INTELLIGENCE_ONLY, role, category, research,
                std::max(close, research));
        Add(r, close, Act::kClose);
        break;
      }
      case Decision::kLocalInvestigation:
      case Decision::kIopc: {
        Add(r, ack, Act::kAcknowledge);
        Add(r, research, Act::kStartResearch);
        const absl::Time open = After(dispatch, Draw(kModel.report_open) * m);
        Add(r, open, Act::kReportOpen);
        if (r.decision == Decision::kIopc) {
          Add(r, After(dispatch, Draw(kModel.iopc_referral) * m), Act::kReferToIopc);
        }
        const absl::Time close =
            std::max(r.steps.back().at, After(dispatch, Draw(kModel.local_outcome) * m));
        Investigation(r, role, category, research, open, close, Act::kProgress, Act::kInterim,
                      Act::kClose, kLocalTypes, kLocalWeights, r.behaviour,
                      ProgressInterval(v1::PRIORITY_UNSPECIFIED));
        break;
      }
      case Decision::kHandover: {
        absl::Time handed = dispatch;
        if (!org.hands_over_on_receipt) {
          r.unit = org.unit;
          Add(r, ack, Act::kAcknowledge);
          Add(r, research, Act::kStartResearch);
          handed = std::max(research, After(dispatch, Draw(kModel.handover) * m));
          Add(r, handed, Act::kHandOver);
        }
        const int highs =
            (r.thr.threat() == v1::THR_LEVEL_HIGH) + (r.thr.harm() == v1::THR_LEVEL_HIGH);
        r.priority = highs == 2         ? v1::PRIORITY_P1
                     : highs == 1       ? v1::PRIORITY_P2
                     : rng_.Percent(25) ? v1::PRIORITY_P4
                                        : v1::PRIORITY_P3;
        const absl::Time decided = After(handed, Draw(kModel.unit_decision));
        if (rng_.Percent(kModel.unit_declines)) {
          r.unit_declines = true;
          r.assistance_reason = rng_.Pick(kAssistanceReasons);
          Add(r, decided, Act::kUnitDecline);
          // Back with the force, which investigates and closes it itself.
          const absl::Time close = After(decided, Draw(kModel.after_unit_declined) * m);
          Investigation(r, role, category, decided, decided, close, Act::kProgress, Act::kInterim,
                        Act::kClose, kLocalTypes, kLocalWeights, r.behaviour,
                        ProgressInterval(v1::PRIORITY_UNSPECIFIED));
        } else {
          Add(r, decided, Act::kUnitAccept);
          const absl::Time close = After(decided, Draw(kModel.joint_outcome));
          // Units are prompt: the model has no figure to say otherwise.
          Investigation(r, role, category, decided, decided, close, Act::kUnitProgress,
                        Act::kUnitInterim, Act::kUnitOutcome, kUnitTypes, kUnitWeights,
                        Behaviour::kPrompt, ProgressInterval(r.priority));
        }
        break;
      }
    }
    // Steps past the end of the exercise do not happen (the referral is open at the end).
    r.steps.erase(std::remove_if(r.steps.begin(), r.steps.end(),
                                 [&](const Step& s) { return s.at > o_.end; }),
                  r.steps.end());
    if (!std::any_of(r.steps.begin(), r.steps.end(), [](const Step& s) {
          return s.act == Act::kClose || s.act == Act::kUnitOutcome;
        })) {
      r.outcome.Clear();
    }
    if (!std::any_of(r.steps.begin(), r.steps.end(), [](const Step& s) {
          return s.act == Act::kInterim || s.act == Act::kUnitInterim;
        })) {
      r.interim.Clear();
    }
    return r;
  }

  // An investigation open from `open` to `close`: progress at the interval, an interim outcome
  // part-way when the outcome has one, then the ending.
  template <size_t N>
  void Investigation(Referral& r, v1::SubjectRole role, v1::CorruptionCategory category,
                     absl::Time opened, absl::Time open, absl::Time close, Act progress,
                     Act interim, Act ending, const v1::OutcomeType (&types)[N],
                     const std::array<int, N>& weights, Behaviour b, absl::Duration interval) {
    Outcome(r, types[rng_.Weighted(weights)], role, category, opened, close);
    absl::Time interim_at = absl::InfiniteFuture();
    if (r.interim.type() != v1::OUTCOME_TYPE_UNSPECIFIED) {
      interim_at = Weekday(DayOf(open + (close - open) * 0.6));
    }
    // Progress reports and the interim in time order.
    const size_t first = r.steps.size();
    Progress(r, progress, b, open, close, interval);
    if (interim_at != absl::InfiniteFuture()) {
      r.steps.push_back(Step{std::max(interim_at, r.steps.back().at), interim});
      std::stable_sort(r.steps.begin() + first, r.steps.end(),
                       [](const Step& a, const Step& c) { return a.at < c.at; });
    }
    Add(r, close, ending);
  }

  const Options& o_;
  Rng rng_;
  Exercise ex_;
  std::vector<double> cumulative_;
  std::set<std::string> people_;
};

}  // namespace

absl::string_view BehaviourName(Behaviour b) {
  switch (b) {
    case Behaviour::kPrompt:
      return "prompt";
    case Behaviour::kSlow:
      return "slow";
    case Behaviour::kNearSilent:
      return "near-silent";
  }
  return "?";
}

absl::string_view DecisionName(Decision d) {
  switch (d) {
    case Decision::kUnanswered:
      return "unanswered";
    case Decision::kNotOurs:
      return "not ours";
    case Decision::kDeclined:
      return "declined";
    case Decision::kIntelligenceOnly:
      return "intelligence only";
    case Decision::kLocalInvestigation:
      return "local investigation";
    case Decision::kHandover:
      return "handover";
    case Decision::kIopc:
      return "IOPC";
    case Decision::kWithdrawn:
      return "withdrawn";
  }
  return "?";
}

absl::string_view ActName(Act a) {
  switch (a) {
    case Act::kRefer:
      return "Refer";
    case Act::kAcknowledge:
      return "Acknowledge";
    case Act::kStartResearch:
      return "StartResearch";
    case Act::kReportOpen:
      return "ReportOpen";
    case Act::kProgress:
      return "Progress";
    case Act::kReferToIopc:
      return "ReferToIopc";
    case Act::kDecline:
      return "Decline";
    case Act::kInterim:
      return "Interim";
    case Act::kClose:
      return "Close";
    case Act::kHandOver:
      return "HandOver";
    case Act::kUnitAccept:
      return "UnitAccept";
    case Act::kUnitDecline:
      return "UnitDecline";
    case Act::kUnitProgress:
      return "UnitProgress";
    case Act::kUnitInterim:
      return "UnitInterim";
    case Act::kUnitOutcome:
      return "UnitOutcome";
    case Act::kWithdraw:
      return "Withdraw";
  }
  return "?";
}

v1::EventType EventOf(Act a) {
  switch (a) {
    case Act::kRefer:
      return v1::EVENT_TYPE_DISPATCHED;
    case Act::kAcknowledge:
      return v1::EVENT_TYPE_ACKNOWLEDGED;
    case Act::kStartResearch:
      return v1::EVENT_TYPE_RESEARCH_STARTED;
    case Act::kReportOpen:
    case Act::kProgress:
    case Act::kUnitProgress:
      return v1::EVENT_TYPE_PROGRESS_UPDATED;
    case Act::kReferToIopc:
      return v1::EVENT_TYPE_REFERRED_TO_IOPC;
    case Act::kDecline:
      return v1::EVENT_TYPE_DECLINED_BY_FORCE;
    case Act::kInterim:
    case Act::kUnitInterim:
      return v1::EVENT_TYPE_OUTCOME_UPDATED;
    case Act::kClose:
      return v1::EVENT_TYPE_CLOSED_BY_FORCE;
    case Act::kHandOver:
      return v1::EVENT_TYPE_HANDED_OVER;
    case Act::kUnitAccept:
      return v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED;
    case Act::kUnitDecline:
      return v1::EVENT_TYPE_ASSISTANCE_DECLINED;
    case Act::kUnitOutcome:
      return v1::EVENT_TYPE_OUTCOME_RECORDED;
    case Act::kWithdraw:
      return v1::EVENT_TYPE_WITHDRAWN;
  }
  return v1::EVENT_TYPE_UNSPECIFIED;
}

v1::ReferralState ExpectedState(const Referral& r) {
  if (r.steps.empty()) return v1::REFERRAL_STATE_UNSPECIFIED;
  // Dispatched, then received by the force's service as it arrives (and, where the force hands
  // everything over on receipt, handed to its unit).
  v1::ReferralState state =
      r.on_receipt ? v1::REFERRAL_STATE_HANDED_OVER : v1::REFERRAL_STATE_RECEIVED;
  for (size_t i = 1; i < r.steps.size(); ++i) {
    const referral::EventRule* rule = referral::RuleFor(EventOf(r.steps[i].act));
    if (rule != nullptr && rule->target != v1::REFERRAL_STATE_UNSPECIFIED) state = rule->target;
  }
  return state;
}

absl::Time FinancialYearStart(absl::Time t) {
  const absl::CivilDay d = absl::ToCivilDay(t, absl::UTCTimeZone());
  const int year = d.month() >= 4 ? d.year() : d.year() - 1;
  return absl::FromCivil(absl::CivilDay(year, 4, 1), absl::UTCTimeZone());
}

Exercise MakeExercise(const Options& options) { return Builder(options).Build(); }

std::string DescribeModel() {
  const Model& m = kModel;
  auto days = [](const Days& d) {
    return absl::StrFormat("median %g, p90 %g days", d.median, d.p90);
  };
  std::string out = "Exercise model (estimates for test design; no public figures exist):\n";
  absl::StrAppendFormat(&out, "  volume grows %.0f%% a year; organisations by officers FTE\n",
                        m.growth * 100);
  absl::StrAppendFormat(&out,
                        "  behaviour in year 1: %d%% prompt, %d%% slow, %d%% near-silent "
                        "(never answers %d%%); improving each year\n",
                        m.behaviour[0], m.behaviour[1], m.behaviour[2], m.never_answered);
  absl::StrAppendFormat(&out,
                        "  first decision: not ours %d%%, declined %d%%, intelligence only %d%%, "
                        "local investigation %d%%, handover %d%%, IOPC %d%%, withdrawn %d%%\n",
                        m.decision[0], m.decision[1], m.decision[2], m.decision[3], m.decision[4],
                        m.decision[5], m.decision[6]);
  absl::StrAppendFormat(&out, "  acknowledge: %s (x%g slow, x%g near-silent)\n",
                        days(m.acknowledge), m.ack_factor[1], m.ack_factor[2]);
  absl::StrAppendFormat(&out, "  decisions x%g prompt, x%g slow, x%g near-silent:\n",
                        m.decision_factor[0], m.decision_factor[1], m.decision_factor[2]);
  absl::StrAppendFormat(&out, "    not ours %s; declined %s; intelligence only %s\n",
                        days(m.not_ours), days(m.decline), days(m.intelligence_close));
  absl::StrAppendFormat(&out, "    investigation reported open %s; local outcome %s\n",
                        days(m.report_open), days(m.local_outcome));
  absl::StrAppendFormat(&out, "    handover %s; unit decides %s later; joint outcome %s later\n",
                        days(m.handover), days(m.unit_decision), days(m.joint_outcome));
  absl::StrAppendFormat(&out,
                        "  a high THR moves %d points of the shares from declines to "
                        "investigation, an all-low THR back\n",
                        m.thr_shift);
  absl::StrAppendFormat(&out,
                        "  units decline %d%% of handovers; subjects: %d%% officers, "
                        "%d%% staff, %d%% associates (indirect route)\n",
                        m.unit_declines, m.roles[0], m.roles[1], m.roles[6]);
  return out;
}

}  // namespace sarloop::synth::exercise
