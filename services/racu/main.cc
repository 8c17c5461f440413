// sarloop-racu: one per investigating unit (e.g. ERSOU; the NCA's ACU for Border Force). The
// unit's case system takes handovers here and records decisions and outcomes.
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/delivery_service.h"
#include "common/identity.h"
#include "common/referral/referral_store.h"
#include "common/referral/threads_rpc.h"
#include "common/referral/watch_rpc.h"
#include "common/rpc.h"
#include "common/server.h"
#include "common/version/version.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "services/racu/unit.h"

namespace sarloop::racu {
namespace {

class RacuService final : public v1::Racu::CallbackService {
 public:
  RacuService(Edge edge, std::shared_ptr<Unit> unit, std::shared_ptr<referral::ReferralWatch> watch)
      : watch_(std::move(watch)), edge_(edge), unit_(std::move(unit)) {}

  grpc::ServerUnaryReactor* ListHandovers(grpc::CallbackServerContext* ctx,
                                          const v1::ListHandoversRequest* req,
                                          v1::ListHandoversResponse* resp) override {
    return Serve(ctx, edge_, "/sarloop.v1.Racu/ListHandovers", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, unit_->Inbox(*req));
                   return absl::OkStatus();
                 });
  }

  grpc::ServerUnaryReactor* GetHandover(grpc::CallbackServerContext* ctx,
                                        const v1::GetHandoverRequest* req,
                                        v1::GetHandoverResponse* resp) override {
    return Serve(ctx, edge_, "/sarloop.v1.Racu/GetHandover", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, unit_->Get(req->referral_id()));
                   return absl::OkStatus();
                 });
  }

  grpc::ServerUnaryReactor* Accept(grpc::CallbackServerContext* ctx,
                                   const v1::AcceptHandoverRequest* req,
                                   v1::UnitStepResponse* resp) override {
    return Run(ctx, "/sarloop.v1.Racu/Accept", *req, resp,
               [this, req](const Call& c) { return unit_->Accept(c, *req); });
  }
  grpc::ServerUnaryReactor* DeclineAssistance(grpc::CallbackServerContext* ctx,
                                              const v1::DeclineAssistanceRequest* req,
                                              v1::UnitStepResponse* resp) override {
    return Run(ctx, "/sarloop.v1.Racu/DeclineAssistance", *req, resp,
               [this, req](const Call& c) { return unit_->DeclineAssistance(c, *req); });
  }
  grpc::ServerUnaryReactor* RecordOutcome(grpc::CallbackServerContext* ctx,
                                          const v1::RecordOutcomeRequest* req,
                                          v1::UnitStepResponse* resp) override {
    return Run(ctx, "/sarloop.v1.Racu/RecordOutcome", *req, resp,
               [this, req](const Call& c) { return unit_->RecordOutcome(c, *req); });
  }
  grpc::ServerUnaryReactor* ReportProgress(grpc::CallbackServerContext* ctx,
                                           const v1::ReportUnitProgressRequest* req,
                                           v1::UnitStepResponse* resp) override {
    return Run(ctx, "/sarloop.v1.Racu/ReportProgress", *req, resp,
               [this, req](const Call& c) { return unit_->ReportProgress(c, *req); });
  }
  grpc::ServerUnaryReactor* UpdateOutcome(grpc::CallbackServerContext* ctx,
                                          const v1::UpdateUnitOutcomeRequest* req,
                                          v1::UnitStepResponse* resp) override {
    return Run(ctx, "/sarloop.v1.Racu/UpdateOutcome", *req, resp,
               [this, req](const Call& c) { return unit_->UpdateOutcome(c, *req); });
  }

  grpc::ServerUnaryReactor* RequestInformation(grpc::CallbackServerContext* ctx,
                                               const v1::RequestInformationRequest* req,
                                               v1::InformationThreadResponse* resp) override {
    return referral::ServeAsk(ctx, edge_, "/sarloop.v1.Racu/RequestInformation", &unit_->threads(),
                              req, resp);
  }
  grpc::ServerUnaryReactor* AnswerInformation(grpc::CallbackServerContext* ctx,
                                              const v1::AnswerInformationRequest* req,
                                              v1::InformationThreadResponse* resp) override {
    return referral::ServeAnswer(ctx, edge_, "/sarloop.v1.Racu/AnswerInformation",
                                 &unit_->threads(), req, resp);
  }
  grpc::ServerUnaryReactor* ListThreads(grpc::CallbackServerContext* ctx,
                                        const v1::ListThreadsRequest* req,
                                        v1::ListThreadsResponse* resp) override {
    return referral::ServeListThreads(ctx, edge_, "/sarloop.v1.Racu/ListThreads", &unit_->threads(),
                                      req, resp);
  }

  grpc::ServerWriteReactor<v1::WatchEvent>* WatchHandovers(grpc::CallbackServerContext* ctx,
                                                           const v1::WatchRequest* req) override {
    return watch_->Serve(ctx, "/sarloop.v1.Racu/WatchHandovers", *req);
  }

 private:
  template <typename F>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, const char* method,
                                const google::protobuf::Message& request,
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
  ASSIGN_OR_RETURN(auto watch, referral::ReferralWatch::Create(ctx));
  parts.services.push_back(std::make_shared<RacuService>(ctx.edge, unit, watch));
  parts.services.push_back(std::make_shared<DeliveryService>(
      ctx.edge, ctx.db, ctx.clock, [unit](Txn& txn, const Identity& peer, const v1::Envelope& env) {
        return unit->Receive(txn, peer, env);
      }));
  parts.metrics = [&db = ctx.db, &clock = ctx.clock](MetricsText& out) {
    return WriteReferralGauges(db, clock.Now(), out);
  };
  return parts;
}

}  // namespace
}  // namespace sarloop::racu

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-racu",
          sarloop::ServiceUsage("sarloop-racu",
                                "A regional anti-corruption unit's node: handovers from the forces "
                                "it serves, joint investigations and their outcomes."))) {
    return 0;
  }
  return sarloop::RunService(argc, argv, sarloop::v1::SERVICE_KIND_RACU,
                             sarloop::racu::UnitMigrations(), sarloop::racu::Build,
                             sarloop::racu::UnitMigrationsAfterAudit());
}
