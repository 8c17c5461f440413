// sarloop-bench: the chain measured against raw gRPC on the same machine, in one run.
//
//   sarloop-bench --chain DIR [--seconds S] [--concurrency C] [--lifecycles L] [--rate R]
//                 [--low-rate R] [--floor-rate R] [--json FILE]
//
// DIR is a running local chain (deploy/local/sarloop-local up DIR). Phases, each for S seconds,
// over mTLS from this process:
//   1. baseline: a unary echo of ~1 KiB, served in this process by the same gRPC build with the
//      same TLS set-up as the services (common/tls), doing nothing else; C calls in flight;
//   2. one durable hop: Ukfiu.SubmitSar with a ~1 KiB SAR, i.e. validate, seal, persist
//      (synchronous=FULL), audit and reply after commit; C calls in flight;
//   3. the whole chain at its peak: L referral lifecycles at once, each SAR -> referral -> force
//      (acknowledge, research, hand over) -> unit (accept, record an outcome) -> the outcome in
//      the NCA register, each step waiting until the previous one has been delivered, as the
//      force's, unit's and register's watch streams (Force.WatchInbox, Racu.WatchHandovers,
//      Nca.WatchRegister) say: pushed, not polled;
//   4. the whole chain at half that rate (or R per second), and 5. at a light load (--low-rate,
//      10 per second), lifecycles started on a fixed schedule: end-to-end latency from the
//      scheduled start to the outcome's arrival in the register;
//   6. a call that does nothing (grpc.health.v1.Health/Check) on force-MPS, which no lifecycle
//      uses: paced at --floor-rate (170 per second, about the light load's pace of calls), then C
//      in flight. That service's CPU and wake-ups per call are what the transport alone costs a
//      call, the floor under each of a lifecycle's calls. It runs after phase 2, so that the light
//      load is the last phase to run (tools/bench/wakeups.py records that one).
// Reported: requests (or lifecycles) per second, p50 and p99 latency, ratios to the baseline,
// messages per commit (from each service's Ops.GetBacklog storage counters), CPU per request or
// lifecycle summed over the services and service by service (from each process's CPU clock, in
// nanoseconds), and thread wake-ups (voluntary context switches of all a service's threads, from
// /proc) the same way, and each service's peak RSS; as tables and as JSON. Calls a service sheds
// with RESOURCE_EXHAUSTED are counted apart and retried.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/client/client.h"
#include "common/security/tls.h"
#include "common/version/version.h"
#include "echo.grpc.pb.h"  // generated from tools/bench/echo.proto
#include "grpc/health/v1/health.grpc.pb.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tools/bench/cpu_time.h"
#include "tools/bench/number_flag.h"
#include "tools/synth/scenario.h"

namespace sarloop::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string chain;
  double seconds = 5;
  int concurrency = 64;
  int lifecycles = 64;
  // Lifecycles per second for phase 4; 0: half the peak.
  double rate = 0;
  // Lifecycles per second for phase 5, the light load.
  double low_rate = 10;
  // Calls per second for phase 6, a call that does nothing, paced. The services answer about 16
  // calls per lifecycle (7 steps, 9 deliveries; README), so 170/s is about the light load's pace
  // of calls.
  double floor_rate = 170;
  std::string json;
};

class EchoService final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx, const Payload* req,
                                 Payload* resp) override {
    *resp = *req;
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

struct Result {
  std::string name;
  int64_t calls = 0;
  int64_t errors = 0;
  // RESOURCE_EXHAUSTED: the service shedding load past max_inflight_calls, as designed.
  int64_t shed = 0;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  // Chain phases: p50/p99 of each step of a lifecycle (kLifecycleSteps), in ms.
  std::vector<std::pair<double, double>> steps;
  std::string first_error;
  double rps() const { return seconds > 0 ? calls / seconds : 0; }
};

// The p-th quantile of sorted latencies (nearest rank); 0 when there are none.
double Quantile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

// Latencies (ms) to p50/p99 into `r`.
void Percentiles(std::vector<double>& latencies, Result& r) {
  r.calls = static_cast<int64_t>(latencies.size());
  if (latencies.empty()) return;
  std::sort(latencies.begin(), latencies.end());
  r.p50_ms = Quantile(latencies, 0.5);
  r.p99_ms = Quantile(latencies, 0.99);
}

// A lifecycle's steps, in order: where its end-to-end time goes. A "pushed" step runs from the
// call that caused the delivery returning to the watch stream pushing its arrival: the outbox
// delivery, the receiver's commit and the push.
constexpr const char* kLifecycleSteps[] = {
    "Ukfiu.SubmitSar",     "Ukfiu.ReferSar",          "pushed to the force", "Force.Acknowledge",
    "Force.StartResearch", "Force.HandOver",          "pushed to the unit",  "Racu.Accept",
    "Racu.RecordOutcome",  "pushed from the register"};
constexpr size_t kStepCount = std::size(kLifecycleSteps);
using StepTimes = std::array<double, kStepCount>;

// Keeps `concurrency` calls in flight for `seconds`: each completion records its latency and
// starts the next call. `start(done)` issues one call and runs done(status) when it completes.
Result Drive(const std::string& name, int concurrency, double seconds,
             const std::function<void(std::function<void(const grpc::Status&)>)>& start) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> latencies;
  latencies.reserve(1 << 20);
  Result r;
  r.name = name;
  int active = concurrency;
  const auto begin = Clock::now();
  const auto end = begin + std::chrono::duration<double>(seconds);
  std::function<void()> issue = [&] {
    const auto t0 = Clock::now();
    start([&, t0](const grpc::Status& s) {
      const auto t1 = Clock::now();
      bool again = t1 < end;
      {
        std::lock_guard lock(mu);
        if (s.ok()) {
          latencies.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++r.shed;
        } else {
          ++r.errors;
          if (r.first_error.empty()) r.first_error = s.error_message();
        }
        if (!again && --active == 0) cv.notify_all();
      }
      if (again) issue();
    });
  };
  for (int i = 0; i < concurrency; ++i) issue();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return active == 0; });
  r.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  Percentiles(latencies, r);
  return r;
}

// CPU seconds (user + system), peak RSS (KiB) and context switches of a process.
struct ProcStats {
  double cpu_s = 0;
  int64_t peak_rss_kib = 0;
  // Summed over every thread: a voluntary switch is a thread going to sleep (to wait for work, a
  // lock, the disk), so each is a wake-up later; involuntary ones are preemptions.
  int64_t voluntary_switches = 0;
  int64_t involuntary_switches = 0;
  // The same by thread name (the writer, the delivery loops, gRPC's pools...): CPU seconds and
  // voluntary switches of the threads alive at the moment read.
  std::map<std::string, std::pair<double, int64_t>> by_thread;
};

