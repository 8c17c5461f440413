// grpc.health.v1.Health, served from the server's completion queue (common/rpc/serving.h) like
// every other method: gRPC's built-in health service runs on the callback API, whose threads a
// sarloop server does not start. The same answers as gRPC's: Check says SERVING or NOT_SERVING for
// a name that was set and NOT_FOUND for one that was not; Watch sends the status now
// (SERVICE_UNKNOWN for a name not set) and again each time it changes.
#ifndef SARLOOP_COMMON_RPC_HEALTH_H_
#define SARLOOP_COMMON_RPC_HEALTH_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

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
  int StatusOf(const std::string& service);  // ServingStatus; guarded by mu_
  void Remove(Watcher* watcher);

  std::mutex mu_;
  std::map<std::string, bool> serving_;  // guarded by mu_
  std::set<Watcher*> watchers_;          // guarded by mu_
  bool stopped_ = false;                 // guarded by mu_
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_HEALTH_H_
