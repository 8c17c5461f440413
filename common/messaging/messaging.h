// Reliable messaging between services (DESIGN §6), written once for all four services:
//
//  * Outbox::Enqueue stores an envelope for a destination in the caller's transaction, so the
//    state change and the message to send commit together or not at all.
//  * DeliveryWorker sends pending envelopes per destination, oldest first, in batches, on a
//    Boost.Asio executor; failures back off exponentially with jitter, forever.
//  * ReceiveBatch is the receiving side: it deduplicates on message_id in the same transaction as
//    the effect, so a message delivered any number of times takes effect once.
//  * RunIdempotent gives mutating RPCs their request_id semantics: a repeat returns the first
//    answer, stored in the same transaction as the effect.
#ifndef SARLOOP_COMMON_MESSAGING_MESSAGING_H_
#define SARLOOP_COMMON_MESSAGING_MESSAGING_H_

#include <grpcpp/completion_queue.h>
#include <grpcpp/security/credentials.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/security/audit.h"
#include "common/security/sealed.h"
#include "common/storage/storage.h"
#include "sarloop/v1/config.pb.h"
#include "sarloop/v1/delivery.pb.h"

namespace sarloop {

// The organisation code of the NCA register. Envelopes to it travel as RegisterFeed.ReportEvents,
// whose type has no room for a referral package.
inline constexpr char kRegisterCode[] = "NCA";

// Tables for the outbox, the receiver's deduplication record and request idempotency. Every
// service lists it among its migrations.
extern const Migration kMessagingMigration;
// The digest of the request each stored answer was given for (RunIdempotent). Every service lists
// it among the migrations it applies after the audit log.
extern const Migration kRequestDigestMigration;
// The outbox's index of pending messages only, and the inbox record keyed by message id alone
// (fewer pages written per commit). Every service lists it after the migrations above.
extern const Migration kMessagingIndexesMigration;
// The inbox record keyed by (sender, message id): a peer's ids are its own, so no other peer can
// make a receiver take them as seen (or refused) before they arrive. Rows recorded before it
// have sender '' and count for every sender. Every service lists it after the migrations above.
extern const Migration kInboxBySenderMigration;

// The messaging tables' sealed columns (the outbox's envelopes, the stored answers), for Reseal.
std::span<const SealedColumn> MessagingSealedColumns();

// The largest envelope the outbox takes: a receiver takes no call over 4 MiB, and an envelope it
// could never take would stop every message behind it to that peer.
inline constexpr size_t kMaxEnvelopeBytes = 3 * 1024 * 1024;

// Adds `envelope` to the outbox for `destination` (a peer code). Must run inside the transaction
// that makes the change the envelope reports. ALREADY_EXISTS-free: enqueuing the same message_id
// for the same destination twice keeps the first. INTERNAL, failing the transaction, for an
// envelope with a package addressed to the register: that would be a leak, never a choice.
// FAILED_PRECONDITION, failing the transaction, for an envelope over kMaxEnvelopeBytes.
absl::Status Enqueue(Txn& txn, const std::string& destination, const v1::Envelope& envelope,
                     absl::Time now);

// One outbox row.
struct OutboxEntry {
  std::string destination;
  v1::Envelope envelope;
  // 0 pending, 1 delivered, 2 rejected.
  int status = 0;
};

// Every outbox row, oldest first, opened (for inspection and tests; the worker reads its own).
absl::StatusOr<std::vector<OutboxEntry>> ReadOutbox(Txn& txn);

// What is waiting for one destination.
struct Backlog {
  std::string destination;
  int64_t pending = 0;
  int64_t rejected = 0;
  int64_t delivered = 0;
  // Enqueue time of the oldest pending envelope; InfinitePast when none.
  absl::Time oldest_pending = absl::InfinitePast();
  std::string last_error;
};

// When the oldest message still waiting for any of `destinations` was enqueued; InfiniteFuture
// when none. Cheap (one index lookup per destination, in one read), for the health check.
absl::StatusOr<absl::Time> OldestPending(Database& db,
                                         const std::vector<std::string>& destinations);

// The backlog of every destination that has ever had a message (reads the whole outbox).
absl::StatusOr<std::vector<Backlog>> ReadBacklog(Database& db);

// Sends a batch to a destination. The seam tests replace to fail on cue.
class Transport {
 public:
  virtual ~Transport() = default;
  // UNAVAILABLE / DEADLINE_EXCEEDED and the like mean "try again later".
  virtual absl::StatusOr<v1::DeliverResponse> Deliver(const std::string& destination,
                                                      const v1::DeliverRequest& request) = 0;
};

// gRPC transport over mTLS to `peers` (code -> host:port). Every call has `deadline`.
// A channel to `peer` with the service's credentials: quick reconnects, calls spread over the
// replicas an address list names, TLS checked against the first one's host.
std::shared_ptr<grpc::Channel> PeerChannel(const v1::Peer& peer,
                                           std::shared_ptr<grpc::ChannelCredentials> creds);

// With `queue` (the server's CallQueue::queue(), common/rpc/serving.h), each call is started on it
// and the calling thread waits for the queue's thread to hand it the answer; without, it blocks in
// gRPC, polling for its own answer.
std::unique_ptr<Transport> NewGrpcTransport(const std::vector<v1::Peer>& peers,
                                            std::shared_ptr<grpc::ChannelCredentials> creds,
                                            absl::Duration deadline,
                                            grpc::CompletionQueue* queue = nullptr);

// How soon an enqueued message must leave. kAtOnce: its destination is asked to act, so the
// delivery loop is woken now. kInform: the destination is only told (the register, UKFIU hearing
// of a force's steps), so the message may wait up to DeliveryOptions::inform_within and go in one
// call, and one commit at the receiver, with the messages to the same place that follow it. A
// message sent at once takes every one waiting before it along.
enum class Urgency { kAtOnce, kInform };

struct DeliveryOptions {
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(60);
  int batch_size = 200;
  // A batch also stops before it would pass this many bytes of envelopes (it always holds one):
  // a receiver takes no call over 4 MiB, and a batch it refuses for its size would be sent the
  // same again and again.
  size_t batch_bytes = 1024 * 1024;
  // How long a kInform message may wait for company (zero: it leaves at once).
  absl::Duration inform_within = absl::Milliseconds(100);
  // How often to look for work when nobody calls Notify (e.g. after a restart).
  absl::Duration poll_interval = absl::Seconds(2);
  // How long marking a delivered batch done may wait for a commit the service makes anyway
  // (Database::Ride).
  absl::Duration mark_within = absl::Milliseconds(200);
  // Told of each failed attempt (for the delivery-failures metric), if set.
  std::function<void(const std::string& destination)> on_failure;
};

DeliveryOptions DeliveryOptionsFrom(const v1::DeliveryConfig& config);

// Drains the outbox. One loop per destination, each on its own thread so a slow peer never holds
// up another. Thread-safe; Notify may be called from any thread.
class DeliveryWorker {
 public:
  virtual ~DeliveryWorker() = default;
  // Starts delivering to each of `destinations`.
  virtual void Start(const std::vector<std::string>& destinations) = 0;
  // Work was enqueued for `destination`: deliver now (kAtOnce), or within inform_within
  // (kInform), rather than at the next poll.
  virtual void Notify(const std::string& destination, Urgency urgency) = 0;
  // Stops the loops and waits for calls in flight. Idempotent.
  virtual void Stop() = 0;
};

std::unique_ptr<DeliveryWorker> NewDeliveryWorker(Database& db, Transport& transport, Clock& clock,
                                                  DeliveryOptions options);

// The sending side a service's logic holds: envelopes go into the outbox in the caller's
// transaction, and the delivery worker is woken for each destination once that transaction has
// committed (Database::AfterCommit), so no handler has to remember a wake-up. Only destinations
// the service has a peer for are sent to; `Reaches` says which. Thread-safe.
class Outbox {
 public:
  // `worker` may be null (unit tests: nothing is delivered, the outbox rows are read back);
  // `peers` empty means every destination is reachable.
  Outbox(Database& db, DeliveryWorker* worker, std::vector<std::string> peers = {});

