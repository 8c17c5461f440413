#include "common/storage/storage.h"

#include <pthread.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/storage/sqlite_page_cache.h"
#include "common/storage/storage_wal_vfs.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Migration kV1[] = {{"items", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);"}};
const Migration kV2[] = {kV1[0], {"item notes", "ALTER TABLE items ADD COLUMN note TEXT;"}};

// How many rows of `items` are called `name`.
int64_t CountNamed(Database& db, const std::string& name) {
  int64_t n = -1;
  EXPECT_THAT(db.Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("SELECT COUNT(*) FROM items WHERE name = ?", {name}));
    n = rows[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  return n;
}

// A write that adds a row called `name`.
std::function<absl::Status(Txn&)> InsertNamed(const std::string& name) {
  return [name](Txn& t) { return t.Exec("INSERT INTO items (name) VALUES (?)", {name}); };
}

// How many rows `items` holds, read beside the writer as any reader reads.
int64_t CountItems(Database& db) {
  int64_t count = -1;
  EXPECT_THAT(db.Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("SELECT COUNT(*) FROM items"));
    count = rows[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  return count;
}

TEST(Storage, OpensInWalWithFullSync) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  ASSERT_OK_AND_ASSIGN(int64_t sync, db->SynchronousMode());
  EXPECT_EQ(sync, 2);  // FULL
  std::string mode;
  ASSERT_THAT(db->Read([&](Txn& t) -> absl::Status {
    auto rows = t.Query("PRAGMA journal_mode");
    if (!rows.ok()) return rows.status();
    mode = (*rows)[0].Text(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(mode, "wal");
  // The writer keeps its savepoints' sub-journals in memory, not in a temporary file per commit.
  int64_t temp_store = -1;
  ASSERT_THAT(db->Transact([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("PRAGMA temp_store"));
    temp_store = rows[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(temp_store, 2);  // MEMORY
}

// With reader connections a long read runs beside the writer: a write made while a read is in
// progress commits before the read ends, and the read keeps the snapshot it began with. The
// read waits (up to 20 s) for the write; on one connection the write would wait for the read.
TEST(Storage, ReadersReadBesideTheWriter) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1, nullptr, /*readers=*/2));
  ASSERT_THAT(
      db->Transact([](Txn& t) { return t.Exec("INSERT INTO items (name) VALUES ('before')"); }),
      IsOk());
  std::promise<absl::Status> written;
  std::future<absl::Status> write_done = written.get_future();
  int64_t seen_before = -1, seen_after = -1;
  bool write_finished_during_read = false;
  ASSERT_THAT(db->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("SELECT COUNT(*) FROM items"));
    seen_before = rows[0].Int(0);
    std::thread([&db, &written] {
      written.set_value(db->Transact(
          [](Txn& t) { return t.Exec("INSERT INTO items (name) VALUES ('during')"); }));
    }).detach();
    write_finished_during_read =
        write_done.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
    ASSIGN_OR_RETURN(rows, t.Query("SELECT COUNT(*) FROM items"));
    seen_after = rows[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_THAT(write_done.get(), IsOk());  // waits: the writing thread uses this frame
  ASSERT_TRUE(write_finished_during_read);
  EXPECT_EQ(seen_before, 1);
  EXPECT_EQ(seen_after, 1);  // the read's snapshot
  const int64_t now = CountItems(*db);
  EXPECT_EQ(now, 2);
  // A reader never writes.
  EXPECT_FALSE(
      db->Read([](Txn& t) { return t.Exec("INSERT INTO items (name) VALUES ('x')"); }).ok());
}

// The WAL is copied back into the database file by a thread of its own (sarloop-ckpt), not by the
// commit that takes the WAL past 1,000 pages. Without a checkpoint the database file would keep
// its first few pages and the WAL would hold everything.
TEST(Storage, CheckpointsRunOnTheirOwnThread) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(path, kV1, nullptr, /*readers=*/2));
  const std::string blob(64 * 1024, 'x');  // 16 pages a row
  for (int i = 0; i < 100; ++i) {
    ASSERT_THAT(db->Transact([&](Txn& t) {
      return t.Exec("INSERT INTO items (name) VALUES (?)", {absl::StrCat(i, blob)});
    }),
                IsOk());
  }
  // 100 rows of 64 KiB, 1,600 pages: the commit that took the WAL past 1,000 asked for a
  // checkpoint, which copies at least those 1,000 pages (about 4 MiB) into the database file.
  EXPECT_TRUE(testing::Eventually([&] { return std::filesystem::file_size(path) > (3584u << 10); }))
      << std::filesystem::file_size(path);
  bool named = false;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name;
    std::getline(std::ifstream(task.path() / "comm"), name);
    named = named || name == "sarloop-ckpt";
  }
  EXPECT_TRUE(named);
  const int64_t count = CountItems(*db);
  EXPECT_EQ(count, 100);
}

// The sarloop-ckpt threads' voluntary context switches: one for each time one slept to wait.
int64_t CheckpointThreadWakeUps() {
  int64_t total = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name;
    std::getline(std::ifstream(task.path() / "comm"), name);
    if (name != "sarloop-ckpt") continue;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        total += std::stoll(line.substr(line.find(':') + 1));
      }
    }
  }
  return total;
}

