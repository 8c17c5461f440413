// The dashboard's sign-in, called in-process (the browser test drives the same pages over HTTPS).
#include "services/nca/dashboard.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/base/clock.h"
#include "common/reference/reference.h"
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
    reg_ = std::make_unique<Register>(*db_, ReferenceData::BuiltIn(), clock_);
    dashboard_ = std::make_unique<Dashboard>(*reg_, clock_, /*audit_db=*/nullptr,
                                             ReferenceData::BuiltIn(), "localhost:1");
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

}  // namespace
}  // namespace sarloop::nca
