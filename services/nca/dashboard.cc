#include "services/nca/dashboard.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/base/crypto.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/base/text.h"
#include "common/referral/clocks.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/security/audit.h"
#include "common/security/identity.h"
#include "services/nca/aggregates.h"
#include "services/nca/report.h"
#include "spdlog/spdlog.h"

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

// Whole days, rounded down: a referral 23 hours past due is a day overdue (-1 days left), not 0.
int64_t WholeDays(absl::Duration d) {
  absl::Duration rem;
  const int64_t days = absl::IDivDuration(d, absl::Hours(24), &rem);
  return rem < absl::ZeroDuration() ? days - 1 : days;
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

std::string UrlEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ',') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

// The enum filters the overview offers, each an AggregateFilter field: the query parameter,
// its label, the filter field and the enum's name prefix.
struct EnumFilter {
  const char* param;
  const char* label;
  const char* field;
  const char* prefix;
};
constexpr EnumFilter kEnumFilters[] = {
    {"kind", "Kind", "organisation_kinds", "ORGANISATION_KIND_"},
    {"category", "Category", "categories", "CORRUPTION_CATEGORY_"},
    {"role", "Subject role", "subject_roles", "SUBJECT_ROLE_"},
    {"outcome", "Outcome", "outcome_types", "OUTCOME_TYPE_"},
    {"route", "Route", "routes", "REFERRAL_ROUTE_"},
    {"state", "State", "states", "REFERRAL_STATE_"},
    {"priority", "Priority", "priorities", "PRIORITY_"},
    {"decline_reason", "Decline reason", "decline_reasons", "DECLINE_REASON_"},
    {"thr", "THR", "thr_levels", "THR_LEVEL_"},
};

// What the table can be grouped by: the parameter value, the dimension, its column heading.
struct GroupBy {
  const char* param;
  v1::Dimension dimension;
  const char* label;
};
constexpr GroupBy kGroupBys[] = {
    {"organisation", v1::DIMENSION_ORGANISATION, "Organisation"},
    {"region", v1::DIMENSION_REGION, "Region"},
    {"kind", v1::DIMENSION_ORGANISATION_KIND, "Kind"},
    {"year", v1::DIMENSION_FINANCIAL_YEAR, "Financial year"},
    {"quarter", v1::DIMENSION_FINANCIAL_QUARTER, "Quarter"},
    {"category", v1::DIMENSION_CATEGORY, "Category"},
    {"role", v1::DIMENSION_SUBJECT_ROLE, "Subject role"},
    {"outcome", v1::DIMENSION_OUTCOME_TYPE, "Outcome"},
    {"route", v1::DIMENSION_ROUTE, "Route"},
    {"state", v1::DIMENSION_STATE, "State"},
    {"priority", v1::DIMENSION_PRIORITY, "Priority"},
    {"unit", v1::DIMENSION_UNIT, "Unit"},
    {"decline_reason", v1::DIMENSION_DECLINE_REASON, "Decline reason"},
    {"thr", v1::DIMENSION_THR, "THR at referral"},
};

// The overview as the query asks for it: the filter, the grouping, the sort, and the parameters
// as understood (for links that keep them).
struct View {
  v1::AggregateFilter filter;
  const GroupBy* by = &kGroupBys[0];
  std::string sort;
  bool descending = true;
  int year = 0;
  std::map<std::string, std::string> params;

  // This view's query string with `changes` applied (an empty value drops the parameter).
  std::string Query(const std::map<std::string, std::string>& changes = {}) const {
    std::map<std::string, std::string> p = params;
    for (const auto& [k, v] : changes) p[k] = v;
    std::string out;
    for (const auto& [k, v] : p) {
      if (v.empty()) continue;
      absl::StrAppend(&out, out.empty() ? "?" : "&", k, "=", UrlEncode(v));
    }
    return out;
  }
};

// INVALID_ARGUMENT naming the parameter for a value the register cannot have.
absl::StatusOr<View> ParseView(const HttpRequest& request, const ReferenceData& reference) {
  View v;
  auto get = [&](const char* name) -> std::string {
    auto it = request.query.find(name);
    return it == request.query.end() ? "" : it->second;
  };
  auto bad = [](absl::string_view param, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(param, ": ", why));
  };
  if (const std::string y = get("year"); !y.empty()) {
    if (!absl::SimpleAtoi(y, &v.year) || v.year < 1990 || v.year > 2200) {
      return bad("year", "must be a financial year such as 2025");
    }
    v.filter.add_financial_years(v.year);
    v.params["year"] = y;
  }
  if (const std::string r = get("region"); !r.empty()) {
    for (absl::string_view code : absl::StrSplit(r, ',')) {
      if (reference.FindRegion(std::string(code)) == nullptr) {
        return bad("region", absl::StrCat("unknown region '", code, "'"));
      }
      v.filter.add_regions(std::string(code));
    }
    v.params["region"] = r;
  }
  if (const std::string u = get("unit"); !u.empty()) {
    for (absl::string_view code : absl::StrSplit(u, ',')) {
      if (!reference.IsUnit(std::string(code))) {
        return bad("unit", absl::StrCat("unknown unit '", code, "'"));
      }
      v.filter.add_units(std::string(code));
    }
    v.params["unit"] = u;
  }
  if (const std::string o = get("org"); !o.empty()) {
    for (absl::string_view code : absl::StrSplit(o, ',')) {
      if (reference.FindOrganisation(std::string(code)) == nullptr) {
        return bad("org", absl::StrCat("unknown organisation '", code, "'"));
      }
      v.filter.add_organisations(std::string(code));
    }
    v.params["org"] = o;
  }
  const auto* reflection = v.filter.GetReflection();
  for (const EnumFilter& f : kEnumFilters) {
    const std::string value = get(f.param);
    if (value.empty()) continue;
    const auto* field = v1::AggregateFilter::descriptor()->FindFieldByName(f.field);
    for (absl::string_view name : absl::StrSplit(value, ',')) {
      const auto* e = field->enum_type()->FindValueByName(absl::StrCat(f.prefix, name));
      if (e == nullptr || e->number() == 0) {
        return bad(f.param, absl::StrCat("unknown value '", name, "'"));
      }
      reflection->AddEnumValue(&v.filter, field, e->number());
    }
    v.params[f.param] = value;
  }
  if (const std::string by = get("by"); !by.empty()) {
    v.by = nullptr;
    for (const GroupBy& g : kGroupBys) {
      if (by == g.param) v.by = &g;
    }
    if (v.by == nullptr) return bad("by", absl::StrCat("cannot group by '", by, "'"));
    v.params["by"] = by;
  }
  v.sort = get("sort");
  if (!v.sort.empty()) v.params["sort"] = v.sort;
  if (const std::string dir = get("dir"); !dir.empty()) {
    if (dir != "asc" && dir != "desc") return bad("dir", "must be asc or desc");
    v.descending = dir == "desc";
    v.params["dir"] = dir;
  }
  return v;
}

