// Properties every service's schema must keep, checked on the schema each service opens.
#include <string>
#include <vector>

#include "common/server/server.h"
#include "common/storage/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/force/desk.h"
#include "services/linkage/desk.h"
#include "services/nca/register.h"
#include "services/racu/unit.h"
#include "services/ukfiu/desk.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;
using ::testing::IsEmpty;

struct Schema {
  std::string service;
  std::vector<Migration> migrations;
};

std::vector<Schema> EveryServiceSchema() {
  return {
      {"ukfiu", ServiceMigrations(ukfiu::DeskMigrations(), ukfiu::DeskMigrationsAfterAudit())},
      {"force", ServiceMigrations(force::DeskMigrations(), force::DeskMigrationsAfterAudit())},
      {"racu", ServiceMigrations(racu::UnitMigrations(), racu::UnitMigrationsAfterAudit())},
      {"nca", nca::RegisterSchema()},
      {"linkage",
       ServiceMigrations(linkage::LinkageMigrations(), linkage::LinkageMigrationsAfterAudit())},
  };
}

// An insert into any table builds no temporary b-tree. One did in every force, unit and ukfiu:
// their open-referral indexes chose rows with `state NOT IN (...)`, and SQLite evaluates such a
// list through a temporary b-tree it opens, fills and frees again on each write of a referral
// (three per upsert), which showed in profiles at peak as SQLite opening pagers on the call path.
TEST(ServiceSchemas, NoInsertBuildsATemporaryBtree) {
  for (const Schema& schema : EveryServiceSchema()) {
    SCOPED_TRACE(schema.service);
    TempDir dir;
    auto db = Database::Open(dir.File(schema.service + ".db"), schema.migrations, TestKeys());
    ASSERT_THAT(db, IsOk());
    std::vector<std::string> offenders;
    ASSERT_THAT((*db)->Read([&](Txn& t) -> absl::Status {
      ASSIGN_OR_RETURN(auto tables,
                       t.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name "
                               "NOT LIKE 'sqlite_%' ORDER BY name"));
      EXPECT_GT(tables.size(), 3u);
      for (const Row& table : tables) {
        ASSIGN_OR_RETURN(auto program,
                         t.Query("EXPLAIN INSERT INTO \"" + table.Text(0) + "\" DEFAULT VALUES"));
        for (const Row& op : program) {
          if (op.Text(1) == "OpenEphemeral") offenders.push_back(table.Text(0));
        }
      }
      return absl::OkStatus();
    }),
                IsOk());
    EXPECT_THAT(offenders, IsEmpty());
  }
}

}  // namespace
}  // namespace sarloop