// CPU seconds of one thread from /proc/PID/task/TID/schedstat, whose first field is the time it
// has run, in nanoseconds.
double ThreadCpuSeconds(const std::filesystem::path& task) {
  std::ifstream in(task / "schedstat");
  double ns = 0;
  if (!(in >> ns)) return 0;
  return ns / 1e9;
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

ProcStats ReadProc(int pid) {
  ProcStats out;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream status(task.path() / "status");
    std::string line;
    int64_t voluntary = 0;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        voluntary = std::stoll(line.substr(24));
        out.voluntary_switches += voluntary;
      } else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        out.involuntary_switches += std::stoll(line.substr(27));
      }
    }
    std::string name = ReadAll(task.path() / "comm");
    while (!name.empty() && (name.back() == '\n' || absl::ascii_isdigit(name.back()))) {
      name.pop_back();  // one row per pool, not per numbered thread
    }
    auto& [cpu, switches] = out.by_thread[name];
    cpu += ThreadCpuSeconds(task.path());
    switches += voluntary;
  }
  out.cpu_s = bench::ProcessCpuSeconds(pid);
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) out.peak_rss_kib = std::stoll(line.substr(6));
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// The whole chain.

// A service of the local chain, and the client identity (its own organisation's) that may read
// its Ops.GetBacklog.
struct Service {
  std::string name;  // run/<name>.pid
  std::string identity;
  std::string user;
  int port_offset = 0;
  int pid = 0;
  std::unique_ptr<v1::Ops::Stub> ops;
  bool warned = false;
};

std::vector<Service> ChainServices() {
  std::vector<Service> out;
  auto add = [&](std::string name, std::string identity, std::string user, int offset) {
    Service s;
    s.name = std::move(name);
    s.identity = std::move(identity);
    s.user = std::move(user);
    s.port_offset = offset;
    out.push_back(std::move(s));
  };
  add("ukfiu", "ukfiu-intake", "ukfiu.analyst.bench", 1);
  add("nca", "analyst-alice", "alice", 2);
  add("force-NFK", "force-NFK-psd", "psd.spoc.nfk", 11);
  add("force-SFK", "force-SFK-psd", "psd.spoc.sfk", 12);
  add("force-MPS", "force-MPS-psd", "psd.spoc.mps", 13);
  add("force-BF", "force-BF-psd", "psd.spoc.bf", 14);
  add("racu-ERSOU", "racu-ERSOU-cases", "ersou.dci.bench", 21);
  add("racu-NCAACU", "racu-NCAACU-cases", "ncaacu.investigator.bench", 22);
  // Every SAR's subjects are screened there on arrival: part of each lifecycle's cost.
  add("linkage", "analyst-alice", "alice", 6);
  return out;
}

std::shared_ptr<grpc::Channel> ChannelTo(const std::string& pki, const std::string& identity,
                                         int port) {
  auto channel = client::OpenChannel(absl::StrCat("localhost:", port),
                                     client::IdentityFiles(absl::StrCat(pki, "/", identity)));
  if (!channel.ok()) {
    std::cerr << "sarloop-bench: identity " << identity << ": " << channel.status() << "\n";
    std::exit(1);
  }
  return *std::move(channel);
}

// Every service's CPU time, peak RSS and storage counters at one moment. The counters come from
// an RPC that reads the outbox's indexes, whose cost grows with the outbox: /proc is read on
// either side of it, so that a phase between two snapshots counts none of it.
struct Snapshot {
  std::map<std::string, ProcStats> proc;        // before the counters were read: a phase's end
  std::map<std::string, ProcStats> proc_after;  // after: the next phase's start
  std::map<std::string, v1::StorageStats> storage;
};

Snapshot Take(std::vector<Service>& services) {
  Snapshot snap;
  for (Service& s : services) {
    snap.proc[s.name] = ReadProc(s.pid);
    grpc::ClientContext ctx;
    client::Prepare(&ctx, {.deadline = absl::Seconds(10), .user = s.user});
    v1::GetBacklogResponse backlog;
    grpc::Status st = s.ops->GetBacklog(&ctx, v1::GetBacklogRequest(), &backlog);
    // A build from before analysts could read the linkage service's counters (compared by
    // group_commit_compare.sh) still has its CPU and wake-ups counted; only its commits are not.
    if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED && s.name == "linkage") {
      if (!s.warned) {
        std::cerr << "sarloop-bench: linkage's commits are not counted: " << st.error_message()
                  << "\n";
        s.warned = true;
      }
      snap.storage[s.name] = v1::StorageStats();
      snap.proc_after[s.name] = ReadProc(s.pid);
      continue;
    }
    if (!st.ok()) {
      std::cerr << "sarloop-bench: " << s.name << " Ops.GetBacklog: " << st.error_message() << "\n";
      std::exit(1);
    }
    snap.storage[s.name] = backlog.storage();
    snap.proc_after[s.name] = ReadProc(s.pid);
  }
  return snap;
}

// What changed between two snapshots, over the given services (all when empty).
struct Delta {
  double cpu_s = 0;
  int64_t commits = 0;
  int64_t transactions = 0;
  int64_t voluntary_switches = 0;
  int64_t involuntary_switches = 0;
  struct PerService {
    double cpu_s = 0;
    int64_t voluntary_switches = 0;
    int64_t commits = 0;
  };
  std::map<std::string, PerService> by_service;
  // Over every service, by thread name: CPU seconds and voluntary switches. Threads that ended
  // between the snapshots take their counts with them, so a pool that shrank shows less.
  std::map<std::string, std::pair<double, int64_t>> by_thread;
  double per_commit() const {
    return commits > 0 ? static_cast<double>(transactions) / static_cast<double>(commits) : 0;
  }
};

Delta Between(const Snapshot& a, const Snapshot& b, const std::vector<std::string>& only) {
  Delta d;
  for (const auto& [name, proc] : b.proc) {
    if (!only.empty() && std::find(only.begin(), only.end(), name) == only.end()) continue;
    const ProcStats& was = a.proc_after.at(name);
    d.cpu_s += proc.cpu_s - was.cpu_s;
    d.commits += b.storage.at(name).commits() - a.storage.at(name).commits();
    d.transactions += b.storage.at(name).transactions() - a.storage.at(name).transactions();
    d.voluntary_switches += proc.voluntary_switches - was.voluntary_switches;
    d.involuntary_switches += proc.involuntary_switches - was.involuntary_switches;
    Delta::PerService& one = d.by_service[name];
    one.cpu_s = proc.cpu_s - was.cpu_s;
    one.voluntary_switches = proc.voluntary_switches - was.voluntary_switches;
    one.commits = b.storage.at(name).commits() - a.storage.at(name).commits();
    for (const auto& [thread, now] : proc.by_thread) {
      auto it = was.by_thread.find(thread);
      const std::pair<double, int64_t> then =
          it == was.by_thread.end() ? std::pair<double, int64_t>{0, 0} : it->second;
      auto& [cpu, switches] = d.by_thread[thread];
      cpu += std::max(0.0, now.first - then.first);
      switches += std::max<int64_t>(0, now.second - then.second);
    }
  }
  return d;
}