// While a reader keeps the WAL from starting again at its beginning, it stays past 1,000 pages;
// a checkpoint is then asked for at each further 1,000 pages, not after every commit (which ran
// a checkpoint, and woke its thread, for each one).
TEST(Storage, ACheckpointIsAskedPerThousandPagesNotPerCommit) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1, nullptr, /*readers=*/2));
  auto insert = [&](const std::string& value) {
    return db->Transact(
        [&](Txn& t) { return t.Exec("INSERT INTO items (name) VALUES (?)", {value}); });
  };
  ASSERT_THAT(insert("first"), IsOk());
  // A reader holds its snapshot from here to the end: the WAL cannot start again.
  std::promise<void> reading, done;
  std::thread reader([&] {
    absl::Status s = db->Read([&](Txn& t) -> absl::Status {
      RETURN_IF_ERROR(t.Query("SELECT COUNT(*) FROM items").status());
      reading.set_value();
      done.get_future().wait();
      return absl::OkStatus();
    });
    EXPECT_THAT(s, IsOk());
  });
  reading.get_future().wait();
  const std::string blob(64 * 1024, 'x');  // 16 pages a row
  for (int i = 0; i < 70; ++i) ASSERT_THAT(insert(absl::StrCat(i, blob)), IsOk());  // 1,120 pages
  // Let the checkpoint that became due run and its thread sleep again: half a second without a
  // wake-up (a checkpoint waiting on a slow disk's fsync is asleep, and must not pass for done).
  int64_t before = CheckpointThreadWakeUps();
  for (int settled = 0; settled < 25;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int64_t now = CheckpointThreadWakeUps();
    settled = now == before ? settled + 1 : 0;
    before = now;
  }
  for (int i = 0; i < 200; ++i) ASSERT_THAT(insert(absl::StrCat("small ", i)), IsOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Asking after every commit woke the thread about once per commit (200 here).
  EXPECT_LE(CheckpointThreadWakeUps() - before, 3);
  done.set_value();
  reader.join();
}

// The writer's WAL goes down in one write per commit, not two per page (storage_wal_vfs.h), and
// what it wrote is what the readers read, and what the file holds after it is closed.
TEST(Storage, TheWriterHandsItsLogDownInOneWritePerCommit) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  const std::string blob(16 * 1024, 'y');  // four overflow pages a row
  {
    ASSERT_OK_AND_ASSIGN(auto db, Database::Open(path, kV1, nullptr, /*readers=*/2));
    const auto before = storage_internal::CoalescingWalWrites();
    for (int i = 0; i < 10; ++i) {
      ASSERT_THAT(db->Transact([&](Txn& t) -> absl::Status {
        for (int r = 0; r < 4; ++r) {
          RETURN_IF_ERROR(
              t.Exec("INSERT INTO items (name) VALUES (?)", {absl::StrCat(i, ".", r, blob)}));
        }
        return absl::OkStatus();
      }),
                  IsOk());
    }
    const auto after = storage_internal::CoalescingWalWrites();
    // At least 16 pages a commit, each a frame header and a page.
    EXPECT_GE(after.from_sqlite - before.from_sqlite, 10 * 16 * 2);
    EXPECT_LE(after.to_file - before.to_file, 10);
    int64_t count = -1;
    ASSERT_THAT(db->Read([&](Txn& t) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, t.Query("SELECT COUNT(*) FROM items WHERE length(name) > ?",
                                          {int64_t{16 * 1024}}));
      count = rows[0].Int(0);
      return absl::OkStatus();
    }),
                IsOk());
    EXPECT_EQ(count, 40);
  }
  ASSERT_OK_AND_ASSIGN(auto again, Database::Open(path, kV1));
  std::string last;
  ASSERT_THAT(again->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("SELECT name FROM items ORDER BY id DESC LIMIT 1"));
    last = rows[0].Text(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(last, absl::StrCat("9.3", blob));
}

