// Watch streams: server-streaming calls that push a service's change feed to a caller as it
// commits (Force.WatchInbox, Racu.WatchHandovers, Ukfiu.WatchReferrals, Nca.WatchRegister).
//
// Delivery: each stream holds a cursor (the feed seq it has sent up to) and, while the caller
// keeps up, reads the feed after it a batch at a time and writes one message at a time, the next
// only once gRPC has taken the last (so a caller that stops reading stops the stream: the server
// holds at most one batch per stream, whatever the backlog). Caught up (a batch short of full,
// and no commit since its read began), a stream waits: a commit that stored an event
// (WatchHub::OnCommit) wakes it, and after `heartbeat` of silence it sends a
// heartbeat and reads again (which also catches what another replica committed). The cursor in
// each message is signed (common/security/token.h), so a caller resumes exactly after what it
// handled.
//
// Threads: a stream reads the feed where it is woken: after a commit, on the thread that committed
// (the serving thread, which also runs the writer), and after a write, on the serving thread. A
// read after a commit is the few rows that commit stored; handing it to another thread cost more
// than the read (measured: README, "Watch reads where the commit is"). While more than
// `inline_streams` are open, reads go to the edge's executor instead, so that one commit does not
// hold the writer for every watcher. No stream's lock is held while it calls into gRPC; the hub's
// may be (a stream woken by a commit reads and starts its write under it, as a heartbeat from the
// ticker does), which is safe because gRPC answers a write through the serving queue, never
// inline.
#ifndef SARLOOP_COMMON_MESSAGING_WATCH_H_
#define SARLOOP_COMMON_MESSAGING_WATCH_H_

#include <grpcpp/server_context.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/metrics.h"
#include "common/base/mutex.h"
#include "common/base/status.h"
#include "common/rpc/executor.h"
#include "common/rpc/serving.h"
#include "common/security/audit.h"
#include "common/security/identity.h"
#include "common/security/token.h"
#include "common/storage/storage.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

// Messages a stream reads from the feed at a time: what it may hold for a caller that is slow.
inline constexpr int kWatchBatch = 64;
// Streams whose reads run on the thread that woke them; past this many they run on the executor.
inline constexpr int kWatchInlineStreams = 8;

// Called (by the referral layer's AppendEvent) for each event stored, committed or not: a commit
// after which the count has moved may have added to the feed.
void NoteFeedAppend();

namespace internal {
// What the hub asks of a stream, whatever its message type.
class WatchStreamBase {
 public:
  virtual ~WatchStreamBase() = default;
  // Something was committed: read the feed if idle.
  virtual void Wake() = 0;
  // Send a heartbeat if silent for the heartbeat interval. The steady clock: a system clock
  // stepped back must not silence every stream (their heartbeat's re-read is what finds other
  // replicas' commits), nor one stepped forward send them all at once.
  virtual void Tick(std::chrono::steady_clock::time_point now) = 0;
  // The service is stopping: finish with UNAVAILABLE.
  virtual void Stop() = 0;
};
}  // namespace internal

// The open streams of one service.
class WatchHub {
 public:
  // Reads run on the thread that wakes a stream while at most `inline_streams` are open, and on
  // `executor` when more are (null: always on the calling thread). At most `max_streams` at once;
  // more are RESOURCE_EXHAUSTED.
  WatchHub(Executor* executor, int max_streams = 256, int inline_streams = kWatchInlineStreams);
  ~WatchHub();

  // Told after every commit (Database::SetCommitObserver): wakes the streams when an event was
  // stored since the last time.
  void OnCommit();
  // Finishes every stream (UNAVAILABLE: resume from the cursor) and refuses new ones. Before the
  // gRPC server shuts down, which would otherwise wait for them.
  void Stop();

  // Streams open, and messages they hold read but not yet taken by gRPC (the metrics endpoint).
  int64_t streams() const { return streams_.load(); }
  int64_t buffered() const { return buffered_.load(); }
  void WriteMetrics(MetricsText& out) const;

  // For streams: registration (false when full or stopped), and their reads' executor.
  bool Add(internal::WatchStreamBase* stream);
  void Remove(internal::WatchStreamBase* stream);
  // Runs a stream's read: here, or on the executor when more than inline_streams are open.
  void Run(std::function<void()> task);
  void CountBuffered(int64_t delta) { buffered_.fetch_add(delta); }

 private:
  void Ticker();

