#include "services/nca/service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/base/ids.h"
#include "common/referral/delivery_service.h"
#include "common/rpc/rpc.h"
#include "common/security/identity.h"
#include "common/server/server.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "services/nca/dashboard.h"
#include "services/nca/register.h"

namespace sarloop::nca {
namespace {

// The oversight office-holders' view: only what is addressed to them and their own force.
class OversightService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("ListEscalations", this, &OversightService::ListEscalations);
    raw.Unary("ListOverdue", this, &OversightService::ListOverdue);
  }
  static constexpr char kServiceName[] = "sarloop.v1.Oversight";

  OversightService(Edge edge, std::shared_ptr<Register> reg, Clock& clock)
      : edge_(edge), register_(std::move(reg)), clock_(clock) {}

  void ListEscalations(UnaryCall* ctx, const v1::ListEscalationsRequest* req,
                       v1::ListEscalationsResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Oversight/ListEscalations", *req,
                 [=, this](const Call& call) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, register_->EscalationsFor(call.identity.uri, *req));
                   return absl::OkStatus();
                 });
  }

  void ListOverdue(UnaryCall* ctx, const v1::ListOverdueRequest* req,
                   v1::ListOverdueResponse* resp) {
    return Serve(
        ctx, edge_, "/sarloop.v1.Oversight/ListOverdue", *req,
        [=, this](const Call& call) -> absl::Status {
          if (!req->organisation().empty() && req->organisation() != call.identity.org) {
            return absl::PermissionDeniedError(absl::StrCat(
                "organisation: ", call.identity.uri, " oversees ", call.identity.org, " only"));
          }
          v1::ListOverdueRequest own = *req;
          own.set_organisation(call.identity.org);
          ASSIGN_OR_RETURN(*resp, register_->Overdue(own, clock_.Now()));
          return absl::OkStatus();
        });
  }

 private:
  const Edge edge_;
  const std::shared_ptr<Register> register_;
  Clock& clock_;
};

class NcaService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("GetTimeline", this, &NcaService::GetTimeline);
    raw.Unary("ListRegister", this, &NcaService::ListRegister);
    raw.Unary("ListOverdue", this, &NcaService::ListOverdue);
    raw.Unary("GetSummary", this, &NcaService::GetSummary);
    raw.Unary("GetAggregates", this, &NcaService::GetAggregates);
    raw.Unary("CreateDashboardSession", this, &NcaService::CreateDashboardSession);
    raw.Streaming("WatchRegister", this, &NcaService::WatchRegister);
  }
  static constexpr char kServiceName[] = "sarloop.v1.Nca";

  NcaService(Edge edge, std::shared_ptr<Register> reg, Clock& clock, int min_count,
             std::shared_ptr<Dashboard> dashboard, WatchHub& hub,
             std::shared_ptr<const TokenSigner> signer)
      : hub_(hub),
        signer_(std::move(signer)),
        edge_(edge),
        register_(std::move(reg)),
        clock_(clock),
        min_count_(min_count),
        dashboard_(std::move(dashboard)) {}

  void GetTimeline(UnaryCall* ctx, const v1::GetTimelineRequest* req,
                   v1::GetTimelineResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Nca/GetTimeline", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, register_->Timeline(req->referral_id()));
                   return absl::OkStatus();
                 });
  }

  void ListRegister(UnaryCall* ctx, const v1::ListRegisterRequest* req,
                    v1::ListRegisterResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Nca/ListRegister", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, register_->List(*req));
                   return absl::OkStatus();
                 });
  }

  void ListOverdue(UnaryCall* ctx, const v1::ListOverdueRequest* req,
                   v1::ListOverdueResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Nca/ListOverdue", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, register_->Overdue(*req, clock_.Now()));
                   return absl::OkStatus();
                 });
  }

  void GetSummary(UnaryCall* ctx, const v1::GetSummaryRequest* req, v1::GetSummaryResponse* resp) {
    return Serve(
        ctx, edge_, "/sarloop.v1.Nca/GetSummary", *req, [=, this](const Call&) -> absl::Status {
          ASSIGN_OR_RETURN(
              *resp, register_->Summary(req->has_as_of() ? FromProto(req->as_of()) : clock_.Now()));
          return absl::OkStatus();
        });
  }

  void GetAggregates(UnaryCall* ctx, const v1::GetAggregatesRequest* req,
                     v1::GetAggregatesResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Nca/GetAggregates", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, register_->Aggregates(*req, clock_.Now(), min_count_));
                   return absl::OkStatus();
                 });
  }

  void CreateDashboardSession(UnaryCall* ctx, const v1::CreateDashboardSessionRequest* req,
                              v1::CreateDashboardSessionResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Nca/CreateDashboardSession", *req,
                 [=, this](const Call& call) -> absl::Status {
                   if (dashboard_ == nullptr) {
                     return absl::FailedPreconditionError(
                         "the dashboard is not configured (dashboard_listen)");
                   }
                   ASSIGN_OR_RETURN(std::string url, dashboard_->LoginUrlFor(call.identity));
                   resp->set_login_url(std::move(url));
                   resp->set_session_seconds(Dashboard::kSessionSeconds);
                   return absl::OkStatus();
                 });
  }

  ServerStream<v1::RegisterChange>* WatchRegister(grpc::ServerContextBase* ctx,
                                                  const v1::WatchRequest* req) {
    std::shared_ptr<Register> reg = register_;
    return ServeWatch<v1::RegisterChange>(
        ctx, edge_.audit_db, edge_.clock, hub_, *signer_, "/sarloop.v1.Nca/WatchRegister", *req,
        [reg] { return reg->FeedHead(); },
        [reg](int64_t after, int limit, std::vector<std::pair<int64_t, v1::RegisterChange>>& out) {
          return reg->Changes(after, limit, out);
        });
  }

 private:
  WatchHub& hub_;
  const std::shared_ptr<const TokenSigner> signer_;
  const Edge edge_;
  const std::shared_ptr<Register> register_;
  Clock& clock_;
  const int min_count_;
  const std::shared_ptr<Dashboard> dashboard_;
};

}  // namespace

