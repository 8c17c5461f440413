// The NCA's service as its process serves it: the national register fed by every organisation's
// events, the analysts' queries, the oversight API and the dashboard. Build is what RunService
// (common/server/server.h) is given; main.cc is only that call, and a test can run the same service
// in-process with RunningService::Start.
#ifndef SARLOOP_SERVICES_NCA_SERVICE_H_
#define SARLOOP_SERVICES_NCA_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::nca {

// The service's RPC services, deliveries, timed task and gauges over the process's storage,
// outbox and edge. INVALID_ARGUMENT when the configuration does not fit the service.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::nca

#endif  // SARLOOP_SERVICES_NCA_SERVICE_H_
