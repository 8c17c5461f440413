#include "tools/synth/invented.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/referral/outcomes.h"
#include "common/referral/validation.h"

namespace sarloop::synth {
namespace {

constexpr const char* kFirstNames[] = {
    "James",     "Oliver", "Harry",   "George",  "Jack",    "Thomas", "Daniel", "Mohammed",
    "Samuel",    "Joseph", "Ryan",    "Lewis",   "Connor",  "Adam",   "Liam",   "Mark",
    "Amelia",    "Olivia", "Emily",   "Jessica", "Sophie",  "Chloe",  "Hannah", "Grace",
    "Charlotte", "Lucy",   "Megan",   "Laura",   "Rebecca", "Aisha",  "Priya",  "Zoe",
    "Karen",     "Paul",   "Stephen", "Claire",  "Nicola",  "Gareth", "Dean",   "Kelly"};
constexpr const char* kLastNames[] = {
    "Smith",   "Jones",   "Williams", "Taylor",   "Brown",    "Davies",   "Evans",  "Wilson",
    "Thomas",  "Johnson", "Roberts",  "Robinson", "Thompson", "Wright",   "Walker", "White",
    "Edwards", "Hughes",  "Green",    "Hall",     "Lewis",    "Harris",   "Clarke", "Patel",
    "Jackson", "Wood",    "Turner",   "Martin",   "Cooper",   "Hill",     "Ward",   "Morris",
    "Moore",   "Clark",   "Lee",      "King",     "Baker",    "Harrison", "Morgan", "Khan"};
constexpr const char* kMiddleInitials = "ABCDEFGHJKLMNPRSTW";
constexpr const char* kStreets[] = {"High Street",   "Church Lane", "Station Road", "Mill Lane",
                                    "Victoria Road", "The Green",   "Park Avenue",  "Queens Road",
                                    "Manor Close",   "Orchard Way", "London Road",  "Kings Drive"};

// Towns near each organisation's area, for addresses.
std::vector<const char*> TownsOf(const std::string& org) {
  if (org == "NFK") return {"Norwich", "King's Lynn", "Great Yarmouth", "Thetford", "Cromer"};
  if (org == "SFK") return {"Ipswich", "Bury St Edmunds", "Lowestoft", "Felixstowe", "Sudbury"};
  if (org == "MPS") return {"London SE15", "London E17", "London N7", "London SW2", "Croydon"};
  if (org == "BF") return {"Dover", "Hounslow", "Folkestone", "Harwich", "Crawley"};
  return {"Chelmsford",      "Colchester", "Peterborough", "Luton",     "Cambridge",
          "Southend-on-Sea", "Watford",    "Basildon",     "Stevenage", "Ely"};
}

constexpr const char* kLearning[] = {
    "Business interest not declared; declaration process reinforced.",
    "Financial vulnerability not identified at re-vetting; welfare support offered.",
    "Associations with criminals not reported; supervisors briefed on reporting duty.",
    "Misuse of systems detected through audit; access controls reviewed.",
    "Gambling-related debt identified; referral to occupational health.",
    "",
};

}  // namespace

std::string Pounds(int64_t pence) {
  const int64_t pounds = pence / 100;
  std::string digits = absl::StrCat(pounds), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return absl::StrCat("GBP ", out);
}

absl::string_view RoleText(v1::SubjectRole role) {
  switch (role) {
    case v1::SUBJECT_ROLE_OFFICER:
      return "police officer";
    case v1::SUBJECT_ROLE_STAFF:
      return "member of police staff";
    case v1::SUBJECT_ROLE_SPECIAL_CONSTABLE:
      return "special constable";
    case v1::SUBJECT_ROLE_PCSO:
      return "PCSO";
    case v1::SUBJECT_ROLE_VOLUNTEER:
      return "police volunteer";
    case v1::SUBJECT_ROLE_CONTRACTOR:
      return "contractor";
    case v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE:
      return "family member or associate";
    case v1::SUBJECT_ROLE_OTHER_LAW_ENFORCEMENT:
      return "law-enforcement officer";
    default:
      return "person";
  }
}

std::string InventDob(Rng& rng) {
  return absl::StrFormat("%04d-%02d-%02d", rng.Between(1962, 2003), rng.Between(1, 12),
                         rng.Between(1, 28));
}

std::string InventName(Rng& rng) {
  std::string name = rng.Pick(kFirstNames);
  if (rng.Percent(40)) {
    absl::StrAppend(&name, " ", std::string(1, kMiddleInitials[rng.Below(18)]));
  }
  absl::StrAppend(&name, " ", rng.Pick(kLastNames));
  return name;
}

std::string InventAddress(Rng& rng, const std::string& org) {
  return absl::StrCat(rng.Between(1, 220), " ", rng.Pick(kStreets), ", ", rng.Pick(TownsOf(org)));
}

v1::OutcomeType FitOutcomeToRole(v1::OutcomeType type, v1::SubjectRole role) {
  if (CheckOutcomeFitsRole("type", type, role).ok()) return type;
  const v1::OutcomeTrack track = TrackOf(type);
  const bool heavy = track == v1::OUTCOME_TRACK_CONDUCT || track == v1::OUTCOME_TRACK_LISTING ||
                     type == v1::OUTCOME_TYPE_DISMISSED_AFTER_VETTING_WITHDRAWAL;
  switch (role) {
    case v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE:
    case v1::SUBJECT_ROLE_OTHER_LAW_ENFORCEMENT:
      return v1::OUTCOME_TYPE_INTELLIGENCE_ONLY;
    case v1::SUBJECT_ROLE_STAFF:
    case v1::SUBJECT_ROLE_PCSO:
      return heavy ? v1::OUTCOME_TYPE_STAFF_MISCONDUCT_PROCEDURE
                   : v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN;
    default:  // volunteers, contractors
      return heavy ? v1::OUTCOME_TYPE_CONTRACT_ENDED : v1::OUTCOME_TYPE_VETTING_CLEARANCE_WITHDRAWN;
  }
}

v1::Outcome PlainOutcome(Rng& rng, v1::OutcomeType type, v1::SubjectRole role,
                         v1::CorruptionCategory category) {
  using M = v1::MisconductResult;
  v1::Outcome o;
  o.set_type(type);
  switch (type) {
    case v1::OUTCOME_TYPE_MISCONDUCT_MEETING:
      if (rng.Between(0, 4) == 0) {
        o.set_finding(v1::CONDUCT_FINDING_NONE);
        o.set_misconduct_result(v1::MISCONDUCT_RESULT_REFLECTIVE_PRACTICE_REVIEW);
      } else {
        o.set_finding(v1::CONDUCT_FINDING_MISCONDUCT);
        o.set_misconduct_result(rng.Pick(std::vector<M>{
            v1::MISCONDUCT_RESULT_WRITTEN_WARNING, v1::MISCONDUCT_RESULT_WRITTEN_WARNING,
            v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING}));
      }
      break;
    case v1::OUTCOME_TYPE_MISCONDUCT_HEARING:
    case v1::OUTCOME_TYPE_ACCELERATED_HEARING:
      if (type == v1::OUTCOME_TYPE_MISCONDUCT_HEARING && rng.Between(0, 4) == 0) {
        o.set_finding(v1::CONDUCT_FINDING_MISCONDUCT);
        o.set_misconduct_result(rng.Pick(std::vector<M>{
            v1::MISCONDUCT_RESULT_WRITTEN_WARNING, v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING}));
      } else {
        o.set_finding(v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
        o.set_misconduct_result(rng.Pick(std::vector<M>{
            v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE,
            v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE,
            v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING, v1::MISCONDUCT_RESULT_REDUCTION_IN_RANK}));
      }
      break;
    case v1::OUTCOME_TYPE_CASE_TO_ANSWER:
      o.set_finding(rng.Between(0, 1) ? v1::CONDUCT_FINDING_GROSS_MISCONDUCT
                                      : v1::CONDUCT_FINDING_MISCONDUCT);
      break;
    default:
      break;
  }
  o.set_category(category);
  o.set_subject_role(role);
  o.set_learning_summary(rng.Pick(kLearning));
  return o;
}

}  // namespace sarloop::synth
