#include "tools/synth/persons.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace sarloop::synth {
namespace {

// Lists roughly in order of frequency in England and Wales; the Zipf draw below gives the order
// its weight.
constexpr const char* kMaleNames[] = {
    "David",     "John",     "Michael", "Paul",        "Andrew",   "Mark",     "James",   "Richard",
    "Robert",    "Peter",    "Stephen", "Christopher", "Daniel",   "Thomas",   "Matthew", "William",
    "Simon",     "Ian",      "Anthony", "Steven",      "Jonathan", "Gary",     "Martin",  "Kevin",
    "Alan",      "Nicholas", "Lee",     "Neil",        "Adam",     "Benjamin", "Graham",  "Jason",
    "Philip",    "Colin",    "Samuel",  "Joseph",      "Edward",   "Craig",    "Dean",    "Keith",
    "Brian",     "Darren",   "Shaun",   "Wayne",       "Stuart",   "Barry",    "Kenneth", "Luke",
    "Jack",      "Oliver",   "Harry",   "George",      "Charles",  "Ryan",     "Liam",    "Jamie",
    "Alexander", "Patrick",  "Timothy", "Gareth",      "Russell",  "Nathan",   "Joshua",  "Scott",
    "Frank",     "Raymond",  "Trevor",  "Derek",       "Gordon",   "Henry",    "Hugh",    "Karl",
    "Mohammed",  "Ahmed",    "Ali",     "Hassan",      "Arjun",    "Rajesh",   "Tomasz",  "Piotr"};
constexpr const char* kFemaleNames[] = {
    "Sarah",     "Claire",     "Emma",      "Nicola",   "Helen",     "Rachel",  "Susan",
    "Karen",     "Julie",      "Elizabeth", "Louise",   "Lisa",      "Joanne",  "Jennifer",
    "Catherine", "Amanda",     "Victoria",  "Michelle", "Rebecca",   "Laura",   "Samantha",
    "Jane",      "Alison",     "Deborah",   "Caroline", "Kelly",     "Gemma",   "Hannah",
    "Charlotte", "Katherine",  "Margaret",  "Patricia", "Angela",    "Tracey",  "Donna",
    "Dawn",      "Jacqueline", "Anne",      "Mary",     "Christine", "Sophie",  "Lucy",
    "Emily",     "Amy",        "Jessica",   "Natalie",  "Zoe",       "Kate",    "Olivia",
    "Amelia",    "Isabella",   "Grace",     "Chloe",    "Megan",     "Lauren",  "Stephanie",
    "Joanna",    "Fiona",      "Heather",   "Kirsty",   "Leanne",    "Melanie", "Ruth",
    "Sharon",    "Wendy",      "Gillian",   "Lynne",    "Diane",     "Carol",   "Janet",
    "Beverley",  "Teresa",     "Fatima",    "Aisha",    "Priya",     "Anita",   "Agnieszka",
    "Katarzyna", "Siobhan",    "Niamh"};
constexpr const char* kSurnames[] = {
    "Smith",      "Jones",     "Williams",   "Taylor",    "Brown",     "Davies",     "Evans",
    "Wilson",     "Thomas",    "Johnson",    "Roberts",   "Robinson",  "Thompson",   "Wright",
    "Walker",     "White",     "Edwards",    "Hughes",    "Green",     "Hall",       "Lewis",
    "Harris",     "Clarke",    "Patel",      "Jackson",   "Wood",      "Turner",     "Martin",
    "Cooper",     "Hill",      "Ward",       "Morris",    "Moore",     "Clark",      "Lee",
    "King",       "Baker",     "Harrison",   "Morgan",    "Allen",     "James",      "Scott",
    "Phillips",   "Watson",    "Davis",      "Parker",    "Price",     "Bennett",    "Young",
    "Griffiths",  "Mitchell",  "Kelly",      "Cook",      "Carter",    "Richardson", "Bailey",
    "Collins",    "Bell",      "Shaw",       "Murphy",    "Miller",    "Cox",        "Richards",
    "Khan",       "Marshall",  "Anderson",   "Simpson",   "Ellis",     "Adams",      "Singh",
    "Begum",      "Wilkinson", "Foster",     "Chapman",   "Powell",    "Webb",       "Rogers",
    "Gray",       "Mason",     "Ali",        "Hunt",      "Hussain",   "Campbell",   "Matthews",
    "Owen",       "Palmer",    "Holmes",     "Mills",     "Barnes",    "Knight",     "Lloyd",
    "Butler",     "Russell",   "Barker",     "Fisher",    "Stevens",   "Jenkins",    "Murray",
    "Dixon",      "Harvey",    "Graham",     "Pearson",   "Ahmed",     "Fletcher",   "Walsh",
    "Kaur",       "Gibson",    "Howard",     "Andrews",   "Stewart",   "Elliott",    "Reynolds",
    "Saunders",   "Payne",     "Fox",        "Ford",      "Pearce",    "Day",        "Brooks",
    "West",       "Lawrence",  "Cole",       "Atkinson",  "Bradley",   "Spencer",    "Gill",
    "Dawson",     "Ball",      "Burton",     "O'Brien",   "Watts",     "Rose",       "Booth",
    "Perry",      "Ryan",      "Grant",      "Wells",     "Armstrong", "Francis",    "Rees",
    "Hayes",      "Hart",      "Hudson",     "Newman",    "Barrett",   "Webster",    "Hunter",
    "Gregory",    "Carr",      "Lowe",       "Page",      "Marsh",     "Riley",      "Dunn",
    "Woods",      "Parsons",   "Berry",      "Stone",     "Reid",      "Holland",    "Hawkins",
    "Harding",    "Porter",    "Robertson",  "Newton",    "Oliver",    "Reed",       "Kennedy",
    "Williamson", "Bird",      "Gardner",    "Shah",      "Dean",      "Lane",       "Cooke",
    "Bates",      "Henderson", "Parry",      "Burgess",   "Bishop",    "Walton",     "Burns",
    "Nicholson",  "Shepherd",  "Ross",       "Cross",     "Long",      "Freeman",    "Warren",
    "Nicholls",   "Hamilton",  "Byrne",      "Sutton",    "McDonald",  "Yates",      "Hodgson",
    "Robson",     "Curtis",    "Hopkins",    "O'Connor",  "Harper",    "Coleman",    "Watkins",
    "Moss",       "McCarthy",  "Chambers",   "O'Neill",   "Griffin",   "Sharp",      "Hardy",
    "Wheeler",    "Potter",    "Osborne",    "Johnston",  "Gordon",    "Doyle",      "Wallace",
    "George",     "Jordan",    "Hutchinson", "Rowe",      "Burke",     "May",        "Pritchard",
    "Gilbert",    "Willis",    "Higgins",    "Read",      "Miles",     "Stevenson",  "Stephenson",
    "Hammond",    "Arnold",    "Buckley",    "Walters",   "Hewitt",    "Barber",     "Nelson",
    "Slater",     "Austin",    "Sullivan",   "Whitehead", "Mann",      "Frost",      "Lambert",
    "Nowak",      "Kowalski",  "Okafor",     "Mensah",    "Chowdhury", "Mahmood",    "Sharma"};
constexpr std::pair<const char*, const char*> kNicknames[] = {
    {"William", "Bill"},      {"William", "Will"},      {"Robert", "Bob"},
    {"Robert", "Rob"},        {"Richard", "Dick"},      {"Richard", "Rich"},
    {"James", "Jim"},         {"James", "Jimmy"},       {"Michael", "Mike"},
    {"Michael", "Mick"},      {"Christopher", "Chris"}, {"Anthony", "Tony"},
    {"Andrew", "Andy"},       {"Stephen", "Steve"},     {"Steven", "Steve"},
    {"Thomas", "Tom"},        {"Daniel", "Dan"},        {"Matthew", "Matt"},
    {"Nicholas", "Nick"},     {"Jonathan", "Jon"},      {"Benjamin", "Ben"},
    {"Samuel", "Sam"},        {"Joseph", "Joe"},        {"Edward", "Ted"},
    {"Edward", "Eddie"},      {"Kenneth", "Ken"},       {"Alexander", "Alex"},
    {"Patrick", "Paddy"},     {"Timothy", "Tim"},       {"Philip", "Phil"},
    {"David", "Dave"},        {"Peter", "Pete"},        {"Charles", "Charlie"},
    {"Henry", "Harry"},       {"Joshua", "Josh"},       {"Elizabeth", "Liz"},
    {"Elizabeth", "Beth"},    {"Catherine", "Kate"},    {"Katherine", "Kathy"},
    {"Jennifer", "Jenny"},    {"Rebecca", "Becky"},     {"Samantha", "Sam"},
    {"Victoria", "Vicky"},    {"Margaret", "Maggie"},   {"Patricia", "Pat"},
    {"Jacqueline", "Jackie"}, {"Deborah", "Debbie"},    {"Susan", "Sue"},
    {"Nicola", "Nicky"},      {"Alison", "Ali"},        {"Christine", "Chris"},
    {"Jessica", "Jess"},      {"Stephanie", "Steph"},   {"Joanne", "Jo"},
    {"Amanda", "Mandy"},      {"Caroline", "Carrie"},   {"Gillian", "Jill"}};
constexpr std::pair<const char*, const char*> kTowns[] = {
    {"Norwich", "NR"},    {"Ipswich", "IP"},      {"Cambridge", "CB"},  {"Chelmsford", "CM"},
    {"Colchester", "CO"}, {"Peterborough", "PE"}, {"Luton", "LU"},      {"Bedford", "MK"},
    {"Leeds", "LS"},      {"Bradford", "BD"},     {"Sheffield", "S"},   {"Manchester", "M"},
    {"Liverpool", "L"},   {"Birmingham", "B"},    {"Coventry", "CV"},   {"Leicester", "LE"},
    {"Nottingham", "NG"}, {"Derby", "DE"},        {"Bristol", "BS"},    {"Exeter", "EX"},
    {"Plymouth", "PL"},   {"Southampton", "SO"},  {"Portsmouth", "PO"}, {"Brighton", "BN"},
    {"Reading", "RG"},    {"Oxford", "OX"},       {"Guildford", "GU"},  {"Maidstone", "ME"},
    {"Canterbury", "CT"}, {"Newcastle", "NE"},    {"Sunderland", "SR"}, {"Durham", "DH"},
    {"York", "YO"},       {"Hull", "HU"},         {"Lincoln", "LN"},    {"Cardiff", "CF"},
    {"Swansea", "SA"},    {"Preston", "PR"},      {"Bolton", "BL"},     {"Croydon", "CR"},
    {"Romford", "RM"},    {"Harrow", "HA"},       {"Enfield", "EN"},    {"Kingston", "KT"}};
constexpr const char* kStreets[] = {
    "High",       "Church",      "Station",     "Main",         "Park",        "Victoria",
    "Green",      "Manor",       "Mill",        "School",       "Queens",      "Kings",
    "New",        "Grange",      "Chestnut",    "Oak",          "Elm",         "Willow",
    "Beech",      "Ash",         "Maple",       "Cedar",        "Hawthorn",    "Meadow",
    "Orchard",    "Springfield", "Highfield",   "Windsor",      "Albert",      "York",
    "Richmond",   "Alexandra",   "Clarence",    "Stanley",      "Nelson",      "Wellington",
    "Cromwell",   "Hampton",     "Fairfield",   "Woodland",     "Brook",       "Bridge",
    "Castle",     "Abbey",       "Priory",      "Chapel",       "Market",      "Mount",
    "North",      "South",       "West",        "East",         "Sandringham", "Salisbury",
    "Devonshire", "Grosvenor",   "Marlborough", "Beaconsfield", "Gladstone",   "Palmerston",
    "Hazel",      "Rowan",       "Holly",       "Lime",         "Poplar",      "Sycamore",
    "Laburnum",   "Lavender",    "Primrose",    "Rosemary",     "Heather",     "Foxglove",
    "Kingfisher", "Skylark",     "Heron",       "Swallow",      "Mulberry",    "Juniper",
    "Cherry",     "Pear",        "Bramble",     "Thistle",      "Clover",      "Jubilee",
    "Coronation", "Railway",     "Canal",       "Riverside",    "Lakeside",    "Hillside",
    "Valley",     "Ridgeway",    "Parkside",    "Southfield",   "Northfield",  "Westfield",
    "Eastfield",  "Broad",       "Long",        "Shore",        "Cliff",       "Dale",
    "Moor",       "Heath",       "Common"};
constexpr std::pair<const char*, const char*> kSuffixes[] = {
    {"Road", "Rd"},       {"Street", "St"}, {"Lane", "Ln"},  {"Avenue", "Ave"},
    {"Close", "Cl"},      {"Drive", "Dr"},  {"Way", "Wy"},   {"Gardens", "Gdns"},
    {"Crescent", "Cres"}, {"Grove", "Gro"}, {"Place", "Pl"}, {"Terrace", "Terr"},
    {"Court", "Ct"},      {"Park", "Pk"},   {"Green", "Grn"}};
constexpr char kPostcodeLetters[] = "ABDEFGHJLNPQRSTUWXYZ";
// Beyond the common surnames, a long tail of rarer ones built from English place-name parts.
constexpr const char* kSurnameHeads[] = {
    "Ash",    "Black",  "Brad",  "Broad", "Brook", "Cal",   "Castle", "Chad",  "Cold", "Craw",
    "Dun",    "East",   "Elm",   "Fair",  "Farn",  "Fern",  "Gold",   "Green", "Hal",  "Ham",
    "Hart",   "Hather", "Hay",   "Holl",  "Horn",  "Kings", "Lang",   "Lea",   "Lock", "Long",
    "Mar",    "Mid",    "Mill",  "Moor",  "New",   "North", "Oak",    "Pen",   "Red",  "Rich",
    "Rother", "Ship",   "South", "Stam",  "Stan",  "Thorn", "Tun",    "Wad",   "Walm", "West",
    "Whit",   "Wick",   "Wil",   "Win",   "Wood",  "Wor",   "Yar",    "Bur",   "Cran", "Dal"};
constexpr const char* kSurnameTails[] = {
    "ley",   "ton",  "worth", "field", "ford", "well",  "wood",  "by",     "ham",    "bridge",
    "combe", "dale", "den",   "hurst", "more", "stead", "wick",  "thorpe", "ridge",  "burn",
    "cott",  "gate", "holme", "land",  "low",  "mer",   "ney",   "sall",   "shaw",   "stone",
    "wall",  "win",  "ing",   "er",    "ell",  "lock",  "croft", "brook",  "cliffe", "hill"};

template <typename T, size_t N>
constexpr size_t Count(const T (&)[N]) {
  return N;
}

// Zipf-Mandelbrot over n items: index i has weight 1/(i + offset).
class Zipf {
 public:
  explicit Zipf(size_t n, double offset = 1) : cumulative_(n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) cumulative_[i] = sum += 1.0 / (i + offset);
  }
  size_t operator()(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, cumulative_.back())(rng);
    return std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin();
  }

 private:
  std::vector<double> cumulative_;
};