// A transaction far bigger than what the writer's WAL holds at once (storage_wal_vfs.h) goes down
// in pieces the unix VFS takes whole: a piece of 128 KiB or more would come back "disk is full".
TEST(Storage, ABigTransactionGoesDownInPiecesTheDiskTakes) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  const std::string blob(16 * 1024, 'z');
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(path, kV1, nullptr, /*readers=*/2));
  for (int round = 0; round < 3; ++round) {
    ASSERT_THAT(db->Transact([&](Txn& t) -> absl::Status {
      for (int r = 0; r < 200; ++r) {  // about 3.3 MB of frames in one commit
        RETURN_IF_ERROR(
            t.Exec("INSERT INTO items (name) VALUES (?)", {absl::StrCat(round, ".", r, blob)}));
      }
      return absl::OkStatus();
    }),
                IsOk());
  }
  const int64_t count = CountItems(*db);
  EXPECT_EQ(count, 600);
}

// A b-tree split parks a page under the pending-byte page's number (sqlite_page_cache.h). The
// page cache keeps that number from SQLite's default cache, which otherwise walks every cached
// page at the next commit; and the database stays whole.
TEST(Storage, ASplitParksItsPageWhereTheCacheDoesNotWalk) {
  TempDir dir;
  const Migration schema[] = {
      {"keyed", "CREATE TABLE keyed (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;"}};
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), schema));
  const auto before = storage_internal::SqlitePageCacheCounts();
  ASSERT_TRUE(before.installed) << "SQLite was started before its page cache was chosen";
  // Keys in no order, in many commits, with deletes between: splits between siblings whose page
  // numbers are out of order, which SQLite then swaps through the parking number.
  uint64_t x = 88172645463325252ULL;
  const auto next = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  int64_t kept = 0;
  for (int commit = 0; commit < 40; ++commit) {
    ASSERT_THAT(db->Transact([&](Txn& t) -> absl::Status {
      for (int i = 0; i < 250; ++i) {
        RETURN_IF_ERROR(t.Exec("INSERT INTO keyed (k, v) VALUES (?, ?)",
                               {absl::StrCat(next()), std::string(60 + next() % 200, 'v')}));
      }
      return t.Exec("DELETE FROM keyed WHERE k < ?", {absl::StrCat(next() % 1000)});
    }),
                IsOk());
  }
  std::string integrity;
  ASSERT_THAT(db->Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("PRAGMA integrity_check"));
    integrity = rows[0].Text(0);
    ASSIGN_OR_RETURN(rows, t.Query("SELECT COUNT(*) FROM keyed"));
    kept = rows[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(integrity, "ok");
  EXPECT_GT(kept, 0);
  const auto after = storage_internal::SqlitePageCacheCounts();
  EXPECT_GT(after.parked, before.parked) << "no split parked a page: the test shows nothing";
  EXPECT_EQ(after.high_keys_below, 0);
}