// One referral's way through the chain, from templates taken from the synthetic scenario: SARs
// whose referral goes to a force with a unit, which hands it over, and whose unit records an
// outcome.
struct Template {
  v1::Sar sar;
  std::string organisation;
  std::string unit;
  v1::ThrAssessment thr;
  std::string notes;
  v1::Outcome outcome;
};

std::vector<Template> MakeTemplates() {
  const synth::Scenario scenario = synth::MakeScenario(20261127, 600);
  std::vector<Template> out;
  for (const synth::ReferralPlan& r : scenario.referrals) {
    // Every lifecycle is the same seven client steps: not a force that hands over on receipt.
    if (r.redirected_from >= 0 || synth::UnitOf(r.organisation).empty() ||
        synth::HandsOverOnReceipt(r.organisation)) {
      continue;
    }
    Template t;
    t.sar = scenario.sars[r.sar].sar;
    t.organisation = r.organisation;
    t.unit = synth::UnitOf(r.organisation);
    t.thr = r.thr;
    t.notes = r.handover_notes.empty() ? "Research complete; joint investigation proposed."
                                       : r.handover_notes;
    t.outcome = r.outcome;
    if (t.outcome.type() == v1::OUTCOME_TYPE_UNSPECIFIED) continue;
    out.push_back(std::move(t));
  }
  return out;
}

// What the chain's watch streams have pushed, as keys ("force REF-..."): a lifecycle waits on its
// key alone, so an arrival wakes the one thread that wants it.
class Arrivals {
 public:
  void Seen(const std::string& key) {
    std::lock_guard lock(mu_);
    std::shared_ptr<Slot>& slot = slots_[key];
    if (!slot) slot = std::make_shared<Slot>();
    slot->seen = true;
    slot->cv.notify_one();
  }
  // Waits until `key` has been seen (then forgets it), for up to 60 s.
  absl::Status Await(const std::string& key) {
    std::unique_lock lock(mu_);
    std::shared_ptr<Slot>& entry = slots_[key];
    if (!entry) entry = std::make_shared<Slot>();
    std::shared_ptr<Slot> slot = entry;
    const bool seen = slot->cv.wait_for(lock, std::chrono::seconds(60), [&] { return slot->seen; });
    slots_.erase(key);
    if (!seen) return absl::DeadlineExceededError(absl::StrCat(key, " not pushed in 60 s"));
    return absl::OkStatus();
  }

 private:
  struct Slot {
    bool seen = false;
    std::condition_variable cv;
  };
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>> slots_;
};

class ChainDriver {
 public:
  ChainDriver(const std::string& pki, int base, std::string run)
      : run_(std::move(run)), templates_(MakeTemplates()) {
    ukfiu_ = v1::Ukfiu::NewStub(ChannelTo(pki, "ukfiu-intake", base + 1));
    nca_ = v1::Nca::NewStub(ChannelTo(pki, "analyst-alice", base + 2));
    const std::map<std::string, int> forces = {{"NFK", 11}, {"SFK", 12}, {"BF", 14}};
    for (const auto& [code, offset] : forces) {
      forces_[code] =
          v1::Force::NewStub(ChannelTo(pki, absl::StrCat("force-", code, "-psd"), base + offset));
    }
    units_["ERSOU"] = v1::Racu::NewStub(ChannelTo(pki, "racu-ERSOU-cases", base + 21));
    units_["NCAACU"] = v1::Racu::NewStub(ChannelTo(pki, "racu-NCAACU-cases", base + 22));
  }
  ~ChainDriver() { StopWatching(); }

  // Opens a watch on every force's inbox, every unit's handovers and the register, and returns
  // once each has answered (its first message), so nothing recorded after this is missed.
  absl::Status StartWatching() {
    for (auto& [code, stub] : forces_) {
      Follow<v1::WatchEvent>(
          absl::StrCat("psd.spoc.", absl::AsciiStrToLower(code)),
          [stub = stub.get()](grpc::ClientContext* ctx, const v1::WatchRequest& r) {
            return stub->WatchInbox(ctx, r);
          },
          [this](const v1::WatchEvent& m) {
            if (m.event().type() == v1::EVENT_TYPE_DISPATCHED) {
              arrivals_.Seen(absl::StrCat("force ", m.event().referral_id()));
            }
          });
    }
    for (auto& [code, stub] : units_) {
      Follow<v1::WatchEvent>(
          absl::StrCat(absl::AsciiStrToLower(code), ".dci.bench"),
          [stub = stub.get()](grpc::ClientContext* ctx, const v1::WatchRequest& r) {
            return stub->WatchHandovers(ctx, r);
          },
          [this](const v1::WatchEvent& m) {
            if (m.event().type() == v1::EVENT_TYPE_HANDED_OVER) {
              arrivals_.Seen(absl::StrCat("unit ", m.event().referral_id()));
            }
          });
    }
    Follow<v1::RegisterChange>(
        "alice",
        [this](grpc::ClientContext* ctx, const v1::WatchRequest& r) {
          return nca_->WatchRegister(ctx, r);
        },
        [this](const v1::RegisterChange& m) {
          if (m.entry().state() == v1::REFERRAL_STATE_OUTCOME_RECORDED &&
              m.event().type() == v1::EVENT_TYPE_OUTCOME_RECORDED) {
            arrivals_.Seen(absl::StrCat("nca ", m.event().referral_id()));
          }
        });
    std::unique_lock lock(watch_mu_);
    if (!watch_cv_.wait_for(lock, std::chrono::seconds(30),
                            [&] { return watches_open_ == static_cast<int>(watchers_.size()); })) {
      return absl::DeadlineExceededError("the watch streams did not open in 30 s");
    }
    return absl::OkStatus();
  }

  void StopWatching() {
    {
      std::lock_guard lock(watch_mu_);
      stopping_ = true;
      for (grpc::ClientContext* ctx : live_) ctx->TryCancel();
    }
    for (std::thread& t : watchers_) t.join();
    watchers_.clear();
  }

  bool ready() const { return !templates_.empty(); }
  int64_t retries() const { return retries_.load(); }
  // Times a watch stream broke and was resumed from its cursor.
  int64_t resumes() const { return resumes_.load(); }

