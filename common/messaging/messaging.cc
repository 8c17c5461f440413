#include "common/messaging/messaging.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/crypto.h"
#include "common/base/fault.h"
#include "common/base/ids.h"
#include "common/base/mutex.h"
#include "common/base/status.h"
#include "common/base/text.h"
#include "common/rpc/serving.h"
#include "common/security/sealed.h"
#include "common/security/tls.h"
#include "sarloop/v1/delivery.grpc.pb.h"

namespace sarloop {

const Migration kMessagingMigration = {"outbox, inbox deduplication and request idempotency",
                                       R"sql(
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  destination TEXT NOT NULL,
  message_id TEXT NOT NULL,
  referral_id TEXT NOT NULL,
  envelope BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  status INTEGER NOT NULL DEFAULT 0,  -- 0 pending, 1 delivered, 2 rejected
  done_at INTEGER,
  UNIQUE (destination, message_id)
);
CREATE INDEX outbox_by_status ON outbox (destination, status, seq);
CREATE TABLE inbox_seen (
  message_id TEXT PRIMARY KEY,
  received_at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE idempotency (
  scope TEXT NOT NULL,
  request_id TEXT NOT NULL,
  response BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (scope, request_id)
);
)sql",
                                       R"sql(
CREATE TABLE outbox (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  destination TEXT NOT NULL,
  message_id TEXT NOT NULL,
  referral_id TEXT NOT NULL,
  envelope BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  status BIGINT NOT NULL DEFAULT 0,
  done_at BIGINT,
  UNIQUE (destination, message_id)
);
CREATE INDEX outbox_by_status ON outbox (destination, status, seq);
CREATE TABLE inbox_seen (
  message_id TEXT PRIMARY KEY,
  received_at BIGINT NOT NULL,
  status BIGINT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE idempotency (
  scope TEXT NOT NULL,
  request_id TEXT NOT NULL,
  response BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (scope, request_id)
);
)sql"};

// Two changes to what every commit that sends or receives a message writes, measured in the WAL
// frames of a chain at 10 lifecycles/s (about 22 pages per commit):
//  - the index the delivery loops read holds pending messages only: marking one delivered removes
//    its entry instead of moving it to the delivered end, so a mark writes one index page, not
//    two, and the index stays as small as the backlog (it was the most written B-tree in a
//    sender's commits, 1.5 to 4 pages each); the few refused ones have an index of their own, so
//    the backlog's counts come from indexes alone (ReadBacklog);
//  - the receiver's record of messages seen is a WITHOUT ROWID table keyed by the message id: one
//    B-tree per message instead of a table and its key's index (0.5 to 1 page per commit).
// PostgreSQL takes the partial index; its tables have no rowid to drop.
const Migration kMessagingIndexesMigration = {
    "the outbox's index holds pending messages only; the inbox record is keyed by message id",
    R"sql(
DROP INDEX outbox_by_status;
CREATE INDEX outbox_pending ON outbox (destination, seq) WHERE status = 0;
CREATE INDEX outbox_rejected ON outbox (destination) WHERE status = 2;
CREATE TABLE inbox_seen_by_id (
  message_id TEXT PRIMARY KEY,
  received_at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
INSERT INTO inbox_seen_by_id (message_id, received_at, status, detail)
  SELECT message_id, received_at, status, detail FROM inbox_seen;
DROP TABLE inbox_seen;
ALTER TABLE inbox_seen_by_id RENAME TO inbox_seen;
)sql",
    R"sql(
DROP INDEX outbox_by_status;
CREATE INDEX outbox_pending ON outbox (destination, seq) WHERE status = 0;
CREATE INDEX outbox_rejected ON outbox (destination) WHERE status = 2;
)sql"};

const Migration kInboxBySenderMigration = {"the inbox record keyed by sender and message id", R"sql(
CREATE TABLE inbox_seen_by_sender (
  sender TEXT NOT NULL,
  message_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (sender, message_id)
) WITHOUT ROWID;
INSERT INTO inbox_seen_by_sender (sender, message_id, received_at, status, detail)
  SELECT '', message_id, received_at, status, detail FROM inbox_seen;
DROP TABLE inbox_seen;
ALTER TABLE inbox_seen_by_sender RENAME TO inbox_seen;
)sql",
                                           R"sql(
ALTER TABLE inbox_seen ADD COLUMN sender TEXT NOT NULL DEFAULT '';
ALTER TABLE inbox_seen DROP CONSTRAINT inbox_seen_pkey;
ALTER TABLE inbox_seen ADD PRIMARY KEY (sender, message_id);
)sql"};

