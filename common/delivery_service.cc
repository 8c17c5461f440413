#include "common/delivery_service.h"

#include "absl/strings/str_cat.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/validation.h"

namespace sarloop {

absl::Status CheckEvent(const v1::LifecycleEvent& e) {
  RETURN_IF_ERROR(CheckText("event.event_id", e.event_id(), 100, true));
  RETURN_IF_ERROR(CheckReferralId("event.referral_id", e.referral_id()));
  if (e.type() == v1::EVENT_TYPE_UNSPECIFIED || !v1::EventType_IsValid(e.type())) {
    return FieldError("event.type", "is required");
  }
  RETURN_IF_ERROR(CheckText("event.producer", e.producer(), 20, true));
  RETURN_IF_ERROR(CheckText("event.organisation", e.organisation(), 20, true));
  if (!e.has_occurred_at()) return FieldError("event.occurred_at", "is required");
  return absl::OkStatus();
}

DeliveryService::DeliveryService(Edge edge, Database& db, Clock& clock, ApplyFromPeer apply,
                                 std::function<void()> after_commit)
    : edge_(edge),
      db_(db),
      clock_(clock),
      apply_(std::move(apply)),
      after_commit_(std::move(after_commit)) {}

grpc::ServerUnaryReactor* DeliveryService::Deliver(grpc::CallbackServerContext* ctx,
                                                   const v1::DeliverRequest* request,
                                                   v1::DeliverResponse* response) {
  return Serve(ctx, edge_, "/sarloop.v1.Delivery/Deliver", "",
               [&](const Call& call) -> absl::Status {
                 // The gate admitted only identities the policy allows to deliver here; a client
                 // system below an organisation is never a delivering service.
                 if (!call.identity.IsService()) {
                   return absl::PermissionDeniedError(
                       absl::StrCat(call.identity.uri, " is not a sarloop service"));
                 }
                 ASSIGN_OR_RETURN(*response, DeliverFrom(call.identity, *request, call.audit));
                 return absl::OkStatus();
               });
}

absl::StatusOr<v1::DeliverResponse> DeliveryService::DeliverFrom(const Identity& peer,
                                                                 const v1::DeliverRequest& request,
                                                                 AuditRecorder* audit) {
  if (request.envelopes_size() == 0) return FieldError("envelopes", "at least one is required");
  if (request.envelopes_size() > 500) return FieldError("envelopes", "at most 500 per call");
  bool accepted_any = false;
  auto apply = [&](Txn& txn, const v1::Envelope& env) -> absl::Status {
    RETURN_IF_ERROR(CheckText("message_id", env.message_id(), 100, true));
    RETURN_IF_ERROR(CheckEvent(env.event()));
    if (env.event().producer() != peer.org) {
      return absl::PermissionDeniedError(
          absl::StrCat("event produced by ", env.event().producer(), " delivered by ", peer.uri));
    }
    RETURN_IF_ERROR(apply_(txn, peer, env));
    accepted_any = true;
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(v1::DeliverResponse response, ReceiveBatch(db_, clock_, request, apply, audit));
  if (accepted_any && after_commit_) after_commit_();
  return response;
}

}  // namespace sarloop
