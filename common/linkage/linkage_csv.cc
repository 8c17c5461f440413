#include "common/linkage/linkage_csv.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/csv.h"

namespace sarloop::linkage {
namespace {

constexpr int kColumns = 6;

// The fields of every record in `text`; each record's line number (1-based) in `lines`.
absl::StatusOr<std::vector<std::vector<std::string>>> Records(absl::string_view text,
                                                              std::vector<int>* lines) {
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, in_record = false;
  int line = 1, record_line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!in_record) {
      in_record = true;
      record_line = line;
    }
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      record.push_back(std::move(field));
      field.clear();
      const bool blank = record.size() == 1 && record[0].empty();
      if (!blank) {
        out.push_back(std::move(record));
        lines->push_back(record_line);
      }
      record.clear();
      in_record = false;
      ++line;
    } else {
      field.push_back(c);
    }
  }
  if (quoted) {
    return absl::InvalidArgumentError(absl::StrCat("line ", record_line, ": unterminated quote"));
  }
  if (in_record) {
    record.push_back(std::move(field));
    if (!(record.size() == 1 && record[0].empty())) {
      out.push_back(std::move(record));
      lines->push_back(record_line);
    }
  }
  return out;
}

std::string Quote(const std::string& s) { return CsvCell(s); }

}  // namespace

absl::StatusOr<PeopleFile> ParsePeopleCsv(absl::string_view text, absl::string_view id_column) {
  std::vector<int> lines;
  absl::StatusOr<std::vector<std::vector<std::string>>> records = Records(text, &lines);
  if (!records.ok()) return records.status();
  const std::string header =
      absl::StrCat(id_column, ",given_names,surname,date_of_birth,address,postcode");
  if (records->empty() || absl::StrJoin((*records)[0], ",") != header) {
    return absl::InvalidArgumentError(absl::StrCat("line 1: the header must be ", header));
  }
  PeopleFile out;
  for (size_t r = 1; r < records->size(); ++r) {
    std::vector<std::string>& f = (*records)[r];
    for (std::string& field : f) field = CsvValue(std::move(field));
    if (f.size() != kColumns) {
      out.bad.push_back({lines[r], absl::StrCat(f.size(), " fields, expected ", kColumns)});
      continue;
    }
    if (f[0].empty()) {
      out.bad.push_back({lines[r], absl::StrCat(id_column, " is required")});
      continue;
    }
    out.lines.push_back(lines[r]);
    out.rows.push_back(
        {std::move(f[0]),
         {std::move(f[1]), std::move(f[2]), std::move(f[3]), std::move(f[4]), std::move(f[5])}});
  }
  return out;
}

std::string PeopleCsv(const std::vector<PersonRow>& rows, absl::string_view id_column) {
  std::string out =
      absl::StrCat(id_column, ",given_names,surname,date_of_birth,address,postcode\n");
  for (const PersonRow& r : rows) {
    absl::StrAppend(&out, Quote(r.id), ",", Quote(r.fields.given_names), ",",
                    Quote(r.fields.surname), ",", Quote(r.fields.date_of_birth), ",",
                    Quote(r.fields.address), ",", Quote(r.fields.postcode), "\n");
  }
  return out;
}

}  // namespace sarloop::linkage