const Migration kRequestDigestMigration = {"the digest of each idempotent request", R"sql(
ALTER TABLE idempotency ADD COLUMN request_digest TEXT NOT NULL DEFAULT '';
)sql",
                                           R"sql(
ALTER TABLE idempotency ADD COLUMN request_digest TEXT NOT NULL DEFAULT '';
)sql"};

namespace {
constexpr int64_t kPending = 0;
constexpr int64_t kDelivered = 1;
constexpr int64_t kRejected = 2;
constexpr int64_t kNoneLost = std::numeric_limits<int64_t>::max();

// Envelopes and stored responses carry referral packages: sealed (see common/security/sealed.h).
constexpr absl::string_view kOutboxColumn = "outbox.envelope";
constexpr absl::string_view kIdempotencyColumn = "idempotency.response";

// The row a sealed cell is bound to. The first part is length-prefixed, so no two rows share a
// key whatever their parts contain (MessagingSealedColumns builds the same key in SQL).
std::string RowKey(absl::string_view first, absl::string_view second) {
  return absl::StrCat(first.size(), ":", first, "/", second);
}

std::string OutboxRowKey(absl::string_view destination, absl::string_view message_id) {
  return RowKey(destination, message_id);
}
}  // namespace

std::span<const SealedColumn> MessagingSealedColumns() {
  // Outbox envelopes and stored answers carry copies of referral packages on their way out. The
  // row keys are RowKey's, in SQL.
  static constexpr SealedColumn kColumns[] = {
      {"outbox", kOutboxColumn,
       "length(CAST(destination AS BLOB)) || ':' || destination || '/' || message_id"},
      {"idempotency", kIdempotencyColumn,
       "length(CAST(scope AS BLOB)) || ':' || scope || '/' || request_id"},
  };
  return kColumns;
}

absl::Status Enqueue(Txn& txn, const std::string& destination, const v1::Envelope& envelope,
                     absl::Time now) {
  if (destination == kRegisterCode && (envelope.has_package() || envelope.has_thread_message() ||
                                       envelope.has_supplementary_sar())) {
    return absl::InternalError(
        absl::StrCat("refusing to send a referral package to the NCA register (",
                     envelope.event().referral_id(), ")"));
  }
  if (const size_t bytes = envelope.ByteSizeLong(); bytes > kMaxEnvelopeBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the message to ", destination, " about ", envelope.event().referral_id(), " would be ",
        bytes, " bytes, over the ", kMaxEnvelopeBytes, " a peer takes; nothing was done"));
  }
  ASSIGN_OR_RETURN(
      Blob sealed,
      SealProto(txn, kOutboxColumn, OutboxRowKey(destination, envelope.message_id()), envelope));
  return txn.Exec(
      "INSERT INTO outbox (destination, message_id, referral_id, envelope, created_at) "
      "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      {destination, envelope.message_id(), envelope.event().referral_id(), std::move(sealed),
       ToMicros(now)});
}

Outbox::Outbox(Database& db, DeliveryWorker* worker, std::vector<std::string> peers)
    : db_(db), worker_(worker), peers_(std::move(peers)) {}

bool Outbox::Reaches(const std::string& destination) const {
  return peers_.empty() || std::find(peers_.begin(), peers_.end(), destination) != peers_.end();
}

absl::Status Outbox::Send(Txn& txn, const std::string& destination, const v1::Envelope& envelope,
                          absl::Time now, Urgency urgency) {
  if (!Reaches(destination)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no peer is configured for ", destination, ": nothing can be sent there"));
  }
  RETURN_IF_ERROR(Enqueue(txn, destination, envelope, now));
  if (worker_ != nullptr) {
    db_.AfterCommit(
        [worker = worker_, destination, urgency] { worker->Notify(destination, urgency); });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxEntry>> ReadOutbox(Txn& txn) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT destination, message_id, envelope, status FROM "
                                        "outbox ORDER BY seq"));
  std::vector<OutboxEntry> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    out[i].destination = rows[i].Text(0);
    out[i].status = static_cast<int>(rows[i].Int(3));
    RETURN_IF_ERROR(UnsealProto(txn, kOutboxColumn, OutboxRowKey(rows[i].Text(0), rows[i].Text(1)),
                                rows[i].Text(2), &out[i].envelope));
  }
  return out;
}

