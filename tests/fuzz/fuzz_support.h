// Helpers shared by the libFuzzer targets: how an invariant failure is reported, and scratch
// databases. Header-only so each target is one translation unit plus the libraries under test.
#ifndef SARLOOP_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define SARLOOP_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/crypto.h"
#include "common/storage/storage.h"

namespace sarloop::fuzz {

// A broken invariant. abort() is what libFuzzer reports as a crash and saves the input for.
[[noreturn]] inline void Fail(absl::string_view what) {
  std::fprintf(stderr, "sarloop fuzz invariant failed: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

// A database in the scratch directory whose files go away with it, so nothing piles up even when
// libFuzzer leaves by _Exit (as after -runs=N) and skips the directory's own cleanup.
class ScratchDb {
 public:
  ScratchDb(std::unique_ptr<Database> db, std::string file)
      : db_(std::move(db)), file_(std::move(file)) {}
  ~ScratchDb() {
    db_.reset();
    Remove(file_);
  }
  ScratchDb(const ScratchDb&) = delete;
  ScratchDb& operator=(const ScratchDb&) = delete;
  Database& operator*() const { return *db_; }
  Database* operator->() const { return db_.get(); }

  // Removes a database file with its WAL and shared-memory files.
  static void Remove(const std::string& file) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::error_code ec;
      std::filesystem::remove(file + suffix, ec);
    }
  }

 private:
  std::unique_ptr<Database> db_;
  const std::string file_;
};

// One directory per fuzzing process for its databases, removed at exit. Prefers /dev/shm: every
// input opens fresh databases with synchronous=FULL, and fsync on tmpfs costs nothing, which is
// the difference between tens and hundreds of executions per second.
class ScratchDir {
 public:
  static ScratchDir& Get() {
    static ScratchDir dir;
    return dir;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  // A new, empty database named `name` in this directory (a leftover of that name is removed).
  ScratchDb Fresh(const std::string& name, std::span<const Migration> migrations) {
    const std::string file = (path_ / name).string();
    ScratchDb::Remove(file);
    // Scratch databases seal with a fixed key, like the services do with theirs.
    static const auto keys = Keyring::FromKeys({std::string(Keyring::kKeySize, 'f')}).value();
    auto db = Database::Open(file, migrations, keys);
    if (!db.ok()) Fail(absl::StrCat("opening a scratch database: ", db.status().ToString()));
    return ScratchDb(std::move(*db), file);
  }

 private:
  ScratchDir() {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    std::string tmpl = (base / "sarloop-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) Fail("cannot create a scratch directory");
    path_ = tmpl;
  }
  std::filesystem::path path_;
};

}  // namespace sarloop::fuzz

#endif  // SARLOOP_TESTS_FUZZ_FUZZ_SUPPORT_H_