struct Address {
  std::string line;      // "12 Church Road, Norwich"
  std::string postcode;  // "NR3 1AB"
  // The parts, for reformatting.
  int number = 0;
  size_t street = 0, suffix = 0, town = 0;
};

class Generator {
 public:
  explicit Generator(uint64_t seed)
      : rng_(seed),
        male_(Count(kMaleNames), 10),
        female_(Count(kFemaleNames), 10),
        surname_(Count(kSurnames), 8),
        street_(Count(kStreets), 5),
        town_(Count(kTowns), 10) {}

  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::string GivenName(bool female) {
    return female ? kFemaleNames[female_(rng_)] : kMaleNames[male_(rng_)];
  }
  std::string GivenNames(bool female) {
    std::string given = GivenName(female);
    if (Chance(0.3)) {
      std::string middle = GivenName(female);
      if (middle != given) absl::StrAppend(&given, " ", middle);
    }
    return given;
  }
  // Calibrated to England and Wales: Smith about 1.2% of people, the common list about 35%.
  std::string Surname() {
    if (Chance(0.35)) return kSurnames[surname_(rng_)];
    return absl::StrCat(kSurnameHeads[Uniform(0, Count(kSurnameHeads) - 1)],
                        kSurnameTails[Uniform(0, Count(kSurnameTails) - 1)]);
  }