absl::StatusOr<absl::Time> OldestPending(Database& db,
                                         const std::vector<std::string>& destinations) {
  absl::Time oldest = absl::InfiniteFuture();
  // One read for them all: each is a hand-off to a reader and a transaction, every second.
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    for (const std::string& destination : destinations) {
      // One index lookup (outbox_pending): the first pending message is the oldest.
      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT created_at FROM outbox WHERE destination = ? "
                                            "AND status = 0 ORDER BY seq LIMIT 1",
                                            {destination}));
      if (!rows.empty()) oldest = std::min(oldest, FromMicros(rows[0].Int(0)));
    }
    return absl::OkStatus();
  }));
  return oldest;
}

absl::StatusOr<std::vector<Backlog>> ReadBacklog(Database& db) {
  std::vector<Backlog> out;
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    // From the indexes, never the rows (each a sealed envelope of hundreds of bytes, kept until
    // retention): every message per destination from the key's index, the pending ones from
    // outbox_pending, the refused from outbox_rejected; delivered is the rest.
    ASSIGN_OR_RETURN(auto all, txn.Query("SELECT destination, COUNT(*) FROM outbox "
                                         "GROUP BY destination ORDER BY destination"));
    ASSIGN_OR_RETURN(auto pending, txn.Query("SELECT destination, COUNT(*), MIN(created_at) "
                                             "FROM outbox WHERE status = 0 GROUP BY destination"));
    ASSIGN_OR_RETURN(auto rejected, txn.Query("SELECT destination, COUNT(*) FROM outbox "
                                              "WHERE status = 2 GROUP BY destination"));
    for (const Row& r : all) {
      Backlog b;
      b.destination = r.Text(0);
      for (const Row& p : pending) {
        if (p.Text(0) != b.destination) continue;
        b.pending = p.Int(1);
        b.oldest_pending = FromMicros(p.Int(2));
      }
      for (const Row& x : rejected) {
        if (x.Text(0) == b.destination) b.rejected = x.Int(1);
      }
      b.delivered = r.Int(1) - b.pending - b.rejected;
      ASSIGN_OR_RETURN(auto err, txn.Query("SELECT last_error FROM outbox WHERE destination = ? "
                                           "AND status = 0 ORDER BY seq LIMIT 1",
                                           {b.destination}));
      if (!err.empty()) b.last_error = err[0].Text(0);
      out.push_back(std::move(b));
    }
    return absl::OkStatus();
  }));
  return out;
}

