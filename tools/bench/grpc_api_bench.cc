// What one unary call costs the server at a light load, by how the server is written against gRPC.
//
// The services answer through gRPC's callback API and run each call's body on their writer
// thread. At a light load most of a lifecycle's wake-ups are gRPC's own callback threads
// (tools/bench/wakeups.py), and the question for a redesign is how much of that a different way
// of serving would remove. This measures it without the services: an mTLS echo served by a child
// process (this binary with --serve MODE) in three ways, one call at a time from here at R calls
// per second, and the child's CPU (from its CPU clock, in nanoseconds) and wake-ups
// (voluntary context switches of all its threads) per call:
//   callback        the callback API, the reply sent from gRPC's thread;
//   callback+hop    the callback API, the reply sent from a thread of the server's own (the
//                   services' shape: the body and its commit run on the writer);
//   cq              the completion-queue (async) API, one thread of the server's own taking the
//                   requests and sending the replies;
//   cq+hop          the same, the reply sent from a second thread of the server's own (the shape
//                   of a redesign whose writer still runs the bodies).
// Each round runs every mode once, a fresh server each; the table gives each mode's mean over the
// rounds and its ratio to the callback API's.
//
//   sarloop-grpc-api-bench --pki DIR [--rate R] [--seconds S] [--rounds N]
// DIR is a local chain's pki directory (deploy/local/sarloop-local up puts it in CHAIN/pki).

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/client/client.h"
#include "common/rpc/executor.h"
#include "common/security/tls.h"
#include "common/version/version.h"
#include "echo.grpc.pb.h"  // generated from tools/bench/echo.proto
#include "tools/bench/cpu_time.h"
#include "tools/bench/number_flag.h"

extern char** environ;

namespace sarloop {

constexpr char kTool[] = "sarloop-grpc-api-bench";
constexpr char kUsage[] =
    "usage: sarloop-grpc-api-bench --pki DIR [--rate R] [--seconds S] [--rounds N]\n\n"
    "What one unary call costs the server at a light load, by the gRPC API it is served\n"
    "through: an mTLS echo served four ways, one call at a time at R per second.\n";

namespace {

using bench::Echo;
using bench::Payload;

// ---------------------------------------------------------------------------------------------
// The server, in the child.

class CallbackEcho final : public Echo::CallbackService {
 public:
  // hop: null answers on gRPC's thread; otherwise the reply is posted to it.
  explicit CallbackEcho(Executor* hop) : hop_(hop) {}

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx, const Payload* request,
                                 Payload* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    response->set_data(request->data());
    if (hop_ == nullptr) {
      reactor->Finish(grpc::Status::OK);
    } else {
      hop_->Post([reactor] { reactor->Finish(grpc::Status::OK); });
    }
    return reactor;
  }

 private:
  Executor* const hop_;
};

// The completion-queue API: a call's state, advanced by each event the one thread takes.
class CqCall {
 public:
  CqCall(Echo::AsyncService* service, grpc::ServerCompletionQueue* cq, Executor* hop)
      : service_(service), cq_(cq), hop_(hop), writer_(&ctx_) {
    service_->RequestEcho(&ctx_, &request_, &writer_, cq_, cq_, this);
  }
  void Proceed(bool ok) {
    if (finished_ || !ok) {
      delete this;
      return;
    }
    new CqCall(service_, cq_, hop_);  // the next request
    response_.set_data(request_.data());
    finished_ = true;
    if (hop_ == nullptr) {
      writer_.Finish(response_, grpc::Status::OK, this);
    } else {
      hop_->Post([this] { writer_.Finish(response_, grpc::Status::OK, this); });
    }
  }