  std::string DateOfBirth(int min_age, int max_age) {
    const int year = 2026 - Uniform(min_age, max_age);
    const int month = Uniform(1, 12);
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const int day = Uniform(1, kDays[month - 1]);
    return absl::StrFormat("%04d-%02d-%02d", year, month, day);
  }

  Address NewAddress() {
    Address a;
    a.number = std::min(Uniform(1, 40), Uniform(1, 240));
    a.street = street_(rng_);
    a.suffix = static_cast<size_t>(Uniform(0, Count(kSuffixes) - 1));
    a.town = town_(rng_) % Count(kTowns);
    a.line = absl::StrCat(a.number, " ", kStreets[a.street], " ", kSuffixes[a.suffix].first, ", ",
                          kTowns[a.town].first);
    // The postcode follows the street, as a real one does: the same street in the same town
    // always has the same district and sector.
    const uint64_t h = (a.street * 131 + a.suffix) * 1009 + a.town;
    const int district = 1 + static_cast<int>(h % 29);
    const int sector = static_cast<int>((h / 29) % 10);
    const int unit = static_cast<int>((h / 290 + a.number / 10) % 400);
    a.postcode = absl::StrCat(kTowns[a.town].second, district, " ", sector,
                              std::string(1, kPostcodeLetters[unit % 20]),
                              std::string(1, kPostcodeLetters[unit / 20]));
    return a;
  }

