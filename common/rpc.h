// The RPC edge: handlers are thin; they call logic that returns absl::Status and finish the call
// through here, the one place an internal status becomes a grpc::Status.
#ifndef SARLOOP_COMMON_RPC_H_
#define SARLOOP_COMMON_RPC_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "common/status.h"

namespace sarloop {

inline grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                        const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_H_