DeliveryOptions DeliveryOptionsFrom(const v1::DeliveryConfig& config) {
  DeliveryOptions o;
  if (config.initial_backoff_ms() > 0)
    o.initial_backoff = absl::Milliseconds(config.initial_backoff_ms());
  if (config.max_backoff_ms() > 0) o.max_backoff = absl::Milliseconds(config.max_backoff_ms());
  if (config.batch_size() > 0) o.batch_size = config.batch_size();
  if (config.inform_within_ms() > 0) {
    o.inform_within = absl::Milliseconds(config.inform_within_ms());
  } else if (config.inform_within_ms() < 0) {
    o.inform_within = absl::ZeroDuration();
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Transport over gRPC.

namespace {

// "ipv4:10.0.0.1:7402,10.0.0.2:7402" -> "10.0.0.1"; "" for anything but a list of addresses.
std::string FirstHostOfList(absl::string_view address) {
  for (absl::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (!absl::StartsWith(address, scheme) || !absl::StrContains(address, ',')) continue;
    absl::string_view first = address.substr(scheme.size());
    first = first.substr(0, first.find(','));
    if (absl::StartsWith(first, "[")) return std::string(first.substr(1, first.find(']') - 1));
    return std::string(first.substr(0, first.rfind(':')));
  }
  return "";
}

}  // namespace

std::shared_ptr<grpc::Channel> PeerChannel(const v1::Peer& p,
                                           std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a peer restarts; the outbox has its own backoff.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  // No bandwidth-delay probing (ProbesBandwidthDelay, common/server/server.h, says why): the
  // answers that come back on this channel are small.
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  SetClientKeepalive(args);
  // A peer may be several replicas (an address list such as "ipv4:10.0.0.1:7402,10.0.0.2:7402",
  // or a DNS name with several addresses): calls spread over those that answer, and one that
  // goes away costs only the calls in flight to it, which the outbox sends again.
  args.SetLoadBalancingPolicyName("round_robin");
  // TLS checks each replica's certificate against one name; for an address list that is
  // the first address's host (the name gRPC would otherwise check is the whole list).
  if (const std::string host = FirstHostOfList(p.address()); !host.empty()) {
    args.SetSslTargetNameOverride(host);
  }
  return grpc::CreateCustomChannel(p.address(), std::move(creds), args);
}

namespace {

class GrpcTransport : public Transport {
 public:
  GrpcTransport(const std::vector<v1::Peer>& peers, std::shared_ptr<grpc::ChannelCredentials> creds,
                absl::Duration deadline, grpc::CompletionQueue* queue)
      : deadline_(deadline), queue_(queue) {
    for (const v1::Peer& p : peers) {
      auto channel = PeerChannel(p, creds);
      if (p.code() == kRegisterCode) {
        register_ = v1::RegisterFeed::NewStub(channel);
      } else {
        stubs_[p.code()] = v1::Delivery::NewStub(channel);
      }
    }
  }

  absl::StatusOr<v1::DeliverResponse> Deliver(const std::string& destination,
                                              const v1::DeliverRequest& request) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
    v1::DeliverResponse response;
    grpc::Status status;
    if (destination == kRegisterCode && register_) {
      // Only the event crosses to the register: the envelope type there has nowhere to put more.
      v1::ReportEventsRequest report;
      for (const v1::Envelope& e : request.envelopes()) {
        v1::EventEnvelope* out = report.add_envelopes();
        out->set_message_id(e.message_id());
        *out->mutable_event() = e.event();
      }
      status = queue_ == nullptr
                   ? register_->ReportEvents(&ctx, report, &response)
                   : Await(register_->AsyncReportEvents(&ctx, report, queue_), response);
    } else {
      auto it = stubs_.find(destination);
      if (it == stubs_.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("no peer address configured for ", destination));
      }
      status = queue_ == nullptr ? it->second->Deliver(&ctx, request, &response)
                                 : Await(it->second->AsyncDeliver(&ctx, request, queue_), response);
    }
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

 private:
  // The answer of a call started on the queue, handed over by the queue's thread.
  class Answer final : public QueueTag {
   public:
    void Done(bool) override {
      MutexLock lock(&mu_);
      done_ = true;
      cv_.Signal();
    }
    void Wait() {
      MutexLock lock(&mu_);
      while (!done_) cv_.Wait(&mu_);
    }

   private:
    Mutex mu_;
    CondVar cv_;
    bool done_ ABSL_GUARDED_BY(mu_) = false;
  };

  static grpc::Status Await(
      std::unique_ptr<grpc::ClientAsyncResponseReader<v1::DeliverResponse>> call,
      v1::DeliverResponse& response) {
    Answer answer;
    grpc::Status status;
    call->Finish(&response, &status, &answer);
    answer.Wait();
    return status;
  }

  const absl::Duration deadline_;
  grpc::CompletionQueue* const queue_;
  std::map<std::string, std::unique_ptr<v1::Delivery::Stub>> stubs_;
  std::unique_ptr<v1::RegisterFeed::Stub> register_;
};

// ---------------------------------------------------------------------------------------------
// The delivery worker.

class AsioDeliveryWorker : public DeliveryWorker {
 public:
  AsioDeliveryWorker(Database& db, Transport& transport, Clock& clock, DeliveryOptions options)
      : db_(db), transport_(transport), clock_(clock), options_(options) {}

  ~AsioDeliveryWorker() override { Stop(); }

  void Start(const std::vector<std::string>& destinations) override {
    for (const std::string& d : destinations) loops_[d] = std::make_unique<Loop>(d, options_);
    // The server serves (and commits, and notifies) before it starts the worker: Notify reads
    // the map only once it is whole. What it skipped before then, each loop's first step sends.
    started_.store(true, std::memory_order_release);
    for (auto& [d, loop] : loops_) {
      Loop* l = loop.get();
      l->thread = std::thread([this, l] {
        pthread_setname_np(pthread_self(), "sarloop-deliver");
        Kick(*l);
        l->io.run();
      });
    }
  }

  void Notify(const std::string& destination, Urgency urgency) override {
    if (!started_.load(std::memory_order_acquire)) return;
    auto it = loops_.find(destination);
    if (it == loops_.end()) return;
    if (urgency == Urgency::kAtOnce || options_.inform_within <= absl::ZeroDuration()) {
      Kick(*it->second);
    } else {
      Linger(*it->second);
    }
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    for (auto& [d, l] : loops_) {
      l->work.reset();
      l->io.stop();
    }
    for (auto& [d, l] : loops_) {
      if (l->thread.joinable()) l->thread.join();
    }
  }

 private:
  struct Loop {
    Loop(std::string d, const DeliveryOptions& o)
        : destination(std::move(d)),
          work(boost::asio::make_work_guard(io)),
          timer(io),
          backoff(o.initial_backoff),
          rng(std::random_device{}()) {}
    std::string destination;
    boost::asio::io_context io;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    // A step is posted and has not started: further kicks add nothing.
    std::atomic<bool> kicked{false};
    // A kInform message came since the last step began: the timer is (or is about to be) armed
    // to send it within inform_within, and further ones add nothing.
    std::atomic<bool> lingering{false};
    // Armed for the next poll, for a kInform message (timer_lingers), or, in backoff, for the
    // retry; only the loop's thread touches it.
    boost::asio::steady_timer timer;
    bool timer_armed = false;
    bool timer_lingers = false;
    absl::Duration backoff;
    bool in_backoff = false;
    std::mt19937_64 rng;
    std::thread thread;
    // Test builds only (fault::DuplicatePercent): batches already delivered, to replay.
    std::deque<v1::DeliverRequest> sent;
    // The last outbox row answered, whose mark may still be riding to the next commit: the next
    // batch starts after it.
    int64_t answered_through = 0;
    // The first row of a batch whose mark was lost with its commit (kNoneLost if none since the
    // last step): the next step starts before it again, so those rows are sent again, however
    // busy the loop, and deduplicated by the peer. Shared, because the mark's outcome may be told
    // after the loop has gone.
    std::shared_ptr<std::atomic<int64_t>> lost_from =
        std::make_shared<std::atomic<int64_t>>(kNoneLost);
  };

  // A step as soon as the loop's thread is free, from any thread. Kicks while one is posted
  // coalesce into it. A step is posted, not put on the timer: a zero-delay timer cost two
  // timerfd_settime calls and a second trip through epoll for every message handed over.
  void Kick(Loop& l) {
    if (l.kicked.exchange(true)) return;
    boost::asio::post(l.io, [this, &l] {
      // Cleared before the step reads the outbox: a row committed after this point kicks again.
      l.kicked = false;
      if (!l.in_backoff && !stopped_) Step(l);
    });
  }

  // A step within inform_within, from any thread: the first kInform message since the last step
  // began arms the timer for it; the ones after it ride along. Nothing in backoff (the retry
  // sends everything) or when a step for kInform messages is already due.
  void Linger(Loop& l) {
    if (l.lingering.exchange(true)) return;
    boost::asio::post(l.io, [this, &l] {
      if (stopped_ || l.in_backoff || (l.timer_armed && l.timer_lingers)) return;
      Arm(l, options_.inform_within, /*replace=*/true, /*lingers=*/true);
    });
  }

  // The timer for the next poll (kept if one is already armed: a poll only catches what no
  // kick announced) or, with `replace`, for a retry or a kInform message (`lingers`).
  void Arm(Loop& l, absl::Duration delay, bool replace, bool lingers = false) {
    if (l.timer_armed && !replace) return;
    l.timer_armed = true;
    l.timer_lingers = lingers;
    l.timer.expires_after(absl::ToChronoNanoseconds(delay));
    l.timer.async_wait([this, &l](const boost::system::error_code& ec) {
      if (ec || stopped_) return;  // replaced by a later expires_after, or stopping
      l.timer_armed = false;
      l.timer_lingers = false;
      Step(l);
    });
  }

  // Sends one batch; schedules the next step by outcome.
  void Step(Loop& l) {
    // Cleared before the step reads the outbox: a kInform message committed after this point
    // arms the timer again.
    l.lingering = false;
    absl::StatusOr<bool> more = DeliverOnce(l);
    if (more.ok()) {
      l.backoff = options_.initial_backoff;
      l.in_backoff = false;
      if (*more) {
        Kick(l);
      } else {
        // What a kInform timer was armed for has gone with this step: back to polling.
        Arm(l, options_.poll_interval, /*replace=*/l.timer_lingers);
      }
      return;
    }
    // Full jitter over [backoff/2, backoff]: peers restarted together do not retry in lockstep.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Duration delay = l.backoff * jitter(l.rng);
    l.backoff = std::min(l.backoff * 2, options_.max_backoff);
    l.in_backoff = true;
    if (options_.on_failure) options_.on_failure(l.destination);
    spdlog::warn("delivery to {} failed ({}); retrying in {}", l.destination,
                 Printable(more.status().ToString()), absl::FormatDuration(delay));
    Arm(l, delay, /*replace=*/true);
  }

  // Returns whether a full batch was sent (there may be more), or the error that stopped it.
  absl::StatusOr<bool> DeliverOnce(Loop& l) {
    const int64_t lost = l.lost_from->exchange(kNoneLost);
    if (lost != kNoneLost) l.answered_through = std::min(l.answered_through, lost - 1);
    std::vector<int64_t> seqs;
    v1::DeliverRequest request;
    bool full = false;
    RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(
          auto rows, txn.Query("SELECT seq, envelope, message_id FROM outbox WHERE "
                               "destination = ? AND status = 0 AND seq > ? ORDER BY seq LIMIT ?",
                               {l.destination, l.answered_through, int64_t{options_.batch_size}}));
      full = static_cast<int>(rows.size()) == options_.batch_size;
      size_t bytes = 0;
      for (const Row& r : rows) {
        v1::Envelope envelope;
        RETURN_IF_ERROR(UnsealProto(txn, kOutboxColumn, OutboxRowKey(l.destination, r.Text(2)),
                                    r.Text(1), &envelope));
        bytes += envelope.ByteSizeLong();
        if (!seqs.empty() && bytes > options_.batch_bytes) {
          full = true;  // the rest go in the next batch, at once
          break;
        }
        seqs.push_back(r.Int(0));
        *request.add_envelopes() = std::move(envelope);
      }
      return absl::OkStatus();
    }));
    if (seqs.empty()) return false;

    absl::StatusOr<v1::DeliverResponse> response = transport_.Deliver(l.destination, request);
    if (!response.ok()) {
      RecordError(seqs.front(), response.status());
      return response.status();
    }
    // Delivered, not yet marked: after a crash here the batch is sent again.
    fault::CrashPoint("outbox.after_send");
    if (fault::DuplicatePercent() > 0) Duplicate(l, request);
    const int answered = std::min(response->results_size(), static_cast<int>(seqs.size()));
    struct Mark {
      int64_t seq;
      bool rejected;
      std::string detail;
    };
    std::vector<Mark> marks;
    int taken = 0;
    for (; taken < answered; ++taken) {
      const v1::EnvelopeResult& r = response->results(taken);
      if (r.message_id() != request.envelopes(taken).message_id()) {
        return absl::InternalError("receiver answered out of order");
      }
      // Only an answer this service knows is an answer: a status it does not know (a newer
      // peer's, or none) leaves the message pending, to be sent again, never taken as delivered.
      if (r.status() != v1::DELIVERY_STATUS_ACCEPTED &&
          r.status() != v1::DELIVERY_STATUS_DUPLICATE &&
          r.status() != v1::DELIVERY_STATUS_REJECTED) {
        break;
      }
      const bool rejected = r.status() == v1::DELIVERY_STATUS_REJECTED;
      if (rejected) {
        // The peer's words, as one printable line: they cannot forge a line of this log.
        spdlog::error("{} rejected message {}: {}", l.destination, Printable(r.message_id()),
                      Printable(r.detail()));
      }
      marks.push_back({seqs[taken], rejected, rejected ? r.detail() : ""});
    }
    // The peer has the messages durably: marking them done needs no commit of its own and no
    // wait. Until the mark commits, answered_through keeps them out of the next batch; if it is
    // lost, they go again at the next step and the peer answers DUPLICATE.
    if (taken > 0) {
      l.answered_through = seqs[taken - 1];
      db_.Ride(
          [marks = std::move(marks), now = clock_.Now()](Txn& txn) -> absl::Status {
            for (const Mark& m : marks) {
              RETURN_IF_ERROR(
                  txn.Exec("UPDATE outbox SET status = ?, done_at = ?, attempts = attempts + 1, "
                           "last_error = ? WHERE seq = ?",
                           {m.rejected ? kRejected : kDelivered, ToMicros(now), m.detail, m.seq}));
            }
            return absl::OkStatus();
          },
          options_.mark_within,
          [lost_from = l.lost_from, first = seqs.front()] {
            int64_t seen = lost_from->load();
            while (first < seen && !lost_from->compare_exchange_weak(seen, first)) {
            }
          });
    }
    if (taken < static_cast<int>(seqs.size())) {
      absl::Status partial = absl::UnavailableError(absl::StrCat(
          l.destination, " took ", taken, " of ", seqs.size(), " envelopes",
          taken < answered
              ? absl::StrCat("; its answer to ", Printable(request.envelopes(taken).message_id()),
                             " was status ", response->results(taken).status(),
                             ", which this service does not know")
              : ""));
      RecordError(seqs[taken], partial);
      return partial;
    }
    return full;
  }

  // The fault suite's duplicates on the wire: this batch again, and an old one replayed, as a
  // network or a confused sender might. Receivers must take each message once.
  void Duplicate(Loop& l, const v1::DeliverRequest& request) {
    std::uniform_int_distribution<int> percent(0, 99);
    if (percent(l.rng) >= fault::DuplicatePercent()) return;
    spdlog::info("fault injection: sending a batch of {} to {} again, and replaying an older one",
                 request.envelopes_size(), l.destination);
    (void)transport_.Deliver(l.destination, request);
    if (!l.sent.empty()) {
      std::uniform_int_distribution<size_t> pick(0, l.sent.size() - 1);
      (void)transport_.Deliver(l.destination, l.sent[pick(l.rng)]);
    }
    l.sent.push_back(request);
    if (l.sent.size() > 16) l.sent.pop_front();
  }

  void RecordError(int64_t seq, const absl::Status& error) {
    absl::Status s = db_.Transact([&](Txn& txn) {
      return txn.Exec("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                      {PrintablePrefix(error.ToString(), 1000), seq});
    });
    if (!s.ok()) spdlog::warn("could not record delivery error: {}", s.ToString());
  }

  Database& db_;
  Transport& transport_;
  Clock& clock_;
  const DeliveryOptions options_;
  // Filled once by Start, then only read.
  std::map<std::string, std::unique_ptr<Loop>> loops_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace

std::unique_ptr<Transport> NewGrpcTransport(const std::vector<v1::Peer>& peers,
                                            std::shared_ptr<grpc::ChannelCredentials> creds,
                                            absl::Duration deadline, grpc::CompletionQueue* queue) {
  return std::make_unique<GrpcTransport>(peers, std::move(creds), deadline, queue);
}

std::unique_ptr<DeliveryWorker> NewDeliveryWorker(Database& db, Transport& transport, Clock& clock,
                                                  DeliveryOptions options) {
  return std::make_unique<AsioDeliveryWorker>(db, transport, clock, options);
}

// ---------------------------------------------------------------------------------------------
// Receiving.

namespace {
bool IsPermanent(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
      return true;
    default:
      return false;
  }
}
}  // namespace