  linkage::PersonFields NewPerson(int min_age, int max_age, const Address& address) {
    const bool female = Chance(0.5);
    linkage::PersonFields p;
    p.given_names = GivenNames(female);
    p.surname = Surname();
    p.date_of_birth = DateOfBirth(min_age, max_age);
    p.address = address.line;
    p.postcode = address.postcode;
    return p;
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  Zipf male_, female_, surname_, street_, town_;
};

std::string Typo(Generator& g, const std::string& word) {
  if (word.size() < 3) return word;
  std::string w = word;
  const int i = g.Uniform(1, static_cast<int>(w.size()) - 2);
  const char letter = static_cast<char>('a' + g.Uniform(0, 25));
  switch (g.Uniform(0, 3)) {
    case 0:
      w.insert(w.begin() + i, letter);
      break;
    case 1:
      w.erase(w.begin() + i);
      break;
    case 2:
      w[i] = letter == w[i] ? static_cast<char>('a' + (letter - 'a' + 1) % 26) : letter;
      break;
    default:
      std::swap(w[i], w[i + 1]);
      break;
  }
  return w;
}

std::string Reformat(Generator& g, const std::string& line, const std::string& postcode,
                     std::string* new_postcode) {
  std::vector<std::string> words = absl::StrSplit(line, ' ');
  for (std::string& w : words) {
    for (const auto& [full, abbreviation] : kSuffixes) {
      if (w == full && g.Chance(0.7)) w = abbreviation;
    }
  }
  std::string out = absl::StrJoin(words, " ");
  if (g.Chance(0.5)) out = absl::AsciiStrToUpper(out);
  if (g.Chance(0.5)) absl::StrReplaceAll({{",", ""}}, &out);
  *new_postcode = postcode;
  if (g.Chance(0.5)) absl::StrReplaceAll({{" ", ""}}, new_postcode);
  if (g.Chance(0.3)) *new_postcode = absl::AsciiStrToLower(*new_postcode);
  return out;
}

std::string DigitError(Generator& g, const std::string& dob) {
  // Change one digit of the day, month or the year's last two digits, keeping a valid date.
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::string d = dob;
    static constexpr int kPositions[] = {2, 3, 5, 6, 8, 9};
    const int pos = kPositions[g.Uniform(0, 5)];
    const char c = static_cast<char>('0' + g.Uniform(0, 9));
    if (c == d[pos]) continue;
    d[pos] = c;
    const int month = std::stoi(d.substr(5, 2)), day = std::stoi(d.substr(8, 2));
    if (month >= 1 && month <= 12 && day >= 1 && day <= 28) return d;
  }
  return dob;
}

