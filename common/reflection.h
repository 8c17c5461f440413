// Server reflection for generic tools: protocol v1 (grpc.reflection.v1, what grpcurl, Postman and
// grpc_cli ask for first) beside gRPC's own v1alpha, and the names of every service the server
// serves, which health reports one by one.
#ifndef SARLOOP_COMMON_REFLECTION_H_
#define SARLOOP_COMMON_REFLECTION_H_

#include <grpcpp/server_builder.h>

#include <memory>
#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.pb.h"

namespace sarloop {

// The answer to one reflection request, from the descriptors linked into this binary; `services`
// is what list_services returns. A file comes with every file it imports, so a client that knows
// none of them can build the descriptors from one answer.
grpc::reflection::v1::ServerReflectionResponse AnswerReflection(
    const grpc::reflection::v1::ServerReflectionRequest& request,
    const std::vector<std::string>& services);

class Reflection {
 public:
  // Adds both reflection protocols to `builder`. Call before BuildAndStart.
  static std::shared_ptr<Reflection> Install(grpc::ServerBuilder& builder);

  // Every service the built server serves (reflection and health included), by full name. Empty
  // until BuildAndStart has returned.
  virtual std::vector<std::string> ServiceNames() const = 0;

  virtual ~Reflection() = default;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFLECTION_H_
