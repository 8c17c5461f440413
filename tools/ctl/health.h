// The standard gRPC health check (grpc.health.v1.Health/Check) that every sarloop server offers.
// Debian's libgrpc++-dev ships no generated client for it, and compiling a copy of
// grpc/health/v1/health.proto into this tool would abort at start-up if any linked library ever
// registered the same file in protobuf's generated pool. So the two messages are described in a
// private descriptor pool and the call goes through gRPC's generic stub: same wire format, no
// shared registry.
#ifndef SARLOOP_TOOLS_CTL_HEALTH_H_
#define SARLOOP_TOOLS_CTL_HEALTH_H_

#include <google/protobuf/message.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tools/ctl/client.h"

namespace sarloop::ctl {

// Checks the server as a whole (empty service name). The HealthCheckResponse, printable with
// MessageToJsonString like any generated message; the call's error status otherwise.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> CheckHealth(Session& session);

// The response's status name: "SERVING", "NOT_SERVING", "UNKNOWN" or "SERVICE_UNKNOWN".
std::string ServingStatusName(const google::protobuf::Message& response);

}  // namespace sarloop::ctl

#endif  // SARLOOP_TOOLS_CTL_HEALTH_H_
