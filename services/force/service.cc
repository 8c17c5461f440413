#include "services/force/service.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/referral/delivery_service.h"
#include "common/referral/referral_store.h"
#include "common/referral/retention.h"
#include "common/referral/threads_rpc.h"
#include "common/referral/watch_rpc.h"
#include "common/rpc/rpc.h"
#include "common/security/identity.h"
#include "common/server/config.h"
#include "common/server/server.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "services/force/desk.h"

namespace sarloop::force {
namespace {

class ForceService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("ListInbox", this, &ForceService::ListInbox);
    raw.Unary("GetReferral", this, &ForceService::GetReferral);
    raw.Unary("Acknowledge", this, &ForceService::Acknowledge);
    raw.Unary("StartResearch", this, &ForceService::StartResearch);
    raw.Unary("Decline", this, &ForceService::Decline);
    raw.Unary("Close", this, &ForceService::Close);
    raw.Unary("UpdateOutcome", this, &ForceService::UpdateOutcome);
    raw.Unary("ReportProgress", this, &ForceService::ReportProgress);
    raw.Unary("HandOver", this, &ForceService::HandOver);
    raw.Unary("ReferToIopc", this, &ForceService::ReferToIopc);
    raw.Unary("RequestInformation", this, &ForceService::RequestInformation);
    raw.Unary("AnswerInformation", this, &ForceService::AnswerInformation);
    raw.Unary("ListThreads", this, &ForceService::ListThreads);
    raw.Streaming("WatchInbox", this, &ForceService::WatchInbox);
  }
  static constexpr char kServiceName[] = "sarloop.v1.Force";

  ForceService(Edge edge, std::shared_ptr<Desk> desk,
               std::shared_ptr<referral::ReferralWatch> watch)
      : watch_(std::move(watch)), edge_(edge), desk_(std::move(desk)) {}

  void ListInbox(UnaryCall* ctx, const v1::ListInboxRequest* req, v1::ListInboxResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Force/ListInbox", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->Inbox(*req));
                   return absl::OkStatus();
                 });
  }

  void GetReferral(UnaryCall* ctx, const v1::GetForceReferralRequest* req,
                   v1::GetForceReferralResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Force/GetReferral", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->Get(req->referral_id()));
                   return absl::OkStatus();
                 });
  }

  void Acknowledge(UnaryCall* ctx, const v1::ForceStepRequest* req, v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/Acknowledge", *req, resp,
               [this, req](const Call& c) { return desk_->Acknowledge(c, *req); });
  }
  void StartResearch(UnaryCall* ctx, const v1::ForceStepRequest* req, v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/StartResearch", *req, resp,
               [this, req](const Call& c) { return desk_->StartResearch(c, *req); });
  }
  void Decline(UnaryCall* ctx, const v1::DeclineReferralRequest* req, v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/Decline", *req, resp,
               [this, req](const Call& c) { return desk_->Decline(c, *req); });
  }
  void Close(UnaryCall* ctx, const v1::CloseReferralRequest* req, v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/Close", *req, resp,
               [this, req](const Call& c) { return desk_->Close(c, *req); });
  }
  void UpdateOutcome(UnaryCall* ctx, const v1::UpdateOutcomeRequest* req,
                     v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/UpdateOutcome", *req, resp,
               [this, req](const Call& c) { return desk_->UpdateOutcome(c, *req); });
  }
  void ReportProgress(UnaryCall* ctx, const v1::ReportProgressRequest* req,
                      v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/ReportProgress", *req, resp,
               [this, req](const Call& c) { return desk_->ReportProgress(c, *req); });
  }
  void ReferToIopc(UnaryCall* ctx, const v1::ReferToIopcRequest* req, v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/ReferToIopc", *req, resp,
               [this, req](const Call& c) { return desk_->ReferToIopc(c, *req); });
  }
  void HandOver(UnaryCall* ctx, const v1::HandOverRequest* req, v1::ForceStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Force/HandOver", *req, resp,
               [this, req](const Call& c) { return desk_->HandOver(c, *req); });
  }

  void RequestInformation(UnaryCall* ctx, const v1::RequestInformationRequest* req,
                          v1::InformationThreadResponse* resp) {
    return referral::ServeAsk(ctx, edge_, "/sarloop.v1.Force/RequestInformation", &desk_->threads(),
                              req, resp);
  }
  void AnswerInformation(UnaryCall* ctx, const v1::AnswerInformationRequest* req,
                         v1::InformationThreadResponse* resp) {
    return referral::ServeAnswer(ctx, edge_, "/sarloop.v1.Force/AnswerInformation",
                                 &desk_->threads(), req, resp);
  }
  void ListThreads(UnaryCall* ctx, const v1::ListThreadsRequest* req,
                   v1::ListThreadsResponse* resp) {
    return referral::ServeListThreads(ctx, edge_, "/sarloop.v1.Force/ListThreads",
                                      &desk_->threads(), req, resp);
  }

  ServerStream<v1::WatchEvent>* WatchInbox(grpc::ServerContextBase* ctx,
                                           const v1::WatchRequest* req) {
    return watch_->Serve(ctx, "/sarloop.v1.Force/WatchInbox", *req);
  }

 private:
  // Runs one step (what it sends wakes the outbox once committed).
  template <typename F>
  void Run(UnaryCall* ctx, const char* method, const google::protobuf::Message& request,
           v1::ForceStepResponse* resp, F step) {
    return ServeWrite(ctx, edge_, method, request, [=, this](const Call& call) -> absl::Status {
      ASSIGN_OR_RETURN(*resp, step(call));
      return absl::OkStatus();
    });
  }

  const std::shared_ptr<referral::ReferralWatch> watch_;
  const Edge edge_;
  const std::shared_ptr<Desk> desk_;
};

}  // namespace

absl::StatusOr<ServiceParts> Build(ServiceContext& ctx) {
  const v1::ServiceConfig& config = ctx.config;
  if (!ctx.reference.FindOrganisation(config.code())) {
    return absl::InvalidArgumentError(
        absl::StrCat("code: '", config.code(), "' is not an organisation in the reference data"));
  }
  auto desk = std::make_shared<Desk>(ctx.db, ctx.clock,
                                     DeskOptions{config.code(), HandoverUnits(config),
                                                 config.hand_over_on_receipt(), &ctx.reference},
                                     &ctx.outbox, PeerCodes(config));
  for (const std::string& d : desk->Destinations()) {
    if (!FindPeer(config, d)) {
      return absl::InvalidArgumentError(absl::StrCat("peers: no address for ", d));
    }
  }
  ServiceParts parts;
  parts.purge = RetentionJob(ctx.db);
  ASSIGN_OR_RETURN(auto watch, referral::ReferralWatch::Create(ctx));
  parts.Serve(std::make_shared<ForceService>(ctx.edge, desk, watch));
  parts.Serve(std::make_shared<DeliveryService>(
      ctx.edge, ctx.db, ctx.clock, [desk](Txn& txn, const Identity& peer, const v1::Envelope& env) {
        return desk->Receive(txn, peer, env);
      }));
  parts.metrics = [&db = ctx.db, &clock = ctx.clock](MetricsText& out) {
    return WriteReferralGauges(db, clock.Now(), out);
  };
  return parts;
}

}  // namespace sarloop::force
