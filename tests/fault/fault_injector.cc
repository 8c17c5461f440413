// The fault injector of the services' test builds (sarloop-<kind>-faults), driven by environment
// variables so the fault harness (tests/fault/chaos.py) can aim it:
//
//   SARLOOP_CRASH_POINTS      comma-separated crash points, each optionally with its own chance
//                             ("rpc.before_reply:2,receive.mid_batch:50"), or "all"
//   SARLOOP_CRASH_PERMILLE    chance per thousand that reaching a point kills the process, for
//                             points listed without their own
//   SARLOOP_CRASH_CONTROL     a file holding the same list as SARLOOP_CRASH_POINTS, read again
//                             whenever it changes (checked every 100 ms), so the harness can
//                             raise a point's chance until it has fired often enough and then
//                             disarm it; it replaces SARLOOP_CRASH_POINTS while it exists
//   SARLOOP_CRASH_SEED        seed for those draws (default: random; logged at start)
//   SARLOOP_CRASH_GRACE_MS    no crash in the first N ms after start (default 1500), so a restarted
//                             service gets up before it can fall again
//   SARLOOP_UNSAFE            comma-separated unsafe modes (sync_normal, ack_before_commit)
//   SARLOOP_DUPLICATE_PERCENT percent of delivered batches sent twice (plus an old one replayed)
//   SARLOOP_DISK_FULL_FILE    while this file exists, every database write fails with SQLITE_FULL
//                             (through the power-loss VFS, tests/fault/power_vfs.h)
//   SARLOOP_SLOW_DISK_FILE    while this file exists, every database sync first waits as many
//                             milliseconds as the file says (a slow or failing disk)
//
// A crash is SIGKILL raised by the process itself: no destructor, no flush, no atexit handler
// runs, exactly as when an operator or the OOM killer sends kill -9.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/base/fault.h"
#include "tests/fault/power_vfs.h"

namespace sarloop::fault {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

int EnvInt(const char* name, int fallback) {
  int v = 0;
  return absl::SimpleAtoi(Env(name), &v) ? v : fallback;
}

class EnvInjector : public Injector {
 public:
  EnvInjector()
      : start_(std::chrono::steady_clock::now()),
        permille_(EnvInt("SARLOOP_CRASH_PERMILLE", 0)),
        grace_(std::chrono::milliseconds(EnvInt("SARLOOP_CRASH_GRACE_MS", 1500))),
        duplicate_percent_(EnvInt("SARLOOP_DUPLICATE_PERCENT", 0)),
        control_(Env("SARLOOP_CRASH_CONTROL")) {
    points_ = Parse(Env("SARLOOP_CRASH_POINTS"));
    ReadControl();
    for (absl::string_view m : absl::StrSplit(Env("SARLOOP_UNSAFE"), ',', absl::SkipEmpty())) {
      unsafe_.insert(std::string(m));
    }
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(Env("SARLOOP_CRASH_SEED"), &seed)) seed = std::random_device{}();
    seed ^= static_cast<uint64_t>(::getpid()) << 32;  // each restart draws differently
    rng_.seed(seed);
    std::fprintf(stderr,
                 "fault injector: crash points [%s] at %d/1000 (seed %llu), unsafe [%s], "
                 "duplicates %d%%\n",
                 Env("SARLOOP_CRASH_POINTS").c_str(), permille_,
                 static_cast<unsigned long long>(seed), Env("SARLOOP_UNSAFE").c_str(),
                 duplicate_percent_);
  }

  void Reached(const char* point) override {
    const auto now = std::chrono::steady_clock::now();
    if (now - start_ < grace_) return;
    {
      std::lock_guard lock(mu_);
      if (!control_.empty() && now - last_check_ >= std::chrono::milliseconds(100)) {
        last_check_ = now;
        ReadControl();
      }
      auto it = points_.find(point);
      if (it == points_.end()) it = points_.find("all");
      if (it == points_.end() || it->second <= 0) return;
      if (std::uniform_int_distribution<int>(0, 999)(rng_) >= it->second) return;
    }
    // One unbuffered write, so the harness can count crashes per point from the log.
    char line[160];
    const int n = std::snprintf(line, sizeof line, "fault injector: crash at %s\n", point);
    (void)!::write(STDERR_FILENO, line, n);
    ::raise(SIGKILL);
  }

  bool Unsafe(const char* mode) override { return unsafe_.count(mode) > 0; }

 private:
  std::map<std::string, int> Parse(absl::string_view list) const {
    std::map<std::string, int> points;
    for (absl::string_view p : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(p, absl::MaxSplits(':', 1));
      int chance = permille_;
      if (!kv.second.empty() && !absl::SimpleAtoi(kv.second, &chance)) chance = permille_;
      points[std::string(absl::StripAsciiWhitespace(kv.first))] = chance;
    }
    return points;
  }

  // Takes the control file's list when it changed since the last read.
  void ReadControl() {
    struct stat st;
    if (control_.empty() || ::stat(control_.c_str(), &st) != 0) return;
    const int64_t stamp = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    if (stamp == control_stamp_ && st.st_size == control_size_) return;
    std::ifstream in(control_);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return;
    control_stamp_ = stamp;
    control_size_ = st.st_size;
    points_ = Parse(text.str());
  }

 public:
  int DuplicatePercent() override { return duplicate_percent_; }

 private:
  const std::chrono::steady_clock::time_point start_;
  const int permille_;
  const std::chrono::milliseconds grace_;
  const int duplicate_percent_;
  const std::string control_;
  std::map<std::string, int> points_;  // point (or "all") -> chance per thousand; under mu_
  std::chrono::steady_clock::time_point last_check_;
  int64_t control_stamp_ = -1;
  off_t control_size_ = -1;
  std::set<std::string> unsafe_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

bool DiskFullFileExists() {
  static const std::string path = Env("SARLOOP_DISK_FULL_FILE");
  return ::access(path.c_str(), F_OK) == 0;
}

// The milliseconds SARLOOP_SLOW_DISK_FILE asks each sync to wait; 0 while it does not exist.
int SlowDiskDelayMs() {
  static const std::string path = Env("SARLOOP_SLOW_DISK_FILE");
  std::ifstream in(path);
  int ms = 0;
  return in >> ms ? ms : 0;
}

// Installed before main runs: this object file is linked only into the test builds.
const bool installed = [] {
  static EnvInjector injector;
  Install(&injector);
  const bool full = !Env("SARLOOP_DISK_FULL_FILE").empty();
  const bool slow = !Env("SARLOOP_SLOW_DISK_FILE").empty();
  if (full || slow) testing::PowerVfs::Install();
  if (full) testing::PowerVfs::FailWritesWhile(DiskFullFileExists);
  if (slow) testing::PowerVfs::SlowSyncsBy(SlowDiskDelayMs);
  return true;
}();

}  // namespace
}  // namespace sarloop::fault