TEST(Storage, FailedTransactionKeepsNothing) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  absl::Status s = db->Transact([](Txn& t) -> absl::Status {
    auto ins = t.Exec("INSERT INTO items (name) VALUES (?)", {std::string("kept?")});
    if (!ins.ok()) return ins;
    return absl::AbortedError("changed my mind");
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted, HasSubstr("changed my mind")));
  int64_t count = -1;
  ASSERT_THAT(db->Read([&](Txn& t) -> absl::Status {
    auto rows = t.Query("SELECT COUNT(*) FROM items");
    if (!rows.ok()) return rows.status();
    count = (*rows)[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(count, 0);
}

// Group commit: many threads' transactions share commits; one that fails is rolled back alone,
// and every one that succeeded is there afterwards.
TEST(Storage, ConcurrentTransactionsShareCommitsAndFailAlone) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  constexpr int kThreads = 8, kEach = 100;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const bool fail = i % 10 == 3;
        absl::Status s = db->Transact([&](Txn& txn) -> absl::Status {
          absl::Status ins = txn.Exec("INSERT INTO items (name) VALUES (?)",
                                      {absl::StrCat(fail ? "gone-" : "kept-", t, "-", i)});
          if (!ins.ok()) return ins;
          return fail ? absl::AbortedError("changed my mind") : absl::OkStatus();
        });
        if (fail) {
          EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted, HasSubstr("changed my mind")));
          ++failed;
        } else {
          EXPECT_THAT(s, IsOk());
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  int64_t kept = 0, gone = 0;
  ASSERT_THAT(db->Read([&](Txn& txn) -> absl::Status {
    auto k = txn.Query("SELECT COUNT(*) FROM items WHERE name LIKE 'kept-%'");
    auto g = txn.Query("SELECT COUNT(*) FROM items WHERE name LIKE 'gone-%'");
    if (!k.ok()) return k.status();
    if (!g.ok()) return g.status();
    kept = (*k)[0].Int(0);
    gone = (*g)[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(kept, ok.load());
  EXPECT_EQ(gone, 0);
  const CommitStats stats = db->Stats();
  EXPECT_EQ(stats.transactions, ok.load());
  EXPECT_GT(stats.commits, 0);
  EXPECT_LE(stats.commits, stats.transactions);
}

// The commit observer wakes watch streams that may read on the writer thread: a batch of write
// jobs is answered first.
TEST(Storage, WriteJobsAreAnsweredBeforeTheCommitObserverIsTold) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  std::mutex mu;
  std::vector<std::string> order;
  std::promise<void> told;
  db->SetCommitObserver([&](int64_t transactions, absl::Duration) {
    std::lock_guard lock(mu);
    order.push_back(absl::StrCat("observer:", transactions));
    if (order.size() == 2) told.set_value();
  });
  db->Submit([&]() -> Database::Completion {
    absl::Status s =
        db->Transact([](Txn& txn) { return txn.Exec("INSERT INTO items (name) VALUES ('one')"); });
    EXPECT_THAT(s, IsOk());
    return [&](const absl::Status& commit) {
      EXPECT_THAT(commit, IsOk());
      std::lock_guard lock(mu);
      order.push_back("answered");
      if (order.size() == 2) told.set_value();
    };
  });
  ASSERT_EQ(told.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<std::string>{"answered", "observer:1"}));
}

// Write jobs (Submit): they share the writer's commits, each Transact in its own savepoint; a job
// hears the outcome only once its batch is durable, so another connection already sees what it
// wrote, and its after-commit hooks have run by then. Transact calls from other threads at the
// same time go through the writer too, and nothing is lost.
TEST(Storage, WriteJobsShareACommitAndHearOnlyAfterIt) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  ASSERT_OK_AND_ASSIGN(auto observer, Database::OpenReadOnly(dir.File("a.db")));
  auto visible = [&](const std::string& name) {
    int64_t n = -1;
    EXPECT_THAT(observer->Read([&](Txn& t) -> absl::Status {
      auto rows = t.Query("SELECT COUNT(*) FROM items WHERE name = ?", {name});
      if (!rows.ok()) return rows.status();
      n = (*rows)[0].Int(0);
      return absl::OkStatus();
    }),
                IsOk());
    return n;
  };
  constexpr int kJobs = 200;
  std::promise<void> all_submitted;
  std::shared_future<void> go = all_submitted.get_future().share();
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0, ok = 0;
  std::atomic<int> hooks{0};
  for (int i = 0; i < kJobs; ++i) {
    db->Submit([&, i]() -> Database::Completion {
      // The first job holds the writer until every job is queued: the rest make one batch.
      if (i == 0) go.wait();
      const std::string name = absl::StrCat(i % 10 == 3 ? "gone-" : "kept-", i);
      absl::Status s = db->Transact([&](Txn& txn) -> absl::Status {
        RETURN_IF_ERROR(txn.Exec("INSERT INTO items (name) VALUES (?)", {name}));
        return i % 10 == 3 ? absl::AbortedError("changed my mind") : absl::OkStatus();
      });
      // A job reads its batch so far, its own write included.
      int64_t seen = 0;
      EXPECT_THAT(db->Read([&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COUNT(*) FROM items WHERE name = ?", {name}));
        seen = rows[0].Int(0);
        return absl::OkStatus();
      }),
                  IsOk());
      EXPECT_EQ(seen, s.ok() ? 1 : 0) << name;
      if (s.ok()) db->AfterCommit([&, name] { hooks += visible(name) == 1 ? 1 : 0; });
      return [&, s, name](const absl::Status& commit) {
        EXPECT_THAT(commit, IsOk());
        EXPECT_EQ(visible(name), s.ok() ? 1 : 0) << name << " was answered before its commit";
        std::lock_guard lock(mu);
        ++finished;
        ok += s.ok() ? 1 : 0;
        cv.notify_all();
      };
    });
  }
  // Meanwhile, plain transactions from other threads.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        EXPECT_THAT(db->Transact([&](Txn& txn) {
          return txn.Exec("INSERT INTO items (name) VALUES (?)",
                          {absl::StrCat("thread-", t, "-", i)});
        }),
                    IsOk());
      }
    });
  }
  all_submitted.set_value();
  for (auto& th : threads) th.join();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished == kJobs; });
  EXPECT_EQ(ok, kJobs - kJobs / 10);
  EXPECT_EQ(hooks.load(), ok);
  int64_t kept = 0, gone = 0, from_threads = 0;
  ASSERT_THAT(db->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto k, txn.Query("SELECT COUNT(*) FROM items WHERE name LIKE 'kept-%'"));
    ASSIGN_OR_RETURN(auto g, txn.Query("SELECT COUNT(*) FROM items WHERE name LIKE 'gone-%'"));
    ASSIGN_OR_RETURN(auto t, txn.Query("SELECT COUNT(*) FROM items WHERE name LIKE 'thread-%'"));
    kept = k[0].Int(0);
    gone = g[0].Int(0);
    from_threads = t[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(kept, ok);
  EXPECT_EQ(gone, 0);
  EXPECT_EQ(from_threads, 100);
  const CommitStats stats = db->Stats();
  EXPECT_EQ(stats.transactions, ok + 100);
  // 180 jobs and 100 transactions: the jobs queued behind the first share a commit or two.
  EXPECT_LE(stats.commits, 1 + 100 + 2);
  EXPECT_LT(stats.commits, stats.transactions / 2);
}

