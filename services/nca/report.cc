#include "services/nca/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/base/csv.h"
#include "common/base/ids.h"
#include "common/reference/reference.h"
#include "common/reference/workforce.h"

namespace sarloop::report {
namespace {

constexpr const char* kColours[] = {"#1d70b8", "#f47738", "#00703c", "#912b88", "#6f72af"};

std::string Fixed(double v, int places) { return absl::StrFormat("%.*f", places, v); }

std::string Date(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(t.seconds()), absl::UTCTimeZone());
}

std::optional<int64_t> Opt(bool has, int64_t v) { return has ? std::optional(v) : std::nullopt; }
std::optional<double> OptD(bool has, double v) { return has ? std::optional(v) : std::nullopt; }

#define SARLOOP_M(m, f) Opt((m).has_##f(), (m).f())

std::optional<double> AsDouble(std::optional<int64_t> v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

// The row of measures shared by the organisation and region tables.
std::vector<Cell> MeasureRow(const std::string& key, const v1::Measures& m) {
  return {Text(key),
          Count(SARLOOP_M(m, referred)),
          Count(SARLOOP_M(m, feedback_received)),
          Rate(OptD(m.has_response_rate(), m.response_rate())),
          Count(SARLOOP_M(m, declined_by_force)),
          Count(SARLOOP_M(m, closed_with_outcome)),
          Count(SARLOOP_M(m, assistance_declined)),
          Count(SARLOOP_M(m, overdue)),
          Count(SARLOOP_M(m, escalated)),
          Days(OptD(m.days_to_feedback().has_median(), m.days_to_feedback().median())),
          Days(OptD(m.days_to_outcome().has_median(), m.days_to_outcome().median()))};
}
const std::vector<std::string> kMeasureColumns = {"Referred",
                                                  "Feedback",
                                                  "Response rate",
                                                  "Declined by force",
                                                  "Outcomes",
                                                  "Assistance declined",
                                                  "Overdue",
                                                  "Escalated",
                                                  "Median days to feedback",
                                                  "Median days to outcome"};

std::string Csv(absl::string_view s) { return CsvCell(s); }

// Text a Markdown renderer shows as written: no live link, image, HTML or emphasis can be made
// from a value (a decline reason "[x](http://...)" or "<img src=...>"), and no table is broken.
std::string MdEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\n':
      case '\r':
      case '\t':
        out.push_back(' ');
        break;
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '<':
      case '>':
      case '|':
      case '!':
      case '~':
      case '#':
        out.push_back('\\');
        [[fallthrough]];
      default:
        out.push_back(c);
    }
  }
  // A renderer makes a bare address a live link (GitHub's autolinks): a reason of
  // "https://nca-reset.example/login" must read as text in the STA report, not invite a click.
  return absl::StrReplaceAll(out, {{"://", "\\://"}, {"www.", "www\\."}, {"WWW.", "WWW\\."}});
}

}  // namespace

std::string EnumText(const std::string& name, absl::string_view prefix) {
  std::string s = name.substr(std::min(name.size(), prefix.size()));
  for (char& c : s) c = c == '_' ? ' ' : static_cast<char>(std::tolower(c));
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(s[0]));
  return s;
}

Table MeasureTable(std::string id, std::string title, std::string key_column,
                   const v1::GetAggregatesResponse& r) {
  Table t{std::move(id), std::move(title), "", {std::move(key_column)}, {}};
  t.columns.insert(t.columns.end(), kMeasureColumns.begin(), kMeasureColumns.end());
  for (const auto& g : r.groups()) t.rows.push_back(MeasureRow(g.key(0), g.measures()));
  t.rows.push_back(MeasureRow("All", r.total()));
  return t;
}

Chart RateChart(std::string title, const v1::GetAggregatesResponse& r) {
  Chart c{std::move(title), {}, {{"Response rate", {}}}, true};
  for (const auto& g : r.groups()) {
    c.labels.push_back(g.key(0));
    c.series[0].second.push_back(
        OptD(g.measures().has_response_rate(), g.measures().response_rate()));
  }
  return c;
}

