// Tables and charts for people: the STA summary report (sarloopctl report sta) and the NCA
// dashboard draw the same tables the same way. Every chart is inline SVG and every page is
// self-contained (no scripts, fonts or styles from elsewhere), so a report can be mailed and the
// dashboard works on a network with no way out. Pure: strings in, strings out.
#ifndef SARLOOP_SERVICES_NCA_REPORT_H_
#define SARLOOP_SERVICES_NCA_REPORT_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sarloop/v1/nca.pb.h"

namespace sarloop::report {

// One table cell: what a reader sees, what a CSV holds (numbers unformatted: counts as integers,
// rates as fractions, days with one decimal; "suppressed" for a suppressed value) and, for the
// dashboard, an optional link.
struct Cell {
  std::string text;
  std::string csv;
  std::string link = {};
  bool numeric = false;
};

Cell Text(std::string text, std::string link = "");
// "[c]" (the statistical convention for a confidential cell) when suppressed.
Cell Count(std::optional<int64_t> value);
Cell Rate(std::optional<double> value);
Cell Days(std::optional<double> value);
// A rate per 1,000 (two decimals); "–" when unknown.
Cell PerThousand(std::optional<double> value);

struct Table {
  // Stable identifier: the CSV's first column and the HTML element id.
  std::string id;
  std::string title;
  std::string note;
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
  // For the dashboard: a link per column header (sorting), or none.
  std::vector<std::string> column_links = {};
};

// A chart of the kind its figure wants:
//   kBars: horizontal bars, one per label per series (categories, organisations);
//   kLines: one line per series over the labels in order (time: quarters, years);
//   kBox: one box plot per label, series in this order: 25th percentile, median, 75th percentile,
//         90th percentile (durations: the box is the middle half, the whisker reaches p90).
struct Chart {
  enum class Kind { kBars, kLines, kBox };
  std::string title;
  std::vector<std::string> labels;
  std::vector<std::pair<std::string, std::vector<std::optional<double>>>> series;
  // Values are fractions shown as percentages (the axis ends at 100%).
  bool percent = false;
  Kind kind = Kind::kBars;
  // For the dashboard (bars): a link per label, to drill down, or none.
  std::vector<std::string> links = {};
};

std::string HtmlEscape(absl::string_view text);
std::string SvgChart(const Chart& chart);
std::string HtmlTable(const Table& table);
std::string MarkdownTable(const Table& table);
// Long form, one line per cell: table,key,column,value (RFC 4180 quoting).
std::string CsvRows(const Table& table);
inline constexpr char kCsvHeader[] = "table,key,column,value\n";
// Wide form, as the table reads: a header of its columns, then a line per row (RFC 4180 quoting;
// a cell a spreadsheet would run as a formula is written as text).
std::string CsvWide(const Table& table);
// Sorts the rows by `column`'s values (numbers as numbers, unknown last), keeping an "All" row
// last. False when the table has no such column.
bool SortRows(Table& table, const std::string& column, bool descending);

// The organisation and region tables: one row per group of a one-dimension answer, then "All".
Table MeasureTable(std::string id, std::string title, std::string key_column,
                   const v1::GetAggregatesResponse& response);
// Response rate per group of a one-dimension answer.
Chart RateChart(std::string title, const v1::GetAggregatesResponse& response);
// "Sexual misconduct" for "SEXUAL_MISCONDUCT" (after removing `prefix`).
std::string EnumText(const std::string& name, absl::string_view prefix);

// The style every sarloop page uses (inlined into each page).
extern const char kStyle[];

// The STA summary for one financial year, from the analyst API's answers.
struct StaInputs {
  int year = 0;
  absl::Time as_of;
  bool publication = false;
  int min_count = 0;
  v1::GetAggregatesResponse this_year;        // no grouping, filter: the year
  v1::GetAggregatesResponse previous_year;    // no grouping, filter: the year before
  v1::GetAggregatesResponse by_organisation;  // group ORGANISATION, the year
  v1::GetAggregatesResponse by_region;        // group REGION, the year
  v1::GetAggregatesResponse by_category;      // group CATEGORY, the year, closed with outcome
  v1::GetAggregatesResponse by_quarter;  // group FINANCIAL_QUARTER, the year and the one before
  // Group by each track dimension (CRIMINAL_TRACK .. STAFF_TRACK, in that order), the year.
  std::vector<v1::GetAggregatesResponse> by_track;
  v1::GetAggregatesResponse by_unit;            // group UNIT, the year
  v1::GetAggregatesResponse by_priority;        // group PRIORITY, the year
  v1::GetAggregatesResponse by_decline_reason;  // group DECLINE_REASON, the year, declined
  v1::GetAggregatesResponse by_year;            // group FINANCIAL_YEAR, every year held
  v1::GetAggregatesResponse by_role;            // group SUBJECT_ROLE, the year, closed with outcome
  v1::GetAggregatesResponse by_role_category;   // group SUBJECT_ROLE, CATEGORY, ditto
  v1::GetAggregatesResponse by_route;           // group ROUTE, the year
  v1::GetAggregatesResponse by_thr;             // group THR, the year
  // Referrals of the year declined by the force, or whose unit declined to assist. Empty in
  // publication mode (it lists single referrals).
  std::vector<v1::RegisterEntry> declined;
};

struct StaReport {
  std::vector<Table> tables;
  std::string html;
  std::string markdown;
  std::string csv;
};

StaReport BuildSta(const StaInputs& in);

}  // namespace sarloop::report

#endif  // SARLOOP_SERVICES_NCA_REPORT_H_
