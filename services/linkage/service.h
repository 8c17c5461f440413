// The linkage service as its process serves it: personnel index uploads, screening of SAR subjects
// and the forces' verdicts on hits. Build is what RunService (common/server/server.h) is given;
// main.cc is only that call, and a test can run the same service in-process with
// RunningService::Start.
#ifndef SARLOOP_SERVICES_LINKAGE_SERVICE_H_
#define SARLOOP_SERVICES_LINKAGE_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::linkage {

// The service's RPC services, deliveries, timed task and gauges over the process's storage,
// outbox and edge. INVALID_ARGUMENT when the configuration does not fit the service.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::linkage

#endif  // SARLOOP_SERVICES_LINKAGE_SERVICE_H_
