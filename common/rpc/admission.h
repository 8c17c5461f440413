// Overload protection (DESIGN §6): a bound on the calls a server holds at once, counted from a
// call's arrival (queued for a thread or being handled) to its end. Past the bound a call is
// refused at once with RESOURCE_EXHAUSTED and a retry delay, before any work, so a flood costs
// bounded memory and never delays the calls already taken.
#ifndef SARLOOP_COMMON_RPC_ADMISSION_H_
#define SARLOOP_COMMON_RPC_ADMISSION_H_

#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <memory>
#include <set>

#include "common/base/mutex.h"

namespace sarloop {

class Admission {
 public:
  explicit Admission(int limit) : limit_(limit) {}

  // For ServerBuilder::experimental().SetInterceptorCreators: counts every sarloop.v1 call.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // Whether the call arrived past the bound (Serve then refuses it without doing anything).
  bool Shed(const grpc::ServerContextBase* ctx);

  // Calls refused since start.
  int64_t refused() const { return refused_.load(); }

 private:
  class Counter;
  class Factory;

  const int limit_;
  std::atomic<int> held_{0};
  std::atomic<int64_t> refused_{0};
  Mutex mu_;
  std::set<const grpc::ServerContextBase*> shed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_ADMISSION_H_