  // Runs lifecycle `i` to the outcome's arrival in the NCA register; `steps` gets each step's
  // time (kLifecycleSteps).
  absl::Status Lifecycle(int64_t i, StepTimes& steps) {
    size_t at = 0;
    auto mark = Clock::now();
    // Ends the current step: its time since the last mark.
    const auto done = [&] {
      const auto now = Clock::now();
      steps[at++] = std::chrono::duration<double, std::milli>(now - mark).count();
      mark = now;
    };
    const Template& t = templates_[static_cast<size_t>(i) % templates_.size()];
    const std::string tag = absl::StrCat(run_, "-", i);
    const std::string force_user = absl::StrCat("psd.spoc.", absl::AsciiStrToLower(t.organisation));
    const std::string unit_user = absl::StrCat(absl::AsciiStrToLower(t.unit), ".dci.bench");
    v1::Force::Stub& force = *forces_.at(t.organisation);
    v1::Racu::Stub& unit = *units_.at(t.unit);

    v1::SubmitSarRequest submit;
    submit.set_request_id(absl::StrCat("bench-sar-", tag));
    *submit.mutable_sar() = t.sar;
    submit.mutable_sar()->set_reporter_reference(absl::StrCat("BENCH-", tag));
    *submit.mutable_sar()->mutable_submitted_at() = ToProto(absl::Now() - absl::Minutes(1));
    v1::SubmitSarResponse sar;
    RETURN_IF_ERROR(Invoke("Ukfiu.SubmitSar", "ukfiu.analyst.bench",
                           [&](auto* ctx) { return ukfiu_->SubmitSar(ctx, submit, &sar); }));
    done();
    v1::ReferSarRequest refer;
    refer.set_request_id(absl::StrCat("bench-refer-", tag));
    refer.set_sar_id(sar.sar().sar_id());
    refer.set_organisation(t.organisation);
    *refer.mutable_thr() = t.thr;
    refer.set_route(v1::REFERRAL_ROUTE_DIRECT);
    v1::ReferSarResponse referral;
    RETURN_IF_ERROR(Invoke("Ukfiu.ReferSar", "ukfiu.analyst.bench",
                           [&](auto* ctx) { return ukfiu_->ReferSar(ctx, refer, &referral); }));
    done();
    const std::string& id = referral.referral().referral_id();

    RETURN_IF_ERROR(arrivals_.Await(absl::StrCat("force ", id)));
    done();
    v1::ForceStepRequest step;
    step.set_referral_id(id);
    v1::ForceStepResponse stepped;
    step.set_request_id(absl::StrCat("bench-ack-", tag));
    RETURN_IF_ERROR(Invoke("Force.Acknowledge", force_user,
                           [&](auto* ctx) { return force.Acknowledge(ctx, step, &stepped); }));
    done();
    step.set_request_id(absl::StrCat("bench-research-", tag));
    const absl::Time opened = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
    RETURN_IF_ERROR(Invoke("Force.StartResearch", force_user,
                           [&](auto* ctx) { return force.StartResearch(ctx, step, &stepped); }));
    done();
    v1::HandOverRequest handover;
    handover.set_request_id(absl::StrCat("bench-handover-", tag));
    handover.set_referral_id(id);
    handover.set_notes(t.notes);
    handover.set_priority(v1::PRIORITY_P3);
    *handover.mutable_thr() = t.thr;
    RETURN_IF_ERROR(Invoke("Force.HandOver", force_user,
                           [&](auto* ctx) { return force.HandOver(ctx, handover, &stepped); }));
    done();

    RETURN_IF_ERROR(arrivals_.Await(absl::StrCat("unit ", id)));
    done();
    v1::AcceptHandoverRequest accept;
    accept.set_request_id(absl::StrCat("bench-accept-", tag));
    accept.set_referral_id(id);
    accept.set_priority(v1::PRIORITY_P3);
    *accept.mutable_thr() = t.thr;
    v1::UnitStepResponse unit_stepped;
    RETURN_IF_ERROR(Invoke("Racu.Accept", unit_user,
                           [&](auto* ctx) { return unit.Accept(ctx, accept, &unit_stepped); }));
    done();
    v1::RecordOutcomeRequest outcome;
    outcome.set_request_id(absl::StrCat("bench-outcome-", tag));
    outcome.set_referral_id(id);
    *outcome.mutable_outcome() = t.outcome;
    const absl::Time closed = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
    *outcome.mutable_outcome()->mutable_opened_at() = ToProto(opened);
    *outcome.mutable_outcome()->mutable_closed_at() = ToProto(closed);
    RETURN_IF_ERROR(Invoke("Racu.RecordOutcome", unit_user, [&](auto* ctx) {
      return unit.RecordOutcome(ctx, outcome, &unit_stepped);
    }));
    done();

    RETURN_IF_ERROR(arrivals_.Await(absl::StrCat("nca ", id)));
    done();
    return absl::OkStatus();
  }

 private:
  // One call with the user's metadata; calls shed (RESOURCE_EXHAUSTED) or refused while a
  // service restarts (UNAVAILABLE) are retried with the same request_id.
  template <typename Fn>
  absl::Status Invoke(const char* what, const std::string& user, Fn fn) {
    auto pause = std::chrono::milliseconds(2);
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext ctx;
      client::Prepare(&ctx, {.deadline = absl::Seconds(30), .user = user});
      const grpc::Status st = fn(&ctx);
      if (st.ok()) return absl::OkStatus();
      const bool again = st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                         st.error_code() == grpc::StatusCode::UNAVAILABLE;
      if (!again || attempt >= 200) {
        return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                            absl::StrCat(what, ": ", st.error_message()));
      }
      ++retries_;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }

  // Reads one watch stream on its own thread until StopWatching, resuming from the last cursor
  // when the stream breaks (a service restarting, a flow-control stall).
  template <typename Msg, typename Open, typename On>
  void Follow(std::string user, Open open, On on) {
    watchers_.emplace_back([this, user = std::move(user), open, on] {
      std::string cursor;
      bool counted = false;
      for (;;) {
        grpc::ClientContext ctx;
        client::Prepare(&ctx, {.deadline = absl::InfiniteDuration(), .user = user});
        {
          std::lock_guard lock(watch_mu_);
          if (stopping_) return;
          live_.insert(&ctx);
        }
        v1::WatchRequest request;
        request.set_cursor(cursor);
        request.set_heartbeat_seconds(5);
        auto reader = open(&ctx, request);
        Msg m;
        while (reader->Read(&m)) {
          cursor = m.cursor();
          if (!counted) {
            std::lock_guard lock(watch_mu_);
            ++watches_open_;
            counted = true;
            watch_cv_.notify_all();
          }
          if (!m.heartbeat()) on(m);
        }
        reader->Finish();
        {
          std::lock_guard lock(watch_mu_);
          live_.erase(&ctx);
          if (stopping_) return;
        }
        ++resumes_;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }

  const std::string run_;
  const std::vector<Template> templates_;
  std::unique_ptr<v1::Ukfiu::Stub> ukfiu_;
  std::unique_ptr<v1::Nca::Stub> nca_;
  std::map<std::string, std::unique_ptr<v1::Force::Stub>> forces_;
  std::map<std::string, std::unique_ptr<v1::Racu::Stub>> units_;
  std::atomic<int64_t> retries_{0};
  std::atomic<int64_t> resumes_{0};
  Arrivals arrivals_;
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool stopping_ = false;
  int watches_open_ = 0;
  std::set<grpc::ClientContext*> live_;
  std::vector<std::thread> watchers_;
};

// Lifecycles finished on many threads: the latencies of those that reached the register and the
// errors of those that did not.
class Outcomes {
 public:
  void Record(const absl::Status& status, Clock::time_point since, const StepTimes& steps) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - since).count();
    std::lock_guard lock(mu_);
    if (status.ok()) {
      latencies_.push_back(ms);
      for (size_t k = 0; k < kStepCount; ++k) steps_[k].push_back(steps[k]);
    } else {
      ++result_.errors;
      if (result_.first_error.empty()) result_.first_error = status.ToString();
    }
  }
  Result Finish(std::string name, double seconds) {
    std::lock_guard lock(mu_);
    result_.name = std::move(name);
    result_.seconds = seconds;
    Percentiles(latencies_, result_);
    for (std::vector<double>& one : steps_) {
      std::sort(one.begin(), one.end());
      result_.steps.emplace_back(Quantile(one, 0.5), Quantile(one, 0.99));
    }
    return result_;
  }

 private:
  std::mutex mu_;
  std::vector<double> latencies_;
  std::array<std::vector<double>, kStepCount> steps_;
  Result result_;
};

