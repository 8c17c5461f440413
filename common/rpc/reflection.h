// Server reflection for generic tools: protocol v1 (grpc.reflection.v1, what grpcurl, Postman and
// grpc_cli ask for first) and v1alpha (what older tools ask for), answered alike.
#ifndef SARLOOP_COMMON_RPC_REFLECTION_H_
#define SARLOOP_COMMON_RPC_REFLECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "common/rpc/serving.h"
#include "grpc/reflection/v1/reflection.pb.h"

namespace sarloop {

// The answer to one reflection request, from the descriptors linked into this binary; `services`
// is what list_services returns. A file comes with every file it imports, so a client that knows
// none of them can build the descriptors from one answer.
grpc::reflection::v1::ServerReflectionResponse AnswerReflection(
    const grpc::reflection::v1::ServerReflectionRequest& request,
    const std::vector<std::string>& services);

// Both reflection protocols (grpc.reflection.v1 and v1alpha), served from the server's completion
// queue, listing `services` (full names: every service the server serves, these included).
std::vector<std::shared_ptr<RawService>> ReflectionServices(std::vector<std::string> services);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_REFLECTION_H_
