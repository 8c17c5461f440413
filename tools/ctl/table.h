// Plain-text output for people: aligned tables and `key: value` blocks, and the two time formats
// sarloopctl shows. Scripts should use --json instead; this layout may change.
#ifndef SARLOOP_TOOLS_CTL_TABLE_H_
#define SARLOOP_TOOLS_CTL_TABLE_H_

#include <google/protobuf/timestamp.pb.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace sarloop::ctl {

// Columns as wide as their widest cell (counting UTF-8 characters), separated by two spaces.
// Cells are kept to one line (control characters become spaces) and an empty cell shows "-", so
// a missing value is visibly missing rather than shifting the eye to the next column.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // Missing trailing cells are empty; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }

  // The header line then the rows. Prints nothing but the header when there are no rows.
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// `key: value` lines with the values aligned. A value of several lines continues under its
// first line, so a narrative stays readable.
class KeyValues {
 public:
  void Add(absl::string_view key, absl::string_view value);
  // Adds the line only when `value` is not empty: for optional fields.
  void AddIfSet(absl::string_view key, absl::string_view value);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

// "2024-05-01", or "-" for an unset timestamp.
std::string FormatDate(const google::protobuf::Timestamp& ts);
// "2024-05-01T09:30:00Z", or "-" for an unset timestamp.
std::string FormatTime(const google::protobuf::Timestamp& ts);

}  // namespace sarloop::ctl

#endif  // SARLOOP_TOOLS_CTL_TABLE_H_
