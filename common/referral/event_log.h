// Each service's own record of lifecycle events (the `events` table), the events it keeps aside
// until they can be judged (`held_events`, see Mirror), and how a recorded event is sent where the
// rules table says (SendEvent), in the caller's transaction. Services emit through
// Mirror::Produce, which records, folds and sends.
#ifndef SARLOOP_COMMON_REFERRAL_EVENT_LOG_H_
#define SARLOOP_COMMON_REFERRAL_EVENT_LOG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/messaging/messaging.h"
#include "common/referral/rules.h"
#include "common/storage/storage.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

extern const Migration kEventLogMigration;
// Delivered events kept aside until their referral's parties are known here (Mirror). A service
// lists it among the migrations it applies after the audit log.
extern const Migration kHeldEventsMigration;

// The change feed watch streams read (common/messaging/watch.h): every event this service stores,
// in the order it stored them (seq), with when it stored it; and the secret that signs the cursors
// and page tokens it issues (common/security/token.h). After the audit log, in every service that
// stores events.
extern const Migration kFeedMigration;

// One stored event with its place in the feed.
struct FeedItem {
  int64_t seq = 0;
  absl::Time recorded_at;
  v1::LifecycleEvent event;
};

// At most `limit` events stored after `after`, in feed order (seq order is commit order: every
// service's writes are serialised, the register's replicas on kGlobalOrder).
absl::StatusOr<std::vector<FeedItem>> ReadFeed(Txn& txn, int64_t after, int limit);

// The last seq in the feed (0 when it is empty).
absl::StatusOr<int64_t> FeedHead(Txn& txn);

// A new event with a fresh event_id and the common fields set. The id names its producer
// ("EV-" + 32 hex digits + "-" + producer), so no other party can make an event with it.
v1::LifecycleEvent NewEvent(v1::EventType type, const std::string& referral_id,
                            const std::string& producer, const std::string& organisation,
                            const v1::Actor& actor, absl::Time now);

// The producer an event id names: what follows "EV-" + 32 hex digits + "-"; empty for an id of the
// form made before ids named their producer.
absl::string_view ProducerNamedBy(absl::string_view event_id);

// Stores `event` unless an event with its id is stored, with its place in the feed; returns
// whether it was new.
absl::StatusOr<bool> AppendEvent(Txn& txn, const v1::LifecycleEvent& event);

// Every stored event of a referral, in EventBefore order.
absl::StatusOr<std::vector<v1::LifecycleEvent>> EventsOf(Txn& txn, const std::string& referral_id);

// Sends `event`, already recorded (AppendEvent), through `outbox` where the rules table says for
// a referral whose parties are `known` (referral::Destinations), with `package` in the envelope
// to the party the table gives it to. A destination the service has no peer for is skipped and
// logged (ukfiu reaches only the units it is configured with).
// A thread's `message` goes in the envelope to the party the thread is with; an attached SAR
// (`supplementary`) to every destination but UKFIU and the register.
absl::Status SendEvent(Txn& txn, Outbox& outbox, const v1::LifecycleEvent& event,
                       const referral::Parties& known, absl::Time now,
                       const v1::ReferralPackage* package = nullptr,
                       const v1::ThreadMessage* message = nullptr,
                       const v1::Sar* supplementary = nullptr);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_EVENT_LOG_H_
