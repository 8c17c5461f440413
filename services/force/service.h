// A force's or agency's service as its process serves it: its Professional Standards inbox, its
// steps and handovers, and the deliveries it takes. Build is what RunService
// (common/server/server.h) is given; main.cc is only that call, and a test can run the same service
// in-process with RunningService::Start.
#ifndef SARLOOP_SERVICES_FORCE_SERVICE_H_
#define SARLOOP_SERVICES_FORCE_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::force {

// The service's RPC services, deliveries, timed task and gauges over the process's storage,
// outbox and edge. INVALID_ARGUMENT when the configuration does not fit the service.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::force

#endif  // SARLOOP_SERVICES_FORCE_SERVICE_H_