void ApplyErrors(Generator& g, const ErrorModel& m, Subject* s) {
  linkage::PersonFields& p = s->fields;
  auto note = [&](const char* e) { s->errors.push_back(e); };
  std::vector<std::string> given = absl::StrSplit(p.given_names, ' ');
  if (given.size() > 1 && g.Chance(m.middle_name_dropped)) {
    given.resize(1);
    note("middle name dropped");
  }
  if (g.Chance(m.nickname)) {
    std::vector<const char*> options;
    for (const auto& [formal, nick] : kNicknames) {
      if (given[0] == formal) options.push_back(nick);
    }
    if (!options.empty()) {
      given[0] = options[g.Uniform(0, static_cast<int>(options.size()) - 1)];
      note("nickname");
    }
  }
  p.given_names = absl::StrJoin(given, " ");
  if (g.Chance(m.surname_change)) {
    p.surname = g.Surname();
    note("surname change");
  }
  if (g.Chance(m.typo)) {
    if (g.Chance(0.5)) {
      p.surname = Typo(g, p.surname);
    } else {
      p.given_names = Typo(g, p.given_names);
    }
    note("typo");
  }
  // No draw when off, so the default model's population stays as it was.
  if (m.multi_field_typos > 0 && g.Chance(m.multi_field_typos)) {
    p.given_names = Typo(g, p.given_names);
    p.surname = Typo(g, p.surname);
    std::vector<std::string> words = absl::StrSplit(p.address, ' ');
    if (words.size() > 1) words[1] = Typo(g, words[1]);  // the street, after the house number
    p.address = absl::StrJoin(words, " ");
    note("typos in several fields");
  }
  if (g.Chance(m.name_order_swap)) {
    std::swap(p.given_names, p.surname);
    note("name order swap");
  }
  if (!p.date_of_birth.empty() && g.Chance(m.day_month_swap)) {
    const std::string day = p.date_of_birth.substr(8, 2), month = p.date_of_birth.substr(5, 2);
    if (std::stoi(day) <= 12) {
      p.date_of_birth = absl::StrCat(p.date_of_birth.substr(0, 5), day, "-", month);
      note("day/month swap");
    }
  }
  if (g.Chance(m.dob_digit_error)) {
    p.date_of_birth = DigitError(g, p.date_of_birth);
    note("date of birth digit error");
  }
  if (g.Chance(m.dob_missing)) {
    p.date_of_birth.clear();
    note("date of birth missing");
  }
  if (g.Chance(m.moved)) {
    const Address a = g.NewAddress();
    p.address = a.line;
    p.postcode = a.postcode;
    note("moved");
  } else if (g.Chance(m.address_reformatted)) {
    std::string postcode;
    p.address = Reformat(g, p.address, p.postcode, &postcode);
    p.postcode = postcode;
    note("address reformatted");
  }
  if (g.Chance(m.address_missing)) {
    p.address.clear();
    p.postcode.clear();
    note("address missing");
  }
}

