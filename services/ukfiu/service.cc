#include "services/ukfiu/service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/base/crypto.h"
#include "common/referral/delivery_service.h"
#include "common/referral/referral_store.h"
#include "common/referral/retention.h"
#include "common/referral/threads_rpc.h"
#include "common/referral/watch_rpc.h"
#include "common/rpc/rpc.h"
#include "common/security/identity.h"
#include "common/server/config.h"
#include "common/server/server.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "services/ukfiu/desk.h"

namespace sarloop::ukfiu {
namespace {

class UkfiuService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("SubmitSar", this, &UkfiuService::SubmitSar);
    raw.Unary("GetSar", this, &UkfiuService::GetSar);
    raw.Unary("ReferSar", this, &UkfiuService::ReferSar);
    raw.Unary("WithdrawReferral", this, &UkfiuService::WithdrawReferral);
    raw.Unary("RedirectReferral", this, &UkfiuService::RedirectReferral);
    raw.Unary("GetReferral", this, &UkfiuService::GetReferral);
    raw.Unary("ListReferrals", this, &UkfiuService::ListReferrals);
    raw.Unary("RunFeedbackClock", this, &UkfiuService::RunFeedbackClock);
    raw.Unary("RecordOnBehalf", this, &UkfiuService::RecordOnBehalf);
    raw.Unary("AttachSar", this, &UkfiuService::AttachSar);
    raw.Unary("RequestInformation", this, &UkfiuService::RequestInformation);
    raw.Unary("AnswerInformation", this, &UkfiuService::AnswerInformation);
    raw.Unary("ListThreads", this, &UkfiuService::ListThreads);
    raw.Streaming("WatchReferrals", this, &UkfiuService::WatchReferrals);
  }
  static constexpr char kServiceName[] = "sarloop.v1.Ukfiu";

  UkfiuService(Edge edge, std::shared_ptr<Desk> desk,
               std::shared_ptr<referral::ReferralWatch> watch)
      : watch_(std::move(watch)), edge_(edge), desk_(std::move(desk)) {}

  void SubmitSar(UnaryCall* ctx, const v1::SubmitSarRequest* req, v1::SubmitSarResponse* resp) {
    // Checking the SAR and encoding its subjects for the linkage screen happen on the serving
    // thread; only storing it waits for the writer.
    auto prepared = std::make_shared<Desk::PreparedSar>();
    return ServePreparedWrite(
        ctx, edge_, "/sarloop.v1.Ukfiu/SubmitSar", *req,
        [=, this](const Call&) -> absl::Status {
          ASSIGN_OR_RETURN(*prepared, desk_->PrepareSar(*req));
          return absl::OkStatus();
        },
        [=, this](const Call& call) -> absl::Status {
          ASSIGN_OR_RETURN(*resp, desk_->SubmitPrepared(call, *req, *prepared));
          return absl::OkStatus();
        });
  }

  void GetSar(UnaryCall* ctx, const v1::GetSarRequest* req, v1::GetSarResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Ukfiu/GetSar", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->GetSar(req->sar_id()));
                   return absl::OkStatus();
                 });
  }

  void ReferSar(UnaryCall* ctx, const v1::ReferSarRequest* req, v1::ReferSarResponse* resp) {
    return ServeWrite(ctx, edge_, "/sarloop.v1.Ukfiu/ReferSar", *req,
                      [=, this](const Call& call) -> absl::Status {
                        ASSIGN_OR_RETURN(*resp, desk_->Refer(call, *req));
                        return absl::OkStatus();
                      });
  }

  void WithdrawReferral(UnaryCall* ctx, const v1::WithdrawReferralRequest* req,
                        v1::WithdrawReferralResponse* resp) {
    return ServeWrite(ctx, edge_, "/sarloop.v1.Ukfiu/WithdrawReferral", *req,
                      [=, this](const Call& call) -> absl::Status {
                        ASSIGN_OR_RETURN(*resp, desk_->Withdraw(call, *req));
                        return absl::OkStatus();
                      });
  }

  void RedirectReferral(UnaryCall* ctx, const v1::RedirectReferralRequest* req,
                        v1::RedirectReferralResponse* resp) {
    return ServeWrite(ctx, edge_, "/sarloop.v1.Ukfiu/RedirectReferral", *req,
                      [=, this](const Call& call) -> absl::Status {
                        ASSIGN_OR_RETURN(*resp, desk_->Redirect(call, *req));
                        return absl::OkStatus();
                      });
  }

  void GetReferral(UnaryCall* ctx, const v1::GetReferralRequest* req,
                   v1::GetReferralResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Ukfiu/GetReferral", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->GetReferral(req->referral_id()));
                   return absl::OkStatus();
                 });
  }

  void ListReferrals(UnaryCall* ctx, const v1::ListReferralsRequest* req,
                     v1::ListReferralsResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Ukfiu/ListReferrals", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->List(*req));
                   return absl::OkStatus();
                 });
  }

  void RunFeedbackClock(UnaryCall* ctx, const v1::RunFeedbackClockRequest* req,
                        v1::RunFeedbackClockResponse* resp) {
    return ServeWrite(ctx, edge_, "/sarloop.v1.Ukfiu/RunFeedbackClock", *req,
                      [=, this](const Call&) -> absl::Status {
                        ASSIGN_OR_RETURN(*resp, desk_->RunClock());
                        return absl::OkStatus();
                      });
  }

  void RecordOnBehalf(UnaryCall* ctx, const v1::RecordOnBehalfRequest* req,
                      v1::RecordOnBehalfResponse* resp) {
    return ServeWrite(ctx, edge_, "/sarloop.v1.Ukfiu/RecordOnBehalf", *req,
                      [=, this](const Call& call) -> absl::Status {
                        ASSIGN_OR_RETURN(*resp, desk_->RecordOnBehalf(call, *req));
                        return absl::OkStatus();
                      });
  }

  void AttachSar(UnaryCall* ctx, const v1::AttachSarRequest* req, v1::AttachSarResponse* resp) {
    return ServeWrite(ctx, edge_, "/sarloop.v1.Ukfiu/AttachSar", *req,
                      [=, this](const Call& call) -> absl::Status {
                        ASSIGN_OR_RETURN(*resp, desk_->AttachSar(call, *req));
                        return absl::OkStatus();
                      });
  }

  void RequestInformation(UnaryCall* ctx, const v1::RequestInformationRequest* req,
                          v1::InformationThreadResponse* resp) {
    return referral::ServeAsk(ctx, edge_, "/sarloop.v1.Ukfiu/RequestInformation", &desk_->threads(),
                              req, resp);
  }
  void AnswerInformation(UnaryCall* ctx, const v1::AnswerInformationRequest* req,
                         v1::InformationThreadResponse* resp) {
    return referral::ServeAnswer(ctx, edge_, "/sarloop.v1.Ukfiu/AnswerInformation",
                                 &desk_->threads(), req, resp);
  }
  void ListThreads(UnaryCall* ctx, const v1::ListThreadsRequest* req,
                   v1::ListThreadsResponse* resp) {
    return referral::ServeListThreads(ctx, edge_, "/sarloop.v1.Ukfiu/ListThreads",
                                      &desk_->threads(), req, resp);
  }

  ServerStream<v1::WatchEvent>* WatchReferrals(grpc::ServerContextBase* ctx,
                                               const v1::WatchRequest* req) {
    return watch_->Serve(ctx, "/sarloop.v1.Ukfiu/WatchReferrals", *req);
  }

 private:
  const std::shared_ptr<referral::ReferralWatch> watch_;
  const Edge edge_;
  const std::shared_ptr<Desk> desk_;
};