// Peak: `concurrency` lifecycles at once for `seconds`, each thread starting the next as soon as
// its last one is in the register.
Result ChainPeak(ChainDriver& driver, int concurrency, double seconds, std::atomic<int64_t>& n) {
  Outcomes outcomes;
  const auto begin = Clock::now();
  const auto end = begin + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        StepTimes steps{};
        const absl::Status status = driver.Lifecycle(n++, steps);
        outcomes.Record(status, t0, steps);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return outcomes.Finish("whole chain, peak (lifecycles)",
                         std::chrono::duration<double>(Clock::now() - begin).count());
}

// Open loop: a lifecycle starts every 1/rate s, on its own thread from a pool, whether or not
// earlier ones have finished; latency counts from the scheduled start, so a stall is not hidden.
Result ChainAtRate(ChainDriver& driver, double rate, double seconds, std::atomic<int64_t>& n) {
  Outcomes outcomes;
  const auto begin = Clock::now();
  const int64_t total = std::max<int64_t>(1, static_cast<int64_t>(rate * seconds));
  std::atomic<int64_t> next{0};
  std::vector<std::thread> threads;
  const int pool = static_cast<int>(std::min<int64_t>(total, 256));
  for (int t = 0; t < pool; ++t) {
    threads.emplace_back([&] {
      for (int64_t k = next++; k < total; k = next++) {
        const auto scheduled =
            begin + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(k) / rate));
        std::this_thread::sleep_until(scheduled);
        StepTimes steps{};
        const absl::Status status = driver.Lifecycle(n++, steps);
        outcomes.Record(status, scheduled, steps);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return outcomes.Finish(absl::StrFormat("whole chain at %.0f/s (lifecycles)", rate), seconds);
}

// A call that does nothing, paced: grpc.health.v1.Health/Check from one thread, one every
// 1/rate s, for `seconds`. What a service spends on a call's transport (TLS, HTTP/2, gRPC's call,
// the serving thread's wake-up) with no storage and no work of its own.
Result PacedChecks(grpc::health::v1::Health::Stub& health, double rate, double seconds) {
  std::vector<double> latencies;
  Result r;
  r.name = absl::StrFormat("paced, %.0f/s", rate);
  const auto begin = Clock::now();
  const int64_t total = std::max<int64_t>(1, static_cast<int64_t>(rate * seconds));
  for (int64_t k = 0; k < total; ++k) {
    std::this_thread::sleep_until(begin + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(k / rate)));
    grpc::ClientContext ctx;
    client::Prepare(&ctx, {});  // the default deadline, 10 s
    grpc::health::v1::HealthCheckResponse resp;
    const auto t0 = Clock::now();
    const grpc::Status s = health.Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
    if (s.ok()) {
      latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    } else {
      ++r.errors;
      if (r.first_error.empty()) r.first_error = s.error_message();
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  Percentiles(latencies, r);
  return r;
}

// The flags, or nullopt having printed why (exit code 2).
std::optional<Flags> ParseFlags(int argc, char** argv) {
  constexpr char kTool[] = "sarloop-bench";
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "sarloop-bench: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--chain") {
      flags.chain = next();
    } else if (a == "--seconds") {
      flags.seconds = NumberFlag<double>(kTool, a, next());
    } else if (a == "--concurrency") {
      flags.concurrency = NumberFlag<int>(kTool, a, next());
    } else if (a == "--json") {
      flags.json = next();
    } else if (a == "--lifecycles") {
      flags.lifecycles = NumberFlag<int>(kTool, a, next());
    } else if (a == "--rate") {
      flags.rate = NumberFlag<double>(kTool, a, next());
    } else if (a == "--low-rate") {
      flags.low_rate = NumberFlag<double>(kTool, a, next());
    } else if (a == "--floor-rate") {
      flags.floor_rate = NumberFlag<double>(kTool, a, next());
    } else {
      std::cerr << "usage: sarloop-bench --chain DIR [--seconds S] [--concurrency C] "
                   "[--lifecycles L] [--rate R] [--low-rate R] [--floor-rate R] [--json FILE]\n";
      return std::nullopt;
    }
  }
  // A lifecycle in flight is a thread of its own, and a call in flight a slot: thousands, not
  // millions, before the machine refuses a thread and the run aborts.
  if (flags.chain.empty() || flags.seconds <= 0 || flags.concurrency < 1 ||
      flags.concurrency > 4096 || flags.lifecycles < 1 || flags.lifecycles > 4096 ||
      flags.rate < 0 || flags.low_rate <= 0 || flags.floor_rate <= 0) {
    std::cerr << "sarloop-bench: --chain DIR is required; --seconds must be positive, "
                 "--concurrency and --lifecycles 1 to 4096, --rate not negative, --low-rate and "
                 "--floor-rate positive\n";
    return std::nullopt;
  }
  return flags;
}

// The local chain measured: its dev PKI, its base port and its services, each with a stub of its
// Ops service for the storage counters.
struct ChainUnderTest {
  std::string pki;
  int base = 0;
  std::vector<Service> services;
};

// The chain sarloop-local runs in `dir`, or nullopt having printed why.
std::optional<ChainUnderTest> OpenChain(const std::string& dir) {
  ChainUnderTest chain;
  chain.pki = dir + "/pki";
  std::ifstream(dir + "/base-port") >> chain.base;
  chain.services = ChainServices();
  for (Service& svc : chain.services) {
    std::ifstream(absl::StrCat(dir, "/run/", svc.name, ".pid")) >> svc.pid;
    if (chain.base == 0 || svc.pid == 0) {
      std::cerr << "sarloop-bench: " << dir << " is not a running local chain (no " << svc.name
                << ")\n";
      return std::nullopt;
    }
    svc.ops = v1::Ops::NewStub(ChannelTo(chain.pki, svc.identity, chain.base + svc.port_offset));
  }
  return chain;
}

// Every phase's figures: what the client saw (Result) and, where the services' counters were read
// on either side, what changed in them (Delta).
struct Measurements {
  Result baseline, hop, peak, half, low, paced, flood;
  Delta hop_delta, peak_delta, half_delta, low_delta, paced_delta, flood_delta;
  // The rate phase 4 ran at.
  double half_rate = 0;
  // Watch streams resumed, and chain calls shed and retried, over the chain's phases.
  int64_t resumes = 0;
  int64_t retries = 0;
  // Each service's peak RSS after the half-load phase, in the services' order.
  std::vector<std::pair<std::string, int64_t>> peak_rss_mib;
};

// The force whose health check is the call that does nothing (phase 6): no lifecycle goes there.
constexpr char kFloorService[] = "force-MPS";
constexpr char kFloorIdentity[] = "force-MPS-psd";
constexpr int kFloorPortOffset = 13;

// Phases 1 and 2: the raw echo, served in this process by the same gRPC build with the services'
// TLS, then one durable hop, SubmitSar to ukfiu; C calls in flight each.
absl::Status MeasureEchoAndHop(const Flags& flags, ChainUnderTest& chain, const std::string& run,
                               Measurements& m) {
  auto server_creds =
      MakeServerCredentials(client::IdentityFiles(absl::StrCat(chain.pki, "/ukfiu")));
  if (!server_creds.ok()) {
    return absl::Status(server_creds.status().code(),
                        absl::StrCat("TLS: ", server_creds.status().message()));
  }
  EchoService echo;
  grpc::ServerBuilder builder;
  int echo_port = 0;
  builder.AddListeningPort("127.0.0.1:0", *server_creds, &echo_port);
  builder.RegisterService(&echo);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || echo_port == 0) return absl::InternalError("cannot start the echo server");
  auto echo_channel = ChannelTo(chain.pki, "ukfiu-intake", echo_port);
  auto echo_stub = Echo::NewStub(echo_channel);
  Payload payload;
  payload.set_data(std::string(1024, 'x'));
  auto echo_call = [&](std::function<void(const grpc::Status&)> done) {
    struct Call {
      grpc::ClientContext ctx;
      Payload resp;
    };
    auto* c = new Call;
    client::Prepare(&c->ctx, {});  // the default deadline, 10 s
    echo_stub->async()->Echo(&c->ctx, &payload, &c->resp, [c, done](grpc::Status s) {
      done(s);
      delete c;
    });
  };
  Drive("warm-up", flags.concurrency, std::min(1.0, flags.seconds), echo_call);
  m.baseline = Drive("baseline: raw mTLS unary echo", flags.concurrency, flags.seconds, echo_call);

  auto ukfiu_channel = ChannelTo(chain.pki, "ukfiu-intake", chain.base + 1);
  auto ukfiu = v1::Ukfiu::NewStub(ukfiu_channel);
  std::atomic<int64_t> n{0};
  auto submit_call = [&](std::function<void(const grpc::Status&)> done) {
    struct Call {
      grpc::ClientContext ctx;
      v1::SubmitSarRequest req;
      v1::SubmitSarResponse resp;
    };
    auto* c = new Call;
    const int64_t i = n++;
    client::Prepare(&c->ctx, {.deadline = absl::Seconds(10), .user = "bench"});
    c->req.set_request_id(absl::StrCat("bench-", run, "-", i));
    v1::Sar& sar = *c->req.mutable_sar();
    sar.set_reporter_reference(absl::StrCat("BENCH-", run, "-", i));
    sar.set_reporter_sector("bank");
    *sar.mutable_submitted_at() = ToProto(absl::Now());
    // About 1 KiB in all, as the baseline's payload.
    sar.set_narrative(std::string(860, 'n'));
    sar.set_amount_pence(125000);
    v1::Subject& s = *sar.add_subjects();
    s.set_full_name(absl::StrCat("Bench Person ", i % 5000));
    s.set_date_of_birth("1980-01-01");
    s.set_role(v1::SUBJECT_ROLE_OFFICER);
    s.set_employer_code("NFK");
    ukfiu->async()->SubmitSar(&c->ctx, &c->req, &c->resp, [c, done](grpc::Status st) {
      done(st);
      delete c;
    });
  };
  const Snapshot before = Take(chain.services);
  m.hop = Drive("one durable hop: Ukfiu.SubmitSar", flags.concurrency, flags.seconds, submit_call);
  const Snapshot after = Take(chain.services);
  server->Shutdown();
  m.hop_delta = Between(before, after, {"ukfiu"});
  return absl::OkStatus();
}

