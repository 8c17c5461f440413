#include "common/rpc/serving.h"

#include <google/protobuf/arena.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/async_unary_call.h>
#include <pthread.h>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/rpc/request_checks.h"

namespace sarloop {
namespace internal {
namespace {

// A call's event, dispatched to one of its members on the queue's thread.
template <typename T, void (T::*F)(bool)>
class MemberTag final : public QueueTag {
 public:
  explicit MemberTag(T* self) : self_(self) {}
  void Done(bool ok) override { (self_->*F)(ok); }

 private:
  T* const self_;
};

absl::StatusOr<grpc::ByteBuffer> Serialize(const google::protobuf::Message& message) {
  grpc::ByteBuffer bytes;
  bool own = false;
  grpc::Status s =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, &bytes, &own);
  if (!s.ok()) return absl::InternalError("the response cannot be encoded");
  return bytes;
}

}  // namespace

// What every call of one method shares: how the next call is armed and the request is read.
struct MethodRef {
  RawService* service;
  int index;
  CallQueue* queue;
  const std::string* path;

  // The method's next call may arrive while this one is handled.
  void ArmNext() const { service->Arm(index, queue); }
  absl::Status Parse(grpc::ByteBuffer& bytes, google::protobuf::Message* request) const {
    absl::Status parsed = ParseRequest(bytes, *path, request);
    bytes.Clear();
    return parsed;
  }
};

class UnaryCallImpl final : public UnaryCall {
 public:
  UnaryCallImpl(MethodRef method, const google::protobuf::Message& request,
                const google::protobuf::Message& response, const UnaryFn* fn)
      : method_(method),
        request_(request.New(&arena_)),
        response_(response.New(&arena_)),
        fn_(fn) {}

  grpc::ServerContextBase* context() override { return &ctx_; }

  void Finish(const grpc::Status& status) override {
    if (!status.ok()) {
      responder_.FinishWithError(status, &finished_);
      return;
    }
    absl::StatusOr<grpc::ByteBuffer> bytes = Serialize(*response_);
    if (!bytes.ok()) {
      responder_.FinishWithError(ToGrpcStatus(bytes.status()), &finished_);
      return;
    }
    responder_.Finish(*bytes, status, &finished_);
  }

  grpc::ServerContext* ctx() { return &ctx_; }
  grpc::ByteBuffer* bytes() { return &bytes_; }
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder() { return &responder_; }
  QueueTag* arrived() { return &arrived_; }

 private:
  ~UnaryCallImpl() override = default;

  void Arrived(bool ok) {
    if (!ok) {  // the server is shutting down: no call was taken
      delete this;
      return;
    }
    method_.ArmNext();
    absl::Status parsed = method_.Parse(bytes_, request_);
    if (!parsed.ok()) {
      Finish(ToGrpcStatus(parsed));
      return;
    }
    (*fn_)(this, *request_, response_);
  }

  void Finished(bool) { delete this; }

  const MethodRef method_;
  // The request and the response, with every message and string object in them, on the call's
  // arena: freed in a few blocks with the call, not one by one. A delivered batch of envelopes,
  // each with its referral, is hundreds of objects.
  google::protobuf::Arena arena_;
  google::protobuf::Message* const request_;
  google::protobuf::Message* const response_;
  const UnaryFn* const fn_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer bytes_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_{&ctx_};
  MemberTag<UnaryCallImpl, &UnaryCallImpl::Arrived> arrived_{this};
  MemberTag<UnaryCallImpl, &UnaryCallImpl::Finished> finished_{this};
};

class StreamCallImpl final : public StreamCall {
 public:
  StreamCallImpl(MethodRef method, const google::protobuf::Message& request, const StreamFn* fn)
      : method_(method), request_(request.New()), fn_(fn) {
    // Before the call is requested, or its end is never reported.
    ctx_.AsyncNotifyWhenDone(&done_);
  }

  void Write(const google::protobuf::Message& message) override {
    absl::StatusOr<grpc::ByteBuffer> bytes = Serialize(message);
    if (!bytes.ok()) {
      // An empty write would reach the caller as a message with every field unset: the call
      // ends instead, and the stream with it (OnDone).
      writer_.Finish(ToGrpcStatus(bytes.status()), &finished_);
      return;
    }
    writer_.Write(*bytes, &written_);
  }

  void Finish(const grpc::Status& status) override { writer_.Finish(status, &finished_); }

