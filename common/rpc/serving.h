// Serving from a completion queue. Every method of a sarloop server is served through one
// completion queue and one thread of the server's own, which takes each call as it arrives, hands
// it to its handler and ends it. gRPC's callback API, used before, runs its callbacks on at least
// two threads per process that hand the poller to each other on almost every event: measured,
// about 6.6 thread wake-ups per call served the services' way against 2.6 from a completion queue
// (README, "What the way of serving costs"). Nothing in a server process may use the callback API
// (not a method, not a client call): its threads would poll beside this one.
//
// Requests arrive as bytes and are parsed here, so that a malformed request is refused with
// INVALID_ARGUMENT naming what is wrong, as the edge promises; gRPC's own parsing would answer
// before any of the project's code saw the call.
//
// Threads: the queue's thread runs arrivals and handlers (which only start work) and every
// completion; answers (UnaryCall::Finish, ServerStream's StartWrite and Finish) may come from any
// thread. One thread, so a call's completions never race each other. In a server it also runs the
// database's writer (CallQueue::Host): the write calls that arrived together are run, committed
// in one batch and answered there, after the events that were ready have been taken.
#ifndef SARLOOP_COMMON_RPC_SERVING_H_
#define SARLOOP_COMMON_RPC_SERVING_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/alarm.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/base/mutex.h"

namespace sarloop {

// A unary call as its handler sees it.
class UnaryCall {
 public:
  virtual grpc::ServerContextBase* context() = 0;
  // Answers the call, once, from any thread: with the response the handler was given when
  // `status` is OK, with `status` alone otherwise.
  virtual void Finish(const grpc::Status& status) = 0;

 protected:
  virtual ~UnaryCall() = default;
};

namespace internal {
class StreamCall;
}  // namespace internal

// One server-streaming call, written in the shape of grpc::ServerWriteReactor: at most one write
// outstanding, OnWriteDone when it is taken, Finish once, OnDone last (the stream deletes itself
// there). OnCancel when the caller went away; the stream must still Finish.
template <typename Response>
class ServerStream {
 public:
  virtual ~ServerStream() = default;

  void StartWrite(const Response* message);
  void Finish(const grpc::Status& status);

  // Once the call is bound to the stream, before anything else: where a stream may first write
  // or finish (not in its constructor).
  virtual void OnStart() = 0;
  virtual void OnWriteDone(bool ok) = 0;
  virtual void OnCancel() {}
  virtual void OnDone() = 0;

 private:
  friend class internal::StreamCall;
  internal::StreamCall* call_ = nullptr;
};

// What the queue's thread runs for each event: a served call's, or a client call's that a thread
// of the process started on the queue (the delivery loops': CallQueue::queue()).
class QueueTag {
 public:
  virtual void Done(bool ok) = 0;

 protected:
  ~QueueTag() = default;
};

namespace internal {

// The untyped side of a stream, which ServerStream writes through.
class StreamCall {
 public:
  virtual void Write(const google::protobuf::Message& message) = 0;
  virtual void Finish(const grpc::Status& status) = 0;

  template <typename Response>
  static void Bind(ServerStream<Response>* stream, StreamCall* call) {
    stream->call_ = call;
  }

 protected:
  ~StreamCall() = default;
};

// The untyped forms handlers are kept in.
using UnaryFn = std::function<void(UnaryCall*, const google::protobuf::Message& request,
                                   google::protobuf::Message* response)>;
// A typed stream's events, untyped.
struct StreamStart {
  // Binds the stream to its call, then runs its OnStart.
  std::function<void(StreamCall*)> start;
  std::function<void(bool ok)> on_write_done;
  std::function<void()> on_cancel;
  std::function<void()> on_done;
};
using StreamFn =
    std::function<StreamStart(grpc::ServerContextBase*, const google::protobuf::Message& request)>;
using EachFn = std::function<absl::Status(const google::protobuf::Message& request,
                                          google::protobuf::Message* response)>;

}  // namespace internal

// A service's methods, by name, each served as bytes. Build it before the server is built:
// gRPC reads the methods when the service is registered.
class RawService final : public grpc::Service {
 public:
  // `full_name` ("sarloop.v1.Racu") names the proto service whose methods these are; Check()
  // says whether each of them has a handler.
  explicit RawService(const char* full_name);