// Phase 6: a call that does nothing, on a force no lifecycle goes to, paced as the light load's
// calls arrive, then C in flight. The first is what the transport alone costs a call at light
// load. It runs before the chain's phases, so that the light load stays the last phase (which
// tools/bench/wakeups.py records).
void MeasureNullCall(const Flags& flags, ChainUnderTest& chain, Measurements& m) {
  auto health = grpc::health::v1::Health::NewStub(
      ChannelTo(chain.pki, kFloorIdentity, chain.base + kFloorPortOffset));
  {
    grpc::ClientContext ctx;    // connect first: the handshake is no call's cost
    client::Prepare(&ctx, {});  // the default deadline, 10 s
    grpc::health::v1::HealthCheckResponse resp;
    (void)health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
  }
  const Snapshot before_paced = Take(chain.services);
  m.paced = PacedChecks(*health, flags.floor_rate, flags.seconds);
  const Snapshot after_paced = Take(chain.services);
  m.paced_delta = Between(before_paced, after_paced, {kFloorService});
  auto check_call = [&](std::function<void(const grpc::Status&)> done) {
    struct Call {
      grpc::ClientContext ctx;
      grpc::health::v1::HealthCheckRequest req;
      grpc::health::v1::HealthCheckResponse resp;
    };
    auto* c = new Call;
    client::Prepare(&c->ctx, {});  // the default deadline, 10 s
    health->async()->Check(&c->ctx, &c->req, &c->resp, [c, done](grpc::Status st) {
      done(st);
      delete c;
    });
  };
  const Snapshot before_flood = Take(chain.services);
  m.flood = Drive(absl::StrFormat("%d in flight", flags.concurrency), flags.concurrency,
                  flags.seconds, check_call);
  const Snapshot after_flood = Take(chain.services);
  m.flood_delta = Between(before_flood, after_flood, {kFloorService});
}

