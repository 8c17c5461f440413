// The dashboard's sign-in, called in-process (the browser test drives the same pages over HTTPS).
#include "services/nca/dashboard.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/base/clock.h"
#include "common/base/ids.h"
#include "common/reference/reference.h"
#include "common/referral/rules.h"
#include "common/security/audit.h"
#include "common/storage/storage.h"
#include "services/nca/register.h"
#include "tests/testutil/testutil.h"

namespace sarloop::nca {
namespace {

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Database::Open(dir_.File("nca.db"), RegisterSchema(), testing::TestKeys());
    ASSERT_TRUE(opened.ok()) << opened.status();
    db_ = std::move(*opened);
    auto audit = Database::Open(dir_.File("audit.db"), std::vector<Migration>{kAuditMigration});
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(*audit);
    reg_ = std::make_unique<Register>(*db_, ReferenceData::BuiltIn(), clock_);
    dashboard_ = std::make_unique<Dashboard>(*reg_, clock_, audit_.get(), ReferenceData::BuiltIn(),
                                             "localhost:1");
  }

  // The audit log's rows: count and the last one's detail.
  std::pair<int64_t, std::string> AuditRows() {
    std::pair<int64_t, std::string> out;
    EXPECT_TRUE(audit_
                    ->Read([&](Txn& txn) -> absl::Status {
                      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COUNT(*) FROM audit"));
                      out.first = rows[0].Int(0);
                      ASSIGN_OR_RETURN(rows, txn.Query("SELECT detail FROM audit ORDER BY seq DESC "
                                                       "LIMIT 1"));
                      if (!rows.empty()) out.second = rows[0].Text(0);
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  // The audit log's storage refusing every write (as a full disk would), or taking them again.
  void RefuseAuditWrites(bool on) {
    ASSERT_TRUE(audit_
                    ->Transact([&](Txn& txn) {
                      return txn.Exec(on ? "CREATE TRIGGER full BEFORE INSERT ON audit BEGIN "
                                           "SELECT RAISE(ABORT, 'disk full'); END"
                                         : "DROP TRIGGER full");
                    })
                    .ok());
  }

  HttpRequest SignInWith(const std::string& url) {
    HttpRequest r;
    r.method = "GET";
    r.path = "/login";
    r.query["ticket"] = url.substr(url.find("ticket=") + 7);
    return r;
  }

  testing::TempDir dir_;
  ManualClock clock_{absl::FromUnixSeconds(1780000000)};
  std::unique_ptr<Database> db_;
  std::unique_ptr<Database> audit_;
  std::unique_ptr<Register> reg_;
  std::unique_ptr<Dashboard> dashboard_;
};

TEST_F(DashboardTest, ASignInLinkSignsInOnce) {
  const HttpRequest request = SignInWith(dashboard_->LoginUrl("alice"));
  const HttpResponse first = dashboard_->Handle(request);
  EXPECT_EQ(first.status, 303);
  bool cookie = false;
  for (const auto& [name, value] : first.headers) cookie |= name == "Set-Cookie";
  EXPECT_TRUE(cookie);
  EXPECT_EQ(dashboard_->Handle(request).status, 401);
}

// A sign-in the audit log cannot record is refused "try again", and the link is not spent by it:
// the same link signs in once the log takes writes again.
TEST_F(DashboardTest, ASignInTheAuditLogCouldNotTakeLeavesItsLinkUnspent) {
  const HttpRequest request = SignInWith(dashboard_->LoginUrl("alice"));
  RefuseAuditWrites(true);
  EXPECT_EQ(dashboard_->Handle(request).status, 503);
  RefuseAuditWrites(false);
  EXPECT_EQ(dashboard_->Handle(request).status, 303);
  EXPECT_EQ(dashboard_->Handle(request).status, 401);  // and now it is spent
  EXPECT_EQ(AuditRows().first, 2);                     // the sign-in, and the second use refused
}

// A refusal the audit log could not take (storage refusing writes) is not forgotten: it is
// counted, and the next row written says so.
TEST_F(DashboardTest, ARefusalTheAuditLogCouldNotTakeIsCountedOnTheNextRow) {
  HttpRequest anonymous;
  anonymous.method = "GET";
  anonymous.path = "/";
  RefuseAuditWrites(true);
  EXPECT_EQ(dashboard_->Handle(anonymous).status, 401);
  EXPECT_EQ(dashboard_->Handle(anonymous).status, 401);
  RefuseAuditWrites(false);
  EXPECT_EQ(dashboard_->Handle(anonymous).status, 401);
  const auto [rows, last] = AuditRows();
  EXPECT_EQ(rows, 1);
  EXPECT_NE(last.find("and 2 refusals before it"), std::string::npos) << last;
}

// However many requests bring the same link at the same moment, one signs in.
TEST_F(DashboardTest, ASignInLinkUsedManyTimesAtOnceSignsInOnce) {
  constexpr int kLinks = 1000, kThreads = 4;
  for (int link = 0; link < kLinks; ++link) {
    const HttpRequest request = SignInWith(dashboard_->LoginUrl("alice"));
    std::atomic<int> signed_in{0}, refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        const int status = dashboard_->Handle(request).status;
        (status == 303 ? signed_in : refused)++;
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(signed_in.load(), 1) << "link " << link;
    ASSERT_EQ(refused.load(), kThreads - 1) << "link " << link;
  }
}

TEST_F(DashboardTest, AnExpiredOrAlteredLinkDoesNotSignIn) {
  const std::string url = dashboard_->LoginUrl("alice");
  HttpRequest altered = SignInWith(url);
  altered.query["ticket"].back() = altered.query["ticket"].back() == '0' ? '1' : '0';
  EXPECT_EQ(dashboard_->Handle(altered).status, 401);
  clock_.Advance(absl::Seconds(Dashboard::kTicketSeconds + 1));
  EXPECT_EQ(dashboard_->Handle(SignInWith(url)).status, 401);
}

// Anyone who reaches the port can be refused: each refusal is not a commit of the register's.
TEST_F(DashboardTest, RefusalsWithoutACredentialAreWrittenWithinABudget) {
  HttpRequest anonymous;
  anonymous.method = "GET";
  anonymous.path = "/";
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(dashboard_->Handle(anonymous).status, 401);
  HttpRequest post = anonymous;
  post.method = "POST";
  for (int i = 0; i < 100; ++i) ASSERT_EQ(dashboard_->Handle(post).status, 405);
  EXPECT_EQ(AuditRows().first, 50);
  // A second on, the next refusal is written with the count of those that were not.
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(dashboard_->Handle(anonymous).status, 401);
  const auto [rows, detail] = AuditRows();
  EXPECT_EQ(rows, 51);
  EXPECT_NE(detail.find("and 1050 refusals before it"), std::string::npos) << detail;
  // A signed-in analyst's page is audited as ever, whatever the budget.
  const HttpResponse signed_in = dashboard_->Handle(SignInWith(dashboard_->LoginUrl("alice")));
  ASSERT_EQ(signed_in.status, 303);
  EXPECT_EQ(AuditRows().first, 52);
}

// The overdue list shows what each referral is late with, by the running clock that chose it:
// an acknowledgement five days late is five days overdue, though its decision is not due yet.
TEST_F(DashboardTest, TheOverdueListShowsTheClockThatIsLate) {
  const absl::Time dispatched = clock_.Now() - absl::Hours(24 * 10);
  v1::LifecycleEvent ev;
  ev.set_event_id("EV-1");
  ev.set_referral_id("REF-2000000000000001");
  ev.set_type(v1::EVENT_TYPE_DISPATCHED);
  ev.set_producer("UKFIU");
  ev.set_organisation("NFK");
  *ev.mutable_occurred_at() = ToProto(dispatched);
  *ev.mutable_due_at() = ToProto(dispatched + absl::Hours(24 * 28));
  *ev.mutable_ack_due_at() = ToProto(dispatched + absl::Hours(24 * 5) - absl::Hours(1));
  ASSERT_TRUE(db_->Transact([&](Txn& txn) {
                   return reg_->Receive(txn, referral::ProducerIdentity(ev), ev);
                 })
                  .ok());
  HttpRequest request;
  request.method = "GET";
  request.path = "/overdue.csv";
  request.peer_uri = "spiffe://sarloop/analyst/alice";
  const HttpResponse r = dashboard_->Handle(request);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("Waiting for,Due,Days overdue"), std::string::npos) << r.body;
  // Five days and an hour past the acknowledgement's due time: five whole days.
  EXPECT_NE(
      r.body.find(absl::StrCat(
          "Acknowledgement,",
          absl::FormatTime("%Y-%m-%d", dispatched + absl::Hours(24 * 5 - 1), absl::UTCTimeZone()),
          ",5,")),
      std::string::npos)
      << r.body;
}

// A page another site makes an analyst's browser ask for carries the analyst's certificate: it is
// refused, and the audit log holds a refusal, not a page the analyst viewed. What the user opened
// (no header, "none") and the dashboard's own links ("same-origin") are served.
TEST_F(DashboardTest, ARequestAnotherSiteMadeIsRefused) {
  HttpRequest request;
  request.method = "GET";
  request.path = "/overdue";
  request.peer_uri = "spiffe://sarloop/analyst/alice";
  for (const std::string site : {"cross-site", "same-site"}) {
    request.fetch_site = site;
    const HttpResponse r = dashboard_->Handle(request);
    EXPECT_EQ(r.status, 403) << site;
    EXPECT_NE(r.body.find("came from another site"), std::string::npos) << r.body;
  }
  EXPECT_EQ(AuditRows().first, 2);
  EXPECT_NE(AuditRows().second.find("another site"), std::string::npos) << AuditRows().second;
  for (const std::string site : {"", "none", "same-origin"}) {
    request.fetch_site = site;
    EXPECT_EQ(dashboard_->Handle(request).status, 200) << site;
  }
}

// A force's view shows its own referrals only, and another force's reads exactly as one the
// register lacks: the page cannot tell a force which ids other forces have.
TEST_F(DashboardTest, AnotherForcesReferralReadsAsNoneAtAll) {
  v1::LifecycleEvent ev;
  ev.set_event_id("EV-1");
  ev.set_referral_id("REF-2000000000000001");
  ev.set_type(v1::EVENT_TYPE_DISPATCHED);
  ev.set_producer("UKFIU");
  ev.set_organisation("SFK");
  *ev.mutable_occurred_at() = ToProto(clock_.Now());
  *ev.mutable_due_at() = ToProto(clock_.Now() + absl::Hours(24 * 28));
  ASSERT_TRUE(db_->Transact([&](Txn& txn) {
                   return reg_->Receive(txn, referral::ProducerIdentity(ev), ev);
                 })
                  .ok());
  ASSERT_OK_AND_ASSIGN(std::string url,
                       dashboard_->LoginUrlFor(*ParseIdentity("spiffe://sarloop/force/NFK/psd")));
  const HttpResponse signed_in = dashboard_->Handle(SignInWith(url));
  ASSERT_EQ(signed_in.status, 303);
  std::string cookie;
  for (const auto& [name, value] : signed_in.headers) {
    if (name == "Set-Cookie") cookie = value.substr(0, value.find(';'));
  }
  ASSERT_FALSE(cookie.empty());
  auto page = [&](const std::string& id) {
    HttpRequest r;
    r.method = "GET";
    r.path = "/referral/" + id;
    r.cookie = cookie;
    return dashboard_->Handle(r);
  };
  const HttpResponse theirs = page("REF-2000000000000001");
  const HttpResponse none = page("REF-2000000000000002");
  EXPECT_EQ(theirs.status, 404);
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(theirs.body, none.body);
}

// The dashboard asks the authorisation policy, as it stands, at every request: an analyst taken
// out of it is refused at once, by certificate and by a session signed in before, as the gRPC
// gate refuses their calls. Another analyst still in it is served.
TEST_F(DashboardTest, AViewerThePolicyNoLongerAllowsIsRefused) {
  std::atomic<bool> alice_allowed{true};
  std::vector<std::pair<std::string, std::string>> asked;
  Dashboard dashboard(*reg_, clock_, audit_.get(), ReferenceData::BuiltIn(), "localhost:1",
                      [&](const std::string& identity, const std::string& method) {
                        asked.emplace_back(identity, method);
                        return identity != "spiffe://sarloop/analyst/alice" || alice_allowed;
                      });
  const HttpResponse signed_in = dashboard.Handle(SignInWith(dashboard.LoginUrl("alice")));
  ASSERT_EQ(signed_in.status, 303);
  std::string cookie;
  for (const auto& [name, value] : signed_in.headers) {
    if (name == "Set-Cookie") cookie = value.substr(0, value.find(';'));
  }
  HttpRequest by_session;
  by_session.method = "GET";
  by_session.path = "/overdue";
  by_session.cookie = cookie;
  HttpRequest by_certificate = by_session;
  by_certificate.cookie.clear();
  by_certificate.peer_uri = "spiffe://sarloop/analyst/alice";
  HttpRequest bob = by_certificate;
  bob.peer_uri = "spiffe://sarloop/analyst/bob";
  EXPECT_EQ(dashboard.Handle(by_session).status, 200);
  EXPECT_EQ(dashboard.Handle(by_certificate).status, 200);
  alice_allowed = false;
  EXPECT_EQ(dashboard.Handle(by_session).status, 403);
  EXPECT_EQ(dashboard.Handle(by_certificate).status, 403);
  EXPECT_EQ(dashboard.Handle(bob).status, 200);
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked.back().second, Dashboard::kViewMethod);
}

}  // namespace
}  // namespace sarloop::nca