 private:
  Echo::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  Executor* hop_;
  grpc::ServerContext ctx_;
  Payload request_, response_;
  grpc::ServerAsyncResponseWriter<Payload> writer_;
  bool finished_ = false;
};

int Serve(const std::string& mode, const std::string& pki) {
  auto creds = MakeServerCredentials(client::IdentityFiles(absl::StrCat(pki, "/ukfiu")));
  if (!creds.ok()) {
    std::cerr << "sarloop-grpc-api-bench: TLS: " << creds.status() << "\n";
    return 1;
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", *creds, &port);
  // One thread the replies are posted to, as the services' writer answers its jobs.
  std::unique_ptr<Executor> worker;
  std::unique_ptr<CallbackEcho> callback;
  Echo::AsyncService async;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  if (mode == "callback" || mode == "callback+hop") {
    if (mode == "callback+hop") worker = NewThreadPool(1);
    callback = std::make_unique<CallbackEcho>(worker.get());
    builder.RegisterService(callback.get());
  } else if (mode == "cq" || mode == "cq+hop") {
    if (mode == "cq+hop") worker = NewThreadPool(1);
    builder.RegisterService(&async);
    cq = builder.AddCompletionQueue();
  } else {
    std::cerr << "sarloop-grpc-api-bench: --serve takes callback, callback+hop, cq or cq+hop\n";
    return 2;
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return 1;
  std::printf("%d\n", port);
  std::fflush(stdout);
  if (cq) {
    std::thread([&] {
      new CqCall(&async, cq.get(), worker.get());
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) static_cast<CqCall*>(tag)->Proceed(ok);
    }).detach();
  }
  // The parent ends the child with SIGTERM; the kernel frees what is left.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  std::_Exit(0);
}

// ---------------------------------------------------------------------------------------------
// The client, in the parent.

struct Usage {
  double cpu_ns = 0;
  double switches = 0;
};

// CPU from the process's CPU clock, which keeps the time of threads that have exited (a pool that
// shrinks between two reads would otherwise take its threads' time away); voluntary switches
// summed over the threads alive at the moment read.
Usage ReadUsage(pid_t pid) {
  Usage u;
  u.cpu_ns = bench::ProcessCpuSeconds(pid) * 1e9;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) u.switches += std::stod(line.substr(24));
    }
  }
  return u;
}

struct Result {
  double cpu_us_per_call = 0, wakeups_per_call = 0, p50_us = 0, p99_us = 0;
  int64_t errors = 0;
};

// Starts this binary as the server; returns its pid and port, or pid 0.
std::pair<pid_t, int> StartServer(const std::string& self, const std::string& mode,
                                  const std::string& pki) {
  int fds[2];
  if (pipe(fds) != 0) return {0, 0};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<std::string> args = {self, "--serve", mode, "--pki", pki};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return {0, 0};
  }
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(fds[0]);
  int port = 0;
  if (!absl::SimpleAtoi(line, &port) || port <= 0) {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    return {0, 0};
  }
  return {pid, port};
}

Result Run(const std::string& self, const std::string& mode, const std::string& pki, double rate,
           double seconds) {
  Result r;
  auto [pid, port] = StartServer(self, mode, pki);
  if (pid == 0) {
    std::cerr << "sarloop-grpc-api-bench: the " << mode << " server did not start\n";
    std::exit(1);
  }
  auto channel = client::OpenChannel(absl::StrCat("localhost:", port),
                                     client::IdentityFiles(absl::StrCat(pki, "/ukfiu-intake")));
  if (!channel.ok()) {
    std::cerr << "sarloop-grpc-api-bench: TLS: " << channel.status() << "\n";
    std::exit(1);
  }
  auto stub = Echo::NewStub(*channel);
  Payload payload;
  payload.set_data(std::string(1024, 'x'));
  auto call = [&]() {
    grpc::ClientContext ctx;
    client::Prepare(&ctx, {});  // the default deadline, 10 s
    Payload out;
    return stub->Echo(&ctx, payload, &out).ok();
  };
  for (int i = 0; i < 50; ++i) call();  // the connection and the handshake, not measured
  const int calls = std::max(1, static_cast<int>(rate * seconds));
  std::vector<double> latency_us;
  latency_us.reserve(calls);
  const Usage before = ReadUsage(pid);
  const auto start = std::chrono::steady_clock::now();
  const auto period = std::chrono::duration<double>(1.0 / rate);
  for (int i = 0; i < calls; ++i) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(period * i));
    const auto t0 = std::chrono::steady_clock::now();
    if (!call()) ++r.errors;
    latency_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  const Usage after = ReadUsage(pid);
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::sort(latency_us.begin(), latency_us.end());
  r.cpu_us_per_call = (after.cpu_ns - before.cpu_ns) / 1000 / calls;
  // A thread that exited between the reads takes its switches with it: never below zero.
  r.wakeups_per_call = std::max(0.0, after.switches - before.switches) / calls;
  r.p50_us = latency_us[latency_us.size() / 2];
  r.p99_us = latency_us[std::min(latency_us.size() - 1, latency_us.size() * 99 / 100)];
  return r;
}

