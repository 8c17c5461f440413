#include "tests/testutil/chain.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/client/client.h"
#include "gtest/gtest.h"

namespace sarloop::testing {
namespace {

const std::map<std::string, int> kOffsets = {
    {"ukfiu", 1},     {"nca", 2},         {"force-NFK", 11},   {"force-SFK", 12}, {"force-MPS", 13},
    {"force-BF", 14}, {"racu-ERSOU", 21}, {"racu-NCAACU", 22}, {"linkage", 6}};

}  // namespace

absl::Status LocalChain::Launcher(const std::string& args) const {
  const std::string cmd = absl::StrCat(
      "SARLOOP_BUILD=", SARLOOP_BINARY_DIR,
      " SARLOOP_BASE_PORT=", base_port_ == 0 ? std::string("auto") : std::to_string(base_port_),
      " ", SARLOOP_SOURCE_DIR, "/deploy/local/sarloop-local ", args, " >>", dir_,
      "/launcher.log 2>&1");
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream log(dir_ + "/launcher.log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    return absl::InternalError(absl::StrCat("sarloop-local ", args, " failed:\n", text));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LocalChain>> LocalChain::Up() {
  auto temp = std::make_unique<TempDir>();
  // Base 0: sarloop-local takes a free block of ports (and another, should a process take one of
  // them first); the block it took is read back once the chain is up.
  std::unique_ptr<LocalChain> chain(new LocalChain(temp->path().string(), 0));
  chain->temp_ = std::move(temp);
  absl::Status up = chain->Launcher(absl::StrCat("up ", chain->dir_));
  if (!up.ok()) return up;
  std::ifstream in(chain->dir_ + "/base-port");
  int base = 0;
  if (!(in >> base) || base <= 0) {
    return absl::InternalError(
        absl::StrCat("sarloop-local up wrote no base port in ", chain->dir_));
  }
  chain->base_port_ = base;
  return chain;
}

LocalChain::~LocalChain() {
  // A failure seen on a CI machine is diagnosed from what the services said, and their logs go
  // with the temporary directory: the tail of each is printed first.
  if (::testing::Test::HasFailure()) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/logs", ec)) {
      std::ifstream in(entry.path());
      std::deque<std::string> tail;
      for (std::string line; std::getline(in, line);) {
        tail.push_back(std::move(line));
        if (tail.size() > 25) tail.pop_front();
      }
      std::fprintf(stderr, "--- last lines of %s ---\n", entry.path().filename().c_str());
      for (const auto& line : tail) std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  (void)Launcher(absl::StrCat("down ", dir_));
}

absl::Status LocalChain::Stop(const std::string& instance) {
  return Launcher(absl::StrCat("stop ", instance, " ", dir_));
}

absl::Status LocalChain::Start(const std::string& instance) {
  return Launcher(absl::StrCat("start ", instance, " ", dir_));
}

int LocalChain::Port(const std::string& instance) const {
  return base_port_ + kOffsets.at(instance);
}

v1::TlsConfig LocalChain::Tls(const std::string& identity) const {
  return client::IdentityFiles(absl::StrCat(dir_, "/pki/", identity));
}

std::shared_ptr<grpc::Channel> LocalChain::Channel(const std::string& instance,
                                                   const std::string& identity) const {
  return Channel(instance, Tls(identity), grpc::ChannelArguments());
}

std::shared_ptr<grpc::Channel> LocalChain::Channel(const std::string& instance,
                                                   const v1::TlsConfig& tls,
                                                   const grpc::ChannelArguments& args) const {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      client::OpenChannel(Target(instance), tls, args);
  if (!channel.ok()) {
    std::fprintf(stderr, "bad client TLS files: %s\n", channel.status().ToString().c_str());
    std::abort();
  }
  return *std::move(channel);
}

std::string LocalChain::Target(const std::string& instance) const {
  return absl::StrCat("localhost:", Port(instance));
}

absl::Status LocalChain::Pki(const std::string& args) const { return RunPki(args); }

absl::Status RunPki(const std::string& args) {
  const std::string cmd =
      absl::StrCat(SARLOOP_SOURCE_DIR, "/tools/pki/sarloop-pki ", args, " 2>&1");
  FILE* out = ::popen(cmd.c_str(), "r");
  if (out == nullptr) return absl::InternalError(absl::StrCat("cannot run ", cmd));
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), out)) > 0) text.append(buf, n);
  const int rc = ::pclose(out);
  if (rc != 0) return absl::InternalError(absl::StrCat("sarloop-pki ", args, " failed:\n", text));
  return absl::OkStatus();
}

std::string LocalChain::LogFile(const std::string& instance) const {
  return absl::StrCat(dir_, "/logs/", instance, ".log");
}

void LocalChain::SetClockOffset(absl::Duration offset) const {
  const std::string path = dir_ + "/clock-offset";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << absl::ToInt64Seconds(offset) << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& user) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  client::Prepare(ctx.get(), {.deadline = absl::Seconds(30), .user = user});
  return ctx;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace sarloop::testing
