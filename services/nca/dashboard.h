// The NCA analysts' dashboard: server-rendered pages (overview with charts and the
// per-organisation table, overdue and escalated referrals, one referral's timeline) over the same
// Register the gRPC API uses, so the page and the API cannot disagree.
//
// Access: an analyst client certificate (spiffe://sarloop/analyst/<user>), or a session. A session
// starts from a one-time sign-in link that an analyst gets over mTLS
// (Nca.CreateDashboardSession, `sarloopctl nca dashboard-login`): the link works once within a
// minute and sets an HMAC-signed cookie valid for an hour. Nothing but the sign-in explanation is
// served without one of the two. Every page view is audited.
#ifndef SARLOOP_SERVICES_NCA_DASHBOARD_H_
#define SARLOOP_SERVICES_NCA_DASHBOARD_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "common/base/clock.h"
#include "common/base/mutex.h"
#include "common/reference/reference.h"
#include "common/security/audit.h"
#include "common/security/identity.h"
#include "common/server/https_server.h"
#include "common/storage/storage.h"
#include "services/nca/register.h"

namespace sarloop::nca {

class Dashboard {
 public:
  static constexpr int kTicketSeconds = 60;
  static constexpr int kSessionSeconds = 3600;

  // `address` is the host:port browsers use to reach the dashboard.
  // `allows` (when set) is the authorisation policy: every viewer, at every request, must be
  // allowed kViewMethod, as the gate would ask of a call.
  Dashboard(
      Register& reg, Clock& clock, Database* audit_db, const ReferenceData& reference,
      std::string address,
      std::function<bool(const std::string& identity, const std::string& method)> allows = {});

  // The method the policy is asked about for a dashboard viewer: the one that signs them in.
  static constexpr char kViewMethod[] = "/sarloop.v1.Nca/CreateDashboardSession";

  // A one-time sign-in link for analyst `user`.
  std::string LoginUrl(const std::string& user);
  // A one-time sign-in link for the caller of Nca.CreateDashboardSession: an analyst (everything),
  // a force's client system (its own organisation's view) or an oversight identity ending "pcc"
  // (the police and crime commissioner's read-only view). PERMISSION_DENIED for anyone else.
  absl::StatusOr<std::string> LoginUrlFor(const Identity& identity);

  HttpResponse Handle(const HttpRequest& request);

 private:
  struct Token {
    std::string kind;
    std::string user;
    int64_t expires = 0;
    std::string nonce;
  };
  std::string Sign(const std::string& kind, const std::string& user, int64_t expires);
  std::optional<Token> Verify(const std::string& text, const std::string& kind);
  HttpResponse SignIn(const HttpRequest& request, AuditEntry entry, int64_t now);
  void RecordRefusal(const AuditEntry& entry, const absl::Status& refusal);

  HttpResponse Overview(const HttpRequest& request);
  // The overview's table (as filtered, grouped and sorted) as CSV.
  HttpResponse OverviewCsv(const HttpRequest& request);
  HttpResponse OverdueList(const HttpRequest& request, bool csv = false);
  // One referral's timeline; with `only_org`, NOT_FOUND for another organisation's.
  HttpResponse Timeline(const std::string& referral_id, const std::string& only_org = "");
  // An organisation's own view: its figures beside the national ones for this financial year
  // and, for the force itself (`referrals`), its open referrals by what is due next.
  HttpResponse OrganisationView(const std::string& org, bool referrals);
  HttpResponse Page(int status, const std::string& title, const std::string& body, bool nav);

  Register& register_;
  Clock& clock_;
  Database* audit_db_;
  const ReferenceData& reference_;
  const std::string address_;
  const std::string key_;  // random per process: a restart ends every session
  const std::function<bool(const std::string&, const std::string&)> allows_;

  RefusalBudget refusals_{/*per_second=*/10, /*burst=*/50};
  Mutex mu_;
  // Nonces of used sign-in links and of signed-out sessions, with their expiry.
  std::map<std::string, int64_t> spent_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sarloop::nca

#endif  // SARLOOP_SERVICES_NCA_DASHBOARD_H_
