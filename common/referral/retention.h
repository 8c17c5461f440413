// The retention policy (config `retention_years`): what a service holds about a referral is
// deleted once the referral has ended and that many years have passed. The audit log keeps only
// ids and stays whole; the purge itself is one audit entry ("retention.purge") with its counts.
#ifndef SARLOOP_COMMON_REFERRAL_RETENTION_H_
#define SARLOOP_COMMON_REFERRAL_RETENTION_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage/storage.h"

namespace sarloop {

struct PurgeReport {
  absl::Time cutoff;
  int64_t referrals = 0;
  int64_t events = 0;
  // The conversation about them (requests for information and their answers, threads.h).
  int64_t messages = 0;
  // ukfiu: SARs submitted before the cutoff none of whose referrals remain.
  int64_t sars = 0;
  // Delivered or refused outbox messages, and stored replies to requests, older than the cutoff
  // (both may carry a referral's package).
  int64_t outbox = 0;
  int64_t replies = 0;
  // The record of messages received (kept to answer a repeat as a duplicate) older than the
  // cutoff: a sender sends again only what it has not heard taken, and never for years.
  int64_t received = 0;
  // Events received before the cutoff and still held for a referral or handover that never came:
  // they would wait for ever, and count against their peer's bound.
  int64_t held = 0;
  std::string Summary() const;
};

// The instant `years` calendar years before `now`, in UTC: what is older goes.
absl::Time RetentionCutoff(absl::Time now, int years);

// Deletes, in one transaction with its audit entry: referrals (table `referrals`) in an ended
// state last changed before now - `years`, with their events; SARs as above; old outbox messages,
// stored replies and records of messages received. Safe while the service runs. INVALID_ARGUMENT
// unless years >= 1.
absl::StatusOr<PurgeReport> PurgeEnded(Database& db, absl::Time now, int years,
                                       const std::string& actor);

// The job every service's process runs for retention (common/server/server.h,
// ServiceParts::purge): PurgeEnded by "sarloop/retention", answering its summary when it deleted
// anything and "" when not.
std::function<absl::StatusOr<std::string>(absl::Time now, int years)> RetentionJob(Database& db);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_RETENTION_H_