absl::StatusOr<v1::DeliverResponse> ReceiveBatch(Database& db, Clock& clock,
                                                 const std::string& sender,
                                                 const v1::DeliverRequest& request,
                                                 const ApplyEnvelope& apply, AuditRecorder* audit) {
  v1::DeliverResponse response;
  const absl::Time now = clock.Now();
  RETURN_IF_ERROR(db.Transact([&](Txn& txn) -> absl::Status {
    for (const v1::Envelope& env : request.envelopes()) {
      v1::EnvelopeResult* result = response.add_results();
      if (env.message_id().empty() || env.message_id().size() > kMaxMessageIdLength) {
        // Refused before it is looked up or recorded: the record of messages seen keeps ids, and
        // a peer's id of a megabyte would be kept with it.
        const absl::Status bad = FieldError(
            "message_id", absl::StrCat("must be 1 to ", kMaxMessageIdLength, " characters"));
        result->set_status(v1::DELIVERY_STATUS_REJECTED);
        result->set_detail(std::string(bad.message()));
        if (audit) RETURN_IF_ERROR(audit->RecordRefusal(txn, env.event().referral_id(), bad));
        continue;
      }
      // Rows from before the record was kept by sender (sender '') count for every sender.
      ASSIGN_OR_RETURN(auto seen, txn.Query("SELECT status, detail FROM inbox_seen "
                                            "WHERE sender IN (?, '') AND message_id = ?",
                                            {sender, env.message_id()}));
      result->set_message_id(env.message_id());
      fault::CrashPoint("receive.after_dedup");
      if (!seen.empty()) {
        // A replay of a rejected message is rejected again, with the same reason.
        if (seen[0].Int(0) == v1::DELIVERY_STATUS_REJECTED) {
          result->set_status(v1::DELIVERY_STATUS_REJECTED);
          result->set_detail(seen[0].Text(1));
        } else {
          result->set_status(v1::DELIVERY_STATUS_DUPLICATE);
        }
        continue;
      }
      RETURN_IF_ERROR(txn.Exec("SAVEPOINT envelope"));
      absl::Status applied = apply(txn, env);
      if (!applied.ok()) {
        RETURN_IF_ERROR(txn.Exec("ROLLBACK TO envelope"));
        RETURN_IF_ERROR(txn.Exec("RELEASE envelope"));
        if (!IsPermanent(applied)) {
          // Stop here: this and later envelopes stay unanswered and will be sent again.
          response.mutable_results()->RemoveLast();
          break;
        }
        result->set_status(v1::DELIVERY_STATUS_REJECTED);
        result->set_detail(std::string(applied.message()));
        // Each refused envelope is an audit entry of its own, beside the call's.
        if (audit) RETURN_IF_ERROR(audit->RecordRefusal(txn, env.event().referral_id(), applied));
      } else {
        RETURN_IF_ERROR(txn.Exec("RELEASE envelope"));
        result->set_status(v1::DELIVERY_STATUS_ACCEPTED);
      }
      RETURN_IF_ERROR(txn.Exec(
          "INSERT INTO inbox_seen (sender, message_id, received_at, status, detail) "
          "VALUES (?, ?, ?, ?, ?)",
          {sender, env.message_id(), ToMicros(now), int64_t{result->status()}, result->detail()}));
      if (response.results_size() < request.envelopes_size())
        fault::CrashPoint("receive.mid_batch");
    }
    return audit ? audit->RecordInTransaction(txn) : absl::OkStatus();
  }));
  return response;
}

