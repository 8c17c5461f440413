#include "common/referral/event_log.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/messaging/watch.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "spdlog/spdlog.h"

namespace sarloop {

const Migration kEventLogMigration = {"lifecycle event log", R"sql(
CREATE TABLE events (
  event_id TEXT PRIMARY KEY,
  referral_id TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  event BLOB NOT NULL
);
CREATE INDEX events_by_referral ON events (referral_id, occurred_at, event_id);
)sql",
                                      R"sql(
CREATE TABLE events (
  event_id TEXT PRIMARY KEY,
  referral_id TEXT NOT NULL,
  occurred_at BIGINT NOT NULL,
  event BYTEA NOT NULL
);
CREATE INDEX events_by_referral ON events (referral_id, occurred_at, event_id);
)sql"};

const Migration kHeldEventsMigration = {"delivered events held until they can be judged", R"sql(
CREATE TABLE held_events (
  event_id TEXT PRIMARY KEY,
  referral_id TEXT NOT NULL,
  peer TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  event BLOB NOT NULL
);
CREATE INDEX held_events_by_referral ON held_events (referral_id);
)sql",
                                        R"sql(
CREATE TABLE held_events (
  event_id TEXT PRIMARY KEY,
  referral_id TEXT NOT NULL,
  peer TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  event BYTEA NOT NULL
);
CREATE INDEX held_events_by_referral ON held_events (referral_id);
)sql"};

const Migration kFeedMigration = {"the change feed watch streams read, and the token secret",
                                  R"sql(
CREATE TABLE feed (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL,
  referral_id TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE INDEX feed_by_referral ON feed (referral_id);
INSERT INTO feed (event_id, referral_id, recorded_at)
  SELECT event_id, referral_id, occurred_at FROM events ORDER BY occurred_at, event_id;
CREATE TABLE token_secret (id INTEGER PRIMARY KEY CHECK (id = 1), secret BLOB NOT NULL);
)sql",
                                  R"sql(
CREATE TABLE feed (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id TEXT NOT NULL,
  referral_id TEXT NOT NULL,
  recorded_at BIGINT NOT NULL
);
CREATE INDEX feed_by_referral ON feed (referral_id);
INSERT INTO feed (event_id, referral_id, recorded_at)
  SELECT event_id, referral_id, occurred_at FROM events ORDER BY occurred_at, event_id;
CREATE TABLE token_secret (id INTEGER PRIMARY KEY CHECK (id = 1), secret BYTEA NOT NULL);
)sql"};

absl::StatusOr<std::vector<FeedItem>> ReadFeed(Txn& txn, int64_t after, int limit) {
  // Joined, not copied: the event is stored once. An event purged by retention leaves no row.
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT f.seq, f.recorded_at, e.event FROM feed f "
                                        "JOIN events e ON e.event_id = f.event_id "
                                        "WHERE f.seq > ? ORDER BY f.seq LIMIT ?",
                                        {after, int64_t{limit}}));
  std::vector<FeedItem> items(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    items[i].seq = rows[i].Int(0);
    items[i].recorded_at = FromMicros(rows[i].Int(1));
    if (!items[i].event.ParseFromString(rows[i].Text(2))) {
      return absl::DataLossError("stored event does not parse");
    }
    if (items[i].event.has_outcome()) UpgradeOutcome(*items[i].event.mutable_outcome());
  }
  return items;
}

absl::StatusOr<int64_t> FeedHead(Txn& txn) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COALESCE(MAX(seq), 0) FROM feed"));
  return rows.empty() ? int64_t{0} : rows[0].Int(0);
}

v1::LifecycleEvent NewEvent(v1::EventType type, const std::string& referral_id,
                            const std::string& producer, const std::string& organisation,
                            const v1::Actor& actor, absl::Time now) {
  v1::LifecycleEvent e;
  // The producer after the time-ordered part: ids still sort by the time they were made.
  e.set_event_id(absl::StrCat(NewTimeOrderedId("EV-", now), "-", producer));
  e.set_referral_id(referral_id);
  e.set_type(type);
  e.set_producer(producer);
  e.set_organisation(organisation);
  *e.mutable_actor() = actor;
  *e.mutable_occurred_at() = ToProto(now);
  return e;
}

absl::string_view ProducerNamedBy(absl::string_view event_id) {
  constexpr size_t kTimeOrdered = 3 + 32;  // "EV-" and the time-ordered hex digits
  if (event_id.size() <= kTimeOrdered + 1 || !absl::StartsWith(event_id, "EV-") ||
      event_id[kTimeOrdered] != '-') {
    return {};
  }
  return event_id.substr(kTimeOrdered + 1);
}

absl::StatusOr<bool> AppendEvent(Txn& txn, const v1::LifecycleEvent& event) {
  RETURN_IF_ERROR(
      txn.Exec("INSERT INTO events (event_id, referral_id, occurred_at, event) VALUES (?,?,?,?) "
               "ON CONFLICT DO NOTHING",
               {event.event_id(), event.referral_id(), ToMicros(FromProto(event.occurred_at())),
                Blob{event.SerializeAsString()}}));
  if (txn.Changes() == 0) return false;
  // Wall-clock time, not the chain's (a development clock may be offset): a watcher measures
  // how soon it heard against it.
  RETURN_IF_ERROR(txn.Exec("INSERT INTO feed (event_id, referral_id, recorded_at) VALUES (?,?,?)",
                           {event.event_id(), event.referral_id(), ToMicros(absl::Now())}));
  NoteFeedAppend();
  return true;
}

absl::StatusOr<std::vector<v1::LifecycleEvent>> EventsOf(Txn& txn, const std::string& referral_id) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT event FROM events WHERE referral_id = ?", {referral_id}));
  std::vector<v1::LifecycleEvent> events(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!events[i].ParseFromString(rows[i].Text(0))) {
      return absl::DataLossError("stored event does not parse");
    }
    // Events are immutable: one stored before outcome tracks is read in today's vocabulary.
    if (events[i].has_outcome()) UpgradeOutcome(*events[i].mutable_outcome());
  }
  std::sort(events.begin(), events.end(), EventBefore);
  return events;
}

absl::Status SendEvent(Txn& txn, Outbox& outbox, const v1::LifecycleEvent& event,
                       const referral::Parties& known, absl::Time now,
                       const v1::ReferralPackage* package, const v1::ThreadMessage* message,
                       const v1::Sar* supplementary) {
  for (const std::string& dest : referral::Destinations(event, known, event.producer())) {
    if (!outbox.Reaches(dest)) {
      spdlog::warn("{} of {} not sent to {}: no peer is configured for it",
                   std::string(EventName(event.type())), event.referral_id(), dest);
      continue;
    }
    v1::Envelope env;
    env.set_message_id(event.event_id());
    *env.mutable_event() = event;
    if (package != nullptr && referral::CarriesPackageTo(event, dest)) {
      *env.mutable_package() = *package;
    }
    if (message != nullptr && dest == event.thread_with()) *env.mutable_thread_message() = *message;
    // A further SAR goes to whoever works the referral: not to a unit that declined it, which
    // needs no more personal data (a new handover brings it the whole package).
    if (supplementary != nullptr && dest != kRegisterCode && dest != referral::kUkfiuCode &&
        !known.declined.count(dest)) {
      *env.mutable_supplementary_sar() = *supplementary;
    }
    RETURN_IF_ERROR(outbox.Send(
        txn, dest, env, now, referral::SendsAtOnce(event) ? Urgency::kAtOnce : Urgency::kInform));
  }
  return absl::OkStatus();
}

}  // namespace sarloop
