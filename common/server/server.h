// The process around a service: configuration, logging, storage, the outbox worker, mTLS
// listener, health and reflection, an optional periodic task, and a clean stop on SIGTERM or
// SIGINT. Each service's main() is a call to RunService.
#ifndef SARLOOP_COMMON_SERVER_SERVER_H_
#define SARLOOP_COMMON_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/metrics.h"
#include "common/messaging/messaging.h"
#include "common/messaging/watch.h"
#include "common/reference/reference.h"
#include "common/rpc/rpc.h"
#include "common/rpc/serving.h"
#include "common/storage/storage.h"
#include "sarloop/v1/config.pb.h"

namespace sarloop {

// What a service's logic gets from the process. Outlives every service object.
struct ServiceContext {
  const v1::ServiceConfig& config;
  Database& db;
  Clock& clock;
  DeliveryWorker& outbox;
  const ReferenceData& reference;
  // Where the RPC edge records calls (this service's audit log).
  Edge edge;
  // The service's watch streams (common/messaging/watch.h).
  WatchHub& watch;
  // Whether the authorisation policy, as it stands, lets an identity call a method: for what a
  // service serves beside gRPC, which the gate never sees.
  std::function<bool(const std::string& identity, const std::string& method)> allows;
};

// What a service contributes to the process.
struct ServiceParts {
  std::vector<std::shared_ptr<RawService>> services;
  // Adds `impl`'s methods (common/rpc/serving.h's ServeRaw).
  template <typename Impl>
  void Serve(std::shared_ptr<Impl> impl) {
    services.push_back(ServeRaw(std::move(impl)));
  }
  // Called every `period` on a background thread, if set.
  std::function<void()> periodic;
  absl::Duration period = absl::ZeroDuration();
  // What else serves while the service runs (the NCA dashboard's HTTPS server); released after the
  // gRPC server has stopped.
  std::vector<std::shared_ptr<void>> resources;
  // The service's own gauges for the metrics endpoint (referrals by state, overdue), read at each
  // scrape, if set.
  std::function<absl::Status(MetricsText&)> metrics;
  // The retention job (common/referral/retention.h's RetentionJob): deletes what has been kept
  // `years` past its end and says what it deleted ("" for nothing). With `retention_years` in the
  // configuration it runs an hour after start and every hour after that; a service whose
  // configuration sets `retention_years` and that has no job does not start.
  std::function<absl::StatusOr<std::string>(absl::Time now, int years)> purge;
};

using ServiceBuilder = std::function<absl::StatusOr<ServiceParts>(ServiceContext&)>;

// A service database's whole schema history, in the order released databases applied it: the
// common messaging tables, the service's own `migrations`, the audit log, then the service's
// migrations written after the audit log existed (`after_audit`). The order is positional
// (PRAGMA user_version), so a new migration only ever goes at the end of `after_audit`.
std::vector<Migration> ServiceMigrations(std::span<const Migration> migrations,
                                         std::span<const Migration> after_audit = {});

// Whether a service's gRPC server probes the bandwidth-delay product, to grow how much a caller
// may send ahead: only the linkage service, which takes bulk index uploads. Elsewhere messages are
// small, and each probe (a ping after data arrives, and a timer for the next one, which wakes
// gRPC's timer thread) cost more than it could gain: README, "Bandwidth probing off".
bool ProbesBandwidthDelay(v1::ServiceKind kind);

// A service running in this process: its storage open, its listener bound and serving, its outbox
// delivering and its timed tasks (the service's periodic task, audit checkpoints, health,
// retention) armed. RunService runs one until SIGTERM or SIGINT; a test can run one in-process, on
// a port the system chooses (listen "127.0.0.1:0").
class RunningService {
 public:
  // `migrations` is the service's whole schema history (ServiceMigrations). INVALID_ARGUMENT names
  // a configuration field the service cannot run with (retention_years without a retention job,
  // or what `build` refuses); UNAVAILABLE when the listener cannot bind; else the error of the
  // storage, TLS, policy or audit files it could not open.
  static absl::StatusOr<std::unique_ptr<RunningService>> Start(const v1::ServiceConfig& config,
                                                               std::vector<Migration> migrations,
                                                               const ServiceBuilder& build);
  // Stops it with no drain, unless Stop has run.
  ~RunningService();
  RunningService(const RunningService&) = delete;
  RunningService& operator=(const RunningService&) = delete;

  // The port the listener is bound to: config.listen's, or the one the system chose for port 0.
  int port() const;

  // Says NOT_SERVING and stops every timed task but the audit checkpoints, goes on serving for
  // `drain` so that balancers and peers go elsewhere, then stops: watches end, calls in flight get
  // 5 s to finish, the outbox worker stops, every write queued is answered, and a last audit
  // checkpoint is signed. Once; later calls do nothing and return OK. The last checkpoint's
  // error, if it could not be signed.
  absl::Status Stop(absl::Duration drain);

 private:
  struct State;
  explicit RunningService(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The allocator and lock settings every service process runs with (RunService applies them first).
void TuneServiceProcess();

// What a service prints for --help: `what` it is, then the flags every service takes.
std::string ServiceUsage(std::string_view program, std::string_view what);

// Runs the process until SIGTERM/SIGINT. Returns the exit code: 0 after a clean stop, 2 for a
// configuration error, 1 for any other failure to start.
int RunService(int argc, char** argv, v1::ServiceKind kind, std::span<const Migration> migrations,
               const ServiceBuilder& build, std::span<const Migration> after_audit = {});

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SERVER_SERVER_H_