// Who a session or certificate is for. Analysts see everything; a force's Professional Standards
// systems see their own organisation's view (its referrals, what is due, its timeliness against
// the national figure); its police and crime commissioner a read-only view of the figures.
struct Viewer {
  enum class Kind { kNone, kAnalyst, kForce, kPcc };
  Kind kind = Kind::kNone;
  std::string org;
  std::string name;  // the analyst, or the force's client system
  // As the token carries it: "alice", "force:NFK:psd", "pcc:NFK" (SPIFFE segments hold no ':').
  std::string Token() const {
    switch (kind) {
      case Kind::kForce:
        return absl::StrCat("force:", org, ":", name);
      case Kind::kPcc:
        return absl::StrCat("pcc:", org);
      default:
        return name;
    }
  }
  std::string Identity() const {
    switch (kind) {
      case Kind::kForce:
        return absl::StrCat("spiffe://sarloop/force/", org, "/", name);
      case Kind::kPcc:
        return absl::StrCat("spiffe://sarloop/oversight/", org, "/pcc");
      default:
        return absl::StrCat("spiffe://sarloop/analyst/", name);
    }
  }
};

Viewer ViewerOfToken(const std::string& token) {
  Viewer v;
  std::vector<std::string> parts = absl::StrSplit(token, ':');
  if (parts.size() == 3 && parts[0] == "force") {
    v = {Viewer::Kind::kForce, parts[1], parts[2]};
  } else if (parts.size() == 2 && parts[0] == "pcc") {
    v = {Viewer::Kind::kPcc, parts[1], "pcc"};
  } else if (parts.size() == 1 && !token.empty()) {
    v = {Viewer::Kind::kAnalyst, "", token};
  }
  return v;
}

Viewer ViewerOfIdentity(const Identity& id) {
  if (id.kind == "analyst" && !id.system.empty()) return {Viewer::Kind::kAnalyst, "", id.system};
  if (id.kind == "force" && !id.system.empty()) return {Viewer::Kind::kForce, id.org, id.system};
  if (id.kind == "oversight" && id.system == "pcc") return {Viewer::Kind::kPcc, id.org, "pcc"};
  return {};
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
                     const ReferenceData& reference, std::string address,
                     std::function<bool(const std::string&, const std::string&)> allows)
    : register_(reg),
      clock_(clock),
      audit_db_(audit_db),
      reference_(reference),
      address_(std::move(address)),
      key_(RandomKey()),
      allows_(std::move(allows)) {}

