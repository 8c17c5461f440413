#include "common/referral/retention.h"

#include <string>

#include "absl/time/civil_time.h"
#include "common/base/crypto.h"
#include "common/base/ids.h"
#include "common/referral/referral_store.h"
#include "common/server/server.h"
#include "services/force/desk.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::testing::HasSubstr;

absl::Time On(int year, int month, int day) {
  return absl::FromCivil(absl::CivilDay(year, month, day), absl::UTCTimeZone());
}

// A force's database, with its real schema.
std::unique_ptr<Database> ForceDatabase(const TempDir& dir) {
  auto keys = Keyring::FromKeys({std::string(Keyring::kKeySize, 'r')}).value();
  return Database::Open(
             dir.File("force.db"),
             ServiceMigrations(force::DeskMigrations(), force::DeskMigrationsAfterAudit()), keys)
      .value();
}

absl::Status Save(Database& db, const std::string& id, v1::ReferralState state, absl::Time at) {
  return db.Transact([&](Txn& txn) -> absl::Status {
    v1::Referral r;
    r.set_referral_id(id);
    r.set_sar_id("SAR-0000000000000001");
    r.set_organisation("NFK");
    r.set_state(state);
    return SaveReferral(txn, r, at);
  });
}

bool Holds(Database& db, const std::string& id) {
  bool held = false;
  EXPECT_THAT(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(held, HasReferral(txn, id));
    return absl::OkStatus();
  }),
              IsOk());
  return held;
}

// What each service's process runs hourly (ServiceParts::purge): ended referrals older than the
// years go, open ones and recent ones stay, and it says what it deleted only when it deleted
// something.
TEST(RetentionJob, DeletesEndedReferralsPastTheYearsAndSaysWhat) {
  TempDir dir;
  std::unique_ptr<Database> db = ForceDatabase(dir);
  const std::string old_ended = "REF-0000000000000001", old_open = "REF-0000000000000002",
                    recent_ended = "REF-0000000000000003";
  ASSERT_THAT(Save(*db, old_ended, v1::REFERRAL_STATE_DECLINED_BY_FORCE, On(2026, 1, 10)), IsOk());
  ASSERT_THAT(Save(*db, old_open, v1::REFERRAL_STATE_RECEIVED, On(2026, 1, 10)), IsOk());
  ASSERT_THAT(Save(*db, recent_ended, v1::REFERRAL_STATE_DECLINED_BY_FORCE, On(2032, 3, 1)),
              IsOk());

  // A request for information and its answer on the old ended referral, one on the open one.
  auto message = [&](const std::string& thread, int answer, const std::string& referral) {
    return db->Transact([&](Txn& txn) {
      return txn.Exec(
          "INSERT INTO thread_messages (thread_id, answer, referral_id, asked_by, asked_of, "
          "reply_due_at, sent_at, message) VALUES (?, ?, ?, 'NFK', 'UKFIU', 0, 0, ?)",
          {thread, int64_t{answer}, referral, Blob{"what was asked"}});
    });
  };
  ASSERT_THAT(message("THR-0000000000000001", 0, old_ended), IsOk());
  ASSERT_THAT(message("THR-0000000000000001", 1, old_ended), IsOk());
  ASSERT_THAT(message("THR-0000000000000002", 0, old_open), IsOk());
  auto messages_about = [&](const std::string& referral) {
    int64_t n = -1;
    EXPECT_THAT(db->Read([&](Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COUNT(*) FROM thread_messages WHERE "
                                            "referral_id = ?",
                                            {referral}));
      n = rows[0].Int(0);
      return absl::OkStatus();
    }),
                IsOk());
    return n;
  };

  // The record of a message received seven years before, and of one received last month.
  auto received = [&](const std::string& message_id, absl::Time at) {
    return db->Transact([&](Txn& txn) {
      return txn.Exec(
          "INSERT INTO inbox_seen (sender, message_id, received_at, status, detail) "
          "VALUES ('spiffe://sarloop/ukfiu', ?, ?, 1, '')",
          {message_id, ToMicros(at)});
    });
  };
  ASSERT_THAT(received("EV-old", On(2026, 5, 1)), IsOk());
  ASSERT_THAT(received("EV-new", On(2033, 5, 1)), IsOk());
  // An event held for a referral that never came, years ago, and one held since last month.
  auto held = [&](const std::string& event_id, absl::Time at) {
    return db->Transact([&](Txn& txn) {
      return txn.Exec(
          "INSERT INTO held_events (event_id, referral_id, peer, received_at, event) "
          "VALUES (?, 'REF-00000000000000aa', 'spiffe://sarloop/racu/ERSOU', ?, ?)",
          {event_id, ToMicros(at), Blob{""}});
    });
  };
  ASSERT_THAT(held("EV-held-old", On(2026, 5, 1)), IsOk());
  ASSERT_THAT(held("EV-held-new", On(2033, 5, 1)), IsOk());

  auto job = RetentionJob(*db);
  const absl::Time now = On(2033, 6, 1);
  ASSERT_OK_AND_ASSIGN(std::string said, job(now, 6));
  EXPECT_THAT(said, HasSubstr("ended before 2027-06-01: 1 referrals"));
  EXPECT_THAT(said, HasSubstr("2 thread messages"));
  EXPECT_FALSE(Holds(*db, old_ended));
  EXPECT_TRUE(Holds(*db, old_open));
  EXPECT_TRUE(Holds(*db, recent_ended));
  // What was asked and answered about a referral goes with it.
  EXPECT_EQ(messages_about(old_ended), 0);
  EXPECT_EQ(messages_about(old_open), 1);
  EXPECT_THAT(said, HasSubstr("1 records of messages received"));
  EXPECT_THAT(said, HasSubstr("1 events held for what never came"));
  ASSERT_THAT(db->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT event_id FROM held_events"));
    EXPECT_EQ(rows.size(), 1u);
    if (!rows.empty()) EXPECT_EQ(rows[0].Text(0), "EV-held-new");
    return absl::OkStatus();
  }),
              IsOk());
  ASSERT_THAT(db->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT message_id FROM inbox_seen"));
    EXPECT_EQ(rows.size(), 1u);
    if (!rows.empty()) {
      EXPECT_EQ(rows[0].Text(0), "EV-new");
    }
    return absl::OkStatus();
  }),
              IsOk());

  // Nothing more to delete: nothing to say (the process logs only a purge that deleted).
  ASSERT_OK_AND_ASSIGN(std::string again, job(now, 6));
  EXPECT_EQ(again, "");
  EXPECT_THAT(job(now, 0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("retention")));
}

}  // namespace
}  // namespace sarloop
