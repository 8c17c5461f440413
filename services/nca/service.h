// What sarloop-nca serves, for RunService (main.cc) and for tests that run it in-process
// (RunningService::Start).
#ifndef SARLOOP_SERVICES_NCA_SERVICE_H_
#define SARLOOP_SERVICES_NCA_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::nca {

// The NCA's service: the national register fed by every organisation's events (RegisterFeed),
// the analysts' Nca API, the Oversight API, the dashboard when dashboard_listen is set, and the
// register's gauges. No retention job: the register keeps no SAR content, and the NCA's
// configuration refuses retention_years.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::nca

#endif  // SARLOOP_SERVICES_NCA_SERVICE_H_