// The first write of a batch runs without a savepoint (it would only copy pages to undo what a
// rollback of the whole transaction undoes as well); it must still fail alone: what it wrote and
// the after-commit calls it made are gone, a Transact nested in it keeps its own savepoint, and
// the jobs after it commit.
TEST(Storage, TheFirstWriteOfABatchFailsAloneWithoutASavepoint) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  std::promise<void> all_submitted, zero_running;
  std::shared_future<void> go = all_submitted.get_future().share();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<absl::Status> results(5);
  int finished = 0;
  std::atomic<int> hooks_of_failures{0}, hooks_of_successes{0};
  auto insert = [](Txn& txn, const std::string& name) {
    return txn.Exec("INSERT INTO items (name) VALUES (?)", {name});
  };
  // Job 0 holds the writer until the others are queued, so jobs 1 to 4 make the next batch.
  const std::vector<std::function<absl::Status()>> jobs = {
      [&] {
        zero_running.set_value();
        go.wait();
        return db->Transact([&](Txn& t) { return insert(t, "zero"); });
      },
      // The batch's first write: fails after writing.
      [&] {
        return db->Transact([&](Txn& t) -> absl::Status {
          RETURN_IF_ERROR(insert(t, "one"));
          db->AfterCommit([&] { ++hooks_of_failures; });
          return absl::AbortedError("changed my mind");
        });
      },
      // Now the first again, with a nested Transact that fails: the outer write stays.
      [&] {
        return db->Transact([&](Txn& t) -> absl::Status {
          RETURN_IF_ERROR(insert(t, "two"));
          absl::Status inner = db->Transact([&](Txn& t2) -> absl::Status {
            RETURN_IF_ERROR(insert(t2, "two-inner"));
            db->AfterCommit([&] { ++hooks_of_failures; });
            return absl::AbortedError("inner changed its mind");
          });
          EXPECT_THAT(inner, StatusIs(absl::StatusCode::kAborted, HasSubstr("mind")));
          db->AfterCommit([&] { ++hooks_of_successes; });
          return absl::OkStatus();
        });
      },
      [&] { return db->Transact([&](Txn& t) { return insert(t, "three"); }); },
      // After a success: a savepoint again, and a failure there undoes only this job.
      [&] {
        return db->Transact([&](Txn& t) -> absl::Status {
          RETURN_IF_ERROR(insert(t, "four"));
          db->AfterCommit([&] { ++hooks_of_failures; });
          return absl::AbortedError("changed my mind too");
        });
      },
  };
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (i == 1) zero_running.get_future().wait();
    db->Submit([&, i]() -> Database::Completion {
      absl::Status s = jobs[i]();
      return [&, i, s](const absl::Status& commit) {
        EXPECT_THAT(commit, IsOk());
        std::lock_guard lock(mu);
        results[i] = s;
        ++finished;
        cv.notify_all();
      };
    });
  }
  all_submitted.set_value();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished == static_cast<int>(jobs.size()); });
  }
  EXPECT_THAT(results[0], IsOk());
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kAborted, HasSubstr("mind")));
  EXPECT_THAT(results[2], IsOk());
  EXPECT_THAT(results[3], IsOk());
  EXPECT_THAT(results[4], StatusIs(absl::StatusCode::kAborted, HasSubstr("mind")));
  std::vector<std::string> names;
  ASSERT_THAT(db->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT name FROM items ORDER BY name"));
    for (const Row& r : rows) names.push_back(r.Text(0));
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_THAT(names, ElementsAre("three", "two", "zero"));
  EXPECT_EQ(hooks_of_failures.load(), 0);
  EXPECT_EQ(hooks_of_successes.load(), 1);
  // Job 0's commit, then one for the rest.
  EXPECT_EQ(db->Stats().commits, 2);
}