constexpr const char* kKinds[] = {"officer", "officer", "officer",   "staff",
                                  "staff",   "special", "contractor"};

}  // namespace

Population Generate(const PopulationParams& params) {
  Generator g(params.seed);
  Population pop;
  pop.index.reserve(params.index_size);
  while (pop.index.size() < params.index_size) {
    const Address home = g.NewAddress();
    IndexPerson person;
    person.record_id = absl::StrCat("P", pop.index.size() + 1);
    person.kind = kKinds[g.Uniform(0, Count(kKinds) - 1)];
    person.fields = g.NewPerson(18, 67, home);
    const std::string surname = person.fields.surname;
    pop.index.push_back(std::move(person));
    if (pop.index.size() < params.index_size && g.Chance(params.family_declared_rate)) {
      IndexPerson family;
      family.record_id = absl::StrCat("P", pop.index.size() + 1);
      family.kind = "family";
      family.fields = g.NewPerson(16, 80, home);
      if (g.Chance(0.7)) family.fields.surname = surname;
      pop.index.push_back(std::move(family));
    }
  }
  pop.subjects.reserve(params.subjects);
  const auto random_index = [&] {
    return static_cast<uint32_t>(g.Uniform(0, static_cast<int>(pop.index.size()) - 1));
  };
  for (size_t i = 0; i < params.subjects; ++i) {
    Subject s;
    s.subject_ref = absl::StrCat("S", i + 1);
    const double u = std::uniform_real_distribution<double>(0, 1)(g.rng());
    if (u < params.same_person_rate) {
      s.relation = Relation::kSamePerson;
      s.index_position = random_index();
      s.fields = pop.index[s.index_position].fields;
      ApplyErrors(g, params.errors, &s);
    } else if (u < params.same_person_rate + params.co_resident_rate) {
      s.relation = Relation::kCoResident;
      s.index_position = random_index();
      const linkage::PersonFields& host = pop.index[s.index_position].fields;
      Address home;
      home.line = host.address;
      home.postcode = host.postcode;
      s.fields = g.NewPerson(16, 90, home);
      if (g.Chance(0.6)) s.fields.surname = host.surname;
    } else if (u < params.same_person_rate + params.co_resident_rate + params.hard_negative_rate) {
      s.relation = Relation::kHardNegative;
      s.index_position = random_index();
      const linkage::PersonFields& twin = pop.index[s.index_position].fields;
      s.fields = g.NewPerson(16, 90, g.NewAddress());
      s.fields.given_names = twin.given_names;
      s.fields.surname = twin.surname;
      if (s.fields.date_of_birth == twin.date_of_birth)
        s.fields.date_of_birth = g.DateOfBirth(16, 90);
    } else {
      s.fields = g.NewPerson(16, 90, g.NewAddress());
    }
    pop.subjects.push_back(std::move(s));
  }
  return pop;
}

std::vector<std::string> SampleFullNames(size_t n, uint64_t seed) {
  Generator g(seed);
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const bool female = g.Chance(0.5);
    std::string given = g.GivenNames(female);
    out.push_back(absl::StrCat(given, " ", g.Surname()));
  }
  return out;
}

std::string DescribeErrorModel(const ErrorModel& m) {
  return absl::StrFormat(
      "typo %.0f%%, nickname %.0f%% (when the name has one), surname change %.0f%%, name order "
      "swap %.0f%%, middle name dropped %.0f%% (when there is one), day/month swap %.0f%% (day "
      "<= 12), date of birth digit error %.0f%%, date of birth missing %.0f%%, moved %.0f%%, "
      "address reformatted %.0f%%, address missing %.0f%%, typos in several fields %.0f%%",
      100 * m.typo, 100 * m.nickname, 100 * m.surname_change, 100 * m.name_order_swap,
      100 * m.middle_name_dropped, 100 * m.day_month_swap, 100 * m.dob_digit_error,
      100 * m.dob_missing, 100 * m.moved, 100 * m.address_reformatted, 100 * m.address_missing,
      100 * m.multi_field_typos);
}

}  // namespace sarloop::synth
