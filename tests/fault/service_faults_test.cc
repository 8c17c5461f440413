// Faults a whole service meets, on the real chain (the services' test builds over mTLS): a full
// disk, SIGTERM under load, a flood of calls, and an organisation offline for simulated months.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/client/client.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tests/testutil/chain.h"

namespace sarloop {
namespace {

using ::sarloop::testing::Context;
using ::sarloop::testing::LocalChain;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::WaitFor;

constexpr int kServing = 1;
constexpr int kNotServing = 2;

// grpc.health.v1.Health/Check without generated stubs (request and response are one field
// each): the serving status of `service`, or -1 when the call fails.
int Health(const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "") {
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0a);
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer req(&slice, 1), resp;
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!resp.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;  // absent field: UNKNOWN (0)
}

int PidOf(const LocalChain& chain, const std::string& instance) {
  std::ifstream in(chain.dir() + "/run/" + instance + ".pid");
  int pid = 0;
  in >> pid;
  return pid;
}

// VmHWM (peak resident set) of `pid`, in KiB.
int64_t PeakRssKib(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kib = 0;
      absl::SimpleAtoi(line.substr(6, line.size() - 6 - 3), &kib);
      return kib;
    }
  }
  return -1;
}

class ServiceFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("SARLOOP_FAULTS", "1", 1);
    disk_full_ = std::filesystem::temp_directory_path() / NewId("sarloop-disk-full-", 12);
    setenv("SARLOOP_DISK_FULL_FILE", disk_full_.c_str(), 1);
    slow_disk_ = std::filesystem::temp_directory_path() / NewId("sarloop-slow-disk-", 12);
    setenv("SARLOOP_SLOW_DISK_FILE", slow_disk_.c_str(), 1);
    auto chain = LocalChain::Up();
    ASSERT_TRUE(chain.ok()) << chain.status();
    chain_ = std::move(*chain);
    channel_ = chain_->Channel("ukfiu", "ukfiu-intake");
    ukfiu_ = v1::Ukfiu::NewStub(channel_);
  }
  void TearDown() override {
    std::filesystem::remove(disk_full_);
    std::filesystem::remove(slow_disk_);
    unsetenv("SARLOOP_FAULTS");
    unsetenv("SARLOOP_DISK_FULL_FILE");
    unsetenv("SARLOOP_SLOW_DISK_FILE");
  }

  grpc::Status Submit(const std::string& request_id, v1::SubmitSarResponse* out,
                      v1::Ukfiu::Stub* stub = nullptr) {
    v1::SubmitSarRequest req;
    req.set_request_id(request_id);
    *req.mutable_sar() = SampleSar("Ffion Faultless");
    return (stub ? stub : ukfiu_.get())->SubmitSar(Context().get(), req, out);
  }

  // Whether ukfiu holds the SAR: OK or NOT_FOUND, waiting out a service that is coming back.
  bool HasSar(const std::string& sar_id) {
    v1::GetSarRequest req;
    req.set_sar_id(sar_id);
    grpc::Status s;
    for (int attempt = 0; attempt < 100; ++attempt) {
      v1::GetSarResponse resp;
      auto ctx = Context();
      ctx->set_wait_for_ready(true);
      s = ukfiu_->GetSar(ctx.get(), req, &resp);
      if (s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return s.ok();
  }

  std::filesystem::path disk_full_;
  std::filesystem::path slow_disk_;  // holds the milliseconds each sync waits while it exists
  std::unique_ptr<LocalChain> chain_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ukfiu::Stub> ukfiu_;
};

TEST_F(ServiceFaultsTest, DiskFullRefusesWritesKeepsReadsAndRecoversByItself) {
  v1::SubmitSarResponse before;
  ASSERT_RPC_OK(Submit("before", &before));
  { std::ofstream(disk_full_.string()) << "full\n"; }
  // No failed write is ever reported as done.
  for (int i = 0; i < 5; ++i) {
    v1::SubmitSarResponse resp;
    grpc::Status s = Submit(absl::StrCat("during-", i), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << i << ": " << s.error_message();
  }
  EXPECT_TRUE(WaitFor([&] { return Health(channel_) == kNotServing; }));
  // The refusal says when to come back.
  v1::SubmitSarResponse refused;
  grpc::Status s = Submit("during-0", &refused);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(s.error_details())) << s.error_message();
  // The ErrorInfo (reason UNAVAILABLE) every error carries, then the RetryInfo.
  google::rpc::RetryInfo retry;
  ASSERT_EQ(details.details_size(), 2);
  EXPECT_TRUE(details.details(1).UnpackTo(&retry));
  EXPECT_GT(retry.retry_delay().seconds() + retry.retry_delay().nanos(), 0);
  // A read of personal data is answered only once its audit entry is durable: refused too, with a
  // hint, and never answered untraced.
  {
    v1::GetSarRequest req;
    req.set_sar_id(before.sar().sar_id());
    v1::GetSarResponse resp;
    grpc::Status read = ukfiu_->GetSar(Context().get(), req, &resp);
    EXPECT_EQ(read.error_code(), grpc::StatusCode::UNAVAILABLE) << read.error_message();
    EXPECT_EQ(resp.sar().subjects_size(), 0) << "no personal data in a refused read";
    EXPECT_THAT(read.error_message(), ::testing::HasSubstr("audit"));
  }

  std::filesystem::remove(disk_full_);
  EXPECT_TRUE(WaitFor([&] { return Health(channel_) == kServing; }));
  v1::SubmitSarResponse after, again;
  ASSERT_RPC_OK(Submit("during-0", &after));
  ASSERT_RPC_OK(Submit("during-0", &again));
  EXPECT_EQ(after.sar().sar_id(), again.sar().sar_id());
  EXPECT_TRUE(HasSar(after.sar().sar_id()));
  EXPECT_TRUE(HasSar(before.sar().sar_id())) << "reads come back with the disk";
}

TEST_F(ServiceFaultsTest, SigtermDrainsThenStopsAndLosesNothing) {
  // A drain long enough for health to be seen saying NOT_SERVING and for calls sent after that to
  // be answered on a busy machine (the default is 1 s).
  ASSERT_THAT(chain_->Stop("ukfiu"), testing::IsOk());
  std::ofstream(absl::StrCat(chain_->dir(), "/config/ukfiu.textproto"), std::ios::app)
      << "shutdown_drain_ms: 3000\n";
  ASSERT_THAT(chain_->Start("ukfiu"), testing::IsOk());
  std::atomic<bool> stop{false};
  std::atomic<bool> saw_not_serving{false};
  std::atomic<int> accepted_while_draining{0};
  std::mutex mu;
  std::vector<std::string> acked;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      auto stub = v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
      for (int i = 0; !stop; ++i) {
        // Sent after health said NOT_SERVING: only a draining service (not one already gone, nor
        // the stop script's own delay before the signal) can accept it.
        const bool draining = saw_not_serving;
        v1::SubmitSarResponse resp;
        if (Submit(absl::StrCat("load-", t, "-", i), &resp, stub.get()).ok()) {
          if (draining) ++accepted_while_draining;
          std::lock_guard lock(mu);
          acked.push_back(resp.sar().sar_id());
        }
      }
    });
  }
  std::thread watcher([&] {
    while (!stop) {
      if (Health(channel_) == kNotServing) saw_not_serving = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const size_t acked_before_term = [&] {
    std::lock_guard lock(mu);
    return acked.size();
  }();
  ASSERT_THAT(chain_->Stop("ukfiu"), testing::IsOk());  // SIGTERM, waits for the exit
  stop = true;
  for (auto& t : load) t.join();
  watcher.join();
  EXPECT_TRUE(saw_not_serving) << "health must say NOT_SERVING while the service drains";
  std::ifstream log(chain_->LogFile("ukfiu"));
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("stopped cleanly"), std::string::npos);

  ASSERT_THAT(chain_->Start("ukfiu"), testing::IsOk());
  std::lock_guard lock(mu);
  EXPECT_GT(acked.size(), acked_before_term) << "calls were taken while draining";
  EXPECT_GT(accepted_while_draining.load(), 0)
      << "no call sent after health turned NOT_SERVING was accepted: the service did not drain";
  for (const std::string& id : acked) EXPECT_TRUE(HasSar(id)) << id;
}

TEST_F(ServiceFaultsTest, AFloodIsRefusedWithARetryHintInBoundedMemory) {
  // 16 connections (distinct channel arguments), 100 calls each at once.
  constexpr int kChannels = 16, kPerChannel = 100;
  // On a fast disk a service can commit as fast as this client sends, and then nothing needs
  // refusing. Each commit waits 200 ms for its sync here, so the flood outruns the service (past
  // max_inflight_calls, 128) on any machine, as it would a service whose disk has slowed.
  { std::ofstream(slow_disk_.string()) << "200\n"; }
  std::vector<std::unique_ptr<v1::Ukfiu::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("sarloop.test.connection", c);
    stubs.push_back(
        v1::Ukfiu::NewStub(chain_->Channel("ukfiu", chain_->Tls("ukfiu-intake"), args)));
  }
  struct Result {
    grpc::ClientContext ctx;
    v1::SubmitSarRequest req;
    v1::SubmitSarResponse resp;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Result>> results;
  std::atomic<int> pending{kChannels * kPerChannel};
  std::promise<void> all_done;
  for (int c = 0; c < kChannels; ++c) {
    for (int i = 0; i < kPerChannel; ++i) {
      auto r = std::make_unique<Result>();
      client::Prepare(&r->ctx, {.deadline = absl::Seconds(60), .user = "flood-test"});
      r->req.set_request_id(absl::StrCat("flood-", c, "-", i));
      *r->req.mutable_sar() = SampleSar("Fflur Floodgate");
      Result* raw = r.get();
      stubs[c]->async()->SubmitSar(&raw->ctx, &raw->req, &raw->resp, [&, raw](grpc::Status s) {
        raw->status = std::move(s);
        if (--pending == 0) all_done.set_value();
      });
      results.push_back(std::move(r));
    }
  }
  all_done.get_future().wait();
  std::filesystem::remove(slow_disk_);
  int ok = 0, exhausted = 0, with_hint = 0, other = 0;
  for (const auto& r : results) {
    if (r->status.ok()) {
      ++ok;
    } else if (r->status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      google::rpc::Status details;
      google::rpc::RetryInfo retry;
      with_hint += details.ParseFromString(r->status.error_details()) &&
                   details.details_size() == 2 && details.details(1).UnpackTo(&retry);
    } else {
      ++other;
      ADD_FAILURE() << r->status.error_code() << ": " << r->status.error_message();
    }
  }
  const int64_t peak = PeakRssKib(PidOf(*chain_, "ukfiu"));
  std::cout << "flood of " << results.size() << " concurrent calls: " << ok << " taken, "
            << exhausted << " refused RESOURCE_EXHAUSTED, " << other << " other; ukfiu peak RSS "
            << peak / 1024 << " MiB\n";
  RecordProperty("peak_rss_kib", static_cast<int>(peak));
  EXPECT_GT(ok, 0);
  EXPECT_GT(exhausted, 0) << "the flood never reached the bound";
  EXPECT_EQ(with_hint, exhausted) << "every refusal carries google.rpc.RetryInfo";
  EXPECT_LT(peak, 512 * 1024) << "peak RSS must stay bounded";
  for (const auto& r : results) {
    if (r->status.ok()) {
      EXPECT_TRUE(HasSar(r->resp.sar().sar_id()));
    }
  }
}

TEST_F(ServiceFaultsTest, AnOrganisationOfflineForMonthsGetsEverythingInOrder) {
  ASSERT_THAT(chain_->Stop("force-NFK"), testing::IsOk());
  std::vector<std::string> referrals;
  for (int i = 0; i < 10; ++i) {
    v1::SubmitSarResponse sar;
    ASSERT_RPC_OK(Submit(NewId("outage-"), &sar));
    v1::ReferSarRequest refer;
    refer.set_request_id(NewId("refer-"));
    refer.set_sar_id(sar.sar().sar_id());
    refer.set_organisation("NFK");
    *refer.mutable_thr() = SampleThr();
    v1::ReferSarResponse resp;
    ASSERT_RPC_OK(ukfiu_->ReferSar(Context().get(), refer, &resp));
    referrals.push_back(resp.referral().referral_id());
  }
  // Weeks pass (by the chain's clock): acknowledgement was due at 5 days; the feedback clock
  // reminds at 20, reminds again (every 14 days) and escalates (28 days past due) at 40, all
  // queued.
  for (int days : {20, 40}) {
    chain_->SetClockOffset(absl::Hours(24 * days));
    v1::RunFeedbackClockResponse run;
    ASSERT_RPC_OK(ukfiu_->RunFeedbackClock(Context().get(), v1::RunFeedbackClockRequest(), &run));
  }
  auto ops = v1::Ops::NewStub(channel_);
  v1::GetBacklogResponse backlog;
  ASSERT_RPC_OK(ops->GetBacklog(Context().get(), v1::GetBacklogRequest(), &backlog));
  int64_t nfk_pending = 0, nfk_age = 0;
  for (const auto& d : backlog.destinations()) {
    if (d.destination() == "NFK")
      nfk_pending = d.pending(), nfk_age = d.oldest_pending_age_seconds();
  }
  EXPECT_EQ(nfk_pending, 40);  // DISPATCHED, REMINDER_SENT twice, ESCALATED for each
  EXPECT_GE(nfk_age, 39 * 24 * 3600);
  // The age is visible to any health checker, not only to sarloop's own tools.
  EXPECT_TRUE(WaitFor([&] { return Health(channel_, "sarloop.outbox") == kNotServing; }));

  ASSERT_THAT(chain_->Start("force-NFK"), testing::IsOk());
  auto nfk = v1::Force::NewStub(chain_->Channel("force-NFK", "force-NFK-psd"));
  for (const std::string& id : referrals) {
    v1::GetForceReferralRequest req;
    req.set_referral_id(id);
    v1::GetForceReferralResponse resp;
    ASSERT_TRUE(WaitFor([&] {
      resp.Clear();
      return nfk->GetReferral(Context().get(), req, &resp).ok() && resp.events_size() >= 5;
    })) << id;
    // The force's timeline in the order ukfiu produced it (RECEIVED is the force's own).
    std::vector<v1::EventType> types;
    for (const auto& e : resp.events()) {
      if (e.producer() == "UKFIU") types.push_back(e.type());
    }
    // The second reminder and the escalation share an instant: their order between them is the
    // event ids'.
    if (types.size() == 4) std::sort(types.begin() + 2, types.end());
    EXPECT_EQ(types,
              (std::vector<v1::EventType>{v1::EVENT_TYPE_DISPATCHED, v1::EVENT_TYPE_REMINDER_SENT,
                                          v1::EVENT_TYPE_REMINDER_SENT, v1::EVENT_TYPE_ESCALATED}))
        << id;
  }
  EXPECT_TRUE(WaitFor([&] { return Health(channel_, "sarloop.outbox") == kServing; }));
}

}  // namespace
}  // namespace sarloop
