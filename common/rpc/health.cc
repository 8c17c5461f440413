#include "common/rpc/health.h"

#include <optional>
#include <vector>

#include "common/base/mutex.h"
#include "grpc/health/v1/health.pb.h"

namespace sarloop {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch: the latest status not yet written waits while a write is under way, so a watcher
// that reads slowly holds one message, and sees the last status.
class Health::Watcher final : public ServerStream<HealthCheckResponse> {
 public:
  Watcher(Health* health, std::string service) : health_(health), service_(std::move(service)) {}

  const std::string& service() const { return service_; }

  void OnStart() override {
    int status = 0;
    {
      MutexLock lock(&health_->mu_);
      if (health_->stopped_) {
        status = -1;
      } else {
        health_->watchers_.insert(this);
        registered_ = true;
        status = health_->StatusOf(service_);
      }
    }
    if (status < 0) {
      EndNow(Stopped());
      return;
    }
    Notify(status);
  }

  // With the health's lock held.
  void Notify(int status) {
    {
      MutexLock lock(&mu_);
      if (ending_ || status == sent_) return;
      if (writing_) {
        pending_ = status;
        return;
      }
      writing_ = true;
      sent_ = status;
      message_.set_status(static_cast<HealthCheckResponse::ServingStatus>(status));
    }
    StartWrite(&message_);
  }

  void Stop() { End(Stopped()); }

  void OnWriteDone(bool ok) override {
    bool write = false;
    std::optional<grpc::Status> end;
    {
      MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        end = grpc::Status::CANCELLED;
      } else if (end_.has_value()) {
        end = end_;
      } else if (pending_ >= 0 && pending_ != sent_) {
        writing_ = write = true;
        sent_ = pending_;
        message_.set_status(static_cast<HealthCheckResponse::ServingStatus>(sent_));
      }
      pending_ = -1;
      if (end.has_value()) ending_ = true;
    }
    if (write) StartWrite(&message_);
    if (end.has_value()) Finish(*end);
  }

  void OnCancel() override { End(grpc::Status::CANCELLED); }

  void OnDone() override {
    if (registered_) health_->Remove(this);
    delete this;
  }

 private:
  static grpc::Status Stopped() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the service is stopping");
  }

  // Finishes now, or when the write under way is done.
  void End(const grpc::Status& status) {
    {
      MutexLock lock(&mu_);
      if (ending_) return;
      if (writing_) {
        if (!end_.has_value()) end_ = status;
        return;
      }
      ending_ = true;
    }
    Finish(status);
  }
  void EndNow(const grpc::Status& status) {
    {
      MutexLock lock(&mu_);
      ending_ = true;
    }
    Finish(status);
  }

  Health* const health_;
  const std::string service_;
  bool registered_ = false;
  Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  int sent_ ABSL_GUARDED_BY(mu_) = -1;
  int pending_ ABSL_GUARDED_BY(mu_) = -1;
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  HealthCheckResponse message_;  // written only while not writing_
};

Health::Health() = default;
Health::~Health() = default;

int Health::StatusOf(const std::string& service) {
  auto it = serving_.find(service);
  if (it == serving_.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
  return it->second ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

void Health::SetServingStatus(const std::string& service, bool serving) {
  MutexLock lock(&mu_);
  if (stopped_) return;
  serving_[service] = serving;
  const int status = StatusOf(service);
  for (Watcher* w : watchers_) {
    if (w->service() == service) w->Notify(status);
  }
}

void Health::SetServingStatus(bool serving) {
  std::vector<std::string> names;
  {
    MutexLock lock(&mu_);
    for (const auto& [name, _] : serving_) names.push_back(name);
  }
  for (const std::string& name : names) SetServingStatus(name, serving);
}

void Health::Stop() {
  MutexLock lock(&mu_);
  stopped_ = true;
  for (Watcher* w : watchers_) w->Stop();
}

void Health::Remove(Watcher* watcher) {
  MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

std::shared_ptr<RawService> Health::Service() {
  auto raw = std::make_shared<RawService>("grpc.health.v1.Health");
  raw->Unary<HealthCheckRequest, HealthCheckResponse>(
      "Check", [this](UnaryCall* call, const HealthCheckRequest* req, HealthCheckResponse* resp) {
        int status = 0;
        {
          MutexLock lock(&mu_);
          status = StatusOf(req->service());
        }
        if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
          call->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
          return;
        }
        resp->set_status(static_cast<HealthCheckResponse::ServingStatus>(status));
        call->Finish(grpc::Status::OK);
      });
  raw->Streaming<HealthCheckRequest, HealthCheckResponse>(
      "Watch", [this](grpc::ServerContextBase*, const HealthCheckRequest* req) {
        return new Watcher(this, req->service());
      });
  return raw;
}

}  // namespace sarloop