  grpc::ServerContext* ctx() { return &ctx_; }
  grpc::ByteBuffer* bytes() { return &bytes_; }
  grpc::ServerAsyncWriter<grpc::ByteBuffer>* writer() { return &writer_; }
  QueueTag* arrived() { return &arrived_; }

 private:
  ~StreamCallImpl() = default;

  void Arrived(bool ok) {
    if (!ok) {  // not taken: its end is never reported either
      delete this;
      return;
    }
    method_.ArmNext();
    absl::Status parsed = method_.Parse(bytes_, request_.get());
    if (!parsed.ok()) {
      Finish(ToGrpcStatus(parsed));
      return;
    }
    stream_ = (*fn_)(&ctx_, *request_);
    started_ = true;
    stream_.start(this);
  }

  void Written(bool ok) { stream_.on_write_done(ok); }

  void Ended(bool) {
    done_seen_ = true;
    if (started_ && ctx_.IsCancelled()) stream_.on_cancel();
    MaybeDelete();
  }

  void Finished(bool) {
    finished_seen_ = true;
    MaybeDelete();
  }

  void MaybeDelete() {
    if (!done_seen_ || !finished_seen_) return;
    if (started_) stream_.on_done();
    delete this;
  }

  const MethodRef method_;
  const std::unique_ptr<google::protobuf::Message> request_;
  const StreamFn* const fn_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer bytes_;
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_{&ctx_};
  StreamStart stream_;
  bool started_ = false;
  bool done_seen_ = false;
  bool finished_seen_ = false;
  MemberTag<StreamCallImpl, &StreamCallImpl::Arrived> arrived_{this};
  MemberTag<StreamCallImpl, &StreamCallImpl::Written> written_{this};
  MemberTag<StreamCallImpl, &StreamCallImpl::Ended> done_{this};
  MemberTag<StreamCallImpl, &StreamCallImpl::Finished> finished_{this};
};

class EachCallImpl final {
 public:
  EachCallImpl(MethodRef method, const google::protobuf::Message& request,
               const google::protobuf::Message& response, const EachFn* fn)
      : method_(method), request_(request.New()), response_(response.New()), fn_(fn) {}

  grpc::ServerContext* ctx() { return &ctx_; }
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream() { return &stream_; }
  QueueTag* arrived() { return &arrived_; }

 private:
  void Arrived(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    method_.ArmNext();
    stream_.Read(&bytes_, &read_);
  }

  void ReadDone(bool ok) {
    if (!ok) {  // the caller has half-closed (or gone)
      stream_.Finish(grpc::Status::OK, &finished_);
      return;
    }
    request_->Clear();
    response_->Clear();
    absl::Status status = method_.Parse(bytes_, request_.get());
    if (status.ok()) status = (*fn_)(*request_, response_.get());
    absl::StatusOr<grpc::ByteBuffer> out =
        status.ok() ? Serialize(*response_) : absl::StatusOr<grpc::ByteBuffer>(status);
    if (!out.ok()) {
      stream_.Finish(ToGrpcStatus(out.status()), &finished_);
      return;
    }
    stream_.Write(*out, &written_);
  }

  void Written(bool ok) {
    if (!ok) {
      stream_.Finish(grpc::Status::CANCELLED, &finished_);
      return;
    }
    stream_.Read(&bytes_, &read_);
  }

  void Finished(bool) { delete this; }

  const MethodRef method_;
  const std::unique_ptr<google::protobuf::Message> request_;
  const std::unique_ptr<google::protobuf::Message> response_;
  const EachFn* const fn_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer bytes_;
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_{&ctx_};
  MemberTag<EachCallImpl, &EachCallImpl::Arrived> arrived_{this};
  MemberTag<EachCallImpl, &EachCallImpl::ReadDone> read_{this};
  MemberTag<EachCallImpl, &EachCallImpl::Written> written_{this};
  MemberTag<EachCallImpl, &EachCallImpl::Finished> finished_{this};
};

}  // namespace internal

RawService::RawService(const char* full_name) : full_name_(full_name) {}

int RawService::Add(const std::string& name, grpc::internal::RpcMethod::RpcType type,
                    const google::protobuf::Message& request,
                    const google::protobuf::Message& response) {
  Method& m = methods_.emplace_back();
  m.path = absl::StrCat("/", full_name_, "/", name);
  m.request_prototype = &request;
  m.response_prototype = &response;
  const int index = static_cast<int>(methods_.size()) - 1;
  AddMethod(new grpc::internal::RpcServiceMethod(m.path.c_str(), type, nullptr));
  MarkMethodRaw(index);
  return index;
}

