// What sarloop-ukfiu serves, for RunService (main.cc) and for tests that run it in-process
// (RunningService::Start).
#ifndef SARLOOP_SERVICES_UKFIU_SERVICE_H_
#define SARLOOP_SERVICES_UKFIU_SERVICE_H_

#include "absl/status/statusor.h"
#include "common/server/server.h"

namespace sarloop::ukfiu {

// UKFIU's service: the Ukfiu API (SAR intake, referral, withdrawal and redirection, the
// conversation with forces), the deliveries it takes from forces and units, the feedback clock's
// reminders and escalations every feedback.scan_interval_seconds, gauges and the retention job.
// INVALID_ARGUMENT without a peer NCA, with linkage_key_file but no peer LINKAGE, or with a key
// file that does not read.
absl::StatusOr<ServiceParts> Build(ServiceContext& ctx);

}  // namespace sarloop::ukfiu

#endif  // SARLOOP_SERVICES_UKFIU_SERVICE_H_