  // A unary method, by its name in the service ("ListHandovers").
  template <typename Request, typename Response>
  void Unary(const std::string& name,
             std::function<void(UnaryCall*, const Request*, Response*)> fn);
  // A unary method as a member of `self`.
  template <typename Self, typename Request, typename Response>
  void Unary(const std::string& name, Self* self,
             void (Self::*fn)(UnaryCall*, const Request*, Response*)) {
    Unary<Request, Response>(name, [self, fn](UnaryCall* call, const Request* req, Response* resp) {
      (self->*fn)(call, req, resp);
    });
  }
  // A server-streaming method: the handler returns the stream that will write the call's
  // messages (a new object, which deletes itself in OnDone).
  template <typename Request, typename Response>
  void Streaming(
      const std::string& name,
      std::function<ServerStream<Response>*(grpc::ServerContextBase*, const Request*)> fn);
  template <typename Self, typename Request, typename Response>
  void Streaming(const std::string& name, Self* self,
                 ServerStream<Response>* (Self::*fn)(grpc::ServerContextBase*, const Request*)) {
    Streaming<Request, Response>(name,
                                 [self, fn](grpc::ServerContextBase* ctx, const Request* req) {
                                   return (self->*fn)(ctx, req);
                                 });
  }
  // A bidirectional method that answers each request with one response, in order, until the
  // caller half-closes (OK). A refusal ends the call with that status.
  template <typename Request, typename Response>
  void EachAnswered(const std::string& name,
                    std::function<absl::Status(const Request&, Response*)> fn);

  // OK when every method of the proto service has a handler; FAILED_PRECONDITION naming the
  // first that has none (a method added to a .proto and not to its service).
  absl::Status Check() const;

  const std::string& full_name() const { return full_name_; }

  // What the handlers point into, kept as long as the service.
  void Keep(std::shared_ptr<void> owner) { owners_.push_back(std::move(owner)); }

  // Arms one arrival of method `index` on `queue` (the queue does, and each call as it arrives,
  // for the next).
  void Arm(int index, class CallQueue* queue);

 private:
  friend class CallQueue;
  struct Method {
    std::string path;  // "/sarloop.v1.Racu/ListHandovers"
    const google::protobuf::Message* request_prototype = nullptr;
    const google::protobuf::Message* response_prototype = nullptr;
    internal::UnaryFn unary;
    internal::StreamFn streaming;
    internal::EachFn each;
  };
  int Add(const std::string& name, grpc::internal::RpcMethod::RpcType type,
          const google::protobuf::Message& request, const google::protobuf::Message& response);

  const std::string full_name_;
  // Stable addresses: gRPC keeps the method's name as a pointer.
  std::deque<Method> methods_;
  std::vector<std::shared_ptr<void>> owners_;
};

// The methods of `impl` (its AddTo(RawService&)) as the service Impl::kServiceName, keeping
// `impl` alive.
template <typename Impl>
std::shared_ptr<RawService> ServeRaw(std::shared_ptr<Impl> impl) {
  auto raw = std::make_shared<RawService>(Impl::kServiceName);
  impl->AddTo(*raw);
  raw->Keep(std::move(impl));
  return raw;
}

// The completion queue every method of one server is served from, and its thread.
class CallQueue {
 public:
  // Adds the queue to `builder`; the services are registered with it by the caller.
  explicit CallQueue(grpc::ServerBuilder& builder);
  ~CallQueue();

  // After the server is built: arms an arrival for every method of `services` and starts the
  // thread.
  void Start(const std::vector<RawService*>& services);
  // After grpc::Server::Shutdown has returned and nothing can answer a call any more (every
  // body has run): shuts the queue down, drains it and joins the thread. An answer started after
  // this aborts the process.
  void Stop();

