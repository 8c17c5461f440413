#include "common/referral/delivery_service.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/rules.h"
#include "common/referral/validation.h"
#include "common/rpc/rpc.h"

namespace sarloop {

absl::Status CheckAddresseeIdentity(const v1::LifecycleEvent& e) {
  if (e.addressee_identity().empty()) return absl::OkStatus();
  // An addressed event lands in that person's oversight inbox at the register: only UKFIU's chase
  // (an escalation, Regulation 19's report) and a unit's decline nobody else would review address
  // one, and only to an oversight office. Any other party could otherwise post notices there.
  const bool ukfiu_chase =
      e.producer() == referral::kUkfiuCode &&
      (e.type() == v1::EVENT_TYPE_ESCALATED || e.type() == v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG);
  const bool unit_decline = e.type() == v1::EVENT_TYPE_ASSISTANCE_DECLINED && !e.unit().empty() &&
                            e.producer() == e.unit();
  if (!ukfiu_chase && !unit_decline) {
    return FieldError("event.addressee_identity",
                      "is set only on UKFIU's escalations and open-investigation flags and on a "
                      "unit's declined assistance");
  }
  absl::StatusOr<Identity> addressee = ParseIdentity(e.addressee_identity());
  if (!addressee.ok() || addressee->kind != "oversight") {
    return FieldError("event.addressee_identity",
                      "is not an oversight identity (spiffe://sarloop/oversight/<ORG>/<office>)");
  }
  return absl::OkStatus();
}

absl::Status CheckEvent(const v1::LifecycleEvent& e) {
  RETURN_IF_ERROR(CheckText("event.event_id", e.event_id(), 100, true));
  RETURN_IF_ERROR(CheckReferralId("event.referral_id", e.referral_id()));
  if (e.type() == v1::EVENT_TYPE_UNSPECIFIED || !v1::EventType_IsValid(e.type())) {
    return FieldError("event.type", "is required");
  }
  RETURN_IF_ERROR(CheckText("event.producer", e.producer(), 20, true));
  RETURN_IF_ERROR(CheckText("event.organisation", e.organisation(), 20, true));
  if (!e.has_occurred_at()) return FieldError("event.occurred_at", "is required");
  // Bounds on everything else a peer can send, so no envelope is larger than its purpose needs.
  RETURN_IF_ERROR(CheckText("event.actor.identity", e.actor().identity(), 200, false));
  RETURN_IF_ERROR(CheckText("event.actor.user", e.actor().user(), 200, false));
  RETURN_IF_ERROR(CheckText("event.thr.rationale", e.thr().rationale(), 2000, false));
  RETURN_IF_ERROR(CheckTextList("event.subject_refs", e.subject_refs(), 20, 100));
  if (e.subject_roles_size() > e.subject_refs_size()) {
    return FieldError("event.subject_roles", "has more entries than event.subject_refs");
  }
  for (int i = 0; i < e.subject_roles_size(); ++i) {
    if (!v1::SubjectRole_IsValid(e.subject_roles(i))) {
      return FieldError(absl::StrCat("event.subject_roles[", i, "]"), "is not a subject role");
    }
  }
  if (!v1::ReferralRoute_IsValid(e.route())) {
    return FieldError("event.route", "is not a referral route");
  }
  RETURN_IF_ERROR(CheckText("event.linked_referral_id", e.linked_referral_id(), 20, false));
  RETURN_IF_ERROR(CheckText("event.reason", e.reason(), 2000, false));
  RETURN_IF_ERROR(
      CheckText("event.outcome.learning_summary", e.outcome().learning_summary(), 1000, false));
  RETURN_IF_ERROR(
      CheckText("event.outcome.investigating_org", e.outcome().investigating_org(), 20, false));
  RETURN_IF_ERROR(CheckText("event.unit", e.unit(), 20, false));
  if (!v1::Priority_IsValid(e.priority())) return FieldError("event.priority", "is not a priority");
  if (!v1::ProgressStatus_IsValid(e.progress())) {
    return FieldError("event.progress", "is not a progress status");
  }
  RETURN_IF_ERROR(CheckTextList("event.other_organisations", e.other_organisations(), 100, 20));
  RETURN_IF_ERROR(CheckText("event.addressee", e.addressee(), 200, false));
  RETURN_IF_ERROR(CheckText("event.addressee_identity", e.addressee_identity(), 300, false));
  RETURN_IF_ERROR(CheckAddresseeIdentity(e));
  RETURN_IF_ERROR(CheckText("event.thread_id", e.thread_id(), 20, false));
  RETURN_IF_ERROR(CheckText("event.thread_with", e.thread_with(), 20, false));
  RETURN_IF_ERROR(CheckTextList("event.glossary_codes", e.glossary_codes(), 20, 20));
  RETURN_IF_ERROR(CheckText("event.case_id", e.case_id(), 30, false));
  RETURN_IF_ERROR(CheckText("event.lead_organisation", e.lead_organisation(), 20, false));
  RETURN_IF_ERROR(CheckText("event.received_by", e.received_by(), 200, false));
  if (!v1::IopcMode_IsValid(e.iopc_mode())) return FieldError("event.iopc_mode", "is not a mode");
  if (e.attachment_count() < 0 || e.attachment_count() > 20) {
    return FieldError("event.attachment_count", "is 0 to 20");
  }
  return absl::OkStatus();
}

namespace {
absl::Status CheckPackage(const v1::ReferralPackage& p) {
  RETURN_IF_ERROR(CheckReferralId("package.referral_id", p.referral_id()));
  RETURN_IF_ERROR(CheckSar("package.sar", p.sar(), absl::InfiniteFuture()));
  RETURN_IF_ERROR(CheckText("package.handover_notes", p.handover_notes(), 20000, false));
  return CheckTextList("package.deconfliction_with", p.deconfliction_with(), 100, 20);
}
}  // namespace

namespace {
absl::Status RequireService(const Identity& id) {
  // The gate admitted only identities the policy allows to deliver here; a client system below an
  // organisation is never a delivering service.
  if (!id.IsService()) {
    return absl::PermissionDeniedError(absl::StrCat(id.uri, " is not a sarloop service"));
  }
  return absl::OkStatus();
}
}  // namespace

DeliveryService::DeliveryService(Edge edge, Database& db, Clock& clock, ApplyFromPeer apply,
                                 bool accepts_screens)
    : edge_(edge),
      db_(db),
      clock_(clock),
      apply_(std::move(apply)),
      accepts_screens_(accepts_screens) {}

void DeliveryService::Deliver(UnaryCall* ctx, const v1::DeliverRequest* request,
                              v1::DeliverResponse* response) {
  return ServeWrite(
      ctx, edge_, "/sarloop.v1.Delivery/Deliver", *request,
      [=, this](const Call& call) -> absl::Status {
        RETURN_IF_ERROR(RequireService(call.identity));
        ASSIGN_OR_RETURN(*response, DeliverFrom(call.identity, *request, call.audit));
        return absl::OkStatus();
      },
      RequestChecks::kByBody);
}

absl::StatusOr<v1::DeliverResponse> DeliveryService::DeliverFrom(const Identity& peer,
                                                                 const v1::DeliverRequest& request,
                                                                 AuditRecorder* audit) {
  if (request.envelopes_size() == 0) return FieldError("envelopes", "at least one is required");
  if (request.envelopes_size() > 500) return FieldError("envelopes", "at most 500 per call");
  auto apply = [&](Txn& txn, const v1::Envelope& env) -> absl::Status {
    RETURN_IF_ERROR(CheckText("message_id", env.message_id(), 100, true));
    RETURN_IF_ERROR(CheckRequestText(env));
    if (env.has_screen()) {
      if (!accepts_screens_) return FieldError("screen", "this service takes no screening");
      if (env.has_event() || env.has_package() || env.has_thread_message() ||
          env.has_supplementary_sar()) {
        return FieldError("screen", "travels without an event or a package");
      }
      return apply_(txn, peer, env);
    }
    RETURN_IF_ERROR(CheckEvent(env.event()));
    // An event from the peer's future (past the clocks' tolerance) is taken when this service's
    // clock gets there: answered as not yet taken, so the peer sends it again. A date years on
    // would otherwise move the referral's next due date out of the chase's reach.
    const absl::Duration ahead = FromProto(env.event().occurred_at()) - clock_.Now();
    if (ahead > kClockSkew) {
      return RetryLater(absl::StatusCode::kUnavailable,
                        absl::StrCat("event.occurred_at is ", absl::FormatDuration(ahead),
                                     " ahead of this service's clock; taken once it is within ",
                                     absl::FormatDuration(kClockSkew)),
                        std::min(ahead - kClockSkew, absl::Minutes(1)));
    }
    if (env.has_package()) RETURN_IF_ERROR(CheckPackage(env.package()));
    if (env.has_supplementary_sar()) {
      RETURN_IF_ERROR(
          CheckSar("supplementary_sar", env.supplementary_sar(), absl::InfiniteFuture()));
    }
    if (env.event().producer() != peer.org) {
      return absl::PermissionDeniedError(
          absl::StrCat("event produced by ", env.event().producer(), " delivered by ", peer.uri));
    }
    // Who acted is one of the producer's own: its service, or a system or person under it. The
    // register's timeline shows it; another organisation's name there would misattribute a step.
    if (const std::string& actor = env.event().actor().identity();
        !actor.empty() && actor != peer.uri && !absl::StartsWith(actor, peer.uri + "/")) {
      return absl::PermissionDeniedError(
          absl::StrCat("event.actor.identity ", actor, " is not one of ", peer.uri));
    }
    return apply_(txn, peer, env);
  };
  return ReceiveBatch(db_, clock_, peer.uri, request, apply, audit);
}

RegisterFeedService::RegisterFeedService(Edge edge, Database& db, Clock& clock, ApplyEvent apply)
    : edge_(edge),
      delivery_(
          edge, db, clock,
          [apply = std::move(apply)](Txn& txn, const Identity& peer, const v1::Envelope& env) {
            return apply(txn, peer, env.event());
          }) {}

void RegisterFeedService::ReportEvents(UnaryCall* ctx, const v1::ReportEventsRequest* request,
                                       v1::DeliverResponse* response) {
  return ServeWrite(
      ctx, edge_, "/sarloop.v1.RegisterFeed/ReportEvents", *request,
      [=, this](const Call& call) -> absl::Status {
        RETURN_IF_ERROR(RequireService(call.identity));
        ASSIGN_OR_RETURN(*response, ReportFrom(call.identity, *request, call.audit));
        return absl::OkStatus();
      },
      RequestChecks::kByBody);
}

absl::StatusOr<v1::DeliverResponse> RegisterFeedService::ReportFrom(
    const Identity& peer, const v1::ReportEventsRequest& request, AuditRecorder* audit) {
  // The batch machinery is Delivery's; an Envelope made from an EventEnvelope has no package.
  v1::DeliverRequest batch;
  for (const v1::EventEnvelope& e : request.envelopes()) {
    v1::Envelope* env = batch.add_envelopes();
    env->set_message_id(e.message_id());
    *env->mutable_event() = e.event();
  }
  return delivery_.DeliverFrom(peer, batch, audit);
}

}  // namespace sarloop