  Executor* const executor_;
  const int max_streams_;
  const int inline_streams_;
  // Recursive, and streams visited over a copy of the set: a stream's OnDone (which removes it)
  // may run inline on the thread that is visiting it.
  RecursiveMutex mu_;
  std::set<internal::WatchStreamBase*> open_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t seen_appends_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> streams_{0};
  std::atomic<int64_t> buffered_{0};
  Mutex tick_mu_;
  CondVar tick_cv_;
  bool ticking_ ABSL_GUARDED_BY(tick_mu_) = true;
  std::thread ticker_;
};

// Where a stream starts: the seq after which it sends, from the request's cursor or its start.
// INVALID_ARGUMENT naming cursor or heartbeat_seconds. `head` is the feed's last seq now.
struct WatchStart {
  int64_t after = 0;
  absl::Duration heartbeat;
};
absl::StatusOr<WatchStart> ParseWatchRequest(const v1::WatchRequest& request,
                                             const TokenSigner& signer,
                                             const std::function<absl::StatusOr<int64_t>()>& head);
// The signed cursor for feed position `seq`.
std::string WatchCursor(const TokenSigner& signer, int64_t seq);

// How a service fills its messages: at most `limit` after `after`, each with its feed seq and
// every field but cursor and heartbeat set.
template <typename Response>
using WatchRead = std::function<absl::Status(int64_t after, int limit,
                                             std::vector<std::pair<int64_t, Response>>& out)>;

namespace internal {

// Identifies and audits the caller and parses the request; the stream's start or the refusal.
absl::StatusOr<WatchStart> BeginWatch(grpc::ServerContextBase* ctx, Database* audit_db,
                                      Clock* clock, const char* method,
                                      const v1::WatchRequest& request, const TokenSigner& signer,
                                      const std::function<absl::StatusOr<int64_t>()>& head);

template <typename Response>
class WatchStream final : public ServerStream<Response>, public WatchStreamBase {
 public:
  WatchStream(WatchHub& hub, const TokenSigner& signer, WatchRead<Response> read, WatchStart start)
      : hub_(hub),
        signer_(signer),
        read_(std::move(read)),
        cursor_(start.after),
        heartbeat_every_(start.heartbeat) {}

