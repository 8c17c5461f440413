// Each service's own record of lifecycle events (the `events` table), and the one way a service
// emits an event: record it and put it in the outbox for each destination, in the caller's
// transaction.
#ifndef SARLOOP_COMMON_EVENT_LOG_H_
#define SARLOOP_COMMON_EVENT_LOG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

extern const Migration kEventLogMigration;

// A new event with a fresh event_id and the common fields set.
v1::LifecycleEvent NewEvent(v1::EventType type, const std::string& referral_id,
                            const std::string& producer, const std::string& organisation,
                            const v1::Actor& actor, absl::Time now);

// Stores `event` unless an event with its id is stored; returns whether it was new.
absl::StatusOr<bool> AppendEvent(Txn& txn, const v1::LifecycleEvent& event);

// Every stored event of a referral, in EventBefore order.
absl::StatusOr<std::vector<v1::LifecycleEvent>> EventsOf(Txn& txn, const std::string& referral_id);

// Records `event` and enqueues it for each of `destinations`. When `package` is given, the
// envelope for `package_destination` carries it (and only that one).
absl::Status Emit(Txn& txn, const v1::LifecycleEvent& event,
                  const std::vector<std::string>& destinations, absl::Time now,
                  const v1::ReferralPackage* package = nullptr,
                  const std::string& package_destination = "");

}  // namespace sarloop

#endif  // SARLOOP_COMMON_EVENT_LOG_H_