absl::StatusOr<std::string> ReadKey(const std::string& path) {
  absl::StatusOr<std::string> key = ReadKeyFile(path, 32, 1024);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("subject_key_file: ", key.status().message()));
  }
  return key;
}

}  // namespace

absl::StatusOr<ServiceParts> Build(ServiceContext& ctx) {
  const v1::ServiceConfig& config = ctx.config;
  if (!FindPeer(config, "NCA")) return absl::InvalidArgumentError("peers: no address for NCA");
  DeskOptions options;
  ASSIGN_OR_RETURN(options.subject_key, ReadKey(config.subject_key_file()));
  options.feedback = config.feedback();
  if (!config.linkage_key_file().empty()) {
    if (!FindPeer(config, kLinkageCode)) {
      return absl::InvalidArgumentError("peers: linkage_key_file needs a peer LINKAGE");
    }
    absl::StatusOr<std::string> key =
        ReadKeyFile(config.linkage_key_file(), linkage::kKeyBytes, linkage::kKeyBytes);
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("linkage_key_file: ", key.status().message()));
    }
    options.linkage_key = *key;
  }
  for (const v1::Peer& p : config.peers()) {
    if (p.code() == kRegisterCode || p.code() == kLinkageCode) continue;
    // A peer that is not an organisation in the reference data is an investigating unit.
    if (ctx.reference.FindOrganisation(p.code())) options.reachable.push_back(p.code());
  }
  auto desk = std::make_shared<Desk>(ctx.db, ctx.clock, ctx.reference, std::move(options),
                                     &ctx.outbox, PeerCodes(config));
  ServiceParts parts;
  parts.purge = RetentionJob(ctx.db);
  ASSIGN_OR_RETURN(auto watch, referral::ReferralWatch::Create(ctx));
  parts.Serve(std::make_shared<UkfiuService>(ctx.edge, desk, watch));
  parts.Serve(std::make_shared<DeliveryService>(
      ctx.edge, ctx.db, ctx.clock, [desk](Txn& txn, const Identity& peer, const v1::Envelope& env) {
        return desk->Receive(txn, peer, env);
      }));
  parts.period = absl::Seconds(config.feedback().scan_interval_seconds());
  parts.periodic = [desk] {
    absl::StatusOr<v1::RunFeedbackClockResponse> r = desk->RunClock();
    if (!r.ok()) {
      spdlog::warn("feedback clock: {}", r.status().ToString());
      return;
    }
    if (r->reminders_sent() + r->escalations() + r->open_investigation_flags() > 0) {
      spdlog::info("feedback clock: {} reminders, {} escalations, {} open-investigation flags",
                   r->reminders_sent(), r->escalations(), r->open_investigation_flags());
    }
  };
  parts.metrics = [&db = ctx.db, &clock = ctx.clock](MetricsText& out) {
    return WriteReferralGauges(db, clock.Now(), out);
  };
  return parts;
}

}  // namespace sarloop::ukfiu
