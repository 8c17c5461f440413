// grpc.health.v1.Health, served from the server's completion queue (common/rpc/serving.h) like
// every other method: gRPC's built-in health service runs on the callback API, whose threads a
// sarloop server does not start. The same answers as gRPC's: Check says SERVING or NOT_SERVING for
// a name that was set and NOT_FOUND for one that was not; Watch sends the status now
// (SERVICE_UNKNOWN for a name not set) and again each time it changes.
#ifndef SARLOOP_COMMON_RPC_HEALTH_H_
#define SARLOOP_COMMON_RPC_HEALTH_H_

#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/base/mutex.h"
#include "common/rpc/serving.h"

namespace sarloop {

class Health {
 public:
  Health();
  ~Health();

  // The status of `service` ("" for the server as a whole).
  void SetServingStatus(const std::string& service, bool serving);
  // Every name set so far.
  void SetServingStatus(bool serving);
  // Finishes every Watch (UNAVAILABLE) and refuses new ones: before the server shuts down,
  // which would otherwise wait for them.
  void Stop();

  // The service to register (grpc.health.v1.Health).
  std::shared_ptr<RawService> Service();

  class Watcher;  // one Watch call (defined in the .cc)

 private:
  friend class Watcher;
  // The ServingStatus of `service`.
  int StatusOf(const std::string& service) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Watcher* watcher);

  Mutex mu_;
  std::map<std::string, bool> serving_ ABSL_GUARDED_BY(mu_);
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_HEALTH_H_
