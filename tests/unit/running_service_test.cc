// The service process in-process: a real service's Build behind RunningService, served over mTLS
// on a port the system chose, without a launcher or a second process. And the timed tasks'
// helper, whose promise about a stopped task no multi-process test can see.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <span>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/base/crypto.h"
#include "common/client/client.h"
#include "common/security/identity.h"
#include "common/server/config.h"
#include "common/server/repeating.h"
#include "common/server/server.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/linkage.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "services/force/desk.h"
#include "services/force/service.h"
#include "services/linkage/desk.h"
#include "services/linkage/service.h"
#include "services/nca/register.h"
#include "services/nca/service.h"
#include "services/racu/service.h"
#include "services/racu/unit.h"
#include "services/ukfiu/desk.h"
#include "services/ukfiu/service.h"
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

// The dev PKI every test here shares (made once: each certificate is an openssl run), and a
// directory of each test's own for databases and keys.
class InProcess : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_root_ = new TempDir;
    const std::string pki = pki_root_->File("pki");
    ASSERT_THAT(RunPki(absl::StrCat("init ", pki)), IsOk());
    for (const auto& [name, id, server] : std::vector<std::tuple<std::string, std::string, bool>>{
             {"ukfiu", "ukfiu", true},
             {"nca", "nca", true},
             {"force-NFK", "force/NFK", true},
             {"racu-ERSOU", "racu/ERSOU", true},
             {"linkage", "linkage", true},
             {"ukfiu-intake", "ukfiu/intake", false},
             {"force-NFK-psd", "force/NFK/psd", false},
             {"force-SFK-psd", "force/SFK/psd", false},
             {"racu-ERSOU-cases", "racu/ERSOU/cases", false},
             {"analyst-alice", "analyst/alice", false}}) {
      ASSERT_THAT(RunPki(absl::StrCat("issue ", pki, " ", name, " spiffe://sarloop/", id,
                                      server ? " --server" : "")),
                  IsOk());
    }
  }
  static void TearDownTestSuite() {
    delete pki_root_;
    pki_root_ = nullptr;
  }
  static std::string Pki() { return pki_root_->File("pki"); }

  // The configuration sarloop-local writes for the server identity `name`, with `rest` (its kind,
  // code and what it needs) and a data key of its own, listening on port 0: the configuration
  // refuses port 0, which no peer could find; a test finds its listener by asking.
  v1::ServiceConfig Config(const std::string& name, const std::string& rest) {
    const std::string key = dir_.File(name + "-data-1.key");
    EXPECT_THAT(WriteNewKeyFile(key, Keyring::kKeySize), IsOk());
    const std::string file = dir_.File(name + ".textproto");
    std::ofstream(file) << absl::StrCat(
        rest, "\nlisten: \"127.0.0.1:1\"\n", "development_mode: true\n", "database: \"",
        dir_.File(name + ".db"), "\"\n", "tls { cert_file: \"", Pki(), "/", name,
        "/cert.pem\" key_file: \"", Pki(), "/", name, "/key.pem\" ca_file: \"", Pki(), "/", name,
        "/ca.pem\" }\n", "data_key_files: \"", key, "\"\n");
    absl::StatusOr<v1::ServiceConfig> config = ReadConfigFile(file);
    EXPECT_THAT(config, IsOk());
    if (!config.ok()) return v1::ServiceConfig();
    config->set_listen("127.0.0.1:0");
    return *config;
  }

  // A channel to `service` as the PKI identity `identity`.
  std::shared_ptr<grpc::Channel> Channel(const RunningService& service,
                                         const std::string& identity) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        client::OpenChannel(absl::StrCat("localhost:", service.port()),
                            client::IdentityFiles(absl::StrCat(Pki(), "/", identity)));
    EXPECT_THAT(channel, IsOk());
    return channel.ok() ? *channel : nullptr;
  }

  static TempDir* pki_root_;
  TempDir dir_;
};
TempDir* InProcess::pki_root_ = nullptr;

// Peers every test service is given, none of them there: deliveries wait, which nothing here needs.
constexpr char kAbsentPeers[] =
    "peers { code: \"UKFIU\" address: \"127.0.0.1:1\" }\n"
    "peers { code: \"NCA\" address: \"127.0.0.1:1\" }\n";

