// People as CSV, for the indirect-links screen's tools: a force's personnel index and UKFIU's SAR
// subjects (sarloopctl linkage upload/screen read it; sarloop-synth-persons writes it).
//
// Format (RFC 4180): a header line, then one line per person:
//   <id>,given_names,surname,date_of_birth,address,postcode
// where <id> is the id column's name (record_id or subject_ref). Fields may be quoted; a quoted
// field may hold commas and doubled quotes. Empty fields are unknown.
#ifndef SARLOOP_COMMON_LINKAGE_CSV_H_
#define SARLOOP_COMMON_LINKAGE_CSV_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/linkage_encoding.h"

namespace sarloop::linkage {

struct PersonRow {
  std::string id;
  PersonFields fields;
};

// INVALID_ARGUMENT naming the line for a wrong header, a line with another number of fields, a
// missing id or an unterminated quote.
absl::StatusOr<std::vector<PersonRow>> ParsePeopleCsv(absl::string_view text,
                                                      absl::string_view id_column);

std::string PeopleCsv(const std::vector<PersonRow>& rows, absl::string_view id_column);

}  // namespace sarloop::linkage

#endif  // SARLOOP_COMMON_LINKAGE_CSV_H_