  // Enqueue (above) for `destination`, then the wake-up after the commit, as soon as `urgency`
  // says. FAILED_PRECONDITION naming the destination when the service has no peer for it.
  absl::Status Send(Txn& txn, const std::string& destination, const v1::Envelope& envelope,
                    absl::Time now, Urgency urgency = Urgency::kAtOnce);
  bool Reaches(const std::string& destination) const;

 private:
  Database& db_;
  DeliveryWorker* const worker_;
  const std::vector<std::string> peers_;
};

// How a receiver applies one envelope inside the batch's transaction. Return:
//  OK                                  -> ACCEPTED
//  INVALID_ARGUMENT, FAILED_PRECONDITION,
//  PERMISSION_DENIED, NOT_FOUND        -> REJECTED (permanent; its effects are rolled back)
//  anything else                       -> stop here; this and later envelopes are not answered
using ApplyEnvelope = std::function<absl::Status(Txn&, const v1::Envelope&)>;

// The longest message_id a receiver takes (an event id is 37 to 56 characters).
inline constexpr size_t kMaxMessageIdLength = 100;

// Receives a batch from `sender` (the peer's identity): for each envelope in order, refuses it
// (REJECTED, unrecorded) if its message_id is empty or longer than kMaxMessageIdLength, skips it
// as DUPLICATE if that sender's message_id was seen, otherwise applies it and records
// (sender, message_id) in the same transaction. The whole
// batch commits once. `after_commit` runs only if the commit succeeded (e.g. to notify the delivery
// worker). When `audit` is given, the call is recorded in the batch's transaction.
absl::StatusOr<v1::DeliverResponse> ReceiveBatch(Database& db, Clock& clock,
                                                 const std::string& sender,
                                                 const v1::DeliverRequest& request,
                                                 const ApplyEnvelope& apply,
                                                 AuditRecorder* audit = nullptr);

// Runs `fn` once per (scope, request_id): the first time in a write transaction, storing the
// serialised `response` with the effect and a digest of `request`; a repeat of the same request
// parses the stored response into `response` and does nothing else. A request_id used before for
// a different request (another referral, reason or body) is INVALID_ARGUMENT naming request_id,
// and nothing happens: the caller must not believe the second action took place. `scope`
// separates RPC methods and callers. When `audit` is given, the call is recorded in the same
// transaction as its effect.
absl::Status RunIdempotent(Database& db, const std::string& scope,
                           const google::protobuf::Message& request, const std::string& request_id,
                           google::protobuf::Message* response,
                           const std::function<absl::Status(Txn&)>& fn, absl::Time now,
                           AuditRecorder* audit = nullptr);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_MESSAGING_MESSAGING_H_