const char kStyle[] = R"css(
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#0b0c0c;
margin:0;background:#f3f2f1}
header{background:#0b0c0c;color:#fff;padding:10px 24px}header a{color:#fff;margin-right:18px}
main{max-width:1180px;margin:0 auto;padding:16px 24px;background:#fff}
h1{font-size:26px;margin:8px 0}h2{font-size:20px;margin:28px 0 8px;border-top:1px solid #b1b4b6;
padding-top:14px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border-bottom:1px solid #d8d8d8;padding:4px 10px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600}.wide{overflow-x:auto;max-width:100%}
.note{color:#505a5f;font-size:13px}.charts{display:flex;flex-wrap:wrap;gap:16px}
svg{background:#fff;border:1px solid #e5e5e5}form.filters{margin:8px 0}
form.filters label{margin-right:12px;display:inline-block;white-space:nowrap;margin-bottom:4px}.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.tile{border-left:5px solid #1d70b8;padding:6px 12px;background:#f8f8f8;min-width:130px}
.tile b{display:block;font-size:24px}
.marking{font-weight:700;text-align:center;letter-spacing:.05em;margin:4px 0}
)css";

Cell Text(std::string text, std::string link) {
  Cell c{text, text, std::move(link)};
  return c;
}

Cell Count(std::optional<int64_t> v) {
  if (!v) return {"[c]", "suppressed", "", true};
  return {absl::StrCat(*v), absl::StrCat(*v), "", true};
}

Cell Rate(std::optional<double> v) {
  if (!v) return {"–", "", "", true};
  return {absl::StrCat(Fixed(*v * 100, 1), "%"), Fixed(*v, 6), "", true};
}

Cell Days(std::optional<double> v) {
  if (!v) return {"–", "", "", true};
  return {Fixed(*v, 1), Fixed(*v, 1), "", true};
}

Cell PerThousand(std::optional<double> v) {
  if (!v) return {"–", "", "", true};
  return {Fixed(*v, 2), Fixed(*v, 2), "", true};
}

std::string HtmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(
      s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

namespace {

std::string SvgOpen(const Chart& c, int width, int height) {
  return absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"system-ui,Arial,sans-serif\" font-size=\"12\">"
      "<title>%s</title><text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"600\">%s</text>",
      width, height, width, height, HtmlEscape(c.title), HtmlEscape(c.title));
}

std::string ValueText(const Chart& c, std::optional<double> v) {
  if (!v) return "–";
  if (c.percent) return absl::StrCat(Fixed(*v * 100, 1), "%");
  return *v == std::floor(*v) ? Fixed(*v, 0) : Fixed(*v, 1);
}

std::string Legend(const Chart& c, int y) {
  std::string out;
  int x = 8;
  for (size_t s = 0; s < c.series.size(); ++s) {
    absl::StrAppendFormat(&out,
                          "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                          "<text x=\"%d\" y=\"%d\">%s</text>",
                          x, y, kColours[s % 5], x + 14, y + 9, HtmlEscape(c.series[s].first));
    x += 24 + 7 * static_cast<int>(c.series[s].first.size());
  }
  return out;
}

// Time: one line per series, a point per label with its value in a tooltip.
std::string SvgLines(const Chart& c) {
  const int left = 56, right = 16, top = 48, plot_h = 170, bottom = 46;
  const int n = static_cast<int>(c.labels.size());
  // At least 360 wide (room for the title and legend), at most 90 between points.
  const int step =
      n > 1 ? std::max(40, std::min(360 / (n - 1) > 90 ? 360 / (n - 1) : 90, 560 / (n - 1))) : 60;
  const int plot_w = n > 1 ? step * (n - 1) : 0;
  const int width = std::max(440, left + plot_w + right + 40), height = top + plot_h + bottom;
  double max = c.percent ? 1.0 : 0.0;
  for (const auto& [name, values] : c.series) {
    for (const auto& v : values) {
      if (v) max = std::max(max, *v);
    }
  }
  if (max <= 0) max = 1;
  std::string out = SvgOpen(c, width, height) + Legend(c, 27);
  const int y0 = top + plot_h;
  absl::StrAppendFormat(&out,
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#b1b4b6\"/>"
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#b1b4b6\"/>"
                        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>"
                        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>",
                        left, top, left, y0, left, y0, left + plot_w + 20, y0, left - 4, top + 4,
                        ValueText(c, max), left - 4, y0 + 4);
  auto x_of = [&](int i) { return left + 10 + i * step; };
  auto y_of = [&](double v) { return y0 - static_cast<int>(std::lround(v / max * plot_h)); };
  for (int i = 0; i < n; ++i) {
    absl::StrAppendFormat(&out,
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                          "font-size=\"10\">%s</text>",
                          x_of(i), y0 + 16 + (n > 8 ? (i % 2) * 12 : 0),
                          HtmlEscape(c.labels[i].substr(0, 14)));
  }
  for (size_t s = 0; s < c.series.size(); ++s) {
    const auto& values = c.series[s].second;
    std::string points;
    auto flush = [&] {
      if (points.empty()) return;
      absl::StrAppendFormat(&out,
                            "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                            "points=\"%s\"/>",
                            kColours[s % 5], points);
      points.clear();
    };
    for (int i = 0; i < n && i < static_cast<int>(values.size()); ++i) {
      if (!values[i]) {
        flush();
        continue;
      }
      absl::StrAppendFormat(&points, "%s%d,%d", points.empty() ? "" : " ", x_of(i),
                            y_of(*values[i]));
    }
    flush();
    for (int i = 0; i < n && i < static_cast<int>(values.size()); ++i) {
      if (!values[i]) continue;
      absl::StrAppendFormat(&out,
                            "<circle cx=\"%d\" cy=\"%d\" r=\"3\" fill=\"%s\">"
                            "<title>%s, %s: %s</title></circle>",
                            x_of(i), y_of(*values[i]), kColours[s % 5],
                            HtmlEscape(c.series[s].first), HtmlEscape(c.labels[i]),
                            ValueText(c, values[i]));
    }
  }
  out += "</svg>";
  return out;
}

// Durations: per label, a box from the 25th to the 75th percentile, the median across it and a
// whisker to the 90th.
std::string SvgBox(const Chart& c) {
  const int label_w = 150, plot_w = 380, value_w = 250, row_h = 26, top = 40;
  const int height = top + static_cast<int>(c.labels.size()) * row_h + 24;
  const int width = label_w + plot_w + value_w;
  auto at = [&](size_t s, size_t i) -> std::optional<double> {
    return s < c.series.size() && i < c.series[s].second.size() ? c.series[s].second[i]
                                                                : std::nullopt;
  };
  double max = 0;
  for (size_t i = 0; i < c.labels.size(); ++i) {
    for (size_t s = 0; s < 4; ++s) {
      if (auto v = at(s, i)) max = std::max(max, *v);
    }
  }
  if (max <= 0) max = 1;
  auto x_of = [&](double v) { return label_w + static_cast<int>(std::lround(v / max * plot_w)); };
  std::string out = SvgOpen(c, width, height);
  const int axis_y = top + static_cast<int>(c.labels.size()) * row_h;
  absl::StrAppendFormat(&out,
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#b1b4b6\"/>"
                        "<text x=\"%d\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\" "
                        "text-anchor=\"end\">%s days</text>",
                        label_w, axis_y, label_w + plot_w, axis_y, label_w, axis_y + 14,
                        label_w + plot_w, axis_y + 14, Fixed(max, 0));
  for (size_t i = 0; i < c.labels.size(); ++i) {
    const int y = top + static_cast<int>(i) * row_h;
    absl::StrAppendFormat(&out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>",
                          label_w - 6, y + 15, HtmlEscape(c.labels[i].substr(0, 24)));
    const auto p25 = at(0, i), med = at(1, i), p75 = at(2, i), p90 = at(3, i);
    if (!p25 || !med || !p75 || !p90) {
      absl::StrAppendFormat(&out, "<text x=\"%d\" y=\"%d\">–</text>", label_w + 4, y + 15);
      continue;
    }
    absl::StrAppendFormat(
        &out,
        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#505a5f\"/>"
        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#505a5f\"/>"
        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"16\" fill=\"%s\" fill-opacity=\"0.35\" "
        "stroke=\"%s\"/>"
        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#0b0c0c\" stroke-width=\"2\"/>"
        "<text x=\"%d\" y=\"%d\">median %s (%s–%s), p90 %s</text>",
        x_of(*p75), y + 11, x_of(*p90), y + 11, x_of(*p90), y + 6, x_of(*p90), y + 16, x_of(*p25),
        y + 3, std::max(1, x_of(*p75) - x_of(*p25)), kColours[0], kColours[0], x_of(*med), y + 3,
        x_of(*med), y + 19, label_w + plot_w + 8, y + 15, ValueText(c, med), ValueText(c, p25),
        ValueText(c, p75), ValueText(c, p90));
  }
  out += "</svg>";
  return out;
}

std::string SvgBars(const Chart& c) {
  const int label_w = 200, bar_w = 400, bar_h = 13, gap = 7, value_w = 70;
  const int n_series = static_cast<int>(c.series.size());
  const int row_h = n_series * bar_h + gap;
  const int top = 44;
  const int height = top + static_cast<int>(c.labels.size()) * row_h + 10;
  const int width = label_w + bar_w + value_w;
  double max = c.percent ? 1.0 : 0.0;
  for (const auto& [name, values] : c.series) {
    for (const auto& v : values) {
      if (v) max = std::max(max, *v);
    }
  }
  if (max <= 0) max = 1;
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"system-ui,Arial,sans-serif\" font-size=\"12\">"
      "<title>%s</title><text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"600\">%s</text>",
      width, height, width, height, HtmlEscape(c.title), HtmlEscape(c.title));
  int legend_x = 8;
  for (int s = 0; s < n_series; ++s) {
    absl::StrAppendFormat(&out,
                          "<rect x=\"%d\" y=\"27\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                          "<text x=\"%d\" y=\"36\">%s</text>",
                          legend_x, kColours[s % 5], legend_x + 14, HtmlEscape(c.series[s].first));
    legend_x += 24 + 7 * static_cast<int>(c.series[s].first.size());
  }
  for (size_t i = 0; i < c.labels.size(); ++i) {
    const int y = top + static_cast<int>(i) * row_h;
    const bool link = i < c.links.size() && !c.links[i].empty();
    if (link) absl::StrAppend(&out, "<a href=\"", HtmlEscape(c.links[i]), "\">");
    absl::StrAppendFormat(&out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>",
                          label_w - 6, y + (n_series * bar_h) / 2 + 4,
                          HtmlEscape(c.labels[i].substr(0, 32)));
    for (int s = 0; s < n_series; ++s) {
      const auto& v = i < c.series[s].second.size() ? c.series[s].second[i] : std::nullopt;
      const int by = y + s * bar_h;
      const std::string label =
          !v ? "–"
             : (c.percent ? absl::StrCat(Fixed(*v * 100, 1), "%")
                          : (*v == std::floor(*v) ? Fixed(*v, 0) : Fixed(*v, 1)));
      const int w = v ? static_cast<int>(std::lround(*v / max * bar_w)) : 0;
      absl::StrAppendFormat(&out,
                            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
                            "<text x=\"%d\" y=\"%d\" fill=\"#0b0c0c\">%s</text>",
                            label_w, by + 1, w, bar_h - 2, kColours[s % 5], label_w + w + 4,
                            by + bar_h - 2, label);
    }
    if (link) out += "</a>";
  }
  out += "</svg>";
  return out;
}

}  // namespace

std::string SvgChart(const Chart& c) {
  switch (c.kind) {
    case Chart::Kind::kLines:
      return SvgLines(c);
    case Chart::Kind::kBox:
      return SvgBox(c);
    case Chart::Kind::kBars:
      break;
  }
  return SvgBars(c);
}

std::string HtmlTable(const Table& t) {
  std::string out =
      absl::StrCat("<div class=\"wide\"><table id=\"", HtmlEscape(t.id), "\"><thead><tr>");
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const bool numeric = !t.rows.empty() && i < t.rows[0].size() && t.rows[0][i].numeric;
    const std::string name = HtmlEscape(t.columns[i]);
    absl::StrAppend(
        &out, numeric ? "<th class=\"n\">" : "<th>",
        i < t.column_links.size() && !t.column_links[i].empty()
            ? absl::StrCat("<a href=\"", HtmlEscape(t.column_links[i]), "\">", name, "</a>")
            : name,
        "</th>");
  }
  out += "</tr></thead><tbody>";
  for (const auto& row : t.rows) {
    out += !row.empty() && row[0].text == "All" ? "<tr class=\"total\">" : "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      const Cell& c = row[i];
      const std::string body = c.link.empty() ? HtmlEscape(c.text)
                                              : absl::StrCat("<a href=\"", HtmlEscape(c.link),
                                                             "\">", HtmlEscape(c.text), "</a>");
      absl::StrAppend(&out, c.numeric ? "<td class=\"n\"" : "<td", " data-col=\"",
                      HtmlEscape(i < t.columns.size() ? t.columns[i] : ""), "\" data-value=\"",
                      HtmlEscape(c.csv), "\">", body, "</td>");
    }
    out += "</tr>";
  }
  out += "</tbody></table></div>";
  return out;
}

std::string MarkdownTable(const Table& t) {
  std::string out = absl::StrCat(
      "| ",
      absl::StrJoin(t.columns, " | ", [](std::string* o, auto& s) { o->append(MdEscape(s)); }),
      " |\n|");
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const bool numeric = !t.rows.empty() && i < t.rows[0].size() && t.rows[0][i].numeric;
    out += numeric ? " ---: |" : " --- |";
  }
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (const Cell& c : row) absl::StrAppend(&out, " ", MdEscape(c.text), " |");
    out += "\n";
  }
  return out;
}

