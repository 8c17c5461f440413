// Published workforce figures per organisation (common/reference/workforce.csv, built in): the
// denominator of a rate per 1,000 workforce and the weight of an organisation in the national
// exercise. Only figures read in a published source are held, each with that source; an
// organisation without one has none, and callers say so rather than guess.
#ifndef SARLOOP_COMMON_REFERENCE_WORKFORCE_H_
#define SARLOOP_COMMON_REFERENCE_WORKFORCE_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace sarloop {

struct Workforce {
  double officers_fte = 0;
  std::string as_at;   // the date the figure describes, e.g. "2024-03-31"
  std::string source;  // where it was published
};

// Parses text in the workforce.csv format: '#' comment lines, a header, then
// code,officers_fte,as_at,source. INVALID_ARGUMENT naming the line when a row is malformed.
absl::StatusOr<std::map<std::string, Workforce>> ParseWorkforce(const std::string& csv);

// The built-in figures by organisation code.
const std::map<std::string, Workforce>& PublishedWorkforce();

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERENCE_WORKFORCE_H_
