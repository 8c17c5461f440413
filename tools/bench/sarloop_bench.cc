// sarloop-bench: the chain measured against raw gRPC on the same machine, in one run.
//
//   sarloop-bench --chain DIR [--seconds S] [--concurrency C] [--json FILE]
//
// DIR is a running local chain (deploy/local/sarloop-local up DIR). Phases, each for S seconds
// with the same number of calls in flight (C, default 64) over one mTLS channel from this process:
//   1. baseline: a unary echo of ~1 KiB, served in this process by the same gRPC build with the
//      same TLS set-up as the services (common/tls), doing nothing else;
//   2. one durable hop: Ukfiu.SubmitSar with a ~1 KiB SAR, i.e. validate, seal, persist
//      (synchronous=FULL), audit and reply after commit.
// Reported: requests/s, p50 and p99 latency, the ratio to the baseline, ukfiu's CPU seconds per
// request and its peak RSS (from /proc), as a table and as JSON. Calls the service sheds with
// RESOURCE_EXHAUSTED (past its max_inflight_calls) are counted apart and are not failures. The
// whole chain's lifecycle figures and messages per commit are not measured yet.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/tls.h"
#include "echo.grpc.pb.h"  // generated from tools/bench/echo.proto
#include "sarloop/v1/ukfiu.grpc.pb.h"

namespace sarloop::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string chain;
  double seconds = 5;
  int concurrency = 64;
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
  std::string first_error;
  double rps() const { return seconds > 0 ? calls / seconds : 0; }
};

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
  r.calls = static_cast<int64_t>(latencies.size());
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    auto at = [&](double p) {
      const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(latencies.size())));
      return latencies[std::max<size_t>(rank, 1) - 1];
    };
    r.p50_ms = at(0.5);
    r.p99_ms = at(0.99);
  }
  return r;
}

// CPU seconds (user + system) and peak RSS (KiB) of a process, from /proc.
struct ProcStats {
  double cpu_s = 0;
  int64_t peak_rss_kib = 0;
};
ProcStats ReadProc(int pid) {
  ProcStats out;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    std::vector<std::string> fields;
    while (rest >> field) fields.push_back(field);
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    if (fields.size() > 12) {
      out.cpu_s = (std::stod(fields[11]) + std::stod(fields[12])) /
                  static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) out.peak_rss_kib = std::stoll(line.substr(6));
  }
  return out;
}

v1::TlsConfig Identity(const std::string& pki, const std::string& name) {
  v1::TlsConfig tls;
  tls.set_cert_file(absl::StrCat(pki, "/", name, "/cert.pem"));
  tls.set_key_file(absl::StrCat(pki, "/", name, "/key.pem"));
  tls.set_ca_file(absl::StrCat(pki, "/ca/ca.pem"));
  return tls;
}

