// Synthetic people for the indirect-links screen: a personnel index (officers, staff, specials,
// contractors and declared family members) and SAR subjects, some of whom are index people
// written down with errors, with the truth kept beside them.
//
// Names: given names by a Zipf-Mandelbrot law over a list of common UK names (the most common
// about 4.5% of its sex, near "David" in England and Wales for these ages); surnames 35% from
// a list of common UK surnames (Smith about 1.2% of people, as in the ONS figures) and 65% from
// a long tail of 2,400 rarer English-style surnames. Dates of birth are uniform over working
// ages (personnel) or adult ages (subjects), and addresses are house number, street, town and
// a postcode whose area matches the town.
//
// The error model applied to an index person who appears as a SAR subject (each independently,
// probabilities in ErrorModel; DescribeErrorModel prints them):
//   typo (insert, delete, substitute or transpose a letter of a name), nickname for the given
//   name, surname change, given name and surname swapped, middle name dropped, day and month
//   swapped, one digit of the date of birth wrong, date of birth missing, address missing,
//   moved (a new address), address reformatted (abbreviations, case, punctuation, postcode
//   spacing), typos in several fields at once (ErrorModel::Harsh).
// Beside them: co-residents (someone else at a personnel member's address, often with the same
// surname, not in the index) and hard negatives (same full name as an index person, different
// date of birth and address).
//
// Deterministic for a given seed.
#ifndef SARLOOP_TOOLS_SYNTH_PERSONS_H_
#define SARLOOP_TOOLS_SYNTH_PERSONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/linkage/linkage_encoding.h"

namespace sarloop::synth {

struct ErrorModel {
  double typo = 0.12;
  double nickname = 0.08;
  double surname_change = 0.03;
  double name_order_swap = 0.03;
  double middle_name_dropped = 0.10;
  double day_month_swap = 0.03;
  double dob_digit_error = 0.03;
  double dob_missing = 0.03;
  double address_missing = 0.05;
  double moved = 0.08;
  double address_reformatted = 0.30;
  // A typo in the given names, the surname and the street at once.
  double multi_field_typos = 0.0;

  // The project's model (the defaults above), and a harsher one it did not tune for: dates of
  // birth wrong or missing for about one pair in seven (a digit wrong 6%, missing 8%, beside the
  // 3% day/month swaps), typos twice as often, and typos in three fields at once for 10%.
  static ErrorModel Harsh() {
    ErrorModel m;
    m.typo = 0.24;
    m.dob_digit_error = 0.06;
    m.dob_missing = 0.08;
    m.multi_field_typos = 0.10;
    return m;
  }
};

enum class Relation {
  kNone,          // nobody in the index
  kSamePerson,    // an index person (officer, staff, ... or declared family), with errors
  kCoResident,    // lives at an index person's address, not in the index
  kHardNegative,  // same full name as an index person, someone else
};

struct IndexPerson {
  std::string record_id;  // "P" + number
  std::string kind;       // officer, staff, special, contractor, family
  linkage::PersonFields fields;
};

struct Subject {
  std::string subject_ref;  // "S" + number
  linkage::PersonFields fields;
  Relation relation = Relation::kNone;
  uint32_t index_position = UINT32_MAX;  // the related index person, if any
  std::vector<std::string> errors;       // the errors applied (kSamePerson)
};

struct PopulationParams {
  size_t index_size = 350000;
  size_t subjects = 1000000;
  double same_person_rate = 0.01;
  double co_resident_rate = 0.005;
  double hard_negative_rate = 0.01;
  // Share of personnel who declare a family member, who is then in the index too.
  double family_declared_rate = 0.15;
  ErrorModel errors;
  uint64_t seed = 20261127;
};

struct Population {
  std::vector<IndexPerson> index;
  std::vector<Subject> subjects;
};

Population Generate(const PopulationParams& params);

// Full names ("GIVEN [MIDDLE] SURNAME") drawn from the same distribution with
// another seed: the public name statistics an attacker is assumed to have.
std::vector<std::string> SampleFullNames(size_t n, uint64_t seed);

std::string DescribeErrorModel(const ErrorModel& model);

}  // namespace sarloop::synth

#endif  // SARLOOP_TOOLS_SYNTH_PERSONS_H_
