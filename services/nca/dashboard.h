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

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/https_server.h"
#include "common/reference.h"
#include "common/storage.h"
#include "services/nca/register.h"

namespace sarloop::nca {

class Dashboard {
 public:
  static constexpr int kTicketSeconds = 60;
  static constexpr int kSessionSeconds = 3600;

  // `address` is the host:port browsers use to reach the dashboard.
  Dashboard(Register& reg, Clock& clock, Database* audit_db, const ReferenceData& reference,
            std::string address);

  // A one-time sign-in link for analyst `user`.
  std::string LoginUrl(const std::string& user);

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

  HttpResponse Overview(const HttpRequest& request);
  // The overview's table (as filtered, grouped and sorted) as CSV.
  HttpResponse OverviewCsv(const HttpRequest& request);
  HttpResponse OverdueList(const HttpRequest& request, bool csv = false);
  HttpResponse Timeline(const std::string& referral_id);
  HttpResponse Page(int status, const std::string& title, const std::string& body, bool nav);

  Register& register_;
  Clock& clock_;
  Database* audit_db_;
  const ReferenceData& reference_;
  const std::string address_;
  const std::string key_;  // random per process: a restart ends every session

  std::mutex mu_;
  // Nonces of used sign-in links and of signed-out sessions, with their expiry.
  std::map<std::string, int64_t> spent_;
};

}  // namespace sarloop::nca

#endif  // SARLOOP_SERVICES_NCA_DASHBOARD_H_
