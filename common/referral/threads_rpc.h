// The three thread RPCs (threads.h) at the RPC edge, served alike by ukfiu, force and racu: each
// service's handler passes its method name and its Threads.
#ifndef SARLOOP_COMMON_REFERRAL_THREADS_RPC_H_
#define SARLOOP_COMMON_REFERRAL_THREADS_RPC_H_

#include "common/base/status.h"
#include "common/referral/threads.h"
#include "common/rpc/rpc.h"

namespace sarloop::referral {

// `threads` must outlive the call (it is the service's own, as the services' handlers use it).
inline void ServeAsk(UnaryCall* ctx, const Edge& edge, const char* method, Threads* threads,
                     const v1::RequestInformationRequest* req,
                     v1::InformationThreadResponse* resp) {
  return ServeWrite(ctx, edge, method, *req, [=](const Call& call) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, threads->Ask(call, *req));
    return absl::OkStatus();
  });
}

inline void ServeAnswer(UnaryCall* ctx, const Edge& edge, const char* method, Threads* threads,
                        const v1::AnswerInformationRequest* req,
                        v1::InformationThreadResponse* resp) {
  return ServeWrite(ctx, edge, method, *req, [=](const Call& call) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, threads->Answer(call, *req));
    return absl::OkStatus();
  });
}

inline void ServeListThreads(UnaryCall* ctx, const Edge& edge, const char* method, Threads* threads,
                             const v1::ListThreadsRequest* req, v1::ListThreadsResponse* resp) {
  return Serve(ctx, edge, method, *req, [=](const Call&) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, threads->List(*req));
    return absl::OkStatus();
  });
}

}  // namespace sarloop::referral

#endif  // SARLOOP_COMMON_REFERRAL_THREADS_RPC_H_
