// The national register: every referral's events, folded into one entry per referral, and the
// analyst queries over it. Logic over a Database; main.cc is the gRPC layer.
//
// Convergence: the entry is the register's copy in the referral layer's Mirror
// (common/referral/mirror.h), recomputed from the full set of the referral's events each time a
// new event arrives (Fold), so any order and any duplication of the same events gives the same
// entry. Every delivered event is judged against the rules table first: an event whose producer
// does not have its role for that referral is refused and changes nothing.
#ifndef SARLOOP_SERVICES_NCA_REGISTER_H_
#define SARLOOP_SERVICES_NCA_REGISTER_H_

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/mutex.h"
#include "common/messaging/messaging.h"
#include "common/reference/reference.h"
#include "common/referral/mirror.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"
#include "sarloop/v1/nca.pb.h"
#include "services/nca/aggregates.h"

namespace sarloop::nca {

// The register's schema (event log, entries, then the entries' change sequence). Released
// databases applied the first kRegisterMigrationsBeforeAudit before the audit log's migration
// and the rest after it (see ServiceMigrations).
std::span<const Migration> RegisterMigrations();
inline constexpr size_t kRegisterMigrationsBeforeAudit = 2;

// The nca service's whole schema, as it opens its database (ServiceMigrations: the messaging
// tables, the register, the audit log, the rest), for tools and tests that open a register.
std::vector<Migration> RegisterSchema();

class Register {
 public:
  Register(Database& db, const ReferenceData& reference, Clock& clock);

  // One event delivered by `peer`, inside the delivery transaction: judged against the rules
  // table with what the register knows of the referral, then applied (the entry refreshed), held
  // until the referral's DISPATCHED (or the handover that makes `peer` its unit) arrives, or
  // refused: PERMISSION_DENIED when `peer` does not have the event's role for this referral,
  // FAILED_PRECONDITION for a second DISPATCHED. A repeat of a known event_id changes nothing.
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::LifecycleEvent& event);

  // Records `event` as given, without judging who produced it: for tools that build a register
  // from events they made themselves (the query benchmark). Never on a delivery path.
  absl::Status ApplyTrusted(Txn& txn, const v1::LifecycleEvent& event);

  // Nca.WatchRegister's messages: at most `limit` after feed position `after`, each event with
  // its referral's entry as it stands; and the feed's last position.
  absl::Status Changes(int64_t after, int limit,
                       std::vector<std::pair<int64_t, v1::RegisterChange>>& out);
  absl::StatusOr<int64_t> FeedHead();

  // NOT_FOUND when the register has no event for the referral.
  absl::StatusOr<v1::GetTimelineResponse> Timeline(const std::string& referral_id);
  absl::StatusOr<v1::ListRegisterResponse> List(const v1::ListRegisterRequest& request);
  absl::StatusOr<v1::ListOverdueResponse> Overdue(const v1::ListOverdueRequest& request,
                                                  absl::Time now);
  absl::StatusOr<v1::GetSummaryResponse> Summary(absl::Time as_of);
  // What is addressed to `identity` (escalations, regulation 19 reports, declines of assistance
  // for review), oldest first, paged.
  absl::StatusOr<v1::ListEscalationsResponse> EscalationsFor(
      const std::string& identity, const v1::ListEscalationsRequest& request);
  // Brings the aggregate index up to date with the entries committed since the last call, then
  // queries it. `min_count` is the configured publication threshold (the request may raise it).
  // Reads the entries changed since the last catch-up into the aggregate index. Called at start
  // (so the first query is not the one that loads millions of entries) and before each query.
  absl::Status CatchUp();
  absl::StatusOr<v1::GetAggregatesResponse> Aggregates(const v1::GetAggregatesRequest& request,
                                                       absl::Time now, int min_count);

 private:
  // The register's copy of a referral: its row in `entries`.
  absl::Status SaveEntry(Txn& txn, const v1::RegisterEntry& entry);
  // Indexes the addressed events stored before the notices table existed, once.
  absl::Status IndexEarlierNotices();

  Database& db_;
  Outbox outbox_;  // the register sends nothing; the Mirror asks for one
  referral::Mirror mirror_;
  SharedMutex index_mu_;
  // Entries up to this (seq, referral_id) are in index_: entries from before the change
  // sequence share seq 0, so the id orders them.
  static constexpr int kCatchUpPage = 20000;
  int64_t indexed_seq_ ABSL_GUARDED_BY(index_mu_) = -1;
  std::string indexed_id_ ABSL_GUARDED_BY(index_mu_);
  bool notices_indexed_ ABSL_GUARDED_BY(index_mu_) = false;
  std::unique_ptr<AggregateIndex> index_ ABSL_PT_GUARDED_BY(index_mu_);
};

}  // namespace sarloop::nca

#endif  // SARLOOP_SERVICES_NCA_REGISTER_H_
