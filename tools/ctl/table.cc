#include "tools/ctl/table.h"

#include <algorithm>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/base/ids.h"
#include "common/base/text.h"

namespace sarloop::ctl {
namespace {

// Characters on screen, assuming one column per code point (no wide CJK handling needed for
// names, codes and dates).
size_t DisplayWidth(absl::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

// Text from a service as the terminal will show it: tabs as spaces, and every other control,
// separator or bidi character, and every byte that is not UTF-8, escaped (common/base/text.h),
// so a reason with a carriage return or an escape sequence cannot overwrite what is shown.
std::string Shown(absl::string_view text) {
  std::string spaced(text);
  std::replace(spaced.begin(), spaced.end(), '\t', ' ');
  return Printable(spaced);
}

std::string OneLine(absl::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  line = Shown(line);
  return line.empty() ? "-" : line;
}

void PrintRow(std::ostream& out, const std::vector<std::string>& cells,
              const std::vector<size_t>& widths) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) line.append(widths[i] - DisplayWidth(cells[i]) + 2, ' ');
  }
  out << line << '\n';
}

std::string Format(const google::protobuf::Timestamp& ts, const char* format) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return absl::FormatTime(format, FromProto(ts), absl::UTCTimeZone());
}

}  // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  for (std::string& cell : cells) cell = OneLine(cell);
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) {
    widths[i] = DisplayWidth(headers_[i]);
    for (const auto& row : rows_) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
  }
  PrintRow(out, headers_, widths);
  for (const auto& row : rows_) PrintRow(out, row, widths);
}

void KeyValues::Add(absl::string_view key, absl::string_view value) {
  lines_.emplace_back(std::string(key), std::string(value));
}

void KeyValues::AddIfSet(absl::string_view key, absl::string_view value) {
  if (!value.empty()) Add(key, value);
}

void KeyValues::Print(std::ostream& out) const {
  size_t width = 0;
  for (const auto& [key, value] : lines_) width = std::max(width, DisplayWidth(key));
  const std::string indent(width + 2, ' ');
  for (const auto& [key, value] : lines_) {
    out << key << ':' << std::string(width - DisplayWidth(key) + 1, ' ');
    bool first = true;
    const absl::string_view shown = value.empty() ? absl::string_view("-") : value;
    for (absl::string_view part : absl::StrSplit(shown, '\n')) {
      out << (first ? "" : indent) << Shown(absl::StripSuffix(part, "\r")) << '\n';
      first = false;
    }
  }
}

std::string FormatDate(const google::protobuf::Timestamp& ts) { return Format(ts, "%Y-%m-%d"); }

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  return Format(ts, "%Y-%m-%dT%H:%M:%SZ");
}

}  // namespace sarloop::ctl
