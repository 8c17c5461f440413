#include "common/storage.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::testing::HasSubstr;

const Migration kV1[] = {{"items", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);"}};
const Migration kV2[] = {kV1[0], {"item notes", "ALTER TABLE items ADD COLUMN note TEXT;"}};

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
