#include "tools/synth/chain_client.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/client/client.h"

namespace sarloop::synth {
namespace {

absl::Duration call_patience = absl::Seconds(15);
constexpr absl::Duration kCallDeadline = absl::Seconds(10);

}  // namespace

absl::StatusOr<std::map<std::string, Instance>> ReadTopology(const std::string& chain_dir) {
  const std::string path = chain_dir + "/topology";
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read ", path, " (sarloop-local up writes it; restart the chain with 'up')"));
  }
  std::map<std::string, Instance> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    Instance i;
    if (f.size() != 7 || !absl::SimpleAtoi(f[3], &i.port)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " line ", n, ": expected 'name kind code port identity unit receipt'"));
    }
    i.name = f[0];
    i.kind = f[1];
    i.code = f[2];
    i.identity = f[4];
    i.unit = f[5] == "-" ? "" : f[5];
    i.hands_over_on_receipt = f[6] == "1";
    out[i.name] = std::move(i);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& identity_dir,
                                                           int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return client::OpenChannel(absl::StrCat("localhost:", port), client::IdentityFiles(identity_dir),
                             args);
}

std::string Describe(const grpc::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ",
                      s.error_message());
}

void SetCallPatience(absl::Duration patience) { call_patience = patience; }

grpc::Status Call(const std::string& user,
                  const std::function<grpc::Status(grpc::ClientContext*)>& call,
                  grpc::StatusCode also_retry) {
  return client::CallWithRetry({.deadline = kCallDeadline, .user = user, .wait_for_ready = true},
                               call_patience, call, also_retry);
}

std::string UnwritableFile(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::StrCat(path, ": ", dir.string(), " is not a directory");
  }
  if (std::filesystem::is_directory(path, ec)) return absl::StrCat(path, " is a directory");
  if (::access(dir.c_str(), W_OK) != 0) {
    return absl::StrCat(path, ": ", dir.string(), " is not writable");
  }
  return "";
}

void ParseCommandLine(int argc, char** argv, const std::vector<std::string>& switches,
                      const std::function<void(const std::string&)>& usage,
                      const std::function<void(const std::string&, const std::string&)>& on_flag) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "-h" || arg == "--help") usage("");
    if (std::find(switches.begin(), switches.end(), arg) != switches.end()) {
      on_flag(arg, "");
      continue;
    }
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else {
      if (i + 1 >= argc) usage(absl::StrCat(arg, " needs a value"));
      value = argv[++i];
    }
    on_flag(arg, value);
  }
}

void ParallelFor(int n, int threads, const std::function<void(int)>& fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  const int count = std::max(1, std::min(threads, n));
  for (int t = 0; t < count; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) fn(i);
    });
  }
  for (std::thread& t : pool) t.join();
}

OffsetClock::OffsetClock(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_);
  long long seconds = 0;
  if (in >> seconds) base_ = seconds;
  current_ = base_;
}

absl::Time OffsetClock::Now() const { return absl::Now() + absl::Seconds(current_); }

void OffsetClock::Set(int64_t seconds) {
  current_ = base_ + seconds;
  const std::string tmp = path_ + ".synth.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << current_ << "\n";
    if (!out) {
      std::cerr << "cannot write " << tmp << "\n";
      std::exit(1);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path_, ec);
  if (ec) {
    std::cerr << "cannot replace " << path_ << ": " << ec.message() << "\n";
    std::exit(1);
  }
}

void OffsetClock::SetNow(absl::Time t) { Set(absl::ToInt64Seconds(t - absl::Now()) - base_); }

}  // namespace sarloop::synth