std::string CsvWide(const Table& t) {
  std::string out;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", Csv(t.columns[i]));
  }
  out += "\n";
  for (const auto& row : t.rows) {
    for (size_t i = 0; i < row.size() && i < t.columns.size(); ++i) {
      absl::StrAppend(&out, i ? "," : "", Csv(row[i].csv));
    }
    out += "\n";
  }
  return out;
}

bool SortRows(Table& t, const std::string& column, bool descending) {
  auto col = std::find(t.columns.begin(), t.columns.end(), column);
  if (col == t.columns.end()) return false;
  const size_t c = col - t.columns.begin();
  auto all = std::stable_partition(t.rows.begin(), t.rows.end(), [](const auto& row) {
    return row.empty() || row[0].text != "All";
  });
  std::stable_sort(t.rows.begin(), all, [&](const auto& a, const auto& b) {
    const std::string& x = c < a.size() ? a[c].csv : "";
    const std::string& y = c < b.size() ? b[c].csv : "";
    double dx = 0, dy = 0;
    const bool nx = absl::SimpleAtod(x, &dx), ny = absl::SimpleAtod(y, &dy);
    if (nx != ny) return nx;  // numbers first, unknown ("", "suppressed") last
    if (nx) return descending ? dx > dy : dx < dy;
    return descending ? x > y : x < y;
  });
  return true;
}

std::string CsvRows(const Table& t) {
  std::string out;
  for (const auto& row : t.rows) {
    if (row.empty()) continue;
    for (size_t i = 1; i < row.size() && i < t.columns.size(); ++i) {
      absl::StrAppend(&out, Csv(t.id), ",", Csv(row[0].csv), ",", Csv(t.columns[i]), ",",
                      Csv(row[i].csv), "\n");
    }
  }
  return out;
}

