#include "common/base/metrics.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sarloop {
namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                            0.1,   0.2,   0.5,   1,    2,    5};

std::string Number(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v))) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  return absl::StrFormat("%.9g", v);
}

std::string Join(absl::string_view a, absl::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return absl::StrCat(a, ",", b);
}

}  // namespace

std::string Label(absl::string_view name, absl::string_view value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      escaped.push_back('\\');
      escaped.push_back(c);
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped.push_back(c);
    }
  }
  return absl::StrCat(name, "=\"", escaped, "\"");
}

void MetricsText::Family(absl::string_view name, absl::string_view type, absl::string_view help) {
  absl::StrAppend(&text_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void MetricsText::Sample(absl::string_view name, absl::string_view labels, double value) {
  absl::StrAppend(&text_, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                  Number(value), "\n");
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Write(MetricsText& out, absl::string_view name, absl::string_view labels) const {
  int64_t cumulative = 0;
  const std::string bucket = absl::StrCat(name, "_bucket");
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out.Sample(bucket, Join(labels, Label("le", Number(bounds_[i]))),
               static_cast<double>(cumulative));
  }
  out.Sample(bucket, Join(labels, Label("le", "+Inf")), static_cast<double>(count_));
  out.Sample(absl::StrCat(name, "_sum"), labels, sum_);
  out.Sample(absl::StrCat(name, "_count"), labels, static_cast<double>(count_));
}

void Metrics::ObserveRpc(absl::string_view method, absl::StatusCode code, absl::Duration latency) {
  MutexLock lock(&mu_);
  ++rpcs_[{std::string(method), absl::StatusCodeToString(code)}];
  auto it = rpc_latency_.find(std::string(method));
  if (it == rpc_latency_.end()) {
    it = rpc_latency_.emplace(std::string(method), Histogram(kLatencyBounds)).first;
  }
  it->second.Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::ObserveCommit(int64_t transactions, absl::Duration duration) {
  MutexLock lock(&mu_);
  commit_seconds_.Observe(absl::ToDoubleSeconds(duration));
  commit_batch_.Observe(static_cast<double>(transactions));
}

void Metrics::ObserveDeliveryFailure(const std::string& destination) {
  MutexLock lock(&mu_);
  ++delivery_failures_[destination];
}

void Metrics::Write(MetricsText& out) const {
  MutexLock lock(&mu_);
  out.Family("sarloop_rpcs_total", "counter", "RPCs answered, by method and status code.");
  for (const auto& [key, n] : rpcs_) {
    out.Sample("sarloop_rpcs_total", Join(Label("method", key.first), Label("code", key.second)),
               static_cast<double>(n));
  }
  out.Family("sarloop_rpc_duration_seconds", "histogram",
             "Time from a call's arrival to its reply (after its commit), by method.");
  for (const auto& [method, h] : rpc_latency_) {
    h.Write(out, "sarloop_rpc_duration_seconds", Label("method", method));
  }
  out.Family("sarloop_commit_duration_seconds", "histogram",
             "Time of one write batch, BEGIN to the synced COMMIT.");
  commit_seconds_.Write(out, "sarloop_commit_duration_seconds", "");
  out.Family("sarloop_commit_batch_transactions", "histogram",
             "Write transactions carried by one commit (group commit's batch size).");
  commit_batch_.Write(out, "sarloop_commit_batch_transactions", "");
  out.Family("sarloop_delivery_failures_total", "counter",
             "Delivery attempts that failed and will be retried, by destination.");
  for (const auto& [destination, n] : delivery_failures_) {
    out.Sample("sarloop_delivery_failures_total", Label("destination", destination),
               static_cast<double>(n));
  }
}

}  // namespace sarloop
