// The receiving end of service-to-service delivery, shared by every service. Which peers may call
// it is the authorisation policy's business (common/security/authz.h); here each envelope's shape
// is checked, and that its event was produced by the calling organisation, then it is applied
// exactly once (ReceiveBatch). Whether the producer has the event's role for that referral is the
// referral layer's (common/referral/mirror.h), which `apply` calls.
#ifndef SARLOOP_COMMON_REFERRAL_DELIVERY_SERVICE_H_
#define SARLOOP_COMMON_REFERRAL_DELIVERY_SERVICE_H_

#include <functional>
#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/messaging/messaging.h"
#include "common/rpc/rpc.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"
#include "sarloop/v1/delivery.grpc.pb.h"

namespace sarloop {

// Applies one checked envelope from `peer` (see ApplyEnvelope for what the status means).
using ApplyFromPeer = std::function<absl::Status(Txn&, const Identity& peer, const v1::Envelope&)>;

class DeliveryService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) { raw.Unary("Deliver", this, &DeliveryService::Deliver); }
  static constexpr char kServiceName[] = "sarloop.v1.Delivery";

  // `accepts_screens`: whether envelopes carrying a screening request (and no event) are passed
  // to `apply` (the linkage service); elsewhere they are INVALID_ARGUMENT. What `apply` sends
  // through an Outbox wakes the delivery worker by itself once the batch commits.
  DeliveryService(Edge edge, Database& db, Clock& clock, ApplyFromPeer apply,
                  bool accepts_screens = false);

  void Deliver(UnaryCall* ctx, const v1::DeliverRequest* request, v1::DeliverResponse* response);

  // The same without gRPC, for unit tests.
  // `audit`, when given, records the call in the batch's transaction.
  absl::StatusOr<v1::DeliverResponse> DeliverFrom(const Identity& peer,
                                                  const v1::DeliverRequest& request,
                                                  AuditRecorder* audit = nullptr);

 private:
  const Edge edge_;
  Database& db_;
  Clock& clock_;
  const ApplyFromPeer apply_;
  const bool accepts_screens_;
};

// The NCA register's receiving end: RegisterFeed.ReportEvents, with DeliveryService's checks and
// exactly-once application, for events only.
class RegisterFeedService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("ReportEvents", this, &RegisterFeedService::ReportEvents);
  }
  static constexpr char kServiceName[] = "sarloop.v1.RegisterFeed";

  // Applies one checked event from `peer` (see ApplyEnvelope for what the status means).
  using ApplyEvent =
      std::function<absl::Status(Txn&, const Identity& peer, const v1::LifecycleEvent&)>;
  RegisterFeedService(Edge edge, Database& db, Clock& clock, ApplyEvent apply);

  void ReportEvents(UnaryCall* ctx, const v1::ReportEventsRequest* request,
                    v1::DeliverResponse* response);

  // The same without gRPC, for unit tests and fuzzing.
  absl::StatusOr<v1::DeliverResponse> ReportFrom(const Identity& peer,
                                                 const v1::ReportEventsRequest& request,
                                                 AuditRecorder* audit = nullptr);

 private:
  const Edge edge_;
  DeliveryService delivery_;
};

// Checks the fields every event needs: ids, type, producer, organisation and occurred_at, and
// bounds the rest (CheckAddresseeIdentity among them).
absl::Status CheckEvent(const v1::LifecycleEvent& event);

// An addressee identity only on UKFIU's escalations and open-investigation flags and on a unit's
// declined assistance, and only an oversight identity: INVALID_ARGUMENT naming the field.
absl::Status CheckAddresseeIdentity(const v1::LifecycleEvent& event);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_DELIVERY_SERVICE_H_
