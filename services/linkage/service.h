// What sarloop-linkage serves, for RunService (main.cc) and for tests that run it in-process
// (RunningService::Start).
#ifndef SARLOOP_SERVICES_LINKAGE_SERVICE_H_
#define SARLOOP_SERVICES_LINKAGE_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::linkage {

// The linkage service: the Linkage API (personnel index uploads, screening of SAR subjects,
// hits and the forces' verdicts on them), UKFIU's screening deliveries, gauges and the retention
// job.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::linkage

#endif  // SARLOOP_SERVICES_LINKAGE_SERVICE_H_
