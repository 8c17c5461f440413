// What a small commit costs the writer when its page cache is full, with sarloop's page cache
// (common/storage/sqlite_page_cache.h) and with SQLite's default, in one run: the benchmark runs
// itself again as a child that starts SQLite before sarloop can choose the cache, then runs its
// own.
//
//   sarloop-page-cache-bench [--pages N] [--commits N]
//
// Each run: a fresh database through the storage layer (WAL, synchronous=FULL, the writer's
// 64 MiB cache), filled with keys in no order until the file holds --pages pages, all of them in
// the writer's cache; then --commits transactions of five rows each at random keys (a leaf splits
// every few commits). Prints the process's CPU and the wall time per commit, and how many pages
// the splits parked; then the ratio of the two runs.
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/storage/sqlite_page_cache.h"
#include "common/storage/storage.h"
#include "common/version/version.h"
#include "tools/bench/cpu_time.h"
#include "tools/bench/number_flag.h"

namespace sarloop {
namespace {

constexpr char kTool[] = "sarloop-page-cache-bench";

int Usage(const std::string& problem) {
  std::cerr << "sarloop-page-cache-bench: " << problem
            << "\nusage: sarloop-page-cache-bench [--pages N] [--commits N]\n";
  return 2;
}

struct Figures {
  double cpu_us = 0, wall_us = 0;
  int64_t parked = 0;
};

absl::StatusOr<Figures> Run(int64_t pages, int commits) {
  std::error_code made;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path(made) / NewId("sarloop-page-cache-bench-", 12);
  if (!made) std::filesystem::create_directories(dir, made);
  if (made) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", dir.string(), ": ", made.message()));
  }
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{dir};
  const Migration schema[] = {
      {"keyed", "CREATE TABLE keyed (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;"}};
  ASSIGN_OR_RETURN(auto db, Database::Open((dir / "bench.db").string(), schema));
  uint64_t x = 88172645463325252ULL;
  const auto next = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  const auto insert = [&](Txn& t, int rows) -> absl::Status {
    for (int i = 0; i < rows; ++i) {
      RETURN_IF_ERROR(t.Exec("INSERT INTO keyed (k, v) VALUES (?, ?)",
                             {absl::StrCat(next()), std::string(150, 'v')}));
    }
    return absl::OkStatus();
  };
  for (int64_t have = 0; have < pages;) {
    RETURN_IF_ERROR(db->Transact([&](Txn& t) { return insert(t, 5000); }));
    RETURN_IF_ERROR(db->Transact([&](Txn& t) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, t.Query("PRAGMA page_count"));
      have = rows[0].Int(0);
      return absl::OkStatus();
    }));
  }
  const int64_t parked_before = storage_internal::SqlitePageCacheCounts().parked;
  const double cpu0 = bench::OwnProcessCpuSeconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (int c = 0; c < commits; ++c) {
    RETURN_IF_ERROR(db->Transact([&](Txn& t) { return insert(t, 5); }));
  }
  Figures f;
  f.cpu_us = (bench::OwnProcessCpuSeconds() - cpu0) * 1e6 / commits;
  f.wall_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - wall0).count() /
      commits;
  f.parked = storage_internal::SqlitePageCacheCounts().parked - parked_before;
  return f;
}

void Print(const char* label, const Figures& f) {
  std::printf("%-34s %10.1f %10.1f %8lld\n", label, f.cpu_us, f.wall_us,
              static_cast<long long>(f.parked));
}

int Main(int argc, char** argv) {
  int64_t pages = 12000;
  int commits = 2000;
  bool child = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--sqlite-default") {  // the baseline child: SQLite started before sarloop chooses
      child = true;
      continue;
    }
    if (a == "--pages") {
      pages = bench::NumberFlag<int64_t>(kTool, a, v);
      if (pages < 100) return Usage("--pages: at least 100");
    } else if (a == "--commits") {
      commits = bench::NumberFlag<int>(kTool, a, v);
      if (commits < 1) return Usage("--commits: at least 1");
    } else {
      return Usage(absl::StrCat("unknown flag ", a));
    }
    ++i;
  }
  if (child) {
    sqlite3_initialize();  // too late now for sarloop's page cache: SQLite's default stays
    absl::StatusOr<Figures> f = Run(pages, commits);
    if (!f.ok() || storage_internal::SqlitePageCacheCounts().installed) {
      std::cerr << "sarloop-page-cache-bench: baseline: "
                << (f.ok() ? "sarloop's cache was installed anyway" : f.status().ToString())
                << "\n";
      return 1;
    }
    std::printf("%.3f %.3f\n", f->cpu_us, f->wall_us);
    return 0;
  }
  const std::string command = absl::StrCat("/proc/", getpid(), "/exe --sqlite-default --pages ",
                                           pages, " --commits ", commits);
  Figures baseline;
  {
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr || std::fscanf(pipe, "%lf %lf", &baseline.cpu_us, &baseline.wall_us) != 2) {
      if (pipe) pclose(pipe);
      std::cerr << "sarloop-page-cache-bench: the baseline run failed\n";
      return 1;
    }
    if (pclose(pipe) != 0) {
      std::cerr << "sarloop-page-cache-bench: the baseline run failed\n";
      return 1;
    }
  }
  absl::StatusOr<Figures> mine = Run(pages, commits);
  if (!mine.ok()) {
    std::cerr << "sarloop-page-cache-bench: " << mine.status() << "\n";
    return 1;
  }
  if (!storage_internal::SqlitePageCacheCounts().installed) {
    std::cerr << "sarloop-page-cache-bench: sarloop's page cache was not installed\n";
    return 1;
  }
  std::printf("%lld pages in the writer's cache, %d commits of 5 rows each\n\n",
              static_cast<long long>(pages), commits);
  std::printf("%-34s %10s %10s %8s\n", "page cache", "CPU us", "wall us", "parked");
  std::printf("%-34s %10.1f %10.1f %8s\n", "SQLite's default", baseline.cpu_us, baseline.wall_us,
              "-");
  Print("sarloop's (parking page number 0)", *mine);
  std::printf("\nCPU per commit, sarloop's / SQLite's default: %.2f\n",
              mine->cpu_us / baseline.cpu_us);
  return 0;
}

}  // namespace
}  // namespace sarloop

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-page-cache-bench",
          "usage: sarloop-page-cache-bench [--pages N] [--commits N]\n\n"
          "What a small commit costs the writer when its page cache is "
          "full,\nwith sarloop's page cache and with SQLite's default.\n")) {
    return 0;
  }
  return sarloop::Main(argc, argv);
}
