#include "services/racu/service.h"

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
#include "sarloop/v1/racu.grpc.pb.h"
#include "services/racu/unit.h"

namespace sarloop::racu {
namespace {

class RacuService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("ListHandovers", this, &RacuService::ListHandovers);
    raw.Unary("GetHandover", this, &RacuService::GetHandover);
    raw.Unary("Accept", this, &RacuService::Accept);
    raw.Unary("DeclineAssistance", this, &RacuService::DeclineAssistance);
    raw.Unary("RecordOutcome", this, &RacuService::RecordOutcome);
    raw.Unary("UpdateOutcome", this, &RacuService::UpdateOutcome);
    raw.Unary("ReportProgress", this, &RacuService::ReportProgress);
    raw.Unary("RequestInformation", this, &RacuService::RequestInformation);
    raw.Unary("AnswerInformation", this, &RacuService::AnswerInformation);
    raw.Unary("ListThreads", this, &RacuService::ListThreads);
    raw.Streaming("WatchHandovers", this, &RacuService::WatchHandovers);
  }
  static constexpr char kServiceName[] = "sarloop.v1.Racu";

  RacuService(Edge edge, std::shared_ptr<Unit> unit, std::shared_ptr<referral::ReferralWatch> watch)
      : watch_(std::move(watch)), edge_(edge), unit_(std::move(unit)) {}

  void ListHandovers(UnaryCall* ctx, const v1::ListHandoversRequest* req,
                     v1::ListHandoversResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Racu/ListHandovers", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, unit_->Inbox(*req));
                   return absl::OkStatus();
                 });
  }

  void GetHandover(UnaryCall* ctx, const v1::GetHandoverRequest* req,
                   v1::GetHandoverResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Racu/GetHandover", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, unit_->Get(req->referral_id()));
                   return absl::OkStatus();
                 });
  }

  void Accept(UnaryCall* ctx, const v1::AcceptHandoverRequest* req, v1::UnitStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Racu/Accept", *req, resp,
               [this, req](const Call& c) { return unit_->Accept(c, *req); });
  }
  void DeclineAssistance(UnaryCall* ctx, const v1::DeclineAssistanceRequest* req,
                         v1::UnitStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Racu/DeclineAssistance", *req, resp,
               [this, req](const Call& c) { return unit_->DeclineAssistance(c, *req); });
  }
  void RecordOutcome(UnaryCall* ctx, const v1::RecordOutcomeRequest* req,
                     v1::UnitStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Racu/RecordOutcome", *req, resp,
               [this, req](const Call& c) { return unit_->RecordOutcome(c, *req); });
  }
  void ReportProgress(UnaryCall* ctx, const v1::ReportUnitProgressRequest* req,
                      v1::UnitStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Racu/ReportProgress", *req, resp,
               [this, req](const Call& c) { return unit_->ReportProgress(c, *req); });
  }
  void UpdateOutcome(UnaryCall* ctx, const v1::UpdateUnitOutcomeRequest* req,
                     v1::UnitStepResponse* resp) {
    return Run(ctx, "/sarloop.v1.Racu/UpdateOutcome", *req, resp,
               [this, req](const Call& c) { return unit_->UpdateOutcome(c, *req); });
  }

  void RequestInformation(UnaryCall* ctx, const v1::RequestInformationRequest* req,
                          v1::InformationThreadResponse* resp) {
    return referral::ServeAsk(ctx, edge_, "/sarloop.v1.Racu/RequestInformation", &unit_->threads(),
                              req, resp);
  }
  void AnswerInformation(UnaryCall* ctx, const v1::AnswerInformationRequest* req,
                         v1::InformationThreadResponse* resp) {
    return referral::ServeAnswer(ctx, edge_, "/sarloop.v1.Racu/AnswerInformation",
                                 &unit_->threads(), req, resp);
  }
  void ListThreads(UnaryCall* ctx, const v1::ListThreadsRequest* req,
                   v1::ListThreadsResponse* resp) {
    return referral::ServeListThreads(ctx, edge_, "/sarloop.v1.Racu/ListThreads", &unit_->threads(),
                                      req, resp);
  }

  ServerStream<v1::WatchEvent>* WatchHandovers(grpc::ServerContextBase* ctx,
                                               const v1::WatchRequest* req) {
    return watch_->Serve(ctx, "/sarloop.v1.Racu/WatchHandovers", *req);
  }

 private:
  template <typename F>
  void Run(UnaryCall* ctx, const char* method, const google::protobuf::Message& request,
           v1::UnitStepResponse* resp, F step) {
    return ServeWrite(ctx, edge_, method, request, [=, this](const Call& call) -> absl::Status {
      ASSIGN_OR_RETURN(*resp, step(call));
      return absl::OkStatus();
    });
  }

  const std::shared_ptr<referral::ReferralWatch> watch_;
  const Edge edge_;
  const std::shared_ptr<Unit> unit_;
};

}  // namespace

absl::StatusOr<ServiceParts> Build(ServiceContext& ctx) {
  const v1::ServiceConfig& config = ctx.config;
  UnitOptions options{config.code(),
                      {config.served_forces().begin(), config.served_forces().end()}};
  if (!config.decline_reviewer().empty()) options.decline_reviewer = config.decline_reviewer();
  for (const std::string& f : options.served_forces) {
    if (!ctx.reference.FindOrganisation(f)) {
      return absl::InvalidArgumentError(absl::StrCat("served_forces: unknown organisation ", f));
    }
  }
  auto unit = std::make_shared<Unit>(ctx.db, ctx.clock, options, &ctx.outbox, PeerCodes(config));
  for (const std::string& d : unit->Destinations()) {
    if (!FindPeer(config, d))
      return absl::InvalidArgumentError(absl::StrCat("peers: no address for ", d));
  }
  ServiceParts parts;
  parts.purge = RetentionJob(ctx.db);
  ASSIGN_OR_RETURN(auto watch, referral::ReferralWatch::Create(ctx));
  parts.Serve(std::make_shared<RacuService>(ctx.edge, unit, watch));
  parts.Serve(std::make_shared<DeliveryService>(
      ctx.edge, ctx.db, ctx.clock, [unit](Txn& txn, const Identity& peer, const v1::Envelope& env) {
        return unit->Receive(txn, peer, env);
      }));
  parts.metrics = [&db = ctx.db, &clock = ctx.clock](MetricsText& out) {
    return WriteReferralGauges(db, clock.Now(), out);
  };
  return parts;
}

}  // namespace sarloop::racu
