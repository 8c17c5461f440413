#include "common/base/csv.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace sarloop {
namespace {

bool FormulaStart(char c) {
  return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

// "-12", "3.5", "-0.25": a number a spreadsheet reads as a number, not a formula.
bool Number(absl::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s.empty()) return false;
  int dots = 0;
  for (char c : s) {
    if (c == '.') {
      if (++dots > 1) return false;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return s != ".";
}

}  // namespace

std::string CsvCell(absl::string_view value) {
  // A formula's first character is quoted, so a spreadsheet shows the text and runs nothing.
  const bool quote = !value.empty() && FormulaStart(value[0]) && !Number(value);
  const std::string cell = quote ? absl::StrCat("'", value) : std::string(value);
  // A semicolon or a tab separates fields where the spreadsheet's locale or the import says so:
  // quoted too, so a formula after one is not a cell of its own.
  if (cell.find_first_of(",;\t\"\n\r") == std::string::npos) return cell;
  return absl::StrCat("\"", absl::StrReplaceAll(cell, {{"\"", "\"\""}}), "\"");
}

std::string CsvValue(std::string field) {
  if (field.size() >= 2 && field[0] == '\'' && FormulaStart(field[1])) field.erase(0, 1);
  return field;
}

}  // namespace sarloop