// A rider (Ride) takes the next commit made for another reason, or one of its own once due; it
// never makes a job fail, and what is still riding when the database closes is committed.
TEST(Storage, RidersTakeTheNextCommitOrTheirOwnWhenDue) {
  TempDir dir;
  auto count = CountNamed;
  auto insert = InsertNamed;
  {
    ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
    db->Submit([]() -> Database::Completion { return [](const absl::Status&) {}; });
    ASSERT_THAT(db->Transact(insert("first")), IsOk());  // the writer runs; this waits for it
    const CommitStats before = db->Stats();
    // Due in an hour: it rides with the next write, which fails alone if it fails.
    std::atomic<int> told_lost{0};
    db->Ride(insert("rider"), absl::Hours(1), [&] { ++told_lost; });
    db->Ride([](Txn&) { return absl::AbortedError("a rider that fails"); }, absl::Hours(1),
             [&] { told_lost += 10; });
    ASSERT_THAT(db->Transact(insert("carrier")), IsOk());
    EXPECT_EQ(count(*db, "rider"), 1);
    EXPECT_EQ(count(*db, "carrier"), 1);
    EXPECT_TRUE(testing::Eventually([&] { return told_lost.load() == 10; }))
        << "only the rider that failed is told it was lost: " << told_lost.load();
    EXPECT_EQ(db->Stats().commits, before.commits + 1) << "the riders took a commit of their own";
    // Alone, it commits once due, even when the writer was already asleep with nothing to do.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    db->Ride(insert("alone"), absl::Milliseconds(20));
    EXPECT_TRUE(testing::Eventually([&] { return count(*db, "alone") == 1; }));
    // Still riding when the database closes: committed on the way out.
    db->Ride(insert("at close"), absl::Hours(1));
  }
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  EXPECT_EQ(count(*db, "at close"), 1);
  // With group commit off, a rider is a commit of its own, at once.
  db->SetMaxBatch(1);
  db->Ride(insert("serial"), absl::Hours(1));
  EXPECT_TRUE(testing::Eventually([&] { return count(*db, "serial") == 1; }));
}

// A thread hosting a database's writer loop as the serving queue does: it runs the writer, then
// waits for a wake-up, the due time the writer gave, a function to run between batches, or Stop.
class WriterHost {
 public:
  explicit WriterHost(Database& db) : db_(db) {
    EXPECT_THAT(db_.HostWriter([this] {
      std::lock_guard lock(mu_);
      ++wakes_;
      woken_ = true;
      cv_.notify_all();
    }),
                IsOk());
    std::promise<std::thread::id> started;
    thread_ = std::thread([this, &started] { Loop(started); });
    id_ = started.get_future().get();
  }
  ~WriterHost() { Stop(); }

  std::thread::id id() const { return id_; }
  int wakes() {
    std::lock_guard lock(mu_);
    return wakes_;
  }
  // Runs `fn` on the host between two batches and waits for it.
  void BetweenBatches(const std::function<void()>& fn) {
    std::promise<void> done;
    {
      std::lock_guard lock(mu_);
      between_ = [&] {
        fn();
        done.set_value();
      };
      cv_.notify_all();
    }
    done.get_future().get();
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop(std::promise<std::thread::id>& started) {
    bool first = true;
    for (;;) {
      const auto due = db_.RunWriter();
      if (first) started.set_value(std::this_thread::get_id());
      first = false;
      std::unique_lock lock(mu_);
      if (between_) {
        auto fn = std::move(between_);
        between_ = nullptr;
        lock.unlock();
        fn();
        lock.lock();
      }
      auto go = [&] { return woken_ || stop_ || between_ != nullptr; };
      if (due == std::chrono::steady_clock::time_point::max()) {
        cv_.wait(lock, go);
      } else {
        cv_.wait_until(lock, due, go);
      }
      if (stop_) return;
      woken_ = false;
    }
  }

  Database& db_;
  std::mutex mu_;
  std::condition_variable cv_;
  int wakes_ = 0;
  bool woken_ = false, stop_ = false;
  std::function<void()> between_;
  std::thread thread_;
  std::thread::id id_;
};

// A host thread (HostWriter) runs the writer's loop, as the serving queue does: a Transact or a
// job from another thread wakes it and runs there; a job submitted on the host itself asks for no
// wake-up and still runs before the host waits; a rider wakes it only when due sooner than the
// riders already waiting, and commits when due with nothing else to carry it. Once released,
// the database's own thread takes what is left, and the writer can no longer be hosted.
TEST(Storage, AHostThreadRunsTheWriterLoop) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  auto count = [&](const std::string& name) { return CountNamed(*db, name); };
  auto insert = InsertNamed;
  WriterHost host(*db);
  const std::thread::id host_id = host.id();
  auto wakes_now = [&] { return host.wakes(); };

