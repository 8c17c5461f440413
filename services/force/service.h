// What sarloop-force serves, for RunService (main.cc) and for tests that run it in-process
// (RunningService::Start).
#ifndef SARLOOP_SERVICES_FORCE_SERVICE_H_
#define SARLOOP_SERVICES_FORCE_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::force {

// A force's or agency's service: the Force API (its inbox, decisions, handovers, outcomes and
// the conversation with UKFIU), the deliveries it takes, gauges and the retention job.
// INVALID_ARGUMENT when `code` is not an organisation of the reference data, or a destination it
// sends to (UKFIU, the NCA, its units) has no peer.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::force

#endif  // SARLOOP_SERVICES_FORCE_SERVICE_H_
