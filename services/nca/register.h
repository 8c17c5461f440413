// The national register: every referral's events, folded into one entry per referral, and the
// analyst queries over it. Pure logic over a Database; the gRPC layer is nca_service.
//
// Convergence: the entry is recomputed from the full set of the referral's events each time a new
// event arrives (Fold), so any order and any duplication of the same events gives the same entry.
#ifndef SARLOOP_SERVICES_NCA_REGISTER_H_
#define SARLOOP_SERVICES_NCA_REGISTER_H_

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage.h"
#include "sarloop/v1/nca.pb.h"

namespace sarloop::nca {

// The register's schema, after the common messaging and event-log migrations.
std::span<const Migration> RegisterMigrations();

class Register {
 public:
  explicit Register(Database& db) : db_(db) {}

  // Records `event` and refreshes its referral's entry. A repeat of a known event_id changes
  // nothing. Must run inside the delivery transaction.
  absl::Status Apply(Txn& txn, const v1::LifecycleEvent& event);

  // NOT_FOUND when the register has no event for the referral.
  absl::StatusOr<v1::GetTimelineResponse> Timeline(const std::string& referral_id);
  absl::StatusOr<v1::ListRegisterResponse> List(const v1::ListRegisterRequest& request);
  absl::StatusOr<v1::ListOverdueResponse> Overdue(const v1::ListOverdueRequest& request,
                                                  absl::Time now);
  absl::StatusOr<v1::GetSummaryResponse> Summary(absl::Time as_of);

 private:
  Database& db_;
};

}  // namespace sarloop::nca

#endif  // SARLOOP_SERVICES_NCA_REGISTER_H_