  // A Transact from this thread runs on the host's.
  std::thread::id ran_on;
  ASSERT_THAT(db->Transact([&](Txn& t) {
    ran_on = std::this_thread::get_id();
    return insert("from main")(t);
  }),
              IsOk());
  EXPECT_EQ(ran_on, host_id);
  EXPECT_EQ(count("from main"), 1);

  // A job from here wakes the host once; the job its completion submits on the host wakes nobody
  // and still runs, its completion on the host too.
  const int before_jobs = wakes_now();
  std::promise<std::thread::id> second_done;
  db->Submit([&]() -> Database::Completion {
    EXPECT_THAT(db->Transact(insert("first job")), IsOk());
    return [&](const absl::Status& commit) {
      EXPECT_THAT(commit, IsOk());
      db->Submit([&]() -> Database::Completion {
        EXPECT_THAT(db->Transact(insert("second job")), IsOk());
        return [&](const absl::Status&) { second_done.set_value(std::this_thread::get_id()); };
      });
    };
  });
  EXPECT_EQ(second_done.get_future().get(), host_id);
  EXPECT_EQ(wakes_now(), before_jobs + 1);
  EXPECT_EQ(count("first job"), 1);
  EXPECT_EQ(count("second job"), 1);

  // Riders: one due in an hour wakes the host (it must learn the new due time), a later one does
  // not; both take the next commit made for another reason.
  const int before_riders = wakes_now();
  db->Ride(insert("rider 1"), absl::Hours(1));
  db->Ride(insert("rider 2"), absl::Hours(2));
  EXPECT_EQ(wakes_now(), before_riders + 1);
  ASSERT_THAT(db->Transact(insert("carrier")), IsOk());
  EXPECT_EQ(count("rider 1"), 1);
  EXPECT_EQ(count("rider 2"), 1);
  // Alone, a rider commits once due: the host waits for its due time, not for a wake.
  db->Ride(insert("alone"), absl::Milliseconds(20));
  EXPECT_TRUE(testing::Eventually([&] { return count("alone") == 1; }));

  // The host goes; a job queued meanwhile waits, and runs on the database's own thread once the
  // writer is released.
  host.Stop();
  // (By name: the new thread may take the host's id, which is free again.)
  std::promise<std::string> after;
  db->Submit([&]() -> Database::Completion {
    EXPECT_THAT(db->Transact(insert("after the host")), IsOk());
    return [&](const absl::Status&) {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      after.set_value(name);
    };
  });
  db->ReleaseWriter();
  EXPECT_EQ(after.get_future().get(), "sarloop-writer");
  EXPECT_EQ(count("after the host"), 1);
  EXPECT_THAT(db->HostWriter([] {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("writer thread")));
}

// Which connection a read ran on: the readers are opened query_only, the writer is not.
bool ReadOnAReader(Database& db) {
  int64_t query_only = -1;
  EXPECT_THAT(db.Read([&](Txn& t) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, t.Query("PRAGMA query_only", {}));
    query_only = rows.empty() ? -1 : rows[0].Int(0);
    return absl::OkStatus();
  }),
              IsOk());
  return query_only == 1;
}