std::string Dashboard::Sign(const std::string& kind, const std::string& user, int64_t expires) {
  const std::string payload = absl::StrCat(kind, "|", user, "|", expires, "|", NewId("", 32));
  return absl::StrCat(absl::BytesToHexString(payload), ".",
                      absl::BytesToHexString(HmacSha256(key_, payload)));
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
  const std::string want = HmacSha256(key_, payload);
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
  MutexLock lock(&mu_);
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

absl::StatusOr<std::string> Dashboard::LoginUrlFor(const Identity& identity) {
  const Viewer v = ViewerOfIdentity(identity);
  if (v.kind == Viewer::Kind::kNone) {
    return absl::PermissionDeniedError(
        "the dashboard is for NCA analysts, a force's professional standards systems (their "
        "own organisation) and its police and crime commissioner");
  }
  if (v.kind != Viewer::Kind::kAnalyst && reference_.FindOrganisation(v.org) == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("unknown organisation ", v.org));
  }
  return LoginUrl(v.Token());
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

// Anyone who reaches the port may be refused, certificate or not: those refusals are written
// within a budget (common/security/audit.h), so they cannot each cost the register a commit.
void Dashboard::RecordRefusal(const AuditEntry& entry, const absl::Status& refusal) {
  int64_t unwritten = 0;
  if (!refusals_.Take(entry.at, &unwritten)) return;
  // Not written (storage refusing writes): counted again, so the next row written says so.
  if (!AuditRecorder(audit_db_, entry).Finish(WithUnwritten(refusal, unwritten)).ok()) {
    refusals_.Unwritten(unwritten);
  }
}

// A one-time sign-in link's ticket, spent here, for a session cookie; audited either way.
HttpResponse Dashboard::SignIn(const HttpRequest& request, AuditEntry entry, int64_t now) {
  auto it = request.query.find("ticket");
  std::optional<Token> ticket =
      it == request.query.end() ? std::nullopt : Verify(it->second, "login");
  if (ticket) {
    // Spent in the same step that finds it unspent, so two requests with one link (were pages
    // ever served on more than the one thread) cannot both sign in.
    MutexLock lock(&mu_);
    if (!spent_.emplace(ticket->nonce, ticket->expires).second) ticket.reset();
  }
  if (!ticket) {
    RecordRefusal(entry, absl::UnauthenticatedError("bad sign-in link"));
    return Page(401, "Sign-in link not valid",
                "<p>This sign-in link is not valid: it has been used, it has expired (links "
                "last a minute) or it was altered. Get a new one with <code>sarloopctl nca "
                "dashboard-login</code>.</p>",
                false);
  }
  entry.identity = ViewerOfToken(ticket->user).Identity();
  entry.user = ticket->user;
  if (!AuditRecorder(audit_db_, entry).Finish(absl::OkStatus()).ok()) {
    // Not signed in, so the link is not spent: the page asks the viewer to try it again.
    {
      MutexLock lock(&mu_);
      spent_.erase(ticket->nonce);
    }
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
    RecordRefusal(entry, absl::InvalidArgumentError("method not allowed"));
    HttpResponse r = Page(405, "Method not allowed", "<p>The dashboard only reads.</p>", false);
    r.headers.emplace_back("Allow", "GET");
    return r;
  }

  if (request.path == "/login") return SignIn(request, entry, now);

  // Who is asking: an analyst certificate, else a session cookie. A force's or a police and crime
  // commissioner's view needs a session (their certificates are their systems', not a browser's).
  Viewer viewer;
  std::optional<Token> session;
  if (!request.peer_uri.empty()) {
    absl::StatusOr<Identity> id = ParseIdentity(request.peer_uri);
    if (id.ok() && id->kind == "analyst") viewer = ViewerOfIdentity(*id);
    entry.identity = request.peer_uri;
  }
  if (viewer.kind == Viewer::Kind::kNone) {
    session = Verify(CookieValue(request.cookie, kCookie), "session");
    if (session) {
      viewer = ViewerOfToken(session->user);
      entry.identity = viewer.Identity();
    }
  }
  const std::string user = viewer.kind == Viewer::Kind::kNone ? "" : viewer.Token();
  // A browser sends an analyst's client certificate with whatever another site makes it ask for
  // (an image, a frame, a form): such a request would record in the audit log that the analyst
  // viewed a page they never opened, and spend the register's reads. The browser says where a
  // request comes from; only the dashboard's own pages and what the user typed are served. (The
  // session cookie is SameSite=Strict, so it never comes with such a request anyway.)
  if (request.fetch_site == "cross-site" || request.fetch_site == "same-site") {
    RecordRefusal(entry, absl::PermissionDeniedError("a request made by another site"));
    return Page(403, "Open the dashboard yourself",
                "<p>This request came from another site. Open the dashboard's address yourself "
                "to see the page.</p>",
                false);
  }
  // The policy as it stands now: an analyst taken out of it, or a force whose dashboard rule was
  // removed, is refused at once, certificate or session, as the gRPC gate refuses them.
  if (!user.empty() && allows_ && !allows_(viewer.Identity(), kViewMethod)) {
    RecordRefusal(entry,
                  absl::PermissionDeniedError("the policy does not let it view the register"));
    return Page(403, "Not allowed",
                "<p>The authorisation policy does not let this identity view the register.</p>",
                false);
  }
  if (user.empty()) {
    RecordRefusal(entry, absl::UnauthenticatedError("no analyst credential"));
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
      MutexLock lock(&mu_);
      spent_[session->nonce] = session->expires;
    }
    response = Page(200, "Signed out", "<p>You are signed out.</p>", false);
    response.headers.emplace_back("Set-Cookie", absl::StrCat(kCookie,
                                                             "=; Path=/; Max-Age=0; "
                                                             "Secure; HttpOnly; "
                                                             "SameSite=Strict"));
  } else if (viewer.kind == Viewer::Kind::kForce || viewer.kind == Viewer::Kind::kPcc) {
    // Their own organisation's view and, for the force, its own referrals: nothing else.
    const bool force = viewer.kind == Viewer::Kind::kForce;
    if (request.path == "/") {
      response = OrganisationView(viewer.org, force);
    } else if (force && absl::StartsWith(request.path, "/referral/")) {
      entry.referral_id = request.path.substr(10, 40);
      response = Timeline(entry.referral_id, viewer.org);
    } else {
      response = Page(403, "Not for this view",
                      absl::StrCat("<p>This page is for NCA analysts. <a href=\"/\">Back to ",
                                   HtmlEscape(viewer.org), "'s view</a>.</p>"),
                      false);
    }
  } else if (request.path == "/") {
    response = Overview(request);
  } else if (request.path == "/overview.csv") {
    response = OverviewCsv(request);
  } else if (request.path == "/overdue") {
    response = OverdueList(request);
  } else if (request.path == "/overdue.csv") {
    response = OverdueList(request, /*csv=*/true);
  } else if (absl::StartsWith(request.path, "/referral/")) {
    entry.referral_id = request.path.substr(10, 40);
    response = Timeline(entry.referral_id);
  } else {
    response = Page(404, "Not found", "<p>No such page.</p>", true);
  }
  if (response.status >= 400) {
    // The audit log's code for a refused page, as an RPC's would be.
    status = absl::Status(response.status == 404   ? absl::StatusCode::kNotFound
                          : response.status == 403 ? absl::StatusCode::kPermissionDenied
                                                   : absl::StatusCode::kInvalidArgument,
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

namespace {

// The overview's main table: the view's filter, grouped as asked, sorted as asked, each heading a
// link that sorts by it (again: the other way).
absl::StatusOr<report::Table> MainTable(Register& reg, const View& v, absl::Time now) {
  v1::GetAggregatesRequest request;
  request.add_group_by(v.by->dimension);
  *request.mutable_filter() = v.filter;
  ASSIGN_OR_RETURN(v1::GetAggregatesResponse response, reg.Aggregates(request, now, 0));
  report::Table t = report::MeasureTable(absl::StrCat("by_", v.by->param),
                                         absl::StrCat("By ", absl::AsciiStrToLower(v.by->label)),
                                         v.by->label, response);
  for (auto& row : t.rows) {
    if (row[0].text == "All") continue;
    if (v.by->dimension == v1::DIMENSION_ORGANISATION) {
      row[0].link = absl::StrCat("/overdue?org=", UrlEncode(row[0].text));
    } else if (v.by->dimension == v1::DIMENSION_REGION) {
      row[0].link = absl::StrCat("/", v.Query({{"region", row[0].text}, {"by", "organisation"}}));
    }
  }
  if (!v.sort.empty() && !report::SortRows(t, v.sort, v.descending)) {
    return absl::InvalidArgumentError(absl::StrCat("sort: the table has no column '", v.sort, "'"));
  }
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const bool again = v.sort == t.columns[i];
    // Numbers sort largest first; the names column alphabetically.
    const bool first_desc = i > 0;
    const bool desc = again ? !v.descending : first_desc;
    t.column_links.push_back(
        absl::StrCat("/", v.Query({{"sort", t.columns[i]}, {"dir", desc ? "desc" : "asc"}})));
  }
  return t;
}

HttpResponse Csv(const std::string& name, const std::string& body) {
  HttpResponse r;
  r.content_type = "text/csv; charset=utf-8";
  r.body = body;
  r.headers.emplace_back("Content-Disposition",
                         absl::StrCat("attachment; filename=\"sarloop-", name, ".csv\""));
  Harden(r);
  return r;
}

constexpr std::pair<v1::Dimension, const char*> kTracks[] = {
    {v1::DIMENSION_CRIMINAL_TRACK, "Criminal"},
    {v1::DIMENSION_CONDUCT_TRACK, "Conduct"},
    {v1::DIMENSION_VETTING_TRACK, "Vetting"},
    {v1::DIMENSION_LISTING_TRACK, "Listing"},
    {v1::DIMENSION_STAFF_TRACK, "Staff"}};

// Everything the overview shows, read from the register at one instant.
struct OverviewData {
  v1::GetAggregatesResponse years;  // every year, whatever the filter: the year selector
  v1::GetAggregatesResponse orgs, categories, units, priorities;
  std::vector<v1::GetAggregatesResponse> tracks;  // in kTracks' order
  report::Table main_table;
};

absl::StatusOr<OverviewData> ReadOverview(Register& reg, const View& view, absl::Time now) {
  auto grouped = [&](v1::Dimension d, const v1::AggregateFilter& filter) {
    v1::GetAggregatesRequest r;
    r.add_group_by(d);
    *r.mutable_filter() = filter;
    return reg.Aggregates(r, now, 0);
  };
  OverviewData d;
  ASSIGN_OR_RETURN(d.years, grouped(v1::DIMENSION_FINANCIAL_YEAR, {}));
  ASSIGN_OR_RETURN(d.orgs, grouped(v1::DIMENSION_ORGANISATION, view.filter));
  v1::AggregateFilter closed = view.filter;
  if (closed.states().empty()) {  // outcomes are counted where there is one
    closed.add_states(v1::REFERRAL_STATE_CLOSED_BY_FORCE);
    closed.add_states(v1::REFERRAL_STATE_OUTCOME_RECORDED);
  }
  ASSIGN_OR_RETURN(d.categories, grouped(v1::DIMENSION_CATEGORY, closed));
  ASSIGN_OR_RETURN(d.units, grouped(v1::DIMENSION_UNIT, view.filter));
  ASSIGN_OR_RETURN(d.priorities, grouped(v1::DIMENSION_PRIORITY, view.filter));
  ASSIGN_OR_RETURN(d.main_table, MainTable(reg, view, now));
  for (const auto& [dimension, name] : kTracks) {
    ASSIGN_OR_RETURN(d.tracks.emplace_back(), grouped(dimension, view.filter));
  }
  return d;
}

void Option(std::string* out, const std::string& value, const std::string& label, bool selected) {
  absl::StrAppend(out, "<option value=\"", HtmlEscape(value), "\"", selected ? " selected" : "",
                  ">", HtmlEscape(label), "</option>");
}

// The filters: one per dimension of the register, and what the table is grouped by.
std::string FilterForm(const View& view, const ReferenceData& reference,
                       const v1::GetAggregatesResponse& years) {
  auto param = [&](const char* name) {
    auto it = view.params.find(name);
    return it == view.params.end() ? std::string() : it->second;
  };
  std::string form =
      "<form class=\"filters\" method=\"get\" action=\"/\"><label>Financial year "
      "<select name=\"year\" id=\"year\"><option value=\"\">All years</option>";
  for (const auto& g : years.groups()) {
    const std::string y = g.key(0).substr(0, 4);
    if (g.key(0) == "UNKNOWN") continue;
    Option(&form, y, g.key(0), y == absl::StrCat(view.year));
  }
  form +=
      "</select></label><label>Region <select name=\"region\" id=\"region\">"
      "<option value=\"\">All regions</option>";
  for (const Region& r : reference.regions()) {
    Option(&form, r.code, r.name, r.code == param("region"));
  }
  form +=
      "</select></label><label>Organisation <select name=\"org\" id=\"org\">"
      "<option value=\"\">All</option>";
  for (const v1::Organisation& o : reference.organisations()) {
    if (o.code() != "NCA") Option(&form, o.code(), o.code(), o.code() == param("org"));
  }
  form +=
      "</select></label><label>Unit <select name=\"unit\" id=\"unit\">"
      "<option value=\"\">All</option>";
  for (const Region& r : reference.regions()) {
    if (!r.rocu.empty()) Option(&form, r.rocu, r.rocu, r.rocu == param("unit"));
  }
  Option(&form, "NCAACU", "NCAACU", param("unit") == "NCAACU");
  form += "</select></label>";
  for (const EnumFilter& f : kEnumFilters) {
    absl::StrAppend(&form, "<label>", f.label, " <select name=\"", f.param, "\" id=\"", f.param,
                    "\"><option value=\"\">All</option>");
    const auto* type = v1::AggregateFilter::descriptor()->FindFieldByName(f.field)->enum_type();
    if (std::string(f.param) == "outcome") {
      // What "dismissed" means across the routes to it.
      Option(&form, "DISMISSED,DISMISSED_AFTER_RESIGNATION,DISMISSED_AFTER_VETTING_WITHDRAWAL",
             "Dismissal (any route)",
             param("outcome") ==
                 "DISMISSED,DISMISSED_AFTER_RESIGNATION,DISMISSED_AFTER_VETTING_WITHDRAWAL");
    }
    for (int k = 0; k < type->value_count(); ++k) {
      const auto* e = type->value(k);
      if (e->number() == 0) continue;
      const std::string name = e->name().substr(std::string(f.prefix).size());
      Option(&form, name, report::EnumText(name, ""), name == param(f.param));
    }
    form += "</select></label>";
  }
  form += "<label>Group by <select name=\"by\" id=\"by\">";
  for (const GroupBy& g : kGroupBys) Option(&form, g.param, g.label, &g == view.by);
  form += "</select></label> <button type=\"submit\">Show</button></form>";
  return form;
}

// The headline figures of the whole view, one tile each.
std::string Tiles(const v1::Measures& t) {
  auto opt = [](bool has, auto v) { return has ? std::optional<decltype(v)>(v) : std::nullopt; };
  std::string tiles = "<div class=\"tiles\">";
  tiles += Tile("referred", "Referred", report::Count(opt(t.has_referred(), t.referred())));
  tiles += Tile("feedback_received", "Feedback received",
                report::Count(opt(t.has_feedback_received(), t.feedback_received())));
  tiles += Tile("response_rate", "Response rate",
                report::Rate(opt(t.has_response_rate(), t.response_rate())));
  tiles += Tile("overdue", "Overdue", report::Count(opt(t.has_overdue(), t.overdue())));
  tiles += Tile("escalated", "Escalated", report::Count(opt(t.has_escalated(), t.escalated())));
  tiles += Tile("days_to_outcome_median", "Median days to outcome",
                report::Days(opt(t.days_to_outcome().has_median(), t.days_to_outcome().median())));
  tiles += Tile("information_requests", "Requests for information",
                report::Count(opt(t.has_information_requests(), t.information_requests())));
  tiles += Tile("days_to_answer_median", "Median days to answer a request",
                report::Days(opt(t.days_to_answer().has_median(), t.days_to_answer().median())));
  tiles += Tile("daml", "From DAML requests", report::Count(opt(t.has_daml(), t.daml())));
  tiles += Tile("referred_to_iopc", "Referred to the IOPC",
                report::Count(opt(t.has_referred_to_iopc(), t.referred_to_iopc())));
  tiles += Tile("recorded_on_behalf", "Recorded on behalf (not on sarloop)",
                report::Count(opt(t.has_recorded_on_behalf(), t.recorded_on_behalf())));
  return tiles + "</div>";
}

// The charts; every bar opens what it counts.
std::string Charts(const OverviewData& d, const View& view) {
  std::string charts = "<div class=\"charts\">";
  report::Chart rate = report::RateChart("Response rate by organisation", d.orgs);
  for (const std::string& org : rate.labels) {
    rate.links.push_back(absl::StrCat("/overdue?org=", UrlEncode(org)));
  }
  charts += report::SvgChart(rate);
  report::Chart outcomes{"Outcomes by corruption category", {}, {{"Outcomes", {}}}, false};
  for (const auto& g : d.categories.groups()) {
    outcomes.labels.push_back(report::EnumText(g.key(0), ""));
    outcomes.series[0].second.push_back(static_cast<double>(g.measures().closed_with_outcome()));
    outcomes.links.push_back(absl::StrCat("/", view.Query({{"category", g.key(0)}})));
  }
  charts += report::SvgChart(outcomes);
  // Each referral's latest outcome on each track (charged and a case to answer are still open).
  report::Chart by_track{"Referrals by outcome, per track", {}, {{"Referrals", {}}}, false};
  for (size_t k = 0; k < d.tracks.size(); ++k) {
    for (const auto& g : d.tracks[k].groups()) {
      if (g.key(0) == "NONE") continue;
      by_track.labels.push_back(
          absl::StrCat(kTracks[k].second, ": ", report::EnumText(g.key(0), "")));
      by_track.series[0].second.push_back(static_cast<double>(g.measures().referred()));
      by_track.links.push_back(absl::StrCat("/", view.Query({{"outcome", g.key(0)}})));
    }
  }
  if (!by_track.labels.empty()) charts += report::SvgChart(by_track);
  report::Chart by_unit{"Referrals by investigating unit", {}, {{"Referred", {}}}, false};
  for (const auto& g : d.units.groups()) {
    by_unit.labels.push_back(g.key(0) == "NONE" ? "None (kept by the force)" : g.key(0));
    by_unit.series[0].second.push_back(static_cast<double>(g.measures().referred()));
    by_unit.links.push_back(
        g.key(0) == "NONE" ? "" : absl::StrCat("/", view.Query({{"unit", g.key(0)}})));
  }
  charts += report::SvgChart(by_unit);
  report::Chart by_priority = report::RateChart("Response rate by priority", d.priorities);
  for (const std::string& p : by_priority.labels) {
    by_priority.links.push_back(p == "NONE" ? ""
                                            : absl::StrCat("/", view.Query({{"priority", p}})));
  }
  charts += report::SvgChart(by_priority);
  return charts + "</div>";
}

}  // namespace

HttpResponse Dashboard::Overview(const HttpRequest& request) {
  absl::StatusOr<View> parsed = ParseView(request, reference_);
  if (!parsed.ok()) {
    return Page(400, "Bad request",
                absl::StrCat("<p>", HtmlEscape(parsed.status().message()), "</p>"), true);
  }
  const View& view = *parsed;
  const absl::Time now = clock_.Now();
  absl::StatusOr<OverviewData> data = ReadOverview(register_, view, now);
  if (!data.ok()) {
    const absl::Status& st = data.status();
    return Page(st.code() == absl::StatusCode::kInvalidArgument ? 400 : 503, "Cannot show this",
                absl::StrCat("<p>", HtmlEscape(st.message()), "</p>"), true);
  }
  std::string described = view.year == 0 ? "All years" : FinancialYearName(view.year);
  for (const auto& [k, v] : view.params) {
    if (k != "year" && k != "sort" && k != "dir" && k != "by") {
      absl::StrAppend(&described, ", ", k, " ", v);
    }
  }
  const std::string body =
      absl::StrCat(FilterForm(view, reference_, data->years), "<p class=\"note\">",
                   HtmlEscape(described), ". Overdue and escalated as at ", DateTime(ToProto(now)),
                   " UTC. <a id=\"export\" href=\"/overview.csv", HtmlEscape(view.Query()),
                   "\">Download this view's table as CSV</a></p>", Tiles(data->orgs.total()),
                   Charts(*data, view), "<h2>", HtmlEscape(data->main_table.title), "</h2>",
                   report::HtmlTable(data->main_table),
                   "<p class=\"note\">A heading sorts the table by it (again: the other way). ",
                   view.by->dimension == v1::DIMENSION_ORGANISATION
                       ? "An organisation's name opens its overdue referrals."
                       : "",
                   "</p>");
  return Page(200, "Referral feedback overview", body, true);
}

HttpResponse Dashboard::OverviewCsv(const HttpRequest& request) {
  absl::StatusOr<View> view = ParseView(request, reference_);
  if (!view.ok()) {
    return Page(400, "Bad request",
                absl::StrCat("<p>", HtmlEscape(view.status().message()), "</p>"), true);
  }
  absl::StatusOr<report::Table> t = MainTable(register_, *view, clock_.Now());
  if (!t.ok()) {
    return Page(t.status().code() == absl::StatusCode::kInvalidArgument ? 400 : 503,
                "Cannot export this", absl::StrCat("<p>", HtmlEscape(t.status().message()), "</p>"),
                true);
  }
  return Csv(absl::StrCat("by-", view->by->param), report::CsvWide(*t));
}

HttpResponse Dashboard::OverdueList(const HttpRequest& request, bool csv) {
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
                  {"Referral", "Organisation", "State", "Dispatched", "Waiting for", "Due",
                   "Days overdue", "Reminders", "Escalated"},
                  {}};
  for (const auto& e : entries) {
    escalated += e.escalated();
    // What the list is ordered and chosen by: the running clock's due time, not the dispatch's.
    const Due due = NextDue(e);
    t.rows.push_back(
        {report::Text(e.referral_id(), absl::StrCat("/referral/", e.referral_id())),
         report::Text(e.organisation()), report::Text(std::string(StateName(e.state()))),
         report::Text(Date(e.dispatched_at())),
         report::Text(report::EnumText(v1::ClockStage_Name(due.stage), "CLOCK_STAGE_")),
         report::Text(Date(ToProto(due.at))), report::Count(WholeDays(now - due.at)),
         report::Count(e.reminders()), report::Text(e.escalated() ? "escalated" : "")});
  }
  if (csv) return Csv("overdue", report::CsvWide(t));
  std::string body = absl::StrCat(
      "<p class=\"note\">Referrals past their due date with no feedback, most overdue first, as "
      "at ",
      DateTime(ToProto(now)), " UTC", org.empty() ? "" : absl::StrCat(", ", HtmlEscape(org)),
      region.empty() ? "" : absl::StrCat(", ", HtmlEscape(region)), ". <a id=\"export\" href=\"",
      HtmlEscape(absl::StrCat("/overdue.csv?org=", UrlEncode(org), "&region=", UrlEncode(region))),
      "\">Download as CSV</a></p>", "<div class=\"tiles\">",
      Tile("overdue", "Overdue", report::Count(entries.size())),
      Tile("escalated", "Of which escalated", report::Count(escalated)), "</div>");
  if (entries.empty()) {
    body += "<p>Nothing is overdue.</p>";
  } else {
    body += report::HtmlTable(t);
  }
  return Page(200, "Overdue and escalated referrals", body, true);
}

HttpResponse Dashboard::Timeline(const std::string& referral_id, const std::string& only_org) {
  auto timeline = register_.Timeline(referral_id);
  // Another organisation's referral does not exist for this viewer: it reads exactly as one the
  // register lacks, so the page cannot tell a force which ids other forces have.
  const bool restricted = !only_org.empty();
  if (restricted && ((timeline.ok() && timeline->entry().organisation() != only_org) ||
                     (!timeline.ok() && timeline.status().code() == absl::StatusCode::kNotFound))) {
    timeline = absl::NotFoundError("referral_id: no such referral in the register");
  }
  if (!timeline.ok()) {
    const absl::StatusCode code = timeline.status().code();
    const bool missing = code == absl::StatusCode::kNotFound;
    std::string message(timeline.status().message());
    if (restricted && !missing && code != absl::StatusCode::kInvalidArgument) {
      // The register's own trouble (storage) is the NCA's to read in its log, not another
      // organisation's on a page.
      spdlog::error("dashboard: timeline of {} for {}: {}", Printable(referral_id), only_org,
                    Printable(timeline.status().ToString()));
      message = "The register cannot be read just now; try again shortly.";
    }
    return Page(missing ? 404 : 400, missing ? "No such referral" : "Bad request",
                absl::StrCat("<p>", HtmlEscape(message), "</p>"), true);
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
  auto thr = [](const v1::ThrAssessment& a) {
    auto level = [](v1::ThrLevel l) {
      return report::EnumText(v1::ThrLevel_Name(l), "THR_LEVEL_");
    };
    return absl::StrCat("threat ", level(a.threat()), ", harm ", level(a.harm()), ", risk ",
                        level(a.risk()), a.rationale().empty() ? "" : ": ", a.rationale());
  };
  fact("THR at referral", thr(e.thr()));
  if (e.has_decision_thr()) fact("THR at the last decision", thr(e.decision_thr()));
  fact("Priority", e.priority() == v1::PRIORITY_UNSPECIFIED
                       ? ""
                       : report::EnumText(v1::Priority_Name(e.priority()), "PRIORITY_"));
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
      "events", "Events", "", {"Time (UTC)", "Day", "Event", "Producer", "Actor", "Detail"}, {}};
  const int64_t dispatched = e.dispatched_at().seconds();
  for (const auto& ev : timeline->events()) {
    std::vector<std::string> detail;
    if (!ev.unit().empty()) detail.push_back(absl::StrCat("unit ", ev.unit()));
    if (ev.has_outcome()) detail.push_back(std::string(OutcomeName(ev.outcome().type())));
    if (!ev.reason().empty()) detail.push_back(absl::StrCat("reason: ", ev.reason()));
    if (!ev.linked_referral_id().empty()) {
      detail.push_back(absl::StrCat("linked ", ev.linked_referral_id()));
    }
    if (ev.sequence() != 0) detail.push_back(absl::StrCat("#", ev.sequence()));
    if (ev.has_thr() && ev.type() != v1::EVENT_TYPE_DISPATCHED) {
      detail.push_back(absl::StrCat("THR ", thr(ev.thr())));
    }
    // Whole days since dispatch: how long the case has run at each step.
    const std::string day =
        dispatched > 0 ? absl::StrCat((ev.occurred_at().seconds() - dispatched) / 86400) : "";
    events.rows.push_back(
        {report::Text(DateTime(ev.occurred_at())), report::Cell{day, day, "", true},
         report::Text(std::string(EventName(ev.type()))), report::Text(ev.producer()),
         report::Text(ev.actor().user().empty() ? ev.actor().identity() : ev.actor().user()),
         report::Text(absl::StrJoin(detail, "; "))});
  }
  std::string body = report::HtmlTable(facts);
  absl::StrAppend(&body, "<h2>Timeline</h2>", report::HtmlTable(events));
  return Page(200, absl::StrCat("Referral ", e.referral_id()), body, true);
}

HttpResponse Dashboard::OrganisationView(const std::string& org, bool referrals) {
  const absl::Time now = clock_.Now();
  const int year = FinancialYear(now);
  auto totals = [&](const std::string& only) {
    v1::GetAggregatesRequest r;
    r.mutable_filter()->add_financial_years(year);
    if (!only.empty()) r.mutable_filter()->add_organisations(only);
    return register_.Aggregates(r, now, 0);
  };
  auto mine = totals(org);
  auto national = totals("");
  for (const auto* r : {&mine, &national}) {
    if (!r->ok()) {
      return Page(503, "Cannot show this",
                  absl::StrCat("<p>", HtmlEscape(r->status().message()), "</p>"), false);
    }
  }
  const v1::Measures& m = mine->total();
  const v1::Measures& n = national->total();
  auto opt = [](bool has, auto v) { return has ? std::optional<decltype(v)>(v) : std::nullopt; };
  std::string body = absl::StrCat(
      "<p class=\"note\">", HtmlEscape(org), "'s referrals dispatched in ", FinancialYearName(year),
      ", as at ", DateTime(ToProto(now)), " UTC",
      referrals ? "" : ". A read-only view of the figures for the police and crime commissioner",
      ". <a href=\"/logout\">Sign out</a></p><div class=\"tiles\">");
  body += Tile("referred", "Referred", report::Count(opt(m.has_referred(), m.referred())));
  body += Tile("feedback_received", "Feedback given",
               report::Count(opt(m.has_feedback_received(), m.feedback_received())));
  body += Tile("response_rate_due", "Response rate, past due date",
               report::Rate(opt(m.has_response_rate_due(), m.response_rate_due())));
  body += Tile("overdue", "Overdue now", report::Count(opt(m.has_overdue(), m.overdue())));
  body += Tile("escalated", "Escalated", report::Count(opt(m.has_escalated(), m.escalated())));
  body += Tile("open_over_12_months", "Open over 12 months (regulation 19)",
               report::Count(opt(m.has_open_over_12_months(), m.open_over_12_months())));
  body += "</div>";
  // Timeliness beside the national figure.
  report::Table t{"against_national",
                  absl::StrCat(org, " against the national figure"),
                  "",
                  {"Measure", org, "National"},
                  {}};
  auto rate_row = [&](const char* key, const char* label, auto get) {
    t.rows.push_back({report::Text(label), report::Rate(get(m)), report::Rate(get(n))});
    t.rows.back()[0].csv = key;
  };
  auto days_row = [&](const char* key, const char* label, auto get) {
    t.rows.push_back({report::Text(label), report::Days(get(m)), report::Days(get(n))});
    t.rows.back()[0].csv = key;
  };
  rate_row("response_rate", "Response rate",
           [&](const v1::Measures& x) { return opt(x.has_response_rate(), x.response_rate()); });
  rate_row("response_rate_due", "Response rate, past due date", [&](const v1::Measures& x) {
    return opt(x.has_response_rate_due(), x.response_rate_due());
  });
  for (const auto& [key, label, stats] :
       {std::tuple{"acknowledge", "Median days to acknowledge", &v1::Measures::days_to_acknowledge},
        std::tuple{"decision", "Median days to a first decision", &v1::Measures::days_to_decision},
        std::tuple{"feedback", "Median days to feedback", &v1::Measures::days_to_feedback},
        std::tuple{"outcome", "Median days to outcome", &v1::Measures::days_to_outcome}}) {
    days_row(key, label, [&, stats = stats](const v1::Measures& x) {
      const v1::DayStats& d = (x.*stats)();
      return opt(d.has_median(), d.median());
    });
  }
  absl::StrAppend(&body, "<h2>", HtmlEscape(t.title), "</h2>", report::HtmlTable(t));
  if (!referrals) {
    return Page(200, absl::StrCat(org, ": referral feedback (police and crime commissioner)"), body,
                false);
  }

  // The force's open referrals, what each waits for and by when: overdue first, then due soonest.
  v1::ListRegisterRequest list;
  list.set_organisation(org);
  list.set_page_size(1000);
  std::vector<v1::RegisterEntry> open;
  for (;;) {
    auto page = register_.List(list);
    if (!page.ok()) {
      return Page(503, "Cannot show this",
                  absl::StrCat("<p>", HtmlEscape(page.status().message()), "</p>"), false);
    }
    for (const auto& e : page->entries()) {
      if (NextDue(e).stage != v1::CLOCK_STAGE_NONE) open.push_back(e);
    }
    if (page->next_page_token().empty() || open.size() >= 5000) break;
    list.set_page_token(page->next_page_token());
  }
  std::stable_sort(open.begin(), open.end(),
                   [](const auto& a, const auto& b) { return NextDue(a).at < NextDue(b).at; });
  report::Table due{"open_referrals",
                    "Open referrals",
                    "",
                    {"Referral", "State", "Dispatched", "Waiting for", "Due", "Days left"},
                    {}};
  int overdue = 0, soon = 0;
  for (const auto& e : open) {
    const Due d = NextDue(e);
    const bool paused = d.at == absl::InfiniteFuture();
    const int64_t left = paused ? 0 : WholeDays(d.at - now);
    if (!paused && d.at <= now) ++overdue;
    if (!paused && d.at > now && d.at < now + absl::Hours(24 * 14)) ++soon;
    due.rows.push_back(
        {report::Text(e.referral_id(), absl::StrCat("/referral/", e.referral_id())),
         report::Text(std::string(StateName(e.state()))), report::Text(Date(e.dispatched_at())),
         report::Text(report::EnumText(v1::ClockStage_Name(d.stage), "CLOCK_STAGE_")),
         report::Text(paused ? "paused (awaiting UKFIU)" : Date(ToProto(d.at))),
         paused ? report::Cell{"", "", "", true} : report::Count(left)});
  }
  absl::StrAppend(&body, "<h2>Open referrals</h2><div class=\"tiles\">",
                  Tile("open", "Open", report::Count(static_cast<int64_t>(open.size()))),
                  Tile("due_soon", "Due within 14 days", report::Count(soon)),
                  Tile("past_due", "Past due", report::Count(overdue)), "</div>",
                  open.empty() ? "<p>Nothing is open.</p>" : report::HtmlTable(due),
                  "<p class=\"note\">A referral opens its timeline. Negative days are overdue."
                  "</p>");
  return Page(200, absl::StrCat(org, ": referral feedback"), body, false);
}

}  // namespace sarloop::nca