absl::Status RawService::Check() const {
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(full_name_);
  if (descriptor == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no service ", full_name_, " is compiled in"));
  }
  for (int i = 0; i < descriptor->method_count(); ++i) {
    const std::string path = absl::StrCat("/", full_name_, "/", descriptor->method(i)->name());
    bool found = false;
    for (const Method& m : methods_) found |= m.path == path;
    if (!found) return absl::FailedPreconditionError(absl::StrCat(path, " has no handler"));
  }
  return absl::OkStatus();
}

void RawService::Arm(int index, CallQueue* queue) {
  Method& m = methods_[index];
  grpc::ServerCompletionQueue* cq = queue->queue();
  const internal::MethodRef ref{this, index, queue, &m.path};
  if (m.unary) {
    auto* call =
        new internal::UnaryCallImpl(ref, *m.request_prototype, *m.response_prototype, &m.unary);
    RequestAsyncUnary(index, call->ctx(), call->bytes(), call->responder(), cq, cq,
                      call->arrived());
  } else if (m.streaming) {
    auto* call = new internal::StreamCallImpl(ref, *m.request_prototype, &m.streaming);
    RequestAsyncServerStreaming(index, call->ctx(), call->bytes(), call->writer(), cq, cq,
                                call->arrived());
  } else {
    auto* call =
        new internal::EachCallImpl(ref, *m.request_prototype, *m.response_prototype, &m.each);
    RequestAsyncBidiStreaming(index, call->ctx(), call->stream(), cq, cq, call->arrived());
  }
}

CallQueue::CallQueue(grpc::ServerBuilder& builder) : queue_(builder.AddCompletionQueue()) {}

CallQueue::~CallQueue() {
  if (thread_.joinable()) Stop();
}

void CallQueue::Start(const std::vector<RawService*>& services) {
  for (RawService* s : services) {
    for (int i = 0; i < static_cast<int>(s->methods_.size()); ++i) s->Arm(i, this);
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sarloop-serve");
    Loop();
  });
}

void CallQueue::Host(Work run, std::function<void()> released) {
  run_ = std::move(run);
  released_ = std::move(released);
}

void CallQueue::Loop() {
  if (run_) return LoopHosting();
  void* tag = nullptr;
  bool ok = false;
  while (queue_->Next(&tag, &ok)) static_cast<QueueTag*>(tag)->Done(ok);
}

namespace {

gpr_timespec QueueDeadline(std::chrono::steady_clock::time_point due) {
  if (due == std::chrono::steady_clock::time_point::max()) {
    return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  }
  const int64_t left =
      std::chrono::duration_cast<std::chrono::nanoseconds>(due - std::chrono::steady_clock::now())
          .count();
  if (left <= 0) return gpr_time_0(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(left, GPR_TIMESPAN));
}

// Events taken before the hosted work runs again, at most: under a flood of arrivals (each
// arms the next) the work still runs.
constexpr int kEventsBetweenRuns = 512;

}  // namespace

void CallQueue::LoopHosting() {
  void* tag = nullptr;
  bool ok = false;
  for (;;) {
    const std::chrono::steady_clock::time_point due = run_();
    grpc::CompletionQueue::NextStatus status = queue_->AsyncNext(&tag, &ok, QueueDeadline(due));
    // Every event already there is taken before the work runs again: the write calls among them
    // become one batch, one commit.
    for (int taken = 0; status == grpc::CompletionQueue::GOT_EVENT; ++taken) {
      static_cast<QueueTag*>(tag)->Done(ok);
      if (taken + 1 == kEventsBetweenRuns) break;
      status = queue_->AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
    }
    if (status == grpc::CompletionQueue::SHUTDOWN) return;
  }
}

void CallQueue::Wake() {
  MutexLock lock(&wake_mu_);
  if (stopping_ || alarm_set_) return;
  alarm_set_ = true;
  alarm_.Set(queue_.get(), gpr_time_0(GPR_CLOCK_MONOTONIC), &woken_);
}

void CallQueue::Woken::Done(bool) {
  MutexLock lock(&queue_->wake_mu_);
  queue_->alarm_set_ = false;
}

void CallQueue::Stop() {
  {
    // No alarm may be set on a queue that is shut down.
    MutexLock lock(&wake_mu_);
    stopping_ = true;
  }
  queue_->Shutdown();
  if (thread_.joinable()) thread_.join();
  if (released_) {
    std::function<void()> released = std::move(released_);
    released_ = nullptr;
    released();
  }
}

}  // namespace sarloop
