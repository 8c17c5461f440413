#include "services/nca/dashboard.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/audit.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/report.h"
#include "common/status.h"

namespace sarloop::nca {
namespace {

using report::HtmlEscape;

constexpr char kCookie[] = "sarloop_session";

std::string RandomKey() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 32) != 1) {
    // No randomness means no safe sessions: stop rather than sign with a guessable key.
    std::abort();
  }
  return key;
}

std::string Hmac(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string CookieValue(const std::string& header, absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::StartsWith(part, absl::StrCat(name, "="))) {
      return std::string(part.substr(name.size() + 1));
    }
  }
  return "";
}

std::string Date(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "";
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(t.seconds()), absl::UTCTimeZone());
}

std::string DateTime(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%d %H:%M", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string Tile(const char* measure, const std::string& label, const report::Cell& value) {
  return absl::StrCat("<div class=\"tile\" data-measure=\"", measure, "\" data-value=\"",
                      HtmlEscape(value.csv), "\"><b>", HtmlEscape(value.text), "</b>",
                      HtmlEscape(label), "</div>");
}

// Security headers for every page: nothing but this origin's own pages and inline styles.
void Harden(HttpResponse& r) {
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                         "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Strict-Transport-Security", "max-age=31536000");
}

}  // namespace

Dashboard::Dashboard(Register& reg, Clock& clock, Database* audit_db,
                     const ReferenceData& reference, std::string address)
    : register_(reg),
      clock_(clock),
      audit_db_(audit_db),
      reference_(reference),
      address_(std::move(address)),
      key_(RandomKey()) {}

std::string Dashboard::Sign(const std::string& kind, const std::string& user, int64_t expires) {
  const std::string payload = absl::StrCat(kind, "|", user, "|", expires, "|", NewId("", 32));
  return absl::StrCat(absl::BytesToHexString(payload), ".",
                      absl::BytesToHexString(Hmac(key_, payload)));
}