// Phases 3 to 5: the whole chain at its peak, at half that rate (or --rate), and at the light
// load, with the services' counters read around each.
absl::Status MeasureChain(const Flags& flags, ChainUnderTest& chain, const std::string& run,
                          Measurements& m) {
  ChainDriver driver(chain.pki, chain.base, run);
  if (!driver.ready()) return absl::InternalError("the scenario gave no lifecycle templates");
  RETURN_IF_ERROR(driver.StartWatching());
  std::vector<Service>& services = chain.services;
  std::atomic<int64_t> lifecycle{0};
  ChainPeak(driver, flags.lifecycles, std::min(2.0, flags.seconds), lifecycle);  // warm-up
  const Snapshot before_peak = Take(services);
  m.peak = ChainPeak(driver, flags.lifecycles, flags.seconds, lifecycle);
  const Snapshot after_peak = Take(services);
  m.peak_delta = Between(before_peak, after_peak, {});
  m.half_rate = flags.rate > 0 ? flags.rate : std::max(1.0, m.peak.rps() / 2);
  const Snapshot before_half = Take(services);
  m.half = ChainAtRate(driver, m.half_rate, flags.seconds, lifecycle);
  const Snapshot after_half = Take(services);
  m.half_delta = Between(before_half, after_half, {});
  const Snapshot before_low = Take(services);
  m.low = ChainAtRate(driver, flags.low_rate, flags.seconds, lifecycle);
  const Snapshot after_low = Take(services);
  m.low_delta = Between(before_low, after_low, {});
  driver.StopWatching();
  m.resumes = driver.resumes();
  m.retries = driver.retries();
  for (const Service& svc : services) {
    m.peak_rss_mib.emplace_back(svc.name, after_half.proc.at(svc.name).peak_rss_kib / 1024);
  }
  return absl::OkStatus();
}

double Per(double total, int64_t n) { return n > 0 ? total / static_cast<double>(n) : 0; }

// The phases' table, the per-lifecycle tables by service, thread and step, and the null call's.
void PrintReport(const Flags& flags, const std::vector<Service>& services, const Measurements& m) {
  const auto per = Per;
  const Result& baseline = m.baseline;
  std::printf(
      "sarloop-bench: %d calls in flight (echo, hop), %d lifecycles at once (chain peak), %.0f s "
      "per phase, ~1 KiB messages, mTLS on loopback\n\n",
      flags.concurrency, flags.lifecycles, flags.seconds);
  std::printf("%-40s %10s %9s %9s %8s %9s %9s %9s %6s\n", "phase", "per s", "p50 ms", "p99 ms",
              "ratio", "msg/commit", "CPU ms/op", "wake/op", "errors");
  struct Line {
    const Result* r;
    const Delta* d;
  };
  const std::vector<Line> lines = {Line{&m.baseline, nullptr}, Line{&m.hop, &m.hop_delta},
                                   Line{&m.peak, &m.peak_delta}, Line{&m.half, &m.half_delta},
                                   Line{&m.low, &m.low_delta}};
  for (const Line& l : lines) {
    std::printf(
        "%-40s %10.1f %9.2f %9.2f %8.4f %9s %9s %9s %6lld\n", l.r->name.c_str(), l.r->rps(),
        l.r->p50_ms, l.r->p99_ms, baseline.rps() > 0 ? l.r->rps() / baseline.rps() : 0,
        l.d ? absl::StrFormat("%.1f", l.d->per_commit()).c_str() : "-",
        l.d ? absl::StrFormat("%.2f", 1000 * per(l.d->cpu_s, l.r->calls)).c_str() : "-",
        l.d ? absl::StrFormat("%.1f", per(static_cast<double>(l.d->voluntary_switches), l.r->calls))
                  .c_str()
            : "-",
        static_cast<long long>(l.r->errors));
  }
  std::printf(
      "\nCPU ms/op: the services' CPU (all of them for the chain, ukfiu for the hop) per "
      "request or lifecycle. wake/op: their threads' voluntary context switches (each a sleep and "
      "a wake-up) per request or lifecycle.\n");
  std::printf(
      "each lifecycle: 7 steps and 3 waits for a delivery, pushed by watch streams (%lld resumed)"
      "\n",
      static_cast<long long>(m.resumes));
  // The per-lifecycle tables: a row per name, a column per chain phase (peak, half, light).
  const Line chain[] = {lines[2], lines[3], lines[4]};
  const auto by_phase = [&](const char* title, const char* what, int name_width, int cell_width,
                            const std::vector<std::string>& names,
                            const std::function<std::string(size_t row, const Line&)>& cell) {
    std::printf("\nper lifecycle, %s:\n%-*s", title, name_width, what);
    for (const Line& l : chain) {
      std::printf(" %*s", cell_width, l.r->name.substr(12, cell_width).c_str());
    }
    std::printf("\n");
    for (size_t row = 0; row < names.size(); ++row) {
      std::printf("%-*s", name_width, names[row].c_str());
      for (const Line& l : chain) std::printf(" %*s", cell_width, cell(row, l).c_str());
      std::printf("\n");
    }
  };
  std::vector<std::string> service_names;
  for (const Service& svc : services) service_names.push_back(svc.name);
  by_phase("service by service (CPU ms / wake-ups / commits)", "service", 14, 28, service_names,
           [&](size_t row, const Line& l) {
             const Delta::PerService& one = l.d->by_service.at(service_names[row]);
             return absl::StrFormat("%.2f / %.1f / %.2f", 1000 * per(one.cpu_s, l.r->calls),
                                    per(static_cast<double>(one.voluntary_switches), l.r->calls),
                                    per(static_cast<double>(one.commits), l.r->calls));
           });
  // Where the wake-ups are: by thread name over every service, the names the chain phases share.
  std::set<std::string> thread_set;
  for (const Line& l : chain) {
    for (const auto& [name, v] : l.d->by_thread) thread_set.insert(name);
  }
  const std::vector<std::string> thread_names(thread_set.begin(), thread_set.end());
  by_phase(
      "by thread over all services (CPU ms / wake-ups)", "thread", 18, 24, thread_names,
      [&](size_t row, const Line& l) {
        auto it = l.d->by_thread.find(thread_names[row]);
        const auto v = it == l.d->by_thread.end() ? std::pair<double, int64_t>{0, 0} : it->second;
        return absl::StrFormat("%.2f / %.1f", 1000 * per(v.first, l.r->calls),
                               per(static_cast<double>(v.second), l.r->calls));
      });
  // Where the end-to-end time goes: each step's p50 and p99 (they do not add up to the
  // lifecycle's p99, which is one lifecycle's sum).
  by_phase("step by step (p50 / p99 ms)", "step", 26, 24,
           std::vector<std::string>(std::begin(kLifecycleSteps), std::end(kLifecycleSteps)),
           [&](size_t row, const Line& l) {
             const auto [p50, p99] =
                 row < l.r->steps.size() ? l.r->steps[row] : std::pair<double, double>{};
             return absl::StrFormat("%.2f / %.2f", p50, p99);
           });
  std::printf("shed and retried: %lld SubmitSar calls (hop), %lld calls (chain)\n",
              static_cast<long long>(m.hop.shed), static_cast<long long>(m.retries));
  std::printf("peak RSS (MiB):");
  for (const auto& [name, mib] : m.peak_rss_mib) {
    std::printf(" %s %lld", name.c_str(), static_cast<long long>(mib));
  }
  std::printf("\n");
  std::printf(
      "\na call that does nothing (grpc.health.v1.Health/Check on %s, which no lifecycle uses): "
      "that service's CPU and wake-ups per call\n%-20s %10s %9s %9s %9s %9s\n",
      kFloorService, "pace", "per s", "p50 ms", "p99 ms", "CPU ms/op", "wake/op");
  for (const auto& [r, d] :
       {std::pair{&m.paced, &m.paced_delta}, std::pair{&m.flood, &m.flood_delta}}) {
    std::printf("%-20s %10.1f %9.2f %9.2f %9.3f %9.2f\n", r->name.c_str(), r->rps(), r->p50_ms,
                r->p99_ms, 1000 * per(d->cpu_s, r->calls),
                per(static_cast<double>(d->voluntary_switches), r->calls));
  }
  for (const Result* r : {&m.baseline, &m.hop, &m.peak, &m.half, &m.low, &m.paced, &m.flood}) {
    if (!r->first_error.empty())
      std::printf("first error (%s): %s\n", r->name.c_str(), r->first_error.c_str());
  }
}

