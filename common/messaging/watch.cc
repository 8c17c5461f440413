#include "common/messaging/watch.h"

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sarloop {
namespace {

std::atomic<uint64_t> feed_appends{0};

constexpr absl::string_view kCursorKind = "watch";

}  // namespace

void NoteFeedAppend() { feed_appends.fetch_add(1, std::memory_order_release); }

WatchHub::WatchHub(Executor* executor, int max_streams, int inline_streams)
    : executor_(executor),
      max_streams_(max_streams),
      inline_streams_(inline_streams),
      ticker_([this] { Ticker(); }) {}

WatchHub::~WatchHub() {
  {
    MutexLock lock(&tick_mu_);
    ticking_ = false;
  }
  tick_cv_.SignalAll();
  ticker_.join();
}

void WatchHub::Ticker() {
  MutexLock tick_lock(&tick_mu_);
  while (ticking_) {
    // Heartbeats are due in whole seconds (heartbeat_seconds): a tick a second is enough.
    tick_cv_.WaitFor(&tick_mu_, std::chrono::seconds(1));
    if (!ticking_) break;
    tick_lock.Unlock();
    {
      RecursiveMutexLock lock(&mu_);
      const auto now = std::chrono::steady_clock::now();
      const std::vector<internal::WatchStreamBase*> streams(open_.begin(), open_.end());
      for (internal::WatchStreamBase* s : streams) s->Tick(now);
    }
    tick_lock.Lock();
  }
}

void WatchHub::OnCommit() {
  RecursiveMutexLock lock(&mu_);
  // Read under the lock, so that two committing threads cannot record their counts out of order
  // (the later count overwritten by the earlier one, and the next commit woken for nothing).
  const uint64_t appends = feed_appends.load(std::memory_order_acquire);
  if (appends == seen_appends_) return;
  seen_appends_ = appends;
  const std::vector<internal::WatchStreamBase*> streams(open_.begin(), open_.end());
  for (internal::WatchStreamBase* s : streams) s->Wake();
}

void WatchHub::Stop() {
  RecursiveMutexLock lock(&mu_);
  stopped_ = true;
  const std::vector<internal::WatchStreamBase*> streams(open_.begin(), open_.end());
  for (internal::WatchStreamBase* s : streams) s->Stop();
}

bool WatchHub::Add(internal::WatchStreamBase* stream) {
  RecursiveMutexLock lock(&mu_);
  if (stopped_ || static_cast<int>(open_.size()) >= max_streams_) return false;
  open_.insert(stream);
  streams_.store(static_cast<int64_t>(open_.size()));
  return true;
}

void WatchHub::Remove(internal::WatchStreamBase* stream) {
  RecursiveMutexLock lock(&mu_);
  open_.erase(stream);
  streams_.store(static_cast<int64_t>(open_.size()));
}

void WatchHub::Run(std::function<void()> task) {
  if (executor_ == nullptr || streams_.load() <= inline_streams_) {
    task();
  } else {
    executor_->Post(std::move(task));
  }
}

void WatchHub::WriteMetrics(MetricsText& out) const {
  out.Family("sarloop_watch_streams", "gauge", "Watch streams open.");
  out.Sample("sarloop_watch_streams", "", static_cast<double>(streams()));
  out.Family("sarloop_watch_buffered_messages", "gauge",
             "Messages watch streams have read from the feed and gRPC has not yet taken (at most "
             "one batch per stream, however slow its caller).");
  out.Sample("sarloop_watch_buffered_messages", "", static_cast<double>(buffered()));
}

std::string WatchCursor(const TokenSigner& signer, int64_t seq) {
  return signer.Sign(kCursorKind, "", absl::StrCat(seq));
}

absl::StatusOr<WatchStart> ParseWatchRequest(const v1::WatchRequest& request,
                                             const TokenSigner& signer,
                                             const std::function<absl::StatusOr<int64_t>()>& head) {
  WatchStart start;
  const int32_t hb = request.heartbeat_seconds();
  if (hb < 0 || hb > 300) return FieldError("heartbeat_seconds", "must be 0 (15) or 1 to 300");
  start.heartbeat = absl::Seconds(hb == 0 ? 15 : hb);
  if (!request.cursor().empty()) {
    if (request.start() != v1::WATCH_START_NOW) {
      return FieldError("start", "is for a watch without a cursor; a cursor says where to resume");
    }
    ASSIGN_OR_RETURN(std::string payload, signer.Open("cursor", kCursorKind, "", request.cursor()));
    if (!absl::SimpleAtoi(payload, &start.after) || start.after < 0) {
      return FieldError("cursor", "is not a cursor this service issued");
    }
    return start;
  }
  switch (request.start()) {
    case v1::WATCH_START_BEGINNING:
      start.after = 0;
      return start;
    case v1::WATCH_START_NOW: {
      ASSIGN_OR_RETURN(start.after, head());
      return start;
    }
    default:
      return FieldError("start", "is not a WatchStart value");
  }
}

namespace internal {

absl::StatusOr<WatchStart> BeginWatch(grpc::ServerContextBase* ctx, Database* audit_db,
                                      Clock* clock, const char* method,
                                      const v1::WatchRequest& request, const TokenSigner& signer,
                                      const std::function<absl::StatusOr<int64_t>()>& head) {
  absl::StatusOr<Identity> id = PeerIdentity(*ctx);
  AuditEntry entry;
  entry.at = clock != nullptr ? clock->Now() : absl::Now();
  entry.method = method;
  absl::StatusOr<WatchStart> start =
      id.ok() ? absl::StatusOr<WatchStart>(WatchStart{}) : absl::StatusOr<WatchStart>(id.status());
  if (id.ok()) {
    entry.identity = id->uri;
    absl::StatusOr<v1::Actor> actor = ActingPerson(*ctx, *id);
    if (actor.ok()) {
      entry.user = actor->user();
      start = ParseWatchRequest(request, signer, head);
    } else {
      start = actor.status();
    }
  }
  // A watch is recorded once, as it opens: what it sends is the feed of the service the caller
  // may already read in full.
  AuditRecorder audit(audit_db, entry);
  absl::Status audited = audit.Finish(start.status());
  if (start.ok() && !audited.ok()) {
    return RetryLater(absl::StatusCode::kUnavailable,
                      "the call cannot be recorded in the audit log now; retry later",
                      absl::Seconds(5));
  }
  spdlog::info("watch {} {} caller={}", method, absl::StatusCodeToString(start.status().code()),
               entry.identity);
  return start;
}

}  // namespace internal
}  // namespace sarloop