std::optional<Dashboard::Token> Dashboard::Verify(const std::string& text,
                                                  const std::string& kind) {
  const size_t dot = text.find('.');
  if (dot == std::string::npos || text.size() > 1000) return std::nullopt;
  const std::string payload_hex = text.substr(0, dot);
  const std::string mac_hex = text.substr(dot + 1);
  auto is_hex = [](const std::string& s) {
    return s.size() % 2 == 0 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  if (!is_hex(payload_hex) || !is_hex(mac_hex)) return std::nullopt;
  const std::string payload = absl::HexStringToBytes(payload_hex);
  const std::string mac = absl::HexStringToBytes(mac_hex);
  const std::string want = Hmac(key_, payload);
  if (mac.size() != want.size() || CRYPTO_memcmp(mac.data(), want.data(), want.size()) != 0) {
    return std::nullopt;
  }
  std::vector<std::string> parts = absl::StrSplit(payload, '|');
  Token t;
  if (parts.size() != 4 || parts[0] != kind || !absl::SimpleAtoi(parts[2], &t.expires)) {
    return std::nullopt;
  }
  t.kind = parts[0];
  t.user = parts[1];
  t.nonce = parts[3];
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  if (t.expires <= now) return std::nullopt;
  std::lock_guard lock(mu_);
  for (auto it = spent_.begin(); it != spent_.end();) {
    it = it->second <= now ? spent_.erase(it) : std::next(it);
  }
  if (spent_.count(t.nonce) > 0) return std::nullopt;
  return t;
}

std::string Dashboard::LoginUrl(const std::string& user) {
  const int64_t expires = absl::ToUnixSeconds(clock_.Now()) + kTicketSeconds;
  return absl::StrCat("https://", address_, "/login?ticket=", Sign("login", user, expires));
}

HttpResponse Dashboard::Page(int status, const std::string& title, const std::string& body,
                             bool nav) {
  HttpResponse r;
  r.status = status;
  r.body = absl::StrCat(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>",
      HtmlEscape(title), " · sarloop NCA</title><style>", report::kStyle,
      "</style></head><body><header><strong>sarloop · NCA register</strong>&nbsp;&nbsp; ",
      nav ? "<a href=\"/\">Overview</a><a href=\"/overdue\">Overdue and escalated</a>"
            "<a href=\"/logout\">Sign out</a>"
          : "",
      "</header><main><h1>", HtmlEscape(title), "</h1>", body, "</main></body></html>\n");
  Harden(r);
  return r;
}

HttpResponse Dashboard::Handle(const HttpRequest& request) {
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  AuditEntry entry{clock_.Now(),
                   "",
                   "",
                   absl::StrCat("HTTPS ", request.method, " ", request.path.substr(0, 100)),
                   "",
                   0,
                   ""};
  if (request.method != "GET") {
    (void)AuditRecorder(audit_db_, entry).Finish(absl::InvalidArgumentError("method not allowed"));
    HttpResponse r = Page(405, "Method not allowed", "<p>The dashboard only reads.</p>", false);
    r.headers.emplace_back("Allow", "GET");
    return r;
  }

  if (request.path == "/login") {
    auto it = request.query.find("ticket");
    std::optional<Token> ticket =
        it == request.query.end() ? std::nullopt : Verify(it->second, "login");
    if (!ticket) {
      (void)AuditRecorder(audit_db_, entry).Finish(absl::UnauthenticatedError("bad sign-in link"));
      return Page(401, "Sign-in link not valid",
                  "<p>This sign-in link is not valid: it has been used, it has expired (links "
                  "last a minute) or it was altered. Get a new one with <code>sarloopctl nca "
                  "dashboard-login</code>.</p>",
                  false);
    }
    {
      std::lock_guard lock(mu_);
      spent_[ticket->nonce] = ticket->expires;
    }
    entry.identity = absl::StrCat("spiffe://sarloop/analyst/", ticket->user);
    entry.user = ticket->user;
    if (!AuditRecorder(audit_db_, entry).Finish(absl::OkStatus()).ok()) {
      return Page(503, "Try again shortly",
                  "<p>The sign-in cannot be recorded in the audit log just now; try again.</p>",
                  true);
    }
    HttpResponse r;
    r.status = 303;
    r.headers.emplace_back("Location", "/");
    r.headers.emplace_back(
        "Set-Cookie",
        absl::StrCat(kCookie, "=", Sign("session", ticket->user, now + kSessionSeconds),
                     "; Path=/; Max-Age=", kSessionSeconds, "; Secure; HttpOnly; SameSite=Strict"));
    Harden(r);
    return r;
  }

  // Who is asking: an analyst certificate, else a session cookie.
  std::string user;
  std::optional<Token> session;
  if (!request.peer_uri.empty()) {
    absl::StatusOr<Identity> id = ParseIdentity(request.peer_uri);
    if (id.ok() && id->kind == "analyst") user = id->system;
    entry.identity = request.peer_uri;
  }
  if (user.empty()) {
    session = Verify(CookieValue(request.cookie, kCookie), "session");
    if (session) {
      user = session->user;
      entry.identity = absl::StrCat("spiffe://sarloop/analyst/", user);
    }
  }
  if (user.empty()) {
    (void)AuditRecorder(audit_db_, entry)
        .Finish(absl::UnauthenticatedError("no analyst credential"));
    return Page(401, "Sign in",
                "<p>The NCA register is for NCA analysts. Open the dashboard with an analyst "
                "client certificate, or get a one-time sign-in link with your certificate:</p>"
                "<pre>sarloopctl nca dashboard-login</pre>",
                false);
  }
  entry.user = user;

  HttpResponse response;
  absl::Status status = absl::OkStatus();
  if (request.path == "/logout") {
    if (session) {
      std::lock_guard lock(mu_);
      spent_[session->nonce] = session->expires;
    }
    response = Page(200, "Signed out", "<p>You are signed out.</p>", false);
    response.headers.emplace_back("Set-Cookie", absl::StrCat(kCookie,
                                                             "=; Path=/; Max-Age=0; "
                                                             "Secure; HttpOnly; "
                                                             "SameSite=Strict"));
  } else if (request.path == "/") {
    response = Overview(request);
  } else if (request.path == "/overdue") {
    response = OverdueList(request);
  } else if (absl::StartsWith(request.path, "/referral/")) {
    entry.referral_id = request.path.substr(10, 40);
    response = Timeline(entry.referral_id);
  } else {
    response = Page(404, "Not found", "<p>No such page.</p>", true);
  }
  if (response.status >= 400) {
    status = absl::Status(
        response.status == 404 ? absl::StatusCode::kNotFound : absl::StatusCode::kInvalidArgument,
        absl::StrCat("HTTP ", response.status));
  }
  // As for every RPC: nothing is shown that the audit log does not hold.
  if (!AuditRecorder(audit_db_, entry).Finish(status).ok() && status.ok()) {
    return Page(503, "Try again shortly",
                "<p>This view cannot be recorded in the audit log just now; try again shortly.</p>",
                true);
  }
  return response;
}

HttpResponse Dashboard::Overview(const HttpRequest& request) {
  v1::AggregateFilter filter;
  int year = 0;
  if (auto it = request.query.find("year"); it != request.query.end() && !it->second.empty()) {
    if (!absl::SimpleAtoi(it->second, &year) || year < 1990 || year > 2200) {
      return Page(400, "Bad request", "<p>year: must be a financial year such as 2025.</p>", true);
    }
    filter.add_financial_years(year);
  }
  std::string region;
  if (auto it = request.query.find("region"); it != request.query.end() && !it->second.empty()) {
    region = it->second;
    filter.add_regions(region);
  }
  const absl::Time now = clock_.Now();
  v1::GetAggregatesRequest years_request;
  years_request.add_group_by(v1::DIMENSION_FINANCIAL_YEAR);
  v1::GetAggregatesRequest by_org;
  by_org.add_group_by(v1::DIMENSION_ORGANISATION);
  *by_org.mutable_filter() = filter;
  v1::GetAggregatesRequest by_category;
  by_category.add_group_by(v1::DIMENSION_CATEGORY);
  *by_category.mutable_filter() = filter;
  by_category.mutable_filter()->add_states(v1::REFERRAL_STATE_CLOSED_BY_FORCE);
  by_category.mutable_filter()->add_states(v1::REFERRAL_STATE_OUTCOME_RECORDED);
  auto grouped = [&](v1::Dimension d) {
    v1::GetAggregatesRequest r;
    r.add_group_by(d);
    *r.mutable_filter() = filter;
    return register_.Aggregates(r, now, 0);
  };
  auto years = register_.Aggregates(years_request, now, 0);
  auto orgs = register_.Aggregates(by_org, now, 0);
  auto categories = register_.Aggregates(by_category, now, 0);
  auto units = grouped(v1::DIMENSION_UNIT);
  auto priorities = grouped(v1::DIMENSION_PRIORITY);
  static constexpr std::pair<v1::Dimension, const char*> kTracks[] = {
      {v1::DIMENSION_CRIMINAL_TRACK, "Criminal"},
      {v1::DIMENSION_CONDUCT_TRACK, "Conduct"},
      {v1::DIMENSION_VETTING_TRACK, "Vetting"},
      {v1::DIMENSION_LISTING_TRACK, "Listing"},
      {v1::DIMENSION_STAFF_TRACK, "Staff"}};
  std::vector<absl::StatusOr<v1::GetAggregatesResponse>> tracks;
  for (const auto& [d, name] : kTracks) tracks.push_back(grouped(d));
  std::vector<const absl::StatusOr<v1::GetAggregatesResponse>*> all = {&years, &orgs, &categories,
                                                                       &units, &priorities};
  for (const auto& t : tracks) all.push_back(&t);
  for (const auto* r : all) {
    if (!r->ok()) {
      return Page(r->status().code() == absl::StatusCode::kInvalidArgument ? 400 : 503,
                  "Cannot show this",
                  absl::StrCat("<p>", HtmlEscape(r->status().message()), "</p>"), true);
    }
  }

  std::string body =
      "<form class=\"filters\" method=\"get\" action=\"/\"><label>Financial year "
      "<select name=\"year\" id=\"year\"><option value=\"\">All years</option>";
  for (const auto& g : years->groups()) {
    const std::string y = g.key(0).substr(0, 4);
    if (g.key(0) == "UNKNOWN") continue;
    absl::StrAppend(&body, "<option value=\"", HtmlEscape(y), "\"",
                    y == absl::StrCat(year) ? " selected" : "", ">", HtmlEscape(g.key(0)),
                    "</option>");
  }
  body +=
      "</select></label><label>Region <select name=\"region\" id=\"region\">"
      "<option value=\"\">All regions</option>";
  for (const Region& r : reference_.regions()) {
    absl::StrAppend(&body, "<option value=\"", HtmlEscape(r.code), "\"",
                    r.code == region ? " selected" : "", ">", HtmlEscape(r.name), "</option>");
  }
  body += "</select></label> <button type=\"submit\">Show</button></form>";
  absl::StrAppend(&body, "<p class=\"note\">", year == 0 ? "All years" : FinancialYearName(year),
                  region.empty() ? ", all regions" : absl::StrCat(", ", HtmlEscape(region)),
                  ". Overdue and escalated as at ", DateTime(ToProto(now)), " UTC.</p>");

  const v1::Measures& t = orgs->total();
  auto opt = [](bool has, auto v) { return has ? std::optional<decltype(v)>(v) : std::nullopt; };
  body += "<div class=\"tiles\">";
  body += Tile("referred", "Referred", report::Count(opt(t.has_referred(), t.referred())));
  body += Tile("feedback_received", "Feedback received",
               report::Count(opt(t.has_feedback_received(), t.feedback_received())));
  body += Tile("response_rate", "Response rate",
               report::Rate(opt(t.has_response_rate(), t.response_rate())));
  body += Tile("overdue", "Overdue", report::Count(opt(t.has_overdue(), t.overdue())));
  body += Tile("escalated", "Escalated", report::Count(opt(t.has_escalated(), t.escalated())));
  body += Tile("days_to_outcome_median", "Median days to outcome",
               report::Days(opt(t.days_to_outcome().has_median(), t.days_to_outcome().median())));
  body += Tile("information_requests", "Requests for information",
               report::Count(opt(t.has_information_requests(), t.information_requests())));
  body += Tile("days_to_answer_median", "Median days to answer a request",
               report::Days(opt(t.days_to_answer().has_median(), t.days_to_answer().median())));
  body += Tile("daml", "From DAML requests", report::Count(opt(t.has_daml(), t.daml())));
  body += Tile("referred_to_iopc", "Referred to the IOPC",
               report::Count(opt(t.has_referred_to_iopc(), t.referred_to_iopc())));
  body += Tile("recorded_on_behalf", "Recorded on behalf (not on sarloop)",
               report::Count(opt(t.has_recorded_on_behalf(), t.recorded_on_behalf())));
  body += "</div><div class=\"charts\">";
  body += report::SvgChart(report::RateChart("Response rate by organisation", *orgs));
  report::Chart outcomes{"Outcomes by corruption category", {}, {{"Outcomes", {}}}, false};
  for (const auto& g : categories->groups()) {
    outcomes.labels.push_back(report::EnumText(g.key(0), ""));
    outcomes.series[0].second.push_back(static_cast<double>(g.measures().closed_with_outcome()));
  }
  body += report::SvgChart(outcomes);
  // Each referral's latest outcome on each track (charged and a case to answer are still open).
  report::Chart by_track{"Referrals by outcome, per track", {}, {{"Referrals", {}}}, false};
  for (size_t k = 0; k < tracks.size(); ++k) {
    for (const auto& g : tracks[k]->groups()) {
      if (g.key(0) == "NONE") continue;
      by_track.labels.push_back(
          absl::StrCat(kTracks[k].second, ": ", report::EnumText(g.key(0), "")));
      by_track.series[0].second.push_back(static_cast<double>(g.measures().referred()));
    }
  }
  if (!by_track.labels.empty()) body += report::SvgChart(by_track);
  report::Chart by_unit{"Referrals by investigating unit", {}, {{"Referred", {}}}, false};
  for (const auto& g : units->groups()) {
    by_unit.labels.push_back(g.key(0) == "NONE" ? "None (kept by the force)" : g.key(0));
    by_unit.series[0].second.push_back(static_cast<double>(g.measures().referred()));
  }
  body += report::SvgChart(by_unit);
  body += report::SvgChart(report::RateChart("Response rate by priority", *priorities));
  body += "</div><h2>By organisation</h2>";
  report::Table table =
      report::MeasureTable("by_organisation", "By organisation", "Organisation", *orgs);
  for (auto& row : table.rows) {
    if (row[0].text != "All") row[0].link = absl::StrCat("/overdue?org=", row[0].text);
  }
  body += report::HtmlTable(table);
  body += "<p class=\"note\">An organisation's name opens its overdue referrals.</p>";
  return Page(200, "Referral feedback overview", body, true);
}

HttpResponse Dashboard::OverdueList(const HttpRequest& request) {
  v1::ListOverdueRequest list;
  list.set_page_size(1000);
  std::string org, region;
  if (auto it = request.query.find("org"); it != request.query.end()) org = it->second;
  if (auto it = request.query.find("region"); it != request.query.end()) region = it->second;
  if (!org.empty() && reference_.FindOrganisation(org) == nullptr) {
    return Page(400, "Bad request", "<p>org: unknown organisation.</p>", true);
  }
  if (!region.empty() && reference_.FindRegion(region) == nullptr) {
    return Page(400, "Bad request", "<p>region: unknown region.</p>", true);
  }
  list.set_organisation(org);
  const absl::Time now = clock_.Now();
  std::vector<v1::RegisterEntry> entries;
  for (;;) {
    auto page = register_.Overdue(list, now);
    if (!page.ok()) {
      return Page(503, "Cannot show this",
                  absl::StrCat("<p>", HtmlEscape(page.status().message()), "</p>"), true);
    }
    for (const auto& e : page->entries()) {
      const v1::Organisation* o = reference_.FindOrganisation(e.organisation());
      if (!region.empty() && (o == nullptr || o->region() != region)) continue;
      entries.push_back(e);
    }
    if (page->next_page_token().empty() || entries.size() >= 5000) break;
    list.set_page_token(page->next_page_token());
  }
  int escalated = 0;
  report::Table t{"overdue",
                  "Overdue",
                  "",
                  {"Referral", "Organisation", "State", "Dispatched", "Due", "Days overdue",
                   "Reminders", "Escalated"},
                  {}};
  for (const auto& e : entries) {
    escalated += e.escalated();
    const int64_t days = (absl::ToUnixSeconds(now) - e.due_at().seconds()) / 86400;
    t.rows.push_back(
        {report::Text(e.referral_id(), absl::StrCat("/referral/", e.referral_id())),
         report::Text(e.organisation()), report::Text(std::string(StateName(e.state()))),
         report::Text(Date(e.dispatched_at())), report::Text(Date(e.due_at())), report::Count(days),
         report::Count(e.reminders()), report::Text(e.escalated() ? "escalated" : "")});
  }
  std::string body = absl::StrCat(
      "<p class=\"note\">Referrals past their due date with no feedback, most overdue first, as "
      "at ",
      DateTime(ToProto(now)), " UTC", org.empty() ? "" : absl::StrCat(", ", HtmlEscape(org)),
      region.empty() ? "" : absl::StrCat(", ", HtmlEscape(region)), ".</p>",
      "<div class=\"tiles\">", Tile("overdue", "Overdue", report::Count(entries.size())),
      Tile("escalated", "Of which escalated", report::Count(escalated)), "</div>");
  if (entries.empty()) {
    body += "<p>Nothing is overdue.</p>";
  } else {
    body += report::HtmlTable(t);
  }
  return Page(200, "Overdue and escalated referrals", body, true);
}

HttpResponse Dashboard::Timeline(const std::string& referral_id) {
  auto timeline = register_.Timeline(referral_id);
  if (!timeline.ok()) {
    const bool missing = timeline.status().code() == absl::StatusCode::kNotFound;
    return Page(missing ? 404 : 400, missing ? "No such referral" : "Bad request",
                absl::StrCat("<p>", HtmlEscape(timeline.status().message()), "</p>"), true);
  }
  const v1::RegisterEntry& e = timeline->entry();
  report::Table facts{"entry", "Referral", "", {"Field", "Value"}, {}};
  auto fact = [&](const std::string& name, std::string value) {
    facts.rows.push_back({report::Text(name), report::Text(std::move(value))});
  };
  fact("Referral", e.referral_id());
  fact("Organisation", e.organisation());
  fact("State", std::string(StateName(e.state())));
  fact("Route", report::EnumText(v1::ReferralRoute_Name(e.route()), "REFERRAL_ROUTE_"));
  fact("Dispatched", Date(e.dispatched_at()));
  fact("Due", Date(e.due_at()));
  fact("Feedback", Date(e.feedback_at()));
  fact("Unit", e.unit());
  fact("Reminders", absl::StrCat(e.reminders()));
  fact("Escalated", e.escalated() ? "yes" : "no");
  for (const v1::Outcome& t : e.tracks()) {
    fact(absl::StrCat("Track: ",
                      report::EnumText(v1::OutcomeTrack_Name(t.track()), "OUTCOME_TRACK_")),
         absl::StrCat(
             report::EnumText(v1::OutcomeType_Name(t.type()), "OUTCOME_TYPE_"),
             IsOpenOutcome(t.type()) ? " (open)" : "",
             t.investigating_org().empty() ? "" : absl::StrCat(", ", t.investigating_org())));
  }
  if (e.has_outcome()) {
    fact("Outcome", std::string(OutcomeName(e.outcome().type())));
    fact("Category", report::EnumText(v1::CorruptionCategory_Name(e.outcome().category()),
                                      "CORRUPTION_CATEGORY_"));
  }
  if (!e.linked_referral_id().empty()) fact("Linked referral", e.linked_referral_id());
  if (!e.reason().empty()) fact("Reason", e.reason());
  report::Table events{
      "events", "Events", "", {"Time (UTC)", "Event", "Producer", "Actor", "Detail"}, {}};
  for (const auto& ev : timeline->events()) {
    std::vector<std::string> detail;
    if (!ev.unit().empty()) detail.push_back(absl::StrCat("unit ", ev.unit()));
    if (ev.has_outcome()) detail.push_back(std::string(OutcomeName(ev.outcome().type())));
    if (!ev.reason().empty()) detail.push_back(absl::StrCat("reason: ", ev.reason()));
    if (!ev.linked_referral_id().empty()) {
      detail.push_back(absl::StrCat("linked ", ev.linked_referral_id()));
    }
    if (ev.sequence() != 0) detail.push_back(absl::StrCat("#", ev.sequence()));
    events.rows.push_back(
        {report::Text(DateTime(ev.occurred_at())), report::Text(std::string(EventName(ev.type()))),
         report::Text(ev.producer()),
         report::Text(ev.actor().user().empty() ? ev.actor().identity() : ev.actor().user()),
         report::Text(absl::StrJoin(detail, "; "))});
  }
  std::string body = report::HtmlTable(facts);
  absl::StrAppend(&body, "<h2>Timeline</h2>", report::HtmlTable(events));
  return Page(200, absl::StrCat("Referral ", e.referral_id()), body, true);
}

}  // namespace sarloop::nca