// Force NFK as sarloop-local configures it.
class RunningForce : public InProcess {
 protected:
  void SetUp() override {
    config_ =
        Config("force-NFK", absl::StrCat("kind: SERVICE_KIND_FORCE\ncode: \"NFK\"\n",
                                         "handover_unit: \"ERSOU\"\n", kAbsentPeers,
                                         "peers { code: \"ERSOU\" address: \"127.0.0.1:1\" }"));
  }
  absl::StatusOr<std::unique_ptr<RunningService>> Start(const ServiceBuilder& build) {
    return RunningService::Start(
        config_, ServiceMigrations(force::DeskMigrations(), force::DeskMigrationsAfterAudit()),
        build);
  }
  std::unique_ptr<v1::Force::Stub> Force(const RunningService& service,
                                         const std::string& identity) {
    return v1::Force::NewStub(Channel(service, identity));
  }

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
  ASSERT_THAT(service->Stop(absl::ZeroDuration()), IsOk());
  ASSERT_OK_AND_ASSIGN(service, Start(force::Build));
  ASSERT_GT(service->port(), 0);
  psd = Force(*service, "force-NFK-psd");
  ASSERT_RPC_OK(psd->ListInbox(Context().get(), v1::ListInboxRequest(), &inbox));
}

// The gate audits refusals (common/server/server.cc's AuditRefusals): a path as long as gRPC
// allows is written cut short, and a flood of refused calls is written within the budget and
// counted, not one row and one commit each.
TEST_F(RunningForce, RefusalsAreAuditedShortAndWithinABudget) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningService> service, Start(force::Build));
  std::shared_ptr<grpc::Channel> channel = Channel(*service, "force-SFK-psd");
  grpc::GenericStub generic(channel);
  const std::string long_path = absl::StrCat("/sarloop.v1.Force/", std::string(6000, 'x'));
  {
    grpc::ClientContext ctx;
    client::Prepare(&ctx, {});
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    grpc::Status status;
    std::promise<void> done;
    generic.UnaryCall(&ctx, long_path, grpc::StubOptions(), &request, &response,
                      [&](grpc::Status s) {
                        status = std::move(s);
                        done.set_value();
                      });
    done.get_future().wait();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_LT(status.error_message().size(), 400u) << status.error_message().size();
  }
  std::unique_ptr<v1::Force::Stub> other = v1::Force::NewStub(channel);
  const auto began = std::chrono::steady_clock::now();
  constexpr int kRefused = 400;
  for (int i = 0; i < kRefused; ++i) {
    v1::ListInboxResponse inbox;
    ASSERT_EQ(other->ListInbox(Context().get(), v1::ListInboxRequest(), &inbox).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  ASSERT_THAT(service->Stop(absl::ZeroDuration()), IsOk());

  auto db =
      Database::Open(config_.database(),
                     ServiceMigrations(force::DeskMigrations(), force::DeskMigrationsAfterAudit()));
  ASSERT_THAT(db, IsOk());
  int64_t refusals = 0;
  size_t longest = 0;
  ASSERT_THAT((*db)->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT method FROM audit WHERE code = 7"));
    refusals = static_cast<int64_t>(rows.size());
    for (const Row& row : rows) longest = std::max(longest, row.Text(0).size());
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_GE(refusals, 1);
  // The burst (50) and the rate (10 a second) over the time the calls took, never all of them.
  EXPECT_LE(refusals, 50 + static_cast<int64_t>(10 * seconds) + 1) << seconds << " s";
  EXPECT_LT(refusals, kRefused + 1);
  EXPECT_LE(longest, 203u);
}

// What every tool calls through (common/client): the person acting reaches the service on each
// call, and a client system's call without one is refused there.
TEST_F(RunningForce, TheClientLibraryNamesThePersonActingOnEveryCall) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningService> service, Start(force::Build));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       client::OpenChannel(absl::StrCat("localhost:", service->port()),
                                           client::IdentityFiles(Pki() + "/force-NFK-psd")));
  v1::Force::Stub psd(channel);
  v1::ListInboxResponse inbox;
  auto list = [&](grpc::ClientContext* context) {
    return psd.ListInbox(context, v1::ListInboxRequest(), &inbox);
  };
  const grpc::Status nobody = client::CallWithRetry({}, absl::Seconds(30), list);
  EXPECT_EQ(nobody.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(nobody.error_message(), HasSubstr(kUserMetadataKey));
  const grpc::Status named =
      client::CallWithRetry({.user = "DS Jo Bloggs"}, absl::Seconds(30), list);
  EXPECT_TRUE(named.ok()) << named.error_message();
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

// Each service's own Build, started in-process: a read of its own API answers its own callers,
// and the gate refuses a caller of another role before any handler runs.
TEST_F(InProcess, EveryServiceServesItsOwnApiAndRefusesOtherRoles) {
  const std::string peers = kAbsentPeers;
  auto with_audit = [](std::span<const Migration> before, std::span<const Migration> after) {
    return ServiceMigrations(before, after);
  };
  struct Case {
    std::string name;  // the server's PKI identity
    v1::ServiceConfig config;
    std::vector<Migration> migrations;
    ServiceBuilder build;
    std::string caller;    // an identity its policy lets call `read`
    std::string stranger;  // one it refuses
    std::function<grpc::Status(std::shared_ptr<grpc::Channel>)> read;
  };
  const std::string subject_key = dir_.File("subject-hmac.key");
  ASSERT_THAT(WriteNewKeyFile(subject_key, 32), IsOk());
  const std::vector<Case> cases = {
      {"ukfiu",
       Config("ukfiu", absl::StrCat("kind: SERVICE_KIND_UKFIU\nsubject_key_file: \"", subject_key,
                                    "\"\n", peers)),
       with_audit(ukfiu::DeskMigrations(), ukfiu::DeskMigrationsAfterAudit()), ukfiu::Build,
       "ukfiu-intake", "force-NFK-psd",
       [](std::shared_ptr<grpc::Channel> channel) {
         v1::ListReferralsResponse response;
         return v1::Ukfiu::NewStub(channel)->ListReferrals(Context().get(),
                                                           v1::ListReferralsRequest(), &response);
       }},
      {"force-NFK",
       Config("force-NFK", absl::StrCat("kind: SERVICE_KIND_FORCE\ncode: \"NFK\"\n", peers)),
       with_audit(force::DeskMigrations(), force::DeskMigrationsAfterAudit()), force::Build,
       "force-NFK-psd", "racu-ERSOU-cases",
       [](std::shared_ptr<grpc::Channel> channel) {
         v1::ListInboxResponse response;
         return v1::Force::NewStub(channel)->ListInbox(Context().get(), v1::ListInboxRequest(),
                                                       &response);
       }},
      {"racu-ERSOU",
       Config("racu-ERSOU",
              absl::StrCat("kind: SERVICE_KIND_RACU\ncode: \"ERSOU\"\nserved_forces: \"NFK\"\n",
                           peers, "peers { code: \"NFK\" address: \"127.0.0.1:1\" }\n")),
       with_audit(racu::UnitMigrations(), racu::UnitMigrationsAfterAudit()), racu::Build,
       "racu-ERSOU-cases", "force-NFK-psd",
       [](std::shared_ptr<grpc::Channel> channel) {
         v1::ListHandoversResponse response;
         return v1::Racu::NewStub(channel)->ListHandovers(Context().get(),
                                                          v1::ListHandoversRequest(), &response);
       }},
      {"nca",
       Config("nca",
              "kind: SERVICE_KIND_NCA\npeers { code: \"UKFIU\" address: \"127.0.0.1:1\" }\n"),
       ServiceMigrations(nca::RegisterMigrations().first(nca::kRegisterMigrationsBeforeAudit),
                         nca::RegisterMigrations().subspan(nca::kRegisterMigrationsBeforeAudit)),
       nca::Build, "analyst-alice", "force-NFK-psd",
       [](std::shared_ptr<grpc::Channel> channel) {
         v1::GetAggregatesResponse response;
         return v1::Nca::NewStub(channel)->GetAggregates(Context().get(),
                                                         v1::GetAggregatesRequest(), &response);
       }},
      {"linkage",
       Config("linkage",
              "kind: SERVICE_KIND_LINKAGE\npeers { code: \"NCA\" address: \"127.0.0.1:1\" }\n"),
       with_audit(linkage::LinkageMigrations(), linkage::LinkageMigrationsAfterAudit()),
       linkage::Build, "ukfiu-intake", "force-NFK-psd",
       [](std::shared_ptr<grpc::Channel> channel) {
         v1::GetLinkageStatsResponse response;
         return v1::Linkage::NewStub(channel)->GetLinkageStats(
             Context().get(), v1::GetLinkageStatsRequest(), &response);
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningService> service,
                         RunningService::Start(c.config, c.migrations, c.build));
    ASSERT_GT(service->port(), 0);
    const grpc::Status own = c.read(Channel(*service, c.caller));
    EXPECT_TRUE(own.ok()) << own.error_code() << ": " << own.error_message();
    EXPECT_EQ(c.read(Channel(*service, c.stranger)).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    ASSERT_THAT(service->Stop(absl::ZeroDuration()), IsOk());
  }
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

// A first delay of its own: the first tick comes after it, not a period after Start (an hour
// here: without it, the loop would not return within the test's time).
TEST(Repeating, TheFirstTickMayComeSoonerThanThePeriod) {
  boost::asio::io_context io;
  int ticks = 0;
  std::unique_ptr<Repeating> task;
  task = std::make_unique<Repeating>(io, std::chrono::hours(1), [&] {
    ++ticks;
    task->Stop();
  });
  task->Start(std::chrono::milliseconds(1));
  io.run();
  EXPECT_EQ(ticks, 1);
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
