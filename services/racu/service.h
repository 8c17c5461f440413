// What sarloop-racu serves, for RunService (main.cc) and for tests that run it in-process
// (RunningService::Start).
#ifndef SARLOOP_SERVICES_RACU_SERVICE_H_
#define SARLOOP_SERVICES_RACU_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::racu {

// An investigating unit's service: the Racu API (the handovers it takes, its decisions and
// outcomes), the deliveries it takes, gauges and the retention job. INVALID_ARGUMENT when a
// served force is not an organisation of the reference data, or a destination it sends to has no
// peer.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::racu

#endif  // SARLOOP_SERVICES_RACU_SERVICE_H_