// The same figures as JSON (--json).
std::string Json(const Flags& flags, const Measurements& m) {
  const auto per = Per;
  const Result& baseline = m.baseline;
  auto phase_json = [&](const Result& r, const Delta* d) {
    std::string out = absl::StrFormat(
        "{\"per_s\":%.2f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%d,\"ratio_to_baseline\":%.5f",
        r.rps(), r.p50_ms, r.p99_ms, r.errors, baseline.rps() > 0 ? r.rps() / baseline.rps() : 0);
    if (d != nullptr) {
      absl::StrAppend(&out,
                      absl::StrFormat(",\"messages_per_commit\":%.2f,\"commits\":%d,"
                                      "\"transactions\":%d,\"cpu_ms_per_op\":%.4f,"
                                      "\"voluntary_switches_per_op\":%.2f,"
                                      "\"involuntary_switches_per_op\":%.2f,\"by_service\":{",
                                      d->per_commit(), d->commits, d->transactions,
                                      1000 * per(d->cpu_s, r.calls),
                                      per(static_cast<double>(d->voluntary_switches), r.calls),
                                      per(static_cast<double>(d->involuntary_switches), r.calls)));
      bool first = true;
      for (const auto& [name, one] : d->by_service) {
        absl::StrAppend(&out, first ? "" : ",",
                        absl::StrFormat("\"%s\":{\"cpu_ms_per_op\":%.4f,\"voluntary_switches_per_"
                                        "op\":%.2f,\"commits_per_op\":%.3f}",
                                        name, 1000 * per(one.cpu_s, r.calls),
                                        per(static_cast<double>(one.voluntary_switches), r.calls),
                                        per(static_cast<double>(one.commits), r.calls)));
        first = false;
      }
      out += "},\"by_thread\":{";
      first = true;
      for (const auto& [name, v] : d->by_thread) {
        absl::StrAppend(&out, first ? "" : ",",
                        absl::StrFormat("\"%s\":{\"cpu_ms_per_op\":%.4f,"
                                        "\"voluntary_switches_per_op\":%.2f}",
                                        absl::CEscape(name), 1000 * per(v.first, r.calls),
                                        per(static_cast<double>(v.second), r.calls)));
        first = false;
      }
      out += "}";
    }
    if (!r.steps.empty()) {
      out += ",\"steps\":{";
      for (size_t k = 0; k < r.steps.size() && k < kStepCount; ++k) {
        absl::StrAppend(&out, k == 0 ? "" : ",",
                        absl::StrFormat("\"%s\":{\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
                                        kLifecycleSteps[k], r.steps[k].first, r.steps[k].second));
      }
      out += "}";
    }
    return out + "}";
  };
  std::string rss_json;
  for (const auto& [name, mib] : m.peak_rss_mib) {
    absl::StrAppend(&rss_json, rss_json.empty() ? "" : ",", "\"", name, "\":", mib);
  }
  return absl::StrCat(
      "{\"concurrency\":", flags.concurrency, ",\"lifecycles_at_once\":", flags.lifecycles,
      ",\"seconds\":", flags.seconds, ",\"baseline\":", phase_json(m.baseline, nullptr),
      ",\"durable_hop\":", phase_json(m.hop, &m.hop_delta), ",\"durable_hop_shed\":", m.hop.shed,
      ",\"chain_peak\":", phase_json(m.peak, &m.peak_delta),
      ",\"chain_half_load\":", phase_json(m.half, &m.half_delta),
      ",\"half_load_rate\":", m.half_rate, ",\"chain_low_load\":", phase_json(m.low, &m.low_delta),
      ",\"low_load_rate\":", flags.low_rate, ",\"chain_retries\":", m.retries,
      ",\"null_call_paced\":", phase_json(m.paced, &m.paced_delta),
      ",\"null_call_rate\":", flags.floor_rate,
      ",\"null_call_flood\":", phase_json(m.flood, &m.flood_delta), ",\"peak_rss_mib\":{", rss_json,
      "}}\n");
}

int Main(int argc, char** argv) {
  std::optional<Flags> flags = ParseFlags(argc, argv);
  if (!flags) return 2;
  std::optional<ChainUnderTest> chain = OpenChain(flags->chain);
  if (!chain) return 2;
  const std::string run = NewId("", 8);
  Measurements m;
  if (absl::Status s = MeasureEchoAndHop(*flags, *chain, run, m); !s.ok()) {
    std::cerr << "sarloop-bench: " << s.message() << "\n";
    return 1;
  }
  MeasureNullCall(*flags, *chain, m);
  if (absl::Status s = MeasureChain(*flags, *chain, run, m); !s.ok()) {
    std::cerr << "sarloop-bench: " << s.message() << "\n";
    return 1;
  }
  PrintReport(*flags, chain->services, m);
  if (!flags->json.empty() && !WriteWhole("sarloop-bench", flags->json, Json(*flags, m))) return 1;
  bool ok = m.hop.calls > 0 && m.peak.calls > 0;
  for (const Result* r : {&m.baseline, &m.hop, &m.peak, &m.half, &m.low, &m.paced, &m.flood}) {
    ok = ok && r->errors == 0;
  }
  return ok ? 0 : 1;
}
}  // namespace
}  // namespace sarloop::bench

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-bench",
          "usage: sarloop-bench --chain DIR [--seconds S] [--concurrency C] [--lifecycles L] "
          "[--rate R] [--low-rate R] [--floor-rate R] [--json FILE]\n\nThe chain's throughput, "
          "latency and CPU "
          "against a raw mTLS "
          "echo "
          "baseline in the same run, on a running local chain (deploy/local).\n")) {
    return 0;
  }
  return sarloop::bench::Main(argc, argv);
}
