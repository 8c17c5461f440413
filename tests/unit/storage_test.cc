#include "common/storage.h"

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