namespace {
// SHA-256 of the request's deterministic serialisation, hex.
std::string RequestDigest(const google::protobuf::Message& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  return absl::BytesToHexString(Sha256Digest(bytes));
}
}  // namespace

absl::Status RunIdempotent(Database& db, const std::string& scope,
                           const google::protobuf::Message& request, const std::string& request_id,
                           google::protobuf::Message* response,
                           const std::function<absl::Status(Txn&)>& fn, absl::Time now,
                           AuditRecorder* audit) {
  const std::string digest = RequestDigest(request);
  return db.Transact([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT response, request_digest FROM idempotency "
                                          "WHERE scope = ? AND request_id = ?",
                                          {scope, request_id}));
    const std::string row_key = RowKey(scope, request_id);
    if (!rows.empty()) {
      // An answer stored before digests were kept (empty) is taken as the same request.
      if (!rows[0].Text(1).empty() && rows[0].Text(1) != digest) {
        return FieldError("request_id",
                          "was used before for a different request (another referral, reason or "
                          "body); that earlier request's answer stands, and this one was not "
                          "carried out: send it with a new request_id");
      }
      return UnsealProto(txn, kIdempotencyColumn, row_key, rows[0].Text(0), response);
    }
    RETURN_IF_ERROR(fn(txn));
    if (audit != nullptr) RETURN_IF_ERROR(audit->RecordInTransaction(txn));
    ASSIGN_OR_RETURN(Blob sealed, SealProto(txn, kIdempotencyColumn, row_key, *response));
    return txn.Exec(
        "INSERT INTO idempotency (scope, request_id, response, created_at, request_digest) "
        "VALUES (?, ?, ?, ?, ?)",
        {scope, request_id, std::move(sealed), ToMicros(now), digest});
  });
}

}  // namespace sarloop