  // Registered with the hub, sends the first message: a heartbeat with the starting cursor, so
  // a caller that started from now has a cursor before anything happens.
  void OnStart() override {
    if (!hub_.Add(this)) {
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "this service has as many watches open as it takes; retry later"));
      return;
    }
    registered_ = true;
    WriteHeartbeat();
  }

  void Wake() override {
    {
      MutexLock lock(&mu_);
      if (finishing_) return;
      if (busy_) {
        dirty_ = true;
        return;
      }
      busy_ = true;
    }
    PostRead();
  }

  void Tick(std::chrono::steady_clock::time_point now) override {
    {
      MutexLock lock(&mu_);
      if (finishing_ || busy_ || now - last_sent_ < absl::ToChronoNanoseconds(heartbeat_every_)) {
        return;
      }
      busy_ = true;
    }
    WriteHeartbeat();
  }

  void Stop() override {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      if (busy_ || finishing_) return;  // finished when its read or write completes
      finishing_ = true;
    }
    FinishStopped();
  }

  void OnCancel() override {
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
      if (busy_ || finishing_) return;
      finishing_ = true;
    }
    Finish(grpc::Status::CANCELLED);
  }

  void OnWriteDone(bool ok) override {
    enum { kWrite, kRead, kIdle, kFinish } next = kRead;
    const Response* message = nullptr;
    bool stopping = false;
    {
      MutexLock lock(&mu_);
      last_sent_ = std::chrono::steady_clock::now();
      const bool heartbeat = writing_heartbeat_;
      if (heartbeat) {
        writing_heartbeat_ = false;
      } else if (ok) {
        cursor_ = pending_[sent_].first;
        ++sent_;
        hub_.CountBuffered(-1);
      }
      if (!ok || cancelled_ || stopping_) {
        next = kFinish;
      } else if (sent_ < pending_.size()) {
        next = kWrite;
        message = &pending_[sent_].second;
      } else if (!heartbeat && pending_.size() < static_cast<size_t>(kWatchBatch) && !dirty_) {
        // The read that filled this batch reached the end of the feed, and nothing has been
        // committed since it began (that commit's Wake would have set dirty_): reading again
        // would find nothing. Idle until the next commit or heartbeat.
        next = kIdle;
        pending_.clear();
        sent_ = 0;
        busy_ = false;
      } else {
        dirty_ = false;  // the read below sees what that commit stored
      }
      if (next == kFinish) {
        ReleaseLocked();
        finishing_ = true;
        stopping = stopping_;
      }
    }
    if (next == kWrite) {
      this->StartWrite(message);
    } else if (next == kRead) {
      PostRead();
    } else if (next == kFinish) {
      Finish(stopping ? StoppedStatus() : grpc::Status::CANCELLED);
    }
  }

  void OnDone() override {
    if (registered_) hub_.Remove(this);
    delete this;
  }

 private:
  static grpc::Status StoppedStatus() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the service is stopping; watch again from the last cursor you kept");
  }
  void FinishStopped() { Finish(StoppedStatus()); }
  void Finish(grpc::Status status) { ServerStream<Response>::Finish(status); }

  // Drops what was read and not sent (a finished stream sends nothing more).
  void ReleaseLocked() {
    hub_.CountBuffered(-static_cast<int64_t>(pending_.size() - sent_));
    pending_.clear();
    sent_ = 0;
  }

  void WriteHeartbeat() {
    heartbeat_.Clear();
    heartbeat_.set_heartbeat(true);
    heartbeat_.set_cursor(WatchCursor(signer_, cursor_));
    {
      MutexLock lock(&mu_);
      writing_heartbeat_ = true;
    }
    this->StartWrite(&heartbeat_);
  }

  void PostRead() {
    hub_.Run([this] { Read(); });
  }

  // On the executor, while busy_: nothing else touches cursor_ or pending_.
  void Read() {
    std::vector<std::pair<int64_t, Response>> items;
    absl::Status status = read_(cursor_, kWatchBatch, items);
    for (auto& [seq, message] : items) message.set_cursor(WatchCursor(signer_, seq));
    enum { kWrite, kRead, kIdle, kFinish } next = kIdle;
    grpc::Status finish = grpc::Status::CANCELLED;
    {
      MutexLock lock(&mu_);
      if (cancelled_ || stopping_ || !status.ok()) {
        next = kFinish;
        if (stopping_) finish = StoppedStatus();
        if (!status.ok()) finish = ToGrpcStatus(status);
        finishing_ = true;
      } else if (!items.empty()) {
        pending_ = std::move(items);
        sent_ = 0;
        hub_.CountBuffered(static_cast<int64_t>(pending_.size()));
        next = kWrite;
      } else if (dirty_) {
        dirty_ = false;
        next = kRead;
      } else {
        busy_ = false;
      }
    }
    if (next == kWrite) {
      this->StartWrite(&pending_[0].second);
    } else if (next == kRead) {
      PostRead();
    } else if (next == kFinish) {
      Finish(finish);
    }
  }

  WatchHub& hub_;
  const TokenSigner& signer_;
  const WatchRead<Response> read_;
  int64_t cursor_;
  const absl::Duration heartbeat_every_;
  Response heartbeat_;
  Mutex mu_;
  // A read or a write is under way (one at a time); what follows it is decided when it ends.
  // Busy from the start: the first heartbeat is written before the hub may wake the stream.
  bool busy_ ABSL_GUARDED_BY(mu_) = true;
  // A commit arrived while busy: read again before going idle.
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_heartbeat_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ = false;
  std::chrono::steady_clock::time_point last_sent_ ABSL_GUARDED_BY(mu_) =
      std::chrono::steady_clock::now();
  std::vector<std::pair<int64_t, Response>> pending_;
  size_t sent_ = 0;
};

// A stream finished at once with `status`.
template <typename Response>
class RefusedWatch final : public ServerStream<Response> {
 public:
  explicit RefusedWatch(const grpc::Status& status) : status_(status) {}
  void OnStart() override { this->Finish(status_); }
  void OnWriteDone(bool) override {}
  void OnDone() override { delete this; }

 private:
  const grpc::Status status_;
};

}  // namespace internal

// A watch call: identifies and audits the caller, parses the request (cursor, start,
// heartbeat_seconds), then streams `read`'s messages. `head` is the feed's last seq (for a start
// from now).
template <typename Response>
ServerStream<Response>* ServeWatch(grpc::ServerContextBase* ctx, Database* audit_db, Clock* clock,
                                   WatchHub& hub, const TokenSigner& signer, const char* method,
                                   const v1::WatchRequest& request,
                                   const std::function<absl::StatusOr<int64_t>()>& head,
                                   WatchRead<Response> read) {
  absl::StatusOr<WatchStart> start =
      internal::BeginWatch(ctx, audit_db, clock, method, request, signer, head);
  if (!start.ok()) return new internal::RefusedWatch<Response>(ToGrpcStatus(start.status()));
  return new internal::WatchStream<Response>(hub, signer, std::move(read), *start);
}

}  // namespace sarloop

#endif  // SARLOOP_COMMON_MESSAGING_WATCH_H_
