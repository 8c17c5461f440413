// An investigating unit's service as its process serves it: the handovers it takes, its decisions
// and outcomes. Build is what RunService (common/server/server.h) is given; main.cc is only that
// call, and a test can run the same service in-process with RunningService::Start.
#ifndef SARLOOP_SERVICES_RACU_SERVICE_H_
#define SARLOOP_SERVICES_RACU_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::racu {

// The service's RPC services, deliveries, timed task and gauges over the process's storage,
// outbox and edge. INVALID_ARGUMENT when the configuration does not fit the service.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::racu

#endif  // SARLOOP_SERVICES_RACU_SERVICE_H_
