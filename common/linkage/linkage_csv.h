// People as CSV, for the indirect-links screen's tools: a force's personnel index and UKFIU's SAR
// subjects (sarloopctl linkage upload/screen read it; sarloop-synth-persons writes it).
//
// Format (RFC 4180): a header line, then one line per person:
//   <id>,given_names,surname,date_of_birth,address,postcode
// where <id> is the id column's name (record_id or subject_ref). Fields may be quoted; a quoted
// field may hold commas and doubled quotes. Empty fields are unknown.
#ifndef SARLOOP_COMMON_LINKAGE_LINKAGE_CSV_H_
#define SARLOOP_COMMON_LINKAGE_LINKAGE_CSV_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/linkage/linkage_encoding.h"

namespace sarloop::linkage {

struct PersonRow {
  std::string id;
  PersonFields fields;
};

// A file's good rows, each with its line number, and its bad rows by line. One bad row
// (another number of fields, no id) does not cost the file: a personnel index of 350,000 people
// is loaded with the rows that can be read, and the rest are reported for correction.
struct PeopleFile {
  std::vector<PersonRow> rows;
  std::vector<int> lines;  // lines[i] is rows[i]'s line in the file, from 1
  struct Bad {
    int line = 0;
    std::string why;
  };
  std::vector<Bad> bad;
};

// INVALID_ARGUMENT naming the line for what spoils the whole file: a wrong header or an
// unterminated quote (after which no line can be trusted).
absl::StatusOr<PeopleFile> ParsePeopleCsv(absl::string_view text, absl::string_view id_column);

std::string PeopleCsv(const std::vector<PersonRow>& rows, absl::string_view id_column);

}  // namespace sarloop::linkage

#endif  // SARLOOP_COMMON_LINKAGE_LINKAGE_CSV_H_
