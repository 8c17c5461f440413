#include "common/rpc/admission.h"

#include <string_view>

namespace sarloop {

// Lives exactly as long as its call: made when the call arrives, destroyed when it ends however
// it ends (finished, cancelled, or failed before any handler ran).
class Admission::Counter : public grpc::experimental::Interceptor {
 public:
  Counter(Admission* admission, grpc::experimental::ServerRpcInfo* info)
      : admission_(admission), ctx_(info->server_context()) {
    if (admission_->held_.fetch_add(1) < admission_->limit_) return;
    admission_->held_.fetch_sub(1);
    admission_->refused_.fetch_add(1);
    shed_ = true;
    MutexLock lock(&admission_->mu_);
    admission_->shed_.insert(ctx_);
  }

  ~Counter() override {
    if (!shed_) {
      admission_->held_.fetch_sub(1);
      return;
    }
    MutexLock lock(&admission_->mu_);
    admission_->shed_.erase(ctx_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  Admission* const admission_;
  const grpc::ServerContextBase* const ctx_;
  bool shed_ = false;
};

class Admission::Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(Admission* admission) : admission_(admission) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // Health checks and reflection are never refused: they are how operators see the overload.
    if (std::string_view(info->method()).rfind("/sarloop.v1.", 0) != 0) return nullptr;
    return new Counter(admission_, info);
  }

 private:
  Admission* const admission_;
};

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Admission::InterceptorFactory() {
  return std::make_unique<Factory>(this);
}

bool Admission::Shed(const grpc::ServerContextBase* ctx) {
  MutexLock lock(&mu_);
  return shed_.count(ctx) > 0;
}

}  // namespace sarloop