int Main(int argc, char** argv) {
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
      flags.seconds = std::stod(next());
    } else if (a == "--concurrency") {
      flags.concurrency = std::stoi(next());
    } else if (a == "--json") {
      flags.json = next();
    } else {
      std::cerr << "usage: sarloop-bench --chain DIR [--seconds S] [--concurrency C] "
                   "[--json FILE]\n";
      return 2;
    }
  }
  if (flags.chain.empty() || flags.seconds <= 0 || flags.concurrency < 1) {
    std::cerr << "sarloop-bench: --chain DIR is required; --seconds and --concurrency must be "
                 "positive\n";
    return 2;
  }
  const std::string pki = flags.chain + "/pki";
  int base = 0, ukfiu_pid = 0;
  std::ifstream(flags.chain + "/base-port") >> base;
  std::ifstream(flags.chain + "/run/ukfiu.pid") >> ukfiu_pid;
  if (base == 0 || ukfiu_pid == 0) {
    std::cerr << "sarloop-bench: " << flags.chain << " is not a running local chain\n";
    return 2;
  }
  auto client_creds = MakeChannelCredentials(Identity(pki, "ukfiu-intake"));
  auto server_creds = MakeServerCredentials(Identity(pki, "ukfiu"));
  if (!client_creds.ok() || !server_creds.ok()) {
    std::cerr << "sarloop-bench: TLS: " << client_creds.status() << " " << server_creds.status()
              << "\n";
    return 1;
  }

  // 1. Baseline: echo, in this process, same gRPC and TLS.
  EchoService echo;
  grpc::ServerBuilder builder;
  int echo_port = 0;
  builder.AddListeningPort("127.0.0.1:0", *server_creds, &echo_port);
  builder.RegisterService(&echo);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || echo_port == 0) {
    std::cerr << "sarloop-bench: cannot start the echo server\n";
    return 1;
  }
  auto echo_channel = grpc::CreateChannel(absl::StrCat("localhost:", echo_port), *client_creds);
  auto echo_stub = Echo::NewStub(echo_channel);
  Payload payload;
  payload.set_data(std::string(1024, 'x'));
  auto echo_call = [&](std::function<void(const grpc::Status&)> done) {
    struct Call {
      grpc::ClientContext ctx;
      Payload resp;
    };
    auto* c = new Call;
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    echo_stub->async()->Echo(&c->ctx, &payload, &c->resp, [c, done](grpc::Status s) {
      done(s);
      delete c;
    });
  };
  Drive("warm-up", flags.concurrency, std::min(1.0, flags.seconds), echo_call);
  Result baseline =
      Drive("baseline: raw mTLS unary echo", flags.concurrency, flags.seconds, echo_call);

  // 2. One durable hop: SubmitSar to ukfiu.
  auto ukfiu_channel = grpc::CreateChannel(absl::StrCat("localhost:", base + 1), *client_creds);
  auto ukfiu = v1::Ukfiu::NewStub(ukfiu_channel);
  const std::string run = NewId("", 8);
  std::atomic<int64_t> n{0};
  auto submit_call = [&](std::function<void(const grpc::Status&)> done) {
    struct Call {
      grpc::ClientContext ctx;
      v1::SubmitSarRequest req;
      v1::SubmitSarResponse resp;
    };
    auto* c = new Call;
    const int64_t i = n++;
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    c->ctx.AddMetadata("x-sarloop-user", "bench");
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
  const ProcStats before = ReadProc(ukfiu_pid);
  Result hop =
      Drive("one durable hop: Ukfiu.SubmitSar", flags.concurrency, flags.seconds, submit_call);
  const ProcStats after = ReadProc(ukfiu_pid);
  server->Shutdown();

  const double ratio = baseline.rps() > 0 ? hop.rps() / baseline.rps() : 0;
  const double cpu_per_request =
      hop.calls > 0 ? (after.cpu_s - before.cpu_s) / static_cast<double>(hop.calls) : 0;
  std::printf(
      "sarloop-bench: %d calls in flight, %.0f s per phase, ~1 KiB messages, mTLS on "
      "loopback\n\n",
      flags.concurrency, flags.seconds);
  std::printf("%-40s %10s %9s %9s %8s %7s %7s\n", "phase", "requests/s", "p50 ms", "p99 ms",
              "ratio", "shed", "errors");
  for (const Result* r : {&baseline, &hop}) {
    std::printf("%-40s %10.0f %9.2f %9.2f %8.3f %7lld %7lld\n", r->name.c_str(), r->rps(),
                r->p50_ms, r->p99_ms, baseline.rps() > 0 ? r->rps() / baseline.rps() : 0,
                static_cast<long long>(r->shed), static_cast<long long>(r->errors));
  }
  std::printf("\nukfiu: %.3f ms CPU per request, peak RSS %lld MiB\n", cpu_per_request * 1000,
              static_cast<long long>(after.peak_rss_kib / 1024));
  if (!hop.first_error.empty() || !baseline.first_error.empty()) {
    std::printf("first error: %s%s\n", baseline.first_error.c_str(), hop.first_error.c_str());
  }
  std::string json = absl::StrFormat(
      "{\"concurrency\":%d,\"seconds\":%g,\"baseline\":{\"rps\":%.1f,\"p50_ms\":%.3f,"
      "\"p99_ms\":%.3f,\"errors\":%d},\"durable_hop\":{\"rps\":%.1f,\"p50_ms\":%.3f,"
      "\"p99_ms\":%.3f,\"errors\":%d,\"shed\":%d,\"ratio_to_baseline\":%.4f,\"ukfiu_cpu_ms_per_"
      "request\":"
      "%.4f,\"ukfiu_peak_rss_mib\":%d}}\n",
      flags.concurrency, flags.seconds, baseline.rps(), baseline.p50_ms, baseline.p99_ms,
      baseline.errors, hop.rps(), hop.p50_ms, hop.p99_ms, hop.errors, hop.shed, ratio,
      cpu_per_request * 1000, after.peak_rss_kib / 1024);
  if (!flags.json.empty()) std::ofstream(flags.json) << json;
  return hop.errors == 0 && baseline.errors == 0 && hop.calls > 0 ? 0 : 1;
}

}  // namespace
}  // namespace sarloop::bench

int main(int argc, char** argv) { return sarloop::bench::Main(argc, argv); }
