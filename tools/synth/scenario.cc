#include "tools/synth/scenario.h"

#include <algorithm>
#include <array>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/referral/outcomes.h"
#include "common/referral/validation.h"
#include "tools/synth/invented.h"

namespace sarloop::synth {
namespace {

constexpr const char* kSectors[] = {"bank",
                                    "bank",
                                    "bank",
                                    "building society",
                                    "money service business",
                                    "credit card issuer",
                                    "accountant",
                                    "solicitor",
                                    "estate agent",
                                    "gambling operator",
                                    "high value dealer"};
constexpr const char* kSectorPrefix[] = {"BNK", "BNK", "BNK", "BSC", "MSB", "CCI",
                                         "ACC", "SOL", "EST", "GMB", "HVD"};

// {amount}, {name} and {months} are filled in.
constexpr const char* kPatterns[] = {
    "Regular cash deposits totalling {amount} into the personal account of {name} over {months} "
    "months, inconsistent with the declared salary.",
    "Incoming transfers of {amount} to {name} from an account linked to a person under "
    "investigation for drug supply, over {months} months.",
    "Gambling spend of {amount} by {name} funded by unexplained third-party credits over {months} "
    "months.",
    "Payments of {amount} from {name} to a company whose director is a known associate of an "
    "organised crime group, over {months} months.",
    "Structured cash deposits ({amount} in total, each below reporting thresholds) by {name} over "
    "{months} months, followed by purchase of a high-value vehicle.",
    "Account held by {name} received {amount} from multiple unrelated individuals over {months} "
    "months; the customer could not explain the source.",
    "Loan applications by {name} over {months} months misstated income; {amount} of undisclosed "
    "credits identified.",
};

// What a force asks UKFIU during research, and the answer (invented; no person is named).
struct QuestionText {
  const char* question;
  const char* answer;
};
constexpr QuestionText kQuestions[] = {
    {"Please send the account statements for the last 12 months behind this report.",
     "Statements attached to the goAML record; credits are monthly salary and two cash deposits."},
    {"Does UKFIU hold any linked SARs on the same account or counterparties?",
     "Two linked SARs from 2024 on the same counterparty; references attached."},
    {"Can the reporter confirm the date of birth held for the account holder?",
     "The reporter confirms the date of birth as held in the SAR."},
    {"Is the money service business able to provide the full transaction list?",
     "Full transaction list received from the reporter and attached."},
};

struct DeclineText {
  v1::DeclineReason code;
  const char* text;
};
constexpr DeclineText kDeclineReasons[] = {
    {v1::DECLINE_REASON_NOT_OUR_EMPLOYEE,
     "Research found no link between the subject and the force's workforce."},
    {v1::DECLINE_REASON_ACTIVITY_EXPLAINED,
     "Activity explained by a documented inheritance; no corruption indicators."},
    {v1::DECLINE_REASON_ALREADY_KNOWN_AND_MANAGED,
     "Matter already known and managed under an existing business interest declaration."},
    {v1::DECLINE_REASON_INSUFFICIENT_IDENTIFIERS,
     "Insufficient information to identify the subject on force systems."},
    {v1::DECLINE_REASON_ALREADY_KNOWN_AND_MANAGED,
     "Known to the counter-corruption unit and managed under an intelligence development plan."},
    {v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION,
     "HR records show the subject is seconded from another organisation."},
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
constexpr const char* kRedirectReasons[] = {
    "Subject transferred to another force before the reported activity.",
    "Employer confirmed by vetting records as another organisation.",
};

class Builder {
 public:
  Builder(uint64_t seed, int sar_count) : rng_(seed), sar_count_(sar_count) {
    scenario_.seed = seed;
  }

  Scenario Build() {
    const int personnel_pool = std::max(3, sar_count_ / 40);
    const int associate_pool = std::max(3, sar_count_ / 50);
    for (int i = 0; i < personnel_pool; ++i) {
      recurring_personnel_.push_back(NewPersonnel(kForces[rng_.Weighted(kOrgWeights)]));
    }
    for (int i = 0; i < associate_pool; ++i) recurring_associates_.push_back(NewAssociate(""));
    for (int i = 0; i < sar_count_; ++i) {
      if (rng_.Percent(30)) {
        PersonnelSar();
      } else {
        OrdinarySar();
      }
    }
    AssignPaths();
    return std::move(scenario_);
  }

 private:
  // NFK, SFK, MPS, BF.
  static constexpr std::array<int, 4> kOrgWeights = {25, 20, 35, 20};

  int AddPerson(Person p) {
    // Keep (name, date of birth) unique so equal subject references mean the same person.
    std::string key;
    for (;;) {
      key = absl::StrCat(absl::AsciiStrToLower(p.full_name), "|", p.date_of_birth);
      if (keys_.insert(key).second) break;
      p.date_of_birth = RandomDob();
    }
    scenario_.persons.push_back(std::move(p));
    return static_cast<int>(scenario_.persons.size()) - 1;
  }

  std::string RandomDob() { return InventDob(rng_); }
  std::string RandomName() { return InventName(rng_); }
  std::string RandomAddress(const std::string& org) { return InventAddress(rng_, org); }

  int NewPersonnel(const std::string& org) {
    Person p;
    p.full_name = RandomName();
    p.date_of_birth = RandomDob();
    p.address = RandomAddress(org);
    p.employer = org;
    if (org == "BF") {
      static constexpr std::array<int, 3> kBf = {70, 20, 10};
      constexpr v1::SubjectRole kRoles[] = {v1::SUBJECT_ROLE_OTHER_LAW_ENFORCEMENT,
                                            v1::SUBJECT_ROLE_STAFF, v1::SUBJECT_ROLE_CONTRACTOR};
      p.role = kRoles[rng_.Weighted(kBf)];
    } else {
      static constexpr std::array<int, 6> kPolice = {55, 25, 5, 8, 2, 5};
      constexpr v1::SubjectRole kRoles[] = {
          v1::SUBJECT_ROLE_OFFICER, v1::SUBJECT_ROLE_STAFF,     v1::SUBJECT_ROLE_SPECIAL_CONSTABLE,
          v1::SUBJECT_ROLE_PCSO,    v1::SUBJECT_ROLE_VOLUNTEER, v1::SUBJECT_ROLE_CONTRACTOR};
      p.role = kRoles[rng_.Weighted(kPolice)];
    }
    return AddPerson(std::move(p));
  }

  int NewAssociate(const std::string& org) {
    Person p;
    p.full_name = RandomName();
    p.date_of_birth = RandomDob();
    p.address = RandomAddress(org);
    p.role = v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE;
    return AddPerson(std::move(p));
  }

  int NewMemberOfPublic() {
    Person p;
    p.full_name = RandomName();
    p.date_of_birth = RandomDob();
    if (rng_.Percent(70)) p.address = RandomAddress("");
    return AddPerson(std::move(p));
  }

  v1::Subject SubjectOf(int person) const {
    const Person& p = scenario_.persons[person];
    v1::Subject s;
    s.set_full_name(p.full_name);
    s.set_date_of_birth(p.date_of_birth);
    s.set_address(p.address);
    s.set_role(p.role);
    s.set_employer_code(p.employer);
    return s;
  }

  // Fills the report around its subjects; the narrative is about the first one.
  int AddSar(std::vector<int> persons) {
    SarPlan plan;
    const int sector = rng_.Below(static_cast<int>(std::size(kSectors)));
    plan.sar.set_reporter_sector(kSectors[sector]);
    plan.sar.set_reporter_reference(absl::StrFormat("%s-%d-%06d", kSectorPrefix[sector],
                                                    2023 + rng_.Below(2), rng_.Below(1000000)));
    const int64_t pence = int64_t{100} * rng_.Between(800, 250000);
    plan.sar.set_amount_pence(pence);
    const Person& main = scenario_.persons[persons[0]];
    const int months = rng_.Between(2, 30);
    std::string text =
        absl::StrReplaceAll(rng_.Pick(kPatterns), {{"{amount}", Pounds(pence)},
                                                   {"{name}", main.full_name},
                                                   {"{months}", absl::StrCat(months)}});
    if (!main.employer.empty()) {
      absl::StrAppend(&text, " Open-source and customer records indicate the subject is a ",
                      RoleText(main.role), ".");
    }
    for (size_t i = 1; i < persons.size(); ++i) {
      const Person& other = scenario_.persons[persons[i]];
      absl::StrAppend(&text, " Linked party: ", other.full_name, " (",
                      other.employer.empty()
                          ? std::string(RoleText(other.role))
                          : absl::StrCat(RoleText(other.role), ", ", other.employer),
                      ").");
    }
    plan.sar.set_narrative(text);
    // One report in twelve asks for consent to proceed (a DAML request), by index so the rest of
    // the scenario draws the same numbers.
    if (scenario_.sars.size() % 12 == 5) {
      plan.sar.set_daml(true);
      plan.sar.add_glossary_codes("XXS99XX");
    }
    for (int p : persons) *plan.sar.add_subjects() = SubjectOf(p);
    plan.persons = std::move(persons);
    scenario_.sars.push_back(std::move(plan));
    return static_cast<int>(scenario_.sars.size()) - 1;
  }

  v1::ThrAssessment Thr(int sar) {
    const SarPlan& plan = scenario_.sars[sar];
    const Person& main = scenario_.persons[plan.persons[0]];
    static constexpr std::array<int, 3> kLevels = {30, 45, 25};
    v1::ThrAssessment thr;
    thr.set_threat(static_cast<v1::ThrLevel>(1 + rng_.Weighted(kLevels)));
    thr.set_risk(static_cast<v1::ThrLevel>(1 + rng_.Weighted(kLevels)));
    thr.set_harm(static_cast<v1::ThrLevel>(1 + rng_.Weighted(kLevels)));
    thr.set_rationale(absl::StrCat(
        "Subject assessed as a serving ", RoleText(main.role), "; financial activity of ",
        Pounds(plan.sar.amount_pence()), " suggests ",
        rng_.Percent(50) ? "vulnerability to corruption through debt"
                         : "possible receipt of corrupt payments",
        ". Threat ", v1::ThrLevel_Name(thr.threat()).substr(10), ", risk ",
        v1::ThrLevel_Name(thr.risk()).substr(10), ", harm ",
        v1::ThrLevel_Name(thr.harm()).substr(10), ". Refer to the employing organisation."));
    return thr;
  }

  void AddReferral(int sar, const std::string& org) {
    ReferralPlan r;
    r.sar = sar;
    r.organisation = org;
    r.thr = Thr(sar);
    scenario_.referrals.push_back(std::move(r));
  }

  void PersonnelSar() {
    std::vector<int> persons;
    if (rng_.Percent(10)) {
      persons.push_back(rng_.Pick(recurring_personnel_));
    } else {
      persons.push_back(NewPersonnel(kForces[rng_.Weighted(kOrgWeights)]));
    }
    const std::string org = scenario_.persons[persons[0]].employer;
    std::string second_org;
    if (rng_.Percent(4)) {
      // A second member of personnel, of another organisation: referred to both.
      std::string other;
      do other = kForces[rng_.Weighted(kOrgWeights)];
      while (other == org);
      persons.push_back(NewPersonnel(other));
      second_org = other;
    }
    if (rng_.Percent(35)) {
      if (rng_.Percent(25)) {
        const int a = rng_.Pick(recurring_associates_);
        if (std::find(persons.begin(), persons.end(), a) == persons.end()) persons.push_back(a);
      } else {
        persons.push_back(NewAssociate(org));
      }
    }
    if (rng_.Percent(15)) persons.push_back(NewMemberOfPublic());
    const int sar = AddSar(std::move(persons));
    AddReferral(sar, org);
    if (!second_org.empty()) AddReferral(sar, second_org);
  }

  void OrdinarySar() {
    std::vector<int> persons;
    persons.push_back(NewMemberOfPublic());
    const int extra = rng_.Weighted(std::array<int, 3>{65, 28, 7});
    for (int i = 0; i < extra; ++i) persons.push_back(NewMemberOfPublic());
    // A non-police SAR that happens to name a recurring associate (the indirect link UKFIU may
    // not spot); not referred.
    if (rng_.Percent(3)) {
      const int a = rng_.Pick(recurring_associates_);
      if (std::find(persons.begin(), persons.end(), a) == persons.end()) persons.push_back(a);
    }
    AddSar(std::move(persons));
  }

  Path ChoosePath(const std::string& org, bool allow_ukfiu_action) {
    // silent, stalled, late close, decline, close, unit outcome, unit open, unit declined then
    // close, unit declined then decline, withdrawn, redirected.
    std::array<int, kPathCount> w = {6, 4, 4, 14, 22, 30, 4, 5, 3, 4, 4};
    if (UnitOf(org).empty()) w = {6, 4, 4, 18, 60, 0, 0, 0, 0, 4, 4};
    // Handed to the unit as it arrives: the force's own paths do not occur.
    // Not redirected: UKFIU's redirect would race the handover on receipt.
    if (HandsOverOnReceipt(org)) w = {0, 0, 0, 0, 0, 30, 4, 5, 3, 4, 0};
    if (!allow_ukfiu_action) w[9] = w[10] = 0;
    return static_cast<Path>(rng_.Weighted(w));
  }

  // Every outcome a referral can end with (not DISMISSED, read from old data only), in enum
  // order; an open one (charged, a case to answer) stands for its track's interim status.
  static const std::vector<v1::OutcomeType>& EveryOutcome() {
    static const auto* every = [] {
      auto* v = new std::vector<v1::OutcomeType>;
      for (int t = v1::OutcomeType_MIN + 1; t <= v1::OutcomeType_MAX; ++t) {
        if (v1::OutcomeType_IsValid(t) && t != v1::OUTCOME_TYPE_DISMISSED &&
            t != v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL) {
          v->push_back(static_cast<v1::OutcomeType>(t));
        }
      }
      return v;
    }();
    return *every;
  }

  v1::Outcome ForceOutcome(ReferralPlan& r) {
    // The force itself closes: mostly lower-level outcomes; MPS investigates everything itself.
    using T = v1::OutcomeType;
    static constexpr T kTypes[] = {v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER,
                                   v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE,
                                   v1::OUTCOME_TYPE_MISCONDUCT_MEETING,
                                   v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
                                   v1::OUTCOME_TYPE_ACCELERATED_HEARING,
                                   v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION,
                                   v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN,
                                   v1::OUTCOME_TYPE_CRIMINAL_NO_FURTHER_ACTION,
                                   v1::OUTCOME_TYPE_CRIMINAL_CHARGED,
                                   v1::OUTCOME_TYPE_CRIMINAL_CONVICTED,
                                   v1::OUTCOME_TYPE_CRIMINAL_ACQUITTED,
                                   v1::OUTCOME_TYPE_INTELLIGENCE_ONLY};
    std::array<int, 12> w = {20, 15, 12, 4, 2, 2, 8, 2, 1, 1, 0, 25};
    if (UnitOf(r.organisation).empty()) w = {18, 14, 12, 8, 4, 3, 7, 5, 4, 3, 2, 14};
    return OutcomeOf(r, kTypes[rng_.Weighted(w)]);
  }

  // The outcome `type` for referral r's subject, fitted to the person (another route when the
  // type is not open to their role). An open type becomes an interim status (r.interim) followed
  // by a final outcome on the same track.
  v1::Outcome OutcomeOf(ReferralPlan& r, v1::OutcomeType type) {
    const Person& main = scenario_.persons[scenario_.sars[r.sar].persons[0]];
    // The subject of a referral to a second organisation is that organisation's member.
    v1::SubjectRole role = main.role;
    for (int p : scenario_.sars[r.sar].persons) {
      if (scenario_.persons[p].employer == r.organisation) role = scenario_.persons[p].role;
    }
    type = FitOutcomeToRole(type, role);
    if (IsOpenOutcome(type)) {
      r.interim = Plain(type, role);
      type = type == v1::OUTCOME_TYPE_CRIMINAL_CHARGED
                 ? (rng_.Between(0, 3) == 0 ? v1::OUTCOME_TYPE_CRIMINAL_ACQUITTED
                                            : v1::OUTCOME_TYPE_CRIMINAL_CONVICTED)
                 : (rng_.Between(0, 2) == 0 ? v1::OUTCOME_TYPE_MISCONDUCT_MEETING
                                            : v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
    }
    v1::Outcome o = Plain(type, role);
    // The NCA learns the same category on every track of one referral.
    if (r.interim.type() != v1::OUTCOME_TYPE_UNSPECIFIED) r.interim.set_category(o.category());
    return o;
  }

  // One outcome of `type` for a subject of `role`, in any category.
  v1::Outcome Plain(v1::OutcomeType type, v1::SubjectRole role) {
    return PlainOutcome(rng_, type, role, static_cast<v1::CorruptionCategory>(rng_.Between(1, 12)));
  }

  // Fills path-specific details for referral i.
  void Detail(int i) {
    ReferralPlan& r = scenario_.referrals[i];
    r.indirect = rng_.Percent(10);
    switch (r.path) {
      case Path::kDecline:
      case Path::kUnitDeclinedThenDecline: {
        const DeclineText& d = rng_.Pick(kDeclineReasons);
        r.reason = d.text;
        r.decline_code = d.code;
        if (d.code == v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION) {
          // The employer: another organisation of the local chain.
          do r.named_employer = rng_.Pick(kForces);
          while (r.named_employer == r.organisation);
        }
        break;
      }
      case Path::kWithdrawn:
        r.reason = rng_.Pick(kWithdrawReasons);
        r.acknowledged_before_withdrawal = !HandsOverOnReceipt(r.organisation) && rng_.Percent(50);
        break;
      case Path::kRedirected:
        r.reason = rng_.Pick(kRedirectReasons);
        break;
      default:
        break;
    }
    if (HandedOver(r.path)) {
      r.handover_notes =
          absl::StrCat("Vetting file reviewed; subject's financial disclosures do not account for ",
                       Pounds(scenario_.sars[r.sar].sar.amount_pence()),
                       ". Covert financial investigation and lifestyle analysis required.");
    }
    if (AssistanceDeclined(r.path)) r.assistance_reason = rng_.Pick(kAssistanceReasons);
    // Every third referral a force researches and decides itself starts with a question to UKFIU
    // (by index, so the rest of the scenario draws the same numbers as before).
    const bool decided_by_force = r.path == Path::kDecline || r.path == Path::kClose ||
                                  (HandedOver(r.path) && !HandsOverOnReceipt(r.organisation));
    // One in five of the cases a force closes or a unit concludes is referred to the IOPC, which
    // decides the force investigates under its direction.
    r.iopc = (r.path == Path::kClose || r.path == Path::kUnitOutcome) &&
             !HandsOverOnReceipt(r.organisation) && i % 5 == 2;
    if (decided_by_force && i % 3 == 0) {
      const QuestionText& q = kQuestions[(i / 3) % std::size(kQuestions)];
      r.question = q.question;
      r.answer = q.answer;
    }
    if (HandedOver(r.path)) {
      r.unit = UnitOf(r.organisation);
      if (r.organisation == "NFK" && rng_.Percent(20)) r.unit = "NCAACU";
      const int highs =
          (r.thr.threat() == v1::THR_LEVEL_HIGH) + (r.thr.harm() == v1::THR_LEVEL_HIGH);
      r.priority = highs == 2                ? v1::PRIORITY_P1
                   : highs == 1              ? v1::PRIORITY_P2
                   : rng_.Between(0, 3) == 0 ? v1::PRIORITY_P4
                                             : v1::PRIORITY_P3;
      // A case still open at the end reports at 30 days and must not be due again before the
      // scenario's last clock jump (58 days): at most P2's 60-day interval.
      if (r.path == Path::kUnitOpen && r.priority == v1::PRIORITY_P1) r.priority = v1::PRIORITY_P2;
    }
    if (r.path == Path::kUnitOutcome) {
      // Every outcome type appears among unit outcomes before any repeats.
      const int k = unit_outcomes_++;
      const std::vector<v1::OutcomeType>& every = EveryOutcome();
      const v1::OutcomeType type = k < static_cast<int>(every.size()) ? every[k] : rng_.Pick(every);
      r.outcome = OutcomeOf(scenario_.referrals[i], type);
    } else if (HasOutcome(r.path)) {
      r.outcome = ForceOutcome(r);
    }
  }

  void AssignPaths() {
    const int direct = static_cast<int>(scenario_.referrals.size());
    for (int i = 0; i < direct; ++i) {
      scenario_.referrals[i].path = ChoosePath(scenario_.referrals[i].organisation, true);
      Detail(i);
      if (scenario_.referrals[i].path != Path::kRedirected) continue;
      // The new organisation must not already have a referral from the same SAR.
      std::set<std::string> taken;
      for (const ReferralPlan& other : scenario_.referrals) {
        if (other.sar == scenario_.referrals[i].sar) taken.insert(other.organisation);
      }
      std::vector<std::string> options;
      for (const char* f : kForces) {
        if (!taken.count(f)) options.push_back(f);
      }
      ReferralPlan next;
      next.sar = scenario_.referrals[i].sar;
      next.organisation = rng_.Pick(options);
      next.thr = Thr(next.sar);
      next.redirected_from = i;
      next.path = ChoosePath(next.organisation, false);
      scenario_.referrals.push_back(std::move(next));
      const int j = static_cast<int>(scenario_.referrals.size()) - 1;
      scenario_.referrals[i].redirect_to = j;
      Detail(j);
    }
  }

  Rng rng_;
  const int sar_count_;
  Scenario scenario_;
  std::set<std::string> keys_;
  std::vector<int> recurring_personnel_;
  std::vector<int> recurring_associates_;
  int unit_outcomes_ = 0;
};

}  // namespace

std::string UnitOf(const std::string& force) {
  if (force == "NFK" || force == "SFK") return "ERSOU";
  if (force == "BF") return "NCAACU";
  return "";
}

bool HandsOverOnReceipt(const std::string& force) { return force == "BF"; }

absl::string_view PathName(Path path) {
  switch (path) {
    case Path::kSilent:
      return "silent";
    case Path::kStalled:
      return "acknowledged-then-silent";
    case Path::kLateClose:
      return "closed-after-reminder";
    case Path::kDecline:
      return "declined-by-force";
    case Path::kClose:
      return "closed-by-force";
    case Path::kUnitOutcome:
      return "unit-outcome";
    case Path::kUnitOpen:
      return "unit-investigation-open";
    case Path::kUnitDeclinedThenClose:
      return "unit-declined-force-closed";
    case Path::kUnitDeclinedThenDecline:
      return "unit-declined-force-declined";
    case Path::kWithdrawn:
      return "withdrawn";
    case Path::kRedirected:
      return "redirected";
  }
  return "?";
}

v1::ReferralState StateBeforeClock(Path path) {
  return path == Path::kLateClose ? v1::REFERRAL_STATE_UNDER_RESEARCH : FinalState(path);
}

v1::ReferralState FinalState(Path path) {
  switch (path) {
    case Path::kSilent:
      return v1::REFERRAL_STATE_RECEIVED;
    case Path::kStalled:
      return v1::REFERRAL_STATE_ACKNOWLEDGED;
    case Path::kLateClose:
    case Path::kClose:
    case Path::kUnitDeclinedThenClose:
      return v1::REFERRAL_STATE_CLOSED_BY_FORCE;
    case Path::kDecline:
    case Path::kUnitDeclinedThenDecline:
      return v1::REFERRAL_STATE_DECLINED_BY_FORCE;
    case Path::kUnitOutcome:
      return v1::REFERRAL_STATE_OUTCOME_RECORDED;
    case Path::kUnitOpen:
      return v1::REFERRAL_STATE_JOINT_INVESTIGATION;
    case Path::kWithdrawn:
      return v1::REFERRAL_STATE_WITHDRAWN;
    case Path::kRedirected:
      return v1::REFERRAL_STATE_REDIRECTED;
  }
  return v1::REFERRAL_STATE_UNSPECIFIED;
}

bool HandedOver(Path p) {
  return p == Path::kUnitOutcome || p == Path::kUnitOpen || AssistanceDeclined(p);
}
bool AssistanceDeclined(Path p) {
  return p == Path::kUnitDeclinedThenClose || p == Path::kUnitDeclinedThenDecline;
}
bool Reminded(Path p) { return Escalated(p) || p == Path::kLateClose; }
bool Escalated(Path p) { return p == Path::kSilent || p == Path::kStalled; }
bool OpenAtEnd(Path p) { return p == Path::kSilent || p == Path::kStalled || p == Path::kUnitOpen; }
bool OverdueAtEnd(Path p) { return p == Path::kSilent || p == Path::kStalled; }
bool HasOutcome(Path p) {
  return p == Path::kLateClose || p == Path::kClose || p == Path::kUnitOutcome ||
         p == Path::kUnitDeclinedThenClose;
}
bool DeclinedByForce(Path p) { return p == Path::kDecline || p == Path::kUnitDeclinedThenDecline; }

Scenario MakeScenario(uint64_t seed, int sar_count) { return Builder(seed, sar_count).Build(); }

std::map<std::string, OrgTally> Tally(const Scenario& scenario) {
  std::map<std::string, OrgTally> out;
  for (const ReferralPlan& r : scenario.referrals) {
    OrgTally& t = out[r.organisation];
    ++t.referred;
    if (HasOutcome(r.path) || DeclinedByForce(r.path)) ++t.feedback_received;
    if (DeclinedByForce(r.path)) ++t.declined_by_force;
    if (r.path == Path::kWithdrawn) ++t.withdrawn;
    if (r.path == Path::kRedirected) ++t.redirected;
    if (OpenAtEnd(r.path)) ++t.open;
    if (OverdueAtEnd(r.path)) ++t.overdue;
    if (Escalated(r.path)) ++t.escalated;
    // A force that hands over on receipt has done so whatever UKFIU did afterwards.
    if (HandedOver(r.path) || HandsOverOnReceipt(r.organisation)) ++t.handed_over;
    if (AssistanceDeclined(r.path)) ++t.assistance_declined;
    if (Reminded(r.path)) ++t.reminded;
    if (HasOutcome(r.path)) ++t.outcomes[r.outcome.type()];
  }
  return out;
}

namespace {
bool SharePerson(const Scenario& s, int a, int b) {
  const auto& pa = s.sars[s.referrals[a].sar].persons;
  const auto& pb = s.sars[s.referrals[b].sar].persons;
  for (int x : pa) {
    if (std::find(pb.begin(), pb.end(), x) != pb.end()) return true;
  }
  return false;
}
bool SameLineage(const Scenario& s, int a, int b) {
  return s.referrals[a].redirect_to == b || s.referrals[b].redirect_to == a;
}
}  // namespace

std::vector<std::set<std::string>> DeconflictionAllowed(const Scenario& s) {
  const int n = static_cast<int>(s.referrals.size());
  std::vector<std::set<std::string>> out(n);
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b || s.referrals[a].organisation == s.referrals[b].organisation) continue;
      if (SameLineage(s, a, b) || !SharePerson(s, a, b)) continue;
      out[a].insert(s.referrals[b].organisation);
    }
  }
  return out;
}

std::vector<std::pair<int, int>> DeconflictionPairs(const Scenario& s) {
  std::vector<std::pair<int, int>> out;
  const int n = static_cast<int>(s.referrals.size());
  for (int a = 0; a < n; ++a) {
    if (s.referrals[a].redirected_from >= 0) continue;
    for (int b = a + 1; b < n; ++b) {
      if (s.referrals[b].redirected_from >= 0) continue;
      if (s.referrals[a].organisation == s.referrals[b].organisation) continue;
      if (SharePerson(s, a, b)) out.emplace_back(a, b);
    }
  }
  return out;
}

}  // namespace sarloop::synth