int Main(int argc, char** argv) {
  std::string pki, serve;
  double rate = 200, seconds = 5;
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "sarloop-grpc-api-bench: " << a << " needs a value\n";
      return 2;
    }
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--pki") {
      pki = v;
    } else if (a == "--serve") {
      serve = v;
    } else if (a == "--rate") {
      rate = bench::NumberFlag<double>(kTool, a, v);
      ok = rate > 0 && rate <= 100000;
    } else if (a == "--seconds") {
      seconds = bench::NumberFlag<double>(kTool, a, v);
      ok = seconds > 0 && seconds <= 3600;
    } else if (a == "--rounds") {
      rounds = bench::NumberFlag<int>(kTool, a, v);
      ok = rounds > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "usage: sarloop-grpc-api-bench --pki DIR [--rate R] [--seconds S] "
                   "[--rounds N] (R up to 100000, S up to 3600, N positive; "
                << a << " " << v << ")\n";
      return 2;
    }
  }
  if (pki.empty() || !std::filesystem::exists(pki + "/ca/ca.pem")) {
    std::cerr << "sarloop-grpc-api-bench: --pki DIR must be a local chain's pki directory "
                 "(with ca/ca.pem)\n";
    return 2;
  }
  if (!serve.empty()) return Serve(serve, pki);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  const std::vector<std::string> modes = {"callback", "callback+hop", "cq", "cq+hop"};
  std::vector<Result> sum(modes.size());
  std::printf(
      "one call at a time, %.0f per second, %.0f s per mode, %d rounds; the server's CPU "
      "and wake-ups per call\n\n%-6s %-14s %14s %16s %10s %10s %7s\n",
      rate, seconds, rounds, "round", "server", "CPU us/call", "wake-ups/call", "p50 us", "p99 us",
      "errors");
  for (int round = 1; round <= rounds; ++round) {
    for (size_t m = 0; m < modes.size(); ++m) {
      const Result r = Run(self, modes[m], pki, rate, seconds);
      std::printf("%-6d %-14s %14.1f %16.2f %10.0f %10.0f %7lld\n", round, modes[m].c_str(),
                  r.cpu_us_per_call, r.wakeups_per_call, r.p50_us, r.p99_us,
                  static_cast<long long>(r.errors));
      sum[m].cpu_us_per_call += r.cpu_us_per_call / rounds;
      sum[m].wakeups_per_call += r.wakeups_per_call / rounds;
      sum[m].p50_us += r.p50_us / rounds;
      sum[m].p99_us += r.p99_us / rounds;
      sum[m].errors += r.errors;
    }
  }
  std::printf("\n%-6s %-14s %14s %16s %10s %10s %7s\n", "mean", "server", "CPU us/call",
              "wake-ups/call", "p50 us", "p99 us", "errors");
  for (size_t m = 0; m < modes.size(); ++m) {
    std::printf("%-6s %-14s %8.1f (%.2f) %10.2f (%.2f) %10.0f %10.0f %7lld\n", "", modes[m].c_str(),
                sum[m].cpu_us_per_call, sum[m].cpu_us_per_call / sum[0].cpu_us_per_call,
                sum[m].wakeups_per_call, sum[m].wakeups_per_call / sum[0].wakeups_per_call,
                sum[m].p50_us, sum[m].p99_us, static_cast<long long>(sum[m].errors));
  }
  int64_t errors = 0;
  for (const Result& r : sum) errors += r.errors;
  return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sarloop

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(argc, argv, sarloop::kTool, sarloop::kUsage)) return 0;
  return sarloop::Main(argc, argv);
}