absl::StatusOr<ServiceParts> Build(ServiceContext& ctx) {
  auto reg = std::make_shared<Register>(ctx.db, ctx.reference, ctx.clock);
  RETURN_IF_ERROR(reg->CatchUp());
  ASSIGN_OR_RETURN(std::shared_ptr<const TokenSigner> signer, TokenSigner::ForDatabase(ctx.db));
  const int min_count = ctx.config.publication_min_count();
  ServiceParts parts;
  std::shared_ptr<Dashboard> dashboard;
  if (!ctx.config.dashboard_listen().empty()) {
    dashboard = std::make_shared<Dashboard>(*reg, ctx.clock, ctx.edge.audit_db, ctx.reference,
                                            ctx.config.dashboard_listen(), ctx.allows);
    ASSIGN_OR_RETURN(std::shared_ptr<HttpsServer> https,
                     HttpsServer::Start(ctx.config.dashboard_listen(), ctx.config.tls(),
                                        [dashboard](const HttpRequest& request) {
                                          return dashboard->Handle(request);
                                        }));
    spdlog::info("dashboard on https://{}", ctx.config.dashboard_listen());
    parts.resources.push_back(https);
    parts.resources.push_back(dashboard);
  }
  parts.Serve(std::make_shared<NcaService>(ctx.edge, reg, ctx.clock, min_count, dashboard,
                                           ctx.watch, std::move(signer)));
  parts.Serve(std::make_shared<OversightService>(ctx.edge, reg, ctx.clock));
  parts.Serve(std::make_shared<RegisterFeedService>(
      ctx.edge, ctx.db, ctx.clock,
      [reg](Txn& txn, const Identity& peer, const v1::LifecycleEvent& event) {
        return reg->Receive(txn, peer, event);
      }));
  // From the aggregate index, not SQL: a GROUP BY over a million entries takes seconds.
  parts.metrics = [reg, &clock = ctx.clock](MetricsText& out) -> absl::Status {
    v1::GetAggregatesRequest request;
    request.add_group_by(v1::DIMENSION_STATE);
    ASSIGN_OR_RETURN(v1::GetAggregatesResponse states, reg->Aggregates(request, clock.Now(), 0));
    out.Family("sarloop_referrals", "gauge", "Referrals in the NCA register, by state.");
    for (const v1::AggregateGroup& g : states.groups()) {
      out.Sample("sarloop_referrals", Label("state", g.key(0)),
                 static_cast<double>(g.measures().referred()));
    }
    out.Family("sarloop_referrals_overdue", "gauge",
               "Referrals in the register not ended whose feedback due date has passed.");
    out.Sample("sarloop_referrals_overdue", "", static_cast<double>(states.total().overdue()));
    return absl::OkStatus();
  };
  return parts;
}

}  // namespace sarloop::nca