// The commit observer's reads (the watch streams a commit wakes read what it stored) run on the
// writer's connection, whose cache holds what the commit wrote (a reader's is dropped after every
// commit), and see that commit; a read nested in one shares its snapshot rather than waiting for
// the connection its own thread holds. Reads elsewhere, the host's own between batches and other
// threads', keep to the readers.
TEST(Storage, TheCommitObserverReadsOnTheWritersConnection) {
  TempDir dir;
  // Two readers: with one, a build that kept the observer's reads on the readers would wait
  // forever for the nested read's connection instead of failing.
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1, nullptr, /*readers=*/2));
  std::atomic<int> observer_on_reader{-1}, nested_on_reader{-1};
  std::atomic<int64_t> seen{-1};
  std::atomic<int> in_write_on_reader{-1};
  std::atomic<bool> observer_done{false};
  db->SetCommitObserver([&](int64_t, absl::Duration) {
    if (seen.load() >= 0) return;  // the first commit only: the write below commits too
    observer_on_reader = ReadOnAReader(*db);
    EXPECT_THAT(db->Read([&](Txn&) -> absl::Status {
      nested_on_reader = ReadOnAReader(*db);
      seen = CountNamed(*db, "committed");
      return absl::OkStatus();
    }),
                IsOk());
    // A write the observer starts holds the writer's lock: a read inside it must not wait for it.
    EXPECT_THAT(db->Transact([&](Txn& t) {
      in_write_on_reader = ReadOnAReader(*db);
      return InsertNamed("from the observer")(t);
    }),
                IsOk());
    observer_done = true;
  });
  WriterHost host(*db);
  ASSERT_THAT(db->Transact(InsertNamed("committed")), IsOk());
  // The observer is told after the answer.
  EXPECT_TRUE(testing::Eventually([&] { return seen.load() == 1; }));
  EXPECT_EQ(observer_on_reader.load(), 0);
  EXPECT_EQ(nested_on_reader.load(), 0);
  EXPECT_TRUE(testing::Eventually([&] { return observer_done.load(); }));
  EXPECT_EQ(in_write_on_reader.load(), 1);
  EXPECT_EQ(CountNamed(*db, "from the observer"), 1);

  bool host_on_reader = false;
  host.BetweenBatches([&] { host_on_reader = ReadOnAReader(*db); });
  EXPECT_TRUE(host_on_reader);
  EXPECT_TRUE(ReadOnAReader(*db));
  host.Stop();
  db->ReleaseWriter();
}

// SQLite's memory statistics cost every allocation a process-wide mutex; nothing reads them.
TEST(Storage, SqliteKeepsNoMemoryStatistics) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
  ASSERT_THAT(db->Transact([](Txn& t) {
    return t.Exec("INSERT INTO items (name) VALUES (?)", {std::string(5000, 'x')});
  }),
              IsOk());
  EXPECT_TRUE(storage_internal::SqlitePageCacheCounts().memory_statistics_off);
  // With statistics kept, the open connections' memory would show here.
  EXPECT_EQ(sqlite3_memory_used(), 0);
}

TEST(Storage, MigrationsApplyOnceAndInOrder) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV1));
    ASSERT_THAT(
        db->Transact([](Txn& t) { return t.Exec("INSERT INTO items (name) VALUES ('first')"); }),
        IsOk());
  }
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), kV2));
  ASSERT_THAT(db->Transact([](Txn& t) {
    return t.Exec("UPDATE items SET note = 'migrated' WHERE name = 'first'");
  }),
              IsOk());
  // Opening again applies nothing twice (ALTER TABLE would fail if it ran again).
  EXPECT_THAT(Database::Open(dir.File("a.db"), kV2), IsOk());
}

TEST(Storage, RefusesADatabaseNewerThanTheBinary) {
  TempDir dir;
  { ASSERT_THAT(Database::Open(dir.File("a.db"), kV2), IsOk()); }
  EXPECT_THAT(Database::Open(dir.File("a.db"), kV1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("newer")));
}

TEST(Storage, UnopenablePathIsUnavailable) {
  EXPECT_THAT(Database::Open("/nonexistent-dir/x/a.db", kV1),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("open")));
}

TEST(Storage, BlobsRoundTrip) {
  TempDir dir;
  const Migration m[] = {{"blobs", "CREATE TABLE b (v BLOB);"}};
  ASSERT_OK_AND_ASSIGN(auto db, Database::Open(dir.File("a.db"), m));
  const std::string bytes("a\0b\xff", 4);
  ASSERT_THAT(
      db->Transact([&](Txn& t) { return t.Exec("INSERT INTO b VALUES (?)", {Blob{bytes}}); }),
      IsOk());
  std::string got;
  ASSERT_THAT(db->Read([&](Txn& t) -> absl::Status {
    auto rows = t.Query("SELECT v FROM b");
    if (!rows.ok()) return rows.status();
    got = (*rows)[0].Text(0);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_EQ(got, bytes);
}

}  // namespace
}  // namespace sarloop