  // Client calls may be started on it too, their tags QueueTags: the queue's thread then polls
  // for them, and the calling thread only waits for its answer (no second poller in the process
  // to hand gRPC's epoll set to and from).
  grpc::ServerCompletionQueue* queue() { return queue_.get(); }

  // Work the queue's thread runs besides its events (the database's writer, Database::HostWriter),
  // so that a write call is taken, run, committed and answered on one thread. Before Start:
  // `run` is called whenever the events that are ready have been taken (every one of them first,
  // so that write calls arriving together share a commit) and returns the time by which it must
  // be called again unwoken. `released` is called once the thread has ended (Stop).
  using Work = std::function<std::chrono::steady_clock::time_point()>;
  void Host(Work run, std::function<void()> released);
  // From any thread: the queue's thread calls the hosted work soon. After Stop, nothing: the
  // work has been released.
  void Wake();

 private:
  void Loop();
  void LoopHosting();

  // The wake-up's event.
  class Woken final : public QueueTag {
   public:
    explicit Woken(CallQueue* queue) : queue_(queue) {}
    void Done(bool ok) override;

   private:
    CallQueue* const queue_;
  };

  std::unique_ptr<grpc::ServerCompletionQueue> queue_;
  std::thread thread_;
  Work run_;
  std::function<void()> released_;
  // One alarm at a time carries every Wake made until its event is taken.
  Mutex wake_mu_;
  grpc::Alarm alarm_ ABSL_GUARDED_BY(wake_mu_);
  bool alarm_set_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(wake_mu_) = false;
  Woken woken_{this};
};

// ---- implementation of the templates ----

template <typename Response>
void ServerStream<Response>::StartWrite(const Response* message) {
  call_->Write(*message);
}

template <typename Response>
void ServerStream<Response>::Finish(const grpc::Status& status) {
  call_->Finish(status);
}

template <typename Request, typename Response>
void RawService::Unary(const std::string& name,
                       std::function<void(UnaryCall*, const Request*, Response*)> fn) {
  const int i = Add(name, grpc::internal::RpcMethod::NORMAL_RPC, Request::default_instance(),
                    Response::default_instance());
  methods_[i].unary = [fn = std::move(fn)](UnaryCall* call,
                                           const google::protobuf::Message& request,
                                           google::protobuf::Message* response) {
    fn(call, static_cast<const Request*>(&request), static_cast<Response*>(response));
  };
}

template <typename Request, typename Response>
void RawService::Streaming(
    const std::string& name,
    std::function<ServerStream<Response>*(grpc::ServerContextBase*, const Request*)> fn) {
  const int i = Add(name, grpc::internal::RpcMethod::SERVER_STREAMING, Request::default_instance(),
                    Response::default_instance());
  methods_[i].streaming = [fn = std::move(fn)](grpc::ServerContextBase* ctx,
                                               const google::protobuf::Message& request) {
    ServerStream<Response>* stream = fn(ctx, static_cast<const Request*>(&request));
    internal::StreamStart start;
    start.start = [stream](internal::StreamCall* call) {
      internal::StreamCall::Bind(stream, call);
      stream->OnStart();
    };
    start.on_write_done = [stream](bool ok) { stream->OnWriteDone(ok); };
    start.on_cancel = [stream] { stream->OnCancel(); };
    start.on_done = [stream] { stream->OnDone(); };
    return start;
  };
}

template <typename Request, typename Response>
void RawService::EachAnswered(const std::string& name,
                              std::function<absl::Status(const Request&, Response*)> fn) {
  const int i = Add(name, grpc::internal::RpcMethod::BIDI_STREAMING, Request::default_instance(),
                    Response::default_instance());
  methods_[i].each = [fn = std::move(fn)](const google::protobuf::Message& request,
                                          google::protobuf::Message* response) {
    return fn(static_cast<const Request&>(request), static_cast<Response*>(response));
  };
}

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_SERVING_H_
