// The tables and charts the STA report and the dashboard share (services/nca/report.h): sorting,
// the wide CSV, and each kind of chart.
#include "services/nca/report.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace sarloop::report {
namespace {

Table Sample() {
  Table t{"t", "T", "", {"Organisation", "Referred", "Median days"}, {}};
  t.rows.push_back({Text("NFK"), Count(5), Days(40.0)});
  t.rows.push_back({Text("All"), Count(30), Days(20.0)});
  t.rows.push_back({Text("MPS"), Count(20), Days(std::nullopt)});
  t.rows.push_back({Text("=SUM(A1)"), Count(std::nullopt), Days(12.5)});
  return t;
}

std::vector<std::string> Keys(const Table& t) {
  std::vector<std::string> out;
  for (const auto& row : t.rows) out.push_back(row[0].text);
  return out;
}

TEST(ReportTest, SortRowsPutsNumbersInOrderUnknownLastAndAllAtTheEnd) {
  Table t = Sample();
  ASSERT_TRUE(SortRows(t, "Median days", true));
  EXPECT_EQ(Keys(t), (std::vector<std::string>{"NFK", "=SUM(A1)", "MPS", "All"}));
  ASSERT_TRUE(SortRows(t, "Median days", false));
  EXPECT_EQ(Keys(t), (std::vector<std::string>{"=SUM(A1)", "NFK", "MPS", "All"}));
  // A suppressed count is unknown: last either way.
  ASSERT_TRUE(SortRows(t, "Referred", true));
  EXPECT_EQ(Keys(t), (std::vector<std::string>{"MPS", "NFK", "=SUM(A1)", "All"}));
  ASSERT_TRUE(SortRows(t, "Organisation", false));
  EXPECT_EQ(Keys(t), (std::vector<std::string>{"=SUM(A1)", "MPS", "NFK", "All"}));
  EXPECT_FALSE(SortRows(t, "No such column", true));
}

TEST(ReportTest, WideCsvReadsAsTheTableAndRunsNoFormula) {
  const std::string csv = CsvWide(Sample());
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "Organisation,Referred,Median days");
  EXPECT_NE(csv.find("\nNFK,5,40.0\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\nMPS,20,\n"), std::string::npos) << csv;
  // A spreadsheet would run "=SUM(A1)": it is written as text.
  EXPECT_NE(csv.find("\n'=SUM(A1),suppressed,12.5\n"), std::string::npos) << csv;
}

// Free text in a Markdown report cannot break out of its cell, start a table, nor be a live link.
TEST(ReportTest, MarkdownCellsAreTextOnly) {
  Table t{"reasons", "Reasons", "", {"Reason"}, {}};
  t.rows.push_back({Text("see https://nca-reset.example/login or www.example.org | [x](y)\nnext")});
  const std::string md = MarkdownTable(t);
  EXPECT_NE(md.find("see https\\://nca-reset.example/login or www\\.example.org \\| "
                    "\\[x\\](y) next"),
            std::string::npos)
      << md;
}

TEST(ReportTest, EachChartKindDrawsItsShape) {
  Chart lines{"Per quarter",
              {"Q1", "Q2", "Q3"},
              {{"2025-26", {1.0, std::nullopt, 3.0}}},
              false,
              Chart::Kind::kLines};
  const std::string l = SvgChart(lines);
  // The missing quarter breaks the line: two pieces, a point per known value.
  EXPECT_EQ(std::count(l.begin(), l.end(), '\n'), 0);
  size_t polylines = 0;
  for (size_t at = 0; (at = l.find("<polyline", at)) != std::string::npos; ++at) ++polylines;
  EXPECT_EQ(polylines, 2u);
  EXPECT_NE(l.find("<circle"), std::string::npos);
  Chart box{"Days",
            {"Acknowledgement", "Outcome"},
            {{"p25", {1.0, 50.0}},
             {"median", {3.0, 100.0}},
             {"p75", {6.0, 200.0}},
             {"p90", {15.0, 400.0}}},
            false,
            Chart::Kind::kBox};
  const std::string b = SvgChart(box);
  EXPECT_NE(b.find("median 100 (50–200), p90 400"), std::string::npos) << b;
  Chart bars{"Rate", {"NFK"}, {{"Rate", {0.5}}}, true};
  bars.links = {"/overdue?org=NFK"};
  const std::string r = SvgChart(bars);
  EXPECT_NE(r.find("<a href=\"/overdue?org=NFK\">"), std::string::npos) << r;
  EXPECT_NE(r.find("50.0%"), std::string::npos);
}

TEST(ReportTest, HeadingLinksAreEscaped) {
  Table t = Sample();
  t.column_links = {"/?sort=Organisation&dir=asc", "", ""};
  const std::string html = HtmlTable(t);
  EXPECT_NE(html.find("<a href=\"/?sort=Organisation&amp;dir=asc\">Organisation</a>"),
            std::string::npos)
      << html;
}

}  // namespace
}  // namespace sarloop::report
