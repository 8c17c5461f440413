// Prometheus metrics (text exposition format 0.0.4), served over HTTPS on `metrics_listen` to
// monitoring identities (spiffe://sarloop/monitor/<system>) only. Counters and histograms are
// kept in process from the moment they happen; gauges that describe stored state (outbox backlog,
// referrals by state) are read when scraped.
#ifndef SARLOOP_COMMON_BASE_METRICS_H_
#define SARLOOP_COMMON_BASE_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/mutex.h"

namespace sarloop {

// Builds exposition text: one HELP and TYPE line per family, then its samples.
class MetricsText {
 public:
  void Family(absl::string_view name, absl::string_view type, absl::string_view help);
  // `labels` is already formatted (Label(), joined by commas), or empty.
  void Sample(absl::string_view name, absl::string_view labels, double value);
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// `name="value"`, the value escaped as the format requires.
std::string Label(absl::string_view name, absl::string_view value);

// Cumulative buckets with fixed upper bounds, plus sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Writes name_bucket{labels,le=...} for every bound and +Inf, name_sum and name_count.
  void Write(MetricsText& out, absl::string_view name, absl::string_view labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  int64_t count_ = 0;
};

// What happens in a service process, counted as it happens. Thread-safe.
class Metrics {
 public:
  // A finished RPC: its full method name, status and time from arrival to reply.
  void ObserveRpc(absl::string_view method, absl::StatusCode code, absl::Duration latency);
  // A commit: the write transactions it carried and how long the batch took, BEGIN to COMMIT.
  void ObserveCommit(int64_t transactions, absl::Duration duration);
  // A delivery attempt to `destination` that failed and will be retried.
  void ObserveDeliveryFailure(const std::string& destination);

  // Everything recorded so far, as exposition text.
  void Write(MetricsText& out) const;

 private:
  mutable Mutex mu_;
  // (method, code)
  std::map<std::pair<std::string, std::string>, int64_t> rpcs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> rpc_latency_ ABSL_GUARDED_BY(mu_);  // by method
  Histogram commit_seconds_ ABSL_GUARDED_BY(mu_){
      {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1}};
  Histogram commit_batch_ ABSL_GUARDED_BY(mu_){{1, 2, 5, 10, 20, 50, 100, 200, 500}};
  std::map<std::string, int64_t> delivery_failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_METRICS_H_
