// nca aggregates and report sta: the analysts' aggregate queries and the STA summary report
// (HTML with SVG charts, Markdown and CSV) built from them.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/text.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "services/nca/report.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/table.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {
namespace {

using v1::Nca;

template <typename E, typename Repeated>
absl::Status ReadEnums(const Args& args, absl::string_view option, Repeated* out) {
  for (const std::string& text : args.GetAll(option)) {
    ASSIGN_OR_RETURN(E value, ParseEnum<E>(option, text));
    out->Add(value);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ReadYear(absl::string_view option, const std::string& text) {
  ASSIGN_OR_RETURN(int64_t year, ParseInteger(option, text, 1990, 2200));
  return static_cast<int>(year);
}

// --as-of, --publication and --min-count, shared by `nca aggregates` and `report sta`.
absl::Status ReadMode(const Args& args, v1::GetAggregatesRequest& request) {
  if (auto as_of = args.Get("as-of")) {
    ASSIGN_OR_RETURN(*request.mutable_as_of(), ParseTimestamp("as-of", *as_of));
  }
  request.set_publication(args.Has("publication"));
  if (auto n = args.Get("min-count")) {
    ASSIGN_OR_RETURN(int64_t min, ParseInteger("min-count", *n, 1, 1000));
    request.set_min_count(static_cast<int>(min));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::GetAggregatesRequest> ReadAggregatesRequest(const Args& args) {
  v1::GetAggregatesRequest request;
  RETURN_IF_ERROR(ReadEnums<v1::Dimension>(args, "by", request.mutable_group_by()));
  v1::AggregateFilter& f = *request.mutable_filter();
  for (const std::string& org : args.GetAll("org")) f.add_organisations(OrgCode(org));
  for (const std::string& region : args.GetAll("region")) f.add_regions(OrgCode(region));
  for (const std::string& year : args.GetAll("year")) {
    ASSIGN_OR_RETURN(int y, ReadYear("year", year));
    f.add_financial_years(y);
  }
  RETURN_IF_ERROR(ReadEnums<v1::OrganisationKind>(args, "kind", f.mutable_organisation_kinds()));
  RETURN_IF_ERROR(ReadEnums<v1::CorruptionCategory>(args, "category", f.mutable_categories()));
  RETURN_IF_ERROR(ReadEnums<v1::SubjectRole>(args, "role", f.mutable_subject_roles()));
  RETURN_IF_ERROR(ReadEnums<v1::OutcomeType>(args, "outcome", f.mutable_outcome_types()));
  RETURN_IF_ERROR(ReadEnums<v1::ReferralRoute>(args, "route", f.mutable_routes()));
  RETURN_IF_ERROR(ReadEnums<v1::ReferralState>(args, "state", f.mutable_states()));
  RETURN_IF_ERROR(ReadEnums<v1::Priority>(args, "priority", f.mutable_priorities()));
  for (const std::string& unit : args.GetAll("unit")) f.add_units(OrgCode(unit));
  RETURN_IF_ERROR(
      ReadEnums<v1::DeclineReason>(args, "decline-reason", f.mutable_decline_reasons()));
  RETURN_IF_ERROR(ReadEnums<v1::ThrLevel>(args, "thr", f.mutable_thr_levels()));
  RETURN_IF_ERROR(ReadMode(args, request));
  return request;
}

std::string Show(const report::Cell& c) { return c.text; }

absl::Status Aggregates(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(v1::GetAggregatesRequest request, ReadAggregatesRequest(in.args));
  v1::GetAggregatesResponse response;
  RETURN_IF_ERROR(session.Call(&Nca::Stub::GetAggregates, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    std::vector<std::string> headers;
    for (int d : response.group_by()) headers.push_back(EnumLabel(static_cast<v1::Dimension>(d)));
    for (const char* h : {"REFERRED", "FEEDBACK", "RATE", "DECLINED", "OUTCOMES", "OPEN", "OVERDUE",
                          "ESCALATED", "MEDIAN DAYS TO FEEDBACK"}) {
      headers.push_back(h);
    }
    Table table(headers);
    auto add = [&](std::vector<std::string> row, const v1::Measures& m) {
      auto count = [](bool has, int64_t v) {
        return Show(report::Count(has ? std::optional(v) : std::nullopt));
      };
      row.push_back(count(m.has_referred(), m.referred()));
      row.push_back(count(m.has_feedback_received(), m.feedback_received()));
      row.push_back(Show(
          report::Rate(m.has_response_rate() ? std::optional(m.response_rate()) : std::nullopt)));
      row.push_back(count(m.has_declined_by_force(), m.declined_by_force()));
      row.push_back(count(m.has_closed_with_outcome(), m.closed_with_outcome()));
      row.push_back(count(m.has_open(), m.open()));
      row.push_back(count(m.has_overdue(), m.overdue()));
      row.push_back(count(m.has_escalated(), m.escalated()));
      row.push_back(Show(report::Days(m.days_to_feedback().has_median()
                                          ? std::optional(m.days_to_feedback().median())
                                          : std::nullopt)));
      table.AddRow(std::move(row));
    };
    for (const auto& g : response.groups()) add({g.key().begin(), g.key().end()}, g.measures());
    std::vector<std::string> total_key(response.group_by_size(), "");
    if (!total_key.empty()) total_key[0] = "ALL";
    add(total_key, response.total());
    table.Print(out);
    if (response.publication()) {
      out << "\npublication mode: [c] is a suppressed value (threshold " << response.min_count()
          << ")\n";
    }
  });
}

absl::StatusOr<v1::GetAggregatesResponse> Ask(Session& session,
                                              const v1::GetAggregatesRequest& base,
                                              std::vector<v1::Dimension> by, std::vector<int> years,
                                              std::vector<v1::ReferralState> states = {}) {
  v1::GetAggregatesRequest request = base;
  for (auto d : by) request.add_group_by(d);
  for (int y : years) request.mutable_filter()->add_financial_years(y);
  for (auto s : states) request.mutable_filter()->add_states(s);
  v1::GetAggregatesResponse response;
  RETURN_IF_ERROR(session.Call(&Nca::Stub::GetAggregates, request, &response));
  return response;
}

absl::Status WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return UsageError(absl::StrCat("--out: cannot write ", path.string()));
  return absl::OkStatus();
}

// Every number comes from GetAggregates (so the report and the API cannot disagree); the declined
// register from ListRegister.
absl::Status StaReport(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(std::string year_text, in.args.Require("year"));
  ASSIGN_OR_RETURN(int year, ReadYear("year", year_text));
  const std::filesystem::path dir = in.args.Get("out").value_or(".");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return UsageError(absl::StrCat("--out: cannot create ", dir.string(), ": ", ec.message()));

  v1::GetAggregatesRequest base;
  RETURN_IF_ERROR(ReadMode(in.args, base));
  report::StaInputs inputs;
  inputs.year = year;
  inputs.publication = base.publication();
  // Cases and distinct subjects for the headline and the organisations' table.
  base.set_count_distinct(true);
  ASSIGN_OR_RETURN(inputs.this_year, Ask(session, base, {}, {year}));
  // One as_of for every part, so the report is a consistent picture.
  *base.mutable_as_of() = inputs.this_year.as_of();
  inputs.as_of = absl::FromUnixSeconds(inputs.this_year.as_of().seconds());
  inputs.min_count = inputs.this_year.min_count();
  ASSIGN_OR_RETURN(inputs.previous_year, Ask(session, base, {}, {year - 1}));
  ASSIGN_OR_RETURN(inputs.by_organisation,
                   Ask(session, base, {v1::DIMENSION_ORGANISATION}, {year}));
  base.set_count_distinct(false);
  ASSIGN_OR_RETURN(inputs.by_region, Ask(session, base, {v1::DIMENSION_REGION}, {year}));
  ASSIGN_OR_RETURN(inputs.by_category,
                   Ask(session, base, {v1::DIMENSION_CATEGORY}, {year},
                       {v1::REFERRAL_STATE_CLOSED_BY_FORCE, v1::REFERRAL_STATE_OUTCOME_RECORDED}));
  ASSIGN_OR_RETURN(inputs.by_quarter,
                   Ask(session, base, {v1::DIMENSION_FINANCIAL_QUARTER}, {year - 1, year}));
  for (v1::Dimension track :
       {v1::DIMENSION_CRIMINAL_TRACK, v1::DIMENSION_CONDUCT_TRACK, v1::DIMENSION_VETTING_TRACK,
        v1::DIMENSION_LISTING_TRACK, v1::DIMENSION_STAFF_TRACK}) {
    ASSIGN_OR_RETURN(inputs.by_track.emplace_back(), Ask(session, base, {track}, {year}));
  }
  ASSIGN_OR_RETURN(inputs.by_unit, Ask(session, base, {v1::DIMENSION_UNIT}, {year}));
  ASSIGN_OR_RETURN(inputs.by_priority, Ask(session, base, {v1::DIMENSION_PRIORITY}, {year}));
  ASSIGN_OR_RETURN(inputs.by_decline_reason, Ask(session, base, {v1::DIMENSION_DECLINE_REASON},
                                                 {year}, {v1::REFERRAL_STATE_DECLINED_BY_FORCE}));
  ASSIGN_OR_RETURN(inputs.by_year, Ask(session, base, {v1::DIMENSION_FINANCIAL_YEAR}, {}));
  const std::vector<v1::ReferralState> closed = {v1::REFERRAL_STATE_CLOSED_BY_FORCE,
                                                 v1::REFERRAL_STATE_OUTCOME_RECORDED};
  ASSIGN_OR_RETURN(inputs.by_role,
                   Ask(session, base, {v1::DIMENSION_SUBJECT_ROLE}, {year}, closed));
  ASSIGN_OR_RETURN(
      inputs.by_role_category,
      Ask(session, base, {v1::DIMENSION_SUBJECT_ROLE, v1::DIMENSION_CATEGORY}, {year}, closed));
  ASSIGN_OR_RETURN(inputs.by_route, Ask(session, base, {v1::DIMENSION_ROUTE}, {year}));
  ASSIGN_OR_RETURN(inputs.by_thr, Ask(session, base, {v1::DIMENSION_THR}, {year}));
  if (!inputs.publication) {
    std::map<std::string, v1::RegisterEntry> declined;
    for (bool assistance : {false, true}) {
      v1::ListRegisterRequest request;
      request.set_financial_year(year);
      if (assistance) {
        request.set_assistance_declined(true);
      } else {
        request.set_state(v1::REFERRAL_STATE_DECLINED_BY_FORCE);
      }
      v1::ListRegisterResponse all;
      RETURN_IF_ERROR(ListPages(session, &Nca::Stub::ListRegister, request,
                                Paging{.page_size = 1000, .all = true}, &all));
      for (const auto& e : all.entries()) declined[e.referral_id()] = e;
    }
    for (auto& [id, e] : declined) inputs.declined.push_back(std::move(e));
    std::sort(inputs.declined.begin(), inputs.declined.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.organisation(), a.referral_id()) <
             std::make_pair(b.organisation(), b.referral_id());
    });
  }
  report::StaReport report = report::BuildSta(inputs);
  const std::string stem = absl::StrCat("sta-", year);
  RETURN_IF_ERROR(WriteFile(dir / (stem + ".html"), report.html));
  RETURN_IF_ERROR(WriteFile(dir / (stem + ".md"), report.markdown));
  RETURN_IF_ERROR(WriteFile(dir / (stem + ".csv"), report.csv));
  const auto& t = inputs.this_year.total();
  std::cout << "STA summary " << year << "-" << (year + 1) % 100 << ": "
            << (t.has_referred() ? absl::StrCat(t.referred()) : "[c]") << " referred, "
            << (t.has_feedback_received() ? absl::StrCat(t.feedback_received()) : "[c]")
            << " with feedback, " << inputs.declined.size() << " in the declined register\n";
  for (const char* ext : {".html", ".md", ".csv"}) {
    std::cout << "  wrote " << (dir / (stem + ext)).string() << '\n';
  }
  return absl::OkStatus();
}

absl::Status DashboardLogin(const Input& in, Session& session) {
  v1::CreateDashboardSessionResponse response;
  RETURN_IF_ERROR(session.Call(&Nca::Stub::CreateDashboardSession,
                               v1::CreateDashboardSessionRequest(), &response));
  return Emit(session, response, [&](std::ostream& out) {
    out << Printable(response.login_url())
        << "\n(open it within a minute; it works once and signs you in for "
        << response.session_seconds() / 60 << " minutes)\n";
  });
}

const std::vector<std::string> kAggregateOptions = {
    "by",      "org",         "region",   "year",     "kind", "category",       "role",
    "outcome", "route",       "state",    "priority", "unit", "decline-reason", "thr",
    "as-of",   "publication", "min-count"};

}  // namespace

std::vector<Command> ReportCommands() {
  return {
      {.group = "nca",
       .verb = "aggregates",
       .synopsis = "[--by DIMENSION]... [--org CODE]... [--region CODE]... [--year YYYY]... "
                   "[--kind K]... [--category C]... [--role R]... [--outcome O]... [--route R]... "
                   "[--state S]... [--priority P]... [--unit CODE]... [--decline-reason R]... "
                   "[--thr LEVEL]... [--as-of DATE] [--publication [--min-count N]]",
       .summary = "counts, rates and days grouped by up to 4 dimensions (organisation, region, "
                  "organisation-kind, financial-year, financial-quarter, category, subject-role, "
                  "outcome-type, route, state, the tracks, conduct finding and action, priority, "
                  "unit, decline-reason, thr)",
       .options = kAggregateOptions,
       .repeatable = {"by", "org", "region", "year", "kind", "category", "role", "outcome", "route",
                      "state", "priority", "unit", "decline-reason", "thr"},
       .run = Aggregates},
      {.group = "nca",
       .verb = "dashboard-login",
       .summary = "a one-time link that signs this analyst in to the dashboard",
       .run = DashboardLogin},
      {.group = "report",
       .verb = "sta",
       .synopsis = "--year YYYY [--out DIR] [--as-of DATE] [--publication [--min-count N]]",
       .summary = "write the STA summary for financial year YYYY-YY+1 as DIR/sta-YYYY.html "
                  "(SVG charts), .md and .csv",
       .options = {"year", "out", "as-of", "publication", "min-count"},
       .run = StaReport},
  };
}

}  // namespace sarloop::ctl
