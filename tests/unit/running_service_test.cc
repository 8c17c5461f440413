// The service process in-process: a real service's Build behind RunningService, served over mTLS
// on a port the system chose, without a launcher or a second process. And the timed tasks'
// helper, whose promise about a stopped task no multi-process test can see.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/crypto.h"
#include "common/security/tls.h"
#include "common/server/config.h"
#include "common/server/repeating.h"
#include "common/server/server.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "services/force/desk.h"
#include "services/force/service.h"
#include "tests/testutil/chain.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::Context;
using ::sarloop::testing::IsOk;
using ::sarloop::testing::RunPki;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::testing::HasSubstr;

// A force (NFK) configured as sarloop-local configures it, but listening on port 0 and with peers
// that are not there: its deliveries wait, which nothing here needs.
class RunningForce : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string pki = dir_.File("pki");
    ASSERT_THAT(RunPki(absl::StrCat("init ", pki)), IsOk());
    ASSERT_THAT(
        RunPki(absl::StrCat("issue ", pki, " force-NFK spiffe://sarloop/force/NFK --server")),
        IsOk());
    ASSERT_THAT(
        RunPki(absl::StrCat("issue ", pki, " force-NFK-psd spiffe://sarloop/force/NFK/psd")),
        IsOk());
    ASSERT_THAT(
        RunPki(absl::StrCat("issue ", pki, " force-SFK-psd spiffe://sarloop/force/SFK/psd")),
        IsOk());
    const std::string key = dir_.File("data-1.key");
    ASSERT_THAT(WriteNewKeyFile(key, Keyring::kKeySize), IsOk());
    std::filesystem::create_directories(dir_.File("data"));
    const std::string file = dir_.File("force-NFK.textproto");
    std::ofstream(file) << absl::StrCat(
        "kind: SERVICE_KIND_FORCE\n"
        "code: \"NFK\"\n"
        "listen: \"127.0.0.1:1\"\n"
        "development_mode: true\n"
        "database: \"",
        dir_.File("data/force-NFK.db"),
        "\"\n"
        "tls {\n"
        "  cert_file: \"",
        pki, "/force-NFK/cert.pem\"\n  key_file: \"", pki, "/force-NFK/key.pem\"\n  ca_file: \"",
        pki,
        "/force-NFK/ca.pem\"\n"
        "}\n"
        "data_key_files: \"",
        key,
        "\"\n"
        "handover_unit: \"ERSOU\"\n"
        "peers { code: \"UKFIU\" address: \"127.0.0.1:1\" }\n"
        "peers { code: \"NCA\" address: \"127.0.0.1:1\" }\n"
        "peers { code: \"ERSOU\" address: \"127.0.0.1:1\" }\n");
    absl::StatusOr<v1::ServiceConfig> config = ReadConfigFile(file);
    ASSERT_THAT(config, IsOk());
    config_ = *config;
    // The configuration refuses port 0, which no peer could find; a test's listener is found by
    // asking.
    config_.set_listen("127.0.0.1:0");
  }

  absl::StatusOr<std::unique_ptr<RunningService>> Start(const ServiceBuilder& build) {
    return RunningService::Start(
        config_, ServiceMigrations(force::DeskMigrations(), force::DeskMigrationsAfterAudit()),
        build);
  }

  std::unique_ptr<v1::Force::Stub> Force(const RunningService& service,
                                         const std::string& identity) {
    const std::string pki = dir_.File("pki");
    v1::TlsConfig tls;
    tls.set_cert_file(absl::StrCat(pki, "/", identity, "/cert.pem"));
    tls.set_key_file(absl::StrCat(pki, "/", identity, "/key.pem"));
    tls.set_ca_file(absl::StrCat(pki, "/", identity, "/ca.pem"));
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = MakeChannelCredentials(tls);
    EXPECT_THAT(creds, IsOk());
    return v1::Force::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", service.port()), *creds));
  }

  TempDir dir_;
  v1::ServiceConfig config_;
};

TEST_F(RunningForce, ServesItsOwnForceOverMtlsOnThePortTheSystemChose) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningService> service, Start(force::Build));
  ASSERT_GT(service->port(), 0);

  // The force's own PSD: its inbox, empty; a step on a referral it does not hold is NOT_FOUND,
  // answered from the writer on the serving thread.
  std::unique_ptr<v1::Force::Stub> psd = Force(*service, "force-NFK-psd");
  v1::ListInboxResponse inbox;
  ASSERT_RPC_OK(psd->ListInbox(Context().get(), v1::ListInboxRequest(), &inbox));
  EXPECT_EQ(inbox.referrals_size(), 0);
  v1::ForceStepRequest step;
  step.set_request_id("req-in-process-1");
  step.set_referral_id("REF-00000000000000aa");
  v1::ForceStepResponse stepped;
  EXPECT_EQ(psd->Acknowledge(Context().get(), step, &stepped).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Another force's PSD is refused by the gate, before any handler.
  std::unique_ptr<v1::Force::Stub> other = Force(*service, "force-SFK-psd");
  EXPECT_EQ(other->ListInbox(Context().get(), v1::ListInboxRequest(), &inbox).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Stopped, its database is released: the same service starts again on it.
  service->Stop(absl::ZeroDuration());
  ASSERT_OK_AND_ASSIGN(service, Start(force::Build));
  ASSERT_GT(service->port(), 0);
  psd = Force(*service, "force-NFK-psd");
  ASSERT_RPC_OK(psd->ListInbox(Context().get(), v1::ListInboxRequest(), &inbox));
}

TEST_F(RunningForce, RefusesRetentionYearsWhenTheServiceHasNoRetentionJob) {
  config_.set_retention_years(6);
  auto without_job = [](ServiceContext& ctx) -> absl::StatusOr<ServiceParts> {
    absl::StatusOr<ServiceParts> parts = force::Build(ctx);
    if (parts.ok()) parts->purge = nullptr;
    return parts;
  };
  EXPECT_THAT(Start(without_job),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("retention_years")));
  // The force's own Build sets the job, and the same configuration starts.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningService> service, Start(force::Build));
  EXPECT_GT(service->port(), 0);
}

TEST(Repeating, TicksEveryPeriodUntilStopped) {
  boost::asio::io_context io;
  int ticks = 0;
  std::unique_ptr<Repeating> task;
  task = std::make_unique<Repeating>(io, std::chrono::milliseconds(1), [&] {
    if (++ticks == 3) task->Stop();
  });
  task->Start();
  io.run();  // returns once the task has stopped: nothing else is queued
  EXPECT_EQ(ticks, 3);
}

// Two tasks whose times have both come before the loop runs: the first to tick stops both, and
// the second's tick, already due and so no longer cancellable, must not run.
TEST(Repeating, ATickAlreadyDueWhenStoppedDoesNotRun) {
  boost::asio::io_context io;
  int ticks = 0;
  std::unique_ptr<Repeating> a, b;
  auto tick = [&] {
    ++ticks;
    a->Stop();
    b->Stop();
  };
  a = std::make_unique<Repeating>(io, std::chrono::milliseconds(1), tick);
  b = std::make_unique<Repeating>(io, std::chrono::milliseconds(1), tick);
  a->Start();
  b->Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  io.run();
  EXPECT_EQ(ticks, 1);
}

}  // namespace
}  // namespace sarloop
