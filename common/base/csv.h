// Cells for every CSV sarloop writes. A CSV is opened in a spreadsheet, which runs a cell that
// starts with '=', '+', '-', '@', a tab or a carriage return as a formula (a decline reason
// "=HYPERLINK(...)" would become a live link, or worse): such cells are written with a leading
// apostrophe, which the spreadsheet shows as text. Numbers are left as they are.
#ifndef SARLOOP_COMMON_BASE_CSV_H_
#define SARLOOP_COMMON_BASE_CSV_H_

#include <string>

#include "absl/strings/string_view.h"

namespace sarloop {

// `value` as one CSV field (RFC 4180 quoting), neutralised as above.
std::string CsvCell(absl::string_view value);

// The inverse of the neutralisation, for sarloop's own CSV readers: a leading apostrophe before a
// formula character is dropped, so a file sarloop wrote reads back as the values it was given.
std::string CsvValue(std::string field);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_CSV_H_