namespace {

// One section of the report: a table and the charts drawn above it.
using Sections = std::vector<std::pair<Table, std::vector<Chart>>>;

// Headline: this year beside the one before.
void AddHeadline(const StaInputs& in, const std::string& fy, const std::string& prev,
                 Sections& sections) {
  const v1::Measures& a = in.this_year.total();
  const v1::Measures& b = in.previous_year.total();
  Table t{"headline", "The year at a glance", "", {"Measure", fy, prev}, {}};
  auto count_row = [&](const char* label, const char* key, auto get) {
    t.rows.push_back({Text(label), Count(get(a)), Count(get(b))});
    t.rows.back()[0].csv = key;
  };
  count_row("Referred", "referred", [](auto& m) { return SARLOOP_M(m, referred); });
  count_row("Cases (a joint referral is one)", "cases",
            [](auto& m) { return SARLOOP_M(m, cases); });
  count_row("Distinct subjects", "distinct_subjects",
            [](auto& m) { return SARLOOP_M(m, distinct_subjects); });
  count_row("Feedback received", "feedback_received",
            [](auto& m) { return SARLOOP_M(m, feedback_received); });
  t.rows.push_back({Text("Response rate"), Rate(OptD(a.has_response_rate(), a.response_rate())),
                    Rate(OptD(b.has_response_rate(), b.response_rate()))});
  t.rows.back()[0].csv = "response_rate";
  count_row("Past their first decision's due date", "past_due",
            [](auto& m) { return SARLOOP_M(m, past_due); });
  count_row("Of those, with a first decision", "past_due_answered",
            [](auto& m) { return SARLOOP_M(m, past_due_answered); });
  t.rows.push_back({Text("Response rate, referrals past their due date"),
                    Rate(OptD(a.has_response_rate_due(), a.response_rate_due())),
                    Rate(OptD(b.has_response_rate_due(), b.response_rate_due()))});
  t.rows.back()[0].csv = "response_rate_due";
  count_row("Declined by the force", "declined_by_force",
            [](auto& m) { return SARLOOP_M(m, declined_by_force); });
  count_row("Closed with an outcome", "closed_with_outcome",
            [](auto& m) { return SARLOOP_M(m, closed_with_outcome); });
  count_row("Assistance declined by a unit", "assistance_declined",
            [](auto& m) { return SARLOOP_M(m, assistance_declined); });
  count_row("Withdrawn", "withdrawn", [](auto& m) { return SARLOOP_M(m, withdrawn); });
  count_row("Redirected", "redirected", [](auto& m) { return SARLOOP_M(m, redirected); });
  count_row("Still open", "open", [](auto& m) { return SARLOOP_M(m, open); });
  count_row("Overdue", "overdue", [](auto& m) { return SARLOOP_M(m, overdue); });
  count_row("Escalated", "escalated", [](auto& m) { return SARLOOP_M(m, escalated); });
  count_row("Open over 12 months", "open_over_12_months",
            [](auto& m) { return SARLOOP_M(m, open_over_12_months); });
  count_row("Repeat subjects", "repeat_subjects",
            [](auto& m) { return SARLOOP_M(m, repeat_subjects); });
  count_row("Requests for information", "information_requests",
            [](auto& m) { return SARLOOP_M(m, information_requests); });
  count_row("Requests answered", "information_answered",
            [](auto& m) { return SARLOOP_M(m, information_answered); });
  count_row("From DAML requests", "daml", [](auto& m) { return SARLOOP_M(m, daml); });
  count_row("Referred to the IOPC", "referred_to_iopc",
            [](auto& m) { return SARLOOP_M(m, referred_to_iopc); });
  count_row("Recorded on behalf of organisations not on sarloop", "recorded_on_behalf",
            [](auto& m) { return SARLOOP_M(m, recorded_on_behalf); });
  auto days_row = [&](const char* label, const char* key, auto get) {
    t.rows.push_back({Text(label), Days(get(a)), Days(get(b))});
    t.rows.back()[0].csv = key;
  };
  days_row("Median days to acknowledge", "days_to_acknowledge_median", [](auto& m) {
    return OptD(m.days_to_acknowledge().has_median(), m.days_to_acknowledge().median());
  });
  days_row("Median days to a first decision", "days_to_decision_median", [](auto& m) {
    return OptD(m.days_to_decision().has_median(), m.days_to_decision().median());
  });
  days_row("Median days to feedback", "days_to_feedback_median", [](auto& m) {
    return OptD(m.days_to_feedback().has_median(), m.days_to_feedback().median());
  });
  days_row("Median days to outcome", "days_to_outcome_median", [](auto& m) {
    return OptD(m.days_to_outcome().has_median(), m.days_to_outcome().median());
  });
  days_row("90th percentile days to outcome", "days_to_outcome_p90",
           [](auto& m) { return OptD(m.days_to_outcome().has_p90(), m.days_to_outcome().p90()); });
  days_row("Median days to answer a request", "days_to_answer_median", [](auto& m) {
    return OptD(m.days_to_answer().has_median(), m.days_to_answer().median());
  });
  sections.push_back({std::move(t), {}});
}

// Timeliness as distributions: how long each milestone took, not only its median.
void AddTimeliness(const StaInputs& in, Sections& sections) {
  Table t{
      "timeliness",
      "Timeliness",
      "Whole days from dispatch to each milestone, over the year's referrals that reached "
      "it: the middle half lies between the 25th and 75th percentiles.",
      {"Milestone", "Referrals", "25th percentile", "Median", "75th percentile", "90th percentile"},
      {}};
  Chart box{"Days from dispatch to each milestone",
            {},
            {{"25th percentile", {}}, {"Median", {}}, {"75th percentile", {}}, {"90th", {}}},
            false,
            Chart::Kind::kBox};
  const v1::Measures& m = in.this_year.total();
  for (const auto& [label, key, d] :
       {std::tuple{"Acknowledgement", "acknowledge", &m.days_to_acknowledge()},
        std::tuple{"First decision", "decision", &m.days_to_decision()},
        std::tuple{"Feedback", "feedback", &m.days_to_feedback()},
        std::tuple{"Outcome", "outcome", &m.days_to_outcome()}}) {
    Cell name = Text(label);
    name.csv = key;
    t.rows.push_back({name, Count(Opt(d->has_n(), d->n())), Days(OptD(d->has_p25(), d->p25())),
                      Days(OptD(d->has_median(), d->median())), Days(OptD(d->has_p75(), d->p75())),
                      Days(OptD(d->has_p90(), d->p90()))});
    box.labels.push_back(label);
    box.series[0].second.push_back(OptD(d->has_p25(), d->p25()));
    box.series[1].second.push_back(OptD(d->has_median(), d->median()));
    box.series[2].second.push_back(OptD(d->has_p75(), d->p75()));
    box.series[3].second.push_back(OptD(d->has_p90(), d->p90()));
  }
  sections.push_back({std::move(t), {box}});
}

// Response by force and agency and by region, and coverage: who answers through sarloop.
void AddResponseByOrganisation(const StaInputs& in, Sections& sections) {
  Table t = MeasureTable("by_organisation", "Response by force and agency", "Organisation",
                         in.by_organisation);
  sections.push_back(
      {std::move(t), {RateChart("Response rate by organisation", in.by_organisation)}});
  // Coverage: which organisations answer through sarloop, and which UKFIU records for.
  Table c{
      "coverage",
      "Coverage",
      "Every organisation that takes referrals, with or without any this year: referrals, those "
      "UKFIU recorded on its behalf because it does not run sarloop, and referrals per 1,000 "
      "police officers (FTE at 31 March 2024, Home Office police workforce statistics, where a "
      "published figure is held: common/reference/workforce.csv names each source; '–' where "
      "none is).",
      {"Organisation", "Referred", "Cases", "Distinct subjects", "Recorded on behalf", "On sarloop",
       "Officers (FTE)", "Referred per 1,000 officers"},
      {}};
  std::map<std::string, const v1::Measures*> by_org;
  for (const auto& g : in.by_organisation.groups()) by_org[g.key(0)] = &g.measures();
  std::vector<std::string> codes;
  for (const v1::Organisation& o : ReferenceData::BuiltIn().organisations()) {
    // The NCA holds the register; referrals go to its ACU or professional standards.
    if (o.code() != "NCA") codes.push_back(o.code());
  }
  for (const auto& [code, m] : by_org) {
    if (std::find(codes.begin(), codes.end(), code) == codes.end()) codes.push_back(code);
  }
  const v1::Measures none = [] {
    v1::Measures m;
    m.set_referred(0);
    m.set_cases(0);
    m.set_distinct_subjects(0);
    m.set_recorded_on_behalf(0);
    return m;
  }();
  const auto& workforce = PublishedWorkforce();
  for (const std::string& code : codes) {
    auto it = by_org.find(code);
    const v1::Measures& m = it == by_org.end() ? none : *it->second;
    // Unknown when a count is suppressed (publication mode).
    const bool known = m.has_recorded_on_behalf() && m.has_referred();
    const bool on = m.recorded_on_behalf() < m.referred();
    auto w = workforce.find(code);
    std::optional<double> fte, rate;
    if (w != workforce.end()) {
      fte = w->second.officers_fte;
      if (m.has_referred()) rate = m.referred() * 1000.0 / w->second.officers_fte;
    }
    c.rows.push_back(
        {Text(code), Count(SARLOOP_M(m, referred)), Count(SARLOOP_M(m, cases)),
         Count(SARLOOP_M(m, distinct_subjects)), Count(SARLOOP_M(m, recorded_on_behalf)),
         Text(!known              ? ""
              : m.referred() == 0 ? "no referrals"
              : on                ? "yes"
                                  : "no: recorded by UKFIU"),
         fte ? Count(static_cast<int64_t>(std::lround(*fte))) : Text("–"), PerThousand(rate)});
    if (!fte) c.rows.back()[6] = Cell{"–", "", "", true};
  }
  sections.push_back({std::move(c), {}});
  Table r = MeasureTable("by_region", "Response by region", "Region", in.by_region);
  sections.push_back({std::move(r), {RateChart("Response rate by region", in.by_region)}});
}

// Outcomes by one key of `r` (category, role), one column per outcome type seen in the year.
void AddOutcomeTable(std::string id, std::string title, std::string key_column,
                     const v1::GetAggregatesResponse& r, const std::string& note,
                     Sections& sections) {
  std::vector<v1::OutcomeType> types;
  for (const auto& o : r.total().outcomes()) types.push_back(o.type());
  Table t{std::move(id), title, note, {std::move(key_column), "Outcomes"}, {}};
  for (auto type : types)
    t.columns.push_back(EnumText(v1::OutcomeType_Name(type), "OUTCOME_TYPE_"));
  Chart chart{title, {}, {{"Outcomes", {}}}, false};
  auto row_of = [&](const std::string& key, const v1::Measures& m) {
    Cell name = Text(key == "All" ? key : EnumText(key, ""));
    name.csv = key;
    std::vector<Cell> row = {name, Count(SARLOOP_M(m, closed_with_outcome))};
    for (auto type : types) {
      std::optional<int64_t> v = 0;
      for (const auto& o : m.outcomes()) {
        if (o.type() == type) v = Opt(o.has_count(), o.count());
      }
      row.push_back(Count(v));
    }
    return row;
  };
  for (const auto& g : r.groups()) {
    t.rows.push_back(row_of(g.key(0), g.measures()));
    chart.labels.push_back(EnumText(g.key(0), ""));
    chart.series[0].second.push_back(AsDouble(SARLOOP_M(g.measures(), closed_with_outcome)));
  }
  t.rows.push_back(row_of("All", r.total()));
  sections.push_back({std::move(t), {chart}});
}

// Outcomes by corruption category and by the subject's role.
void AddOutcomes(const StaInputs& in, Sections& sections) {
  AddOutcomeTable("outcomes_by_category", "Outcomes by corruption category", "Category",
                  in.by_category, "Category and outcome as the force or unit recorded them.",
                  sections);
  AddOutcomeTable("outcomes_by_role", "Outcomes by subject role", "Role", in.by_role,
                  "The role of the referral's first subject with a known role (officer, staff, "
                  "special constable and so on; an associate is a family member or associate "
                  "referred by an indirect link).",
                  sections);
}

// Role against category, with the mix of each role's outcomes when the categories are few.
void AddRoleByCategory(const StaInputs& in, Sections& sections) {
  Table t{"role_by_category",
          "Outcomes by role and category",
          "Referrals closed with an outcome, by the subject's role and the category recorded.",
          {"Role", "Category", "Outcomes"},
          {}};
  std::vector<std::string> categories;
  std::map<std::string, std::map<std::string, std::optional<double>>> cells;
  for (const auto& g : in.by_role_category.groups()) {
    Cell role = Text(EnumText(g.key(0), ""));
    role.csv = absl::StrCat(g.key(0), ":", g.key(1));
    t.rows.push_back(
        {role, Text(EnumText(g.key(1), "")), Count(SARLOOP_M(g.measures(), closed_with_outcome))});
    if (std::find(categories.begin(), categories.end(), g.key(1)) == categories.end()) {
      categories.push_back(g.key(1));
    }
    cells[g.key(0)][g.key(1)] = AsDouble(SARLOOP_M(g.measures(), closed_with_outcome));
  }
  // One group of bars per role, a bar per category: the mix of each role's outcomes.
  Chart mix{"Outcomes by role, by category", {}, {}, false};
  for (const std::string& c : categories) mix.series.push_back({EnumText(c, ""), {}});
  for (const auto& [role, by_category] : cells) {
    mix.labels.push_back(EnumText(role, ""));
    for (size_t k = 0; k < categories.size(); ++k) {
      auto it = by_category.find(categories[k]);
      mix.series[k].second.push_back(it == by_category.end() ? 0.0 : it->second);
    }
  }
  std::vector<Chart> charts;
  if (!mix.labels.empty() && categories.size() <= 5) charts.push_back(mix);
  sections.push_back({std::move(t), charts});
}

// Was the THR predictive? Each level of UKFIU's assessment at referral (its highest of threat,
// risk and harm) against what came of the referrals.
void AddThrOutcomes(const StaInputs& in, Sections& sections) {
  Table t{"thr_outcomes",
          "THR at referral against outcome",
          "UKFIU's threat, risk and harm assessment when it referred, as its highest level, "
          "against what came of the referrals: a predictive THR sends more of its high-level "
          "referrals to investigation and to the heavier outcomes.",
          {"THR", "Referred", "Declined by force", "Handed over", "Outcomes",
           "Dismissal or conviction"},
          {}};
  Chart chart{"Outcomes by THR at referral",
              {},
              {{"Referred", {}}, {"Outcomes", {}}, {"Dismissal or conviction", {}}},
              false};
  static constexpr v1::OutcomeType kHeavy[] = {
      v1::OUTCOME_TYPE_DISMISSED, v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION,
      v1::OUTCOME_TYPE_DISMISSED_AFTER_VETTING_WITHDRAWAL, v1::OUTCOME_TYPE_CRIMINAL_CONVICTED};
  for (const auto& g : in.by_thr.groups()) {
    const v1::Measures& m = g.measures();
    std::optional<int64_t> heavy = 0;
    for (const auto& o : m.outcomes()) {
      if (std::find(std::begin(kHeavy), std::end(kHeavy), o.type()) == std::end(kHeavy)) continue;
      heavy = heavy && o.has_count() ? std::optional<int64_t>(*heavy + o.count()) : std::nullopt;
    }
    Cell level = Text(EnumText(g.key(0), ""));
    level.csv = g.key(0);
    t.rows.push_back({level, Count(SARLOOP_M(m, referred)), Count(SARLOOP_M(m, declined_by_force)),
                      Count(SARLOOP_M(m, handed_over)), Count(SARLOOP_M(m, closed_with_outcome)),
                      Count(heavy)});
    chart.labels.push_back(EnumText(g.key(0), ""));
    chart.series[0].second.push_back(AsDouble(SARLOOP_M(m, referred)));
    chart.series[1].second.push_back(AsDouble(SARLOOP_M(m, closed_with_outcome)));
    chart.series[2].second.push_back(AsDouble(heavy));
  }
  std::vector<Chart> charts;
  if (!chart.labels.empty()) charts.push_back(chart);
  sections.push_back({std::move(t), charts});
}

// The indirect route's yield: referrals made because of a link found other than in the SAR,
// against direct ones.
void AddRouteYield(const StaInputs& in, Sections& sections) {
  Table t{"route_yield",
          "Direct and indirect referrals",
          "Indirect: referred because a link to the organisation's personnel was found other "
          "than in the SAR itself (a family member or associate; the linkage screen).",
          {"Route", "Referred", "Feedback", "Response rate", "Declined by force", "Outcomes"},
          {}};
  for (const auto& g : in.by_route.groups()) {
    const v1::Measures& m = g.measures();
    Cell route = Text(EnumText(g.key(0), ""));
    route.csv = g.key(0);
    t.rows.push_back({route, Count(SARLOOP_M(m, referred)), Count(SARLOOP_M(m, feedback_received)),
                      Rate(OptD(m.has_response_rate(), m.response_rate())),
                      Count(SARLOOP_M(m, declined_by_force)),
                      Count(SARLOOP_M(m, closed_with_outcome))});
  }
  sections.push_back({std::move(t), {}});
}

// Unit demand: what each unit was handed, what it declined, what is still open and for how
// long.
void AddUnitDemand(const StaInputs& in, const std::string& fy, Sections& sections) {
  Table t{"unit_demand",
          "Unit demand",
          absl::StrCat("Referrals dispatched in ", fy,
                       " handed to each unit: those it declined to assist with at least once, "
                       "those still open (and the days since the oldest was dispatched), and "
                       "those ended with an outcome."),
          {"Unit", "Handed over", "Assistance declined", "Open", "Oldest open (days)", "Outcomes"},
          {}};
  Chart chart{"Handovers per unit",
              {},
              {{"Handed over", {}}, {"Assistance declined", {}}, {"Open", {}}},
              false};
  for (const auto& g : in.by_unit.groups()) {
    if (g.key(0) == "NONE") continue;
    const v1::Measures& m = g.measures();
    t.rows.push_back({Text(g.key(0)), Count(SARLOOP_M(m, referred)),
                      Count(SARLOOP_M(m, assistance_declined)), Count(SARLOOP_M(m, open)),
                      Count(SARLOOP_M(m, oldest_open_days)),
                      Count(SARLOOP_M(m, closed_with_outcome))});
    chart.labels.push_back(g.key(0));
    chart.series[0].second.push_back(AsDouble(SARLOOP_M(m, referred)));
    chart.series[1].second.push_back(AsDouble(SARLOOP_M(m, assistance_declined)));
    chart.series[2].second.push_back(AsDouble(SARLOOP_M(m, open)));
  }
  std::vector<Chart> charts;
  if (!chart.labels.empty()) charts.push_back(chart);
  sections.push_back({std::move(t), charts});
}

// Outcomes by track: each referral's latest outcome on each track it has (a conviction and a
// dismissal are two rows of one referral).
void AddOutcomesByTrack(const StaInputs& in, Sections& sections) {
  if (in.by_track.empty()) return;
  static constexpr const char* kTracks[] = {"Criminal", "Conduct", "Vetting", "Listing", "Staff"};
  Table t{"outcomes_by_track",
          "Outcomes by track",
          "Each referral's latest outcome on each track: charged and a case to answer are still "
          "open. A referral can be counted on several tracks.",
          {"Track", "Outcome", "Referrals"},
          {}};
  Chart chart{"Referrals by outcome, per track", {}, {{"Referrals", {}}}, false};
  for (size_t k = 0; k < in.by_track.size() && k < std::size(kTracks); ++k) {
    for (const auto& g : in.by_track[k].groups()) {
      if (g.key(0) == "NONE") continue;
      Cell track = Text(kTracks[k]);
      track.csv = absl::StrCat(absl::AsciiStrToUpper(kTracks[k]), ":", g.key(0));
      t.rows.push_back(
          {track, Text(EnumText(g.key(0), "")), Count(SARLOOP_M(g.measures(), referred))});
      chart.labels.push_back(absl::StrCat(kTracks[k], ": ", EnumText(g.key(0), "")));
      chart.series[0].second.push_back(AsDouble(SARLOOP_M(g.measures(), referred)));
    }
  }
  std::vector<Chart> charts;
  if (!chart.labels.empty()) charts.push_back(chart);
  sections.push_back({std::move(t), charts});
}

// Who investigates, and at what priority.
void AddUnitsAndPriorities(const StaInputs& in, Sections& sections) {
  Table u = MeasureTable("by_unit", "Referrals by investigating unit", "Unit", in.by_unit);
  u.note = "The unit a force handed the referral to (NONE: the force kept it).";
  Table p = MeasureTable("by_priority", "Referrals by priority", "Priority", in.by_priority);
  p.note = "The priority the force or unit last gave (NONE: never handed over or adopted).";
  Chart units{"Referrals by investigating unit", {}, {{"Referred", {}}}, false};
  for (const auto& g : in.by_unit.groups()) {
    units.labels.push_back(g.key(0));
    units.series[0].second.push_back(AsDouble(SARLOOP_M(g.measures(), referred)));
  }
  sections.push_back({std::move(u), {units}});
  sections.push_back({std::move(p), {RateChart("Response rate by priority", in.by_priority)}});
}

// Why forces declined.
void AddDeclinesByReason(const StaInputs& in, Sections& sections) {
  Table t{"declines_by_reason",
          "Declines by reason",
          "The code the force gave when it declined (the free text is in the declined requests "
          "register).",
          {"Reason", "Declines"},
          {}};
  Chart chart{"Declines by reason", {}, {{"Declines", {}}}, false};
  for (const auto& g : in.by_decline_reason.groups()) {
    if (g.key(0) == "NONE") continue;
    Cell reason = Text(EnumText(g.key(0), ""));
    reason.csv = g.key(0);
    t.rows.push_back({reason, Count(SARLOOP_M(g.measures(), declined_by_force))});
    chart.labels.push_back(EnumText(g.key(0), ""));
    chart.series[0].second.push_back(AsDouble(SARLOOP_M(g.measures(), declined_by_force)));
  }
  Cell all = Text("All");
  all.csv = "All";
  t.rows.push_back({all, Count(SARLOOP_M(in.by_decline_reason.total(), declined_by_force))});
  std::vector<Chart> charts;
  if (!chart.labels.empty()) charts.push_back(chart);
  sections.push_back({std::move(t), charts});
}

// Time to outcome by quarter of dispatch, and the trend against the year before.
void AddTimeToOutcome(const StaInputs& in, const std::string& fy, const std::string& prev,
                      Sections& sections) {
  Table t{"time_to_outcome",
          "Time to outcome",
          "Days from dispatch, by the quarter the referral was dispatched in.",
          {"Quarter", "Outcomes", "Median days to outcome", "90th percentile days to outcome",
           "Median days to feedback"},
          {}};
  Chart chart{"Days to outcome by quarter of dispatch",
              {},
              {{"Median", {}}, {"90th percentile", {}}},
              false,
              Chart::Kind::kLines};
  Table trend{"trend",
              absl::StrCat("Trend: ", fy, " against ", prev),
              "",
              {"Quarter", "Referred", "Feedback", "Response rate"},
              {}};
  Chart referred{"Referrals per quarter",
                 {"Q1", "Q2", "Q3", "Q4"},
                 {{prev, {}}, {fy, {}}},
                 false,
                 Chart::Kind::kLines};
  Chart rate{"Response rate per quarter",
             {"Q1", "Q2", "Q3", "Q4"},
             {{prev, {}}, {fy, {}}},
             true,
             Chart::Kind::kLines};
  std::map<std::string, const v1::Measures*> by_key;
  for (const auto& g : in.by_quarter.groups()) by_key[g.key(0)] = &g.measures();
  const v1::Measures empty = [] {
    v1::Measures m;
    m.set_referred(0);
    m.set_feedback_received(0);
    m.set_closed_with_outcome(0);
    return m;
  }();
  for (int y = 0; y < 2; ++y) {
    const std::string& year = y == 0 ? prev : fy;
    for (int q = 1; q <= 4; ++q) {
      const std::string key = absl::StrCat(year, " Q", q);
      auto it = by_key.find(key);
      const v1::Measures& m = it == by_key.end() ? empty : *it->second;
      trend.rows.push_back({Text(key), Count(SARLOOP_M(m, referred)),
                            Count(SARLOOP_M(m, feedback_received)),
                            Rate(OptD(m.has_response_rate(), m.response_rate()))});
      referred.series[y].second.push_back(AsDouble(SARLOOP_M(m, referred)));
      rate.series[y].second.push_back(OptD(m.has_response_rate(), m.response_rate()));
      if (y == 1) {
        const auto& d = m.days_to_outcome();
        t.rows.push_back(
            {Text(key), Count(SARLOOP_M(m, closed_with_outcome)),
             Days(OptD(d.has_median(), d.median())), Days(OptD(d.has_p90(), d.p90())),
             Days(OptD(m.days_to_feedback().has_median(), m.days_to_feedback().median()))});
        chart.labels.push_back(key);
        chart.series[0].second.push_back(OptD(d.has_median(), d.median()));
        chart.series[1].second.push_back(OptD(d.has_p90(), d.p90()));
      }
    }
  }
  sections.push_back({std::move(t), {chart}});
  sections.push_back({std::move(trend), {referred, rate}});
}

// The trend over every year held, up to this one.
void AddTrendYears(const StaInputs& in, Sections& sections) {
  Table t{"trend_years",
          "Trend: every financial year held",
          "Each year's referrals as they stand now: a recent year's cases are younger, so fewer "
          "have ended.",
          {"Financial year", "Referred", "Feedback", "Response rate",
           "Response rate, past due date", "Median days to feedback", "Median days to outcome"},
          {}};
  Chart volume{"Referrals per financial year",
               {},
               {{"Referred", {}}, {"Feedback", {}}},
               false,
               Chart::Kind::kLines};
  Chart rates{"Response rates per financial year",
              {},
              {{"Response rate", {}}, {"Past due date", {}}},
              true,
              Chart::Kind::kLines};
  for (const auto& g : in.by_year.groups()) {
    int y = 0;
    if (!absl::SimpleAtoi(g.key(0).substr(0, 4), &y) || y > in.year) continue;
    const v1::Measures& m = g.measures();
    t.rows.push_back({Text(g.key(0)), Count(SARLOOP_M(m, referred)),
                      Count(SARLOOP_M(m, feedback_received)),
                      Rate(OptD(m.has_response_rate(), m.response_rate())),
                      Rate(OptD(m.has_response_rate_due(), m.response_rate_due())),
                      Days(OptD(m.days_to_feedback().has_median(), m.days_to_feedback().median())),
                      Days(OptD(m.days_to_outcome().has_median(), m.days_to_outcome().median()))});
    volume.labels.push_back(g.key(0));
    volume.series[0].second.push_back(AsDouble(SARLOOP_M(m, referred)));
    volume.series[1].second.push_back(AsDouble(SARLOOP_M(m, feedback_received)));
    rates.labels.push_back(g.key(0));
    rates.series[0].second.push_back(OptD(m.has_response_rate(), m.response_rate()));
    rates.series[1].second.push_back(OptD(m.has_response_rate_due(), m.response_rate_due()));
  }
  std::vector<Chart> charts;
  if (!t.rows.empty()) charts = {volume, rates};
  sections.push_back({std::move(t), charts});
}

// Who is overdue or escalated.
void AddOverdue(const StaInputs& in, const std::string& fy, Sections& sections) {
  Table t{"overdue_escalated",
          "Overdue and escalated organisations",
          absl::StrCat("As at ", absl::FormatTime("%Y-%m-%d", in.as_of, absl::UTCTimeZone()),
                       ", for referrals dispatched in ", fy, "."),
          {"Organisation", "Overdue", "Escalated", "Open over 12 months"},
          {}};
  Chart chart{"Overdue and escalated referrals", {}, {{"Overdue", {}}, {"Escalated", {}}}, false};
  for (const auto& g : in.by_organisation.groups()) {
    const auto& m = g.measures();
    auto flagged = [](bool has, int64_t v) { return !has || v > 0; };
    if (!flagged(m.has_overdue(), m.overdue()) && !flagged(m.has_escalated(), m.escalated()) &&
        !flagged(m.has_open_over_12_months(), m.open_over_12_months())) {
      continue;
    }
    t.rows.push_back({Text(g.key(0)), Count(SARLOOP_M(m, overdue)), Count(SARLOOP_M(m, escalated)),
                      Count(SARLOOP_M(m, open_over_12_months))});
    chart.labels.push_back(g.key(0));
    chart.series[0].second.push_back(AsDouble(SARLOOP_M(m, overdue)));
    chart.series[1].second.push_back(AsDouble(SARLOOP_M(m, escalated)));
  }
  const auto& m = in.by_organisation.total();
  t.rows.push_back({Text("All"), Count(SARLOOP_M(m, overdue)), Count(SARLOOP_M(m, escalated)),
                    Count(SARLOOP_M(m, open_over_12_months))});
  std::vector<Chart> charts;
  if (!chart.labels.empty()) charts.push_back(chart);
  sections.push_back({std::move(t), charts});
}

// Non-responders: organisations holding referrals past their due date with no first decision,
// the longest silence first.
void AddNonResponders(const StaInputs& in, const std::string& fy, Sections& sections) {
  Table t{"non_responders",
          "Non-responders",
          absl::StrCat("As at ", absl::FormatTime("%Y-%m-%d", in.as_of, absl::UTCTimeZone()),
                       ", referrals dispatched in ", fy,
                       " that are past the first decision's due date and still have none, and "
                       "the days since the oldest of them was dispatched."),
          {"Organisation", "Past due, no decision", "Past due", "Response rate, past due date",
           "Oldest unanswered (days)"},
          {}};
  std::vector<std::pair<int64_t, std::vector<Cell>>> rows;
  Chart chart{"Days since the oldest unanswered referral", {}, {{"Days", {}}}, false};
  for (const auto& g : in.by_organisation.groups()) {
    const v1::Measures& m = g.measures();
    if (!m.has_past_due() || !m.has_past_due_answered()) {
      if (!m.has_oldest_unanswered_days() || m.oldest_unanswered_days() == 0) continue;
    } else if (m.past_due() == m.past_due_answered()) {
      continue;
    }
    const std::optional<int64_t> silent =
        m.has_past_due() && m.has_past_due_answered()
            ? std::optional<int64_t>(m.past_due() - m.past_due_answered())
            : std::nullopt;
    rows.push_back({m.oldest_unanswered_days(),
                    {Text(g.key(0)), Count(silent), Count(SARLOOP_M(m, past_due)),
                     Rate(OptD(m.has_response_rate_due(), m.response_rate_due())),
                     Count(SARLOOP_M(m, oldest_unanswered_days))}});
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [age, row] : rows) {
    chart.labels.push_back(row[0].text);
    chart.series[0].second.push_back(static_cast<double>(age));
    t.rows.push_back(std::move(row));
  }
  std::vector<Chart> charts;
  if (!chart.labels.empty() && !in.publication) charts.push_back(chart);
  sections.push_back({std::move(t), charts});
}

// Regulation 19: investigations open 12 months after receipt are reported to the local policing
// body; the list by organisation.
void AddRegulation19(const StaInputs& in, const std::string& fy, Sections& sections) {
  Table t{"regulation_19",
          "Open over 12 months (regulation 19)",
          absl::StrCat("Referrals dispatched in ", fy,
                       " still open 12 months after the force received them, as at ",
                       absl::FormatTime("%Y-%m-%d", in.as_of, absl::UTCTimeZone()),
                       ": the Police (Conduct) Regulations 2020, regulation 19, require a report "
                       "to the local policing body, then every 6 months."),
          {"Organisation", "Open over 12 months", "Oldest open (days)"},
          {}};
  for (const auto& g : in.by_organisation.groups()) {
    const v1::Measures& m = g.measures();
    if (m.has_open_over_12_months() && m.open_over_12_months() == 0) continue;
    t.rows.push_back({Text(g.key(0)), Count(SARLOOP_M(m, open_over_12_months)),
                      Count(SARLOOP_M(m, oldest_open_days))});
  }
  sections.push_back({std::move(t), {}});
}

// Declined requests register.
void AddDeclinedRegister(const StaInputs& in, Sections& sections) {
  Table t{"declined_register",
          "Declined requests register",
          in.publication ? "Left out in publication mode: it lists single referrals."
                         : "Referrals of the year a force declined or a unit declined to "
                           "assist with, and the reason last given.",
          {"Referral", "Organisation", "Dispatched", "Declined by force", "Unit declines", "Unit",
           "Reason"},
          {}};
  for (const auto& e : in.declined) {
    const bool by_force = e.state() == v1::REFERRAL_STATE_DECLINED_BY_FORCE;
    t.rows.push_back({Text(e.referral_id()), Text(e.organisation()), Text(Date(e.dispatched_at())),
                      Text(by_force ? absl::StrCat("yes, ", Date(e.feedback_at())) : "no"),
                      Count(e.assistance_declines()), Text(e.unit()), Text(e.reason())});
    t.rows.back()[3].csv = by_force ? Date(e.feedback_at()) : "";
  }
  sections.push_back({std::move(t), {}});
}

// Renders the sections as HTML, Markdown and CSV, marked for handling, with what the figures
// cover.
StaReport Render(const StaInputs& in, const std::string& fy, Sections sections) {
  StaReport report;
  constexpr char kMarking[] = "OFFICIAL-SENSITIVE";
  int on_system = 0, with_referrals = 0, organisations = 0;
  for (const v1::Organisation& o : ReferenceData::BuiltIn().organisations()) {
    if (o.code() != "NCA") ++organisations;
  }
  for (const auto& g : in.by_organisation.groups()) {
    const v1::Measures& m = g.measures();
    ++with_referrals;
    if (m.has_referred() && m.has_recorded_on_behalf() && m.recorded_on_behalf() < m.referred()) {
      ++on_system;
    }
  }
  const std::string caveat = absl::StrCat(
      "Coverage: ", with_referrals, " of ", organisations,
      " organisations that take referrals had referrals this year, ", on_system,
      " of them answering through sarloop; the others' figures are what UKFIU recorded on their "
      "behalf. Counts are of referrals made through UKFIU's referral process only, not all "
      "corruption intelligence; outcomes of recent referrals are still to come. Rates per 1,000 "
      "officers use published figures for ",
      PublishedWorkforce().size(), " organisations.");
  const std::string as_of = absl::FormatTime("%Y-%m-%d %H:%M UTC", in.as_of, absl::UTCTimeZone());
  const std::string mode =
      in.publication ? absl::StrCat("Publication mode: counts from 1 to ", in.min_count - 1,
                                    " and any count they could be worked out from are shown as "
                                    "[c].")
                     : "Not for publication: small counts are shown.";
  std::string& html = report.html;
  html = absl::StrCat(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>STA summary ",
      fy, ": law-enforcement SAR referrals</title><style>", kStyle,
      "</style></head><body><main><p class=\"marking\">", kMarking,
      "</p>"
      "<h1>SAR referrals about law-enforcement personnel: ",
      fy,
      "</h1><p class=\"note\">Summary of outcomes for the strategic threat assessment (HMICFRS "
      "2024, recommendation 4). Referrals dispatched from 1 April ",
      in.year, " to 31 March ", in.year + 1, " (UTC). Generated from the NCA register as at ",
      as_of, ". ", HtmlEscape(mode), "</p><p class=\"note\">", HtmlEscape(caveat), "</p>");
  std::string& md = report.markdown;
  md = absl::StrCat("**", kMarking, "**\n\n# SAR referrals about law-enforcement personnel: ", fy,
                    "\n\n",
                    "Summary of outcomes for the strategic threat assessment. Referrals "
                    "dispatched from 1 April ",
                    in.year, " to 31 March ", in.year + 1, " (UTC). As at ", as_of, ". ", mode,
                    "\n\n", caveat, "\n");
  report.csv = kCsvHeader;
  absl::StrAppend(&report.csv, "meta,report,as_of,",
                  absl::FormatTime(absl::RFC3339_sec, in.as_of, absl::UTCTimeZone()),
                  "\nmeta,report,financial_year,", in.year, "\nmeta,report,publication,",
                  in.publication ? "true" : "false", "\nmeta,report,handling,", kMarking, "\n");
  for (auto& [table, charts] : sections) {
    absl::StrAppend(&html, "<section><h2>", HtmlEscape(table.title), "</h2>");
    if (!table.note.empty())
      absl::StrAppend(&html, "<p class=\"note\">", HtmlEscape(table.note), "</p>");
    if (!charts.empty()) {
      html += "<div class=\"charts\">";
      for (const Chart& c : charts) html += SvgChart(c);
      html += "</div>";
    }
    html += HtmlTable(table);
    html += "</section>";
    absl::StrAppend(&md, "\n## ", table.title, "\n\n");
    if (!table.note.empty()) absl::StrAppend(&md, table.note, "\n\n");
    md += MarkdownTable(table);
    report.csv += CsvRows(table);
    report.tables.push_back(std::move(table));
  }
  absl::StrAppend(&html, "<p class=\"marking\">", kMarking, "</p></main></body></html>\n");
  absl::StrAppend(&md, "\n**", kMarking, "**\n");
  return report;
}

}  // namespace

StaReport BuildSta(const StaInputs& in) {
  const std::string fy = absl::StrFormat("%04d-%02d", in.year, (in.year + 1) % 100);
  const std::string prev = absl::StrFormat("%04d-%02d", in.year - 1, in.year % 100);
  Sections sections;
  AddHeadline(in, fy, prev, sections);
  AddTimeliness(in, sections);
  AddResponseByOrganisation(in, sections);
  AddOutcomes(in, sections);
  AddRoleByCategory(in, sections);
  AddThrOutcomes(in, sections);
  AddRouteYield(in, sections);
  AddUnitDemand(in, fy, sections);
  AddOutcomesByTrack(in, sections);
  AddUnitsAndPriorities(in, sections);
  AddDeclinesByReason(in, sections);
  AddTimeToOutcome(in, fy, prev, sections);
  AddTrendYears(in, sections);
  AddOverdue(in, fy, sections);
  AddNonResponders(in, fy, sections);
  AddRegulation19(in, fy, sections);
  AddDeclinedRegister(in, sections);
  return Render(in, fy, std::move(sections));
}

}  // namespace sarloop::report
