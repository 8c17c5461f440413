#include "services/linkage/service.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/base/metrics.h"
#include "common/referral/delivery_service.h"
#include "common/referral/retention.h"
#include "common/rpc/rpc.h"
#include "common/server/server.h"
#include "sarloop/v1/linkage.grpc.pb.h"
#include "services/linkage/desk.h"

namespace sarloop::linkage {
namespace {

class LinkageService final {
 public:
  // Its methods, for RawService (common/rpc/serving.h).
  void AddTo(RawService& raw) {
    raw.Unary("BeginIndexUpload", this, &LinkageService::BeginIndexUpload);
    raw.Unary("UploadIndexRecords", this, &LinkageService::UploadIndexRecords);
    raw.Unary("CommitIndexUpload", this, &LinkageService::CommitIndexUpload);
    raw.Unary("ScreenSubjects", this, &LinkageService::ScreenSubjects);
    raw.Unary("ListHits", this, &LinkageService::ListHits);
    raw.Unary("GetHit", this, &LinkageService::GetHit);
    raw.Unary("RecordLinkFeedback", this, &LinkageService::RecordLinkFeedback);
    raw.Unary("GetLinkageStats", this, &LinkageService::GetLinkageStats);
  }
  static constexpr char kServiceName[] = "sarloop.v1.Linkage";

  LinkageService(Edge edge, std::shared_ptr<LinkageDesk> desk)
      : edge_(edge), desk_(std::move(desk)) {}

  void BeginIndexUpload(UnaryCall* ctx, const v1::BeginIndexUploadRequest* req,
                        v1::BeginIndexUploadResponse* resp) {
    return Write(ctx, "/sarloop.v1.Linkage/BeginIndexUpload", *req, resp,
                 [this, req](const Call& c) { return desk_->BeginUpload(c, *req); });
  }
  void UploadIndexRecords(UnaryCall* ctx, const v1::UploadIndexRecordsRequest* req,
                          v1::UploadIndexRecordsResponse* resp) {
    return Write(ctx, "/sarloop.v1.Linkage/UploadIndexRecords", *req, resp,
                 [this, req](const Call& c) { return desk_->UploadRecords(c, *req); });
  }
  void CommitIndexUpload(UnaryCall* ctx, const v1::CommitIndexUploadRequest* req,
                         v1::CommitIndexUploadResponse* resp) {
    return Beside(ctx, "/sarloop.v1.Linkage/CommitIndexUpload", *req, resp,
                  [this, req](const Call& c) { return desk_->CommitUpload(c, *req); });
  }
  void ScreenSubjects(UnaryCall* ctx, const v1::ScreenSubjectsRequest* req,
                      v1::ScreenSubjectsResponse* resp) {
    return Beside(ctx, "/sarloop.v1.Linkage/ScreenSubjects", *req, resp,
                  [this, req](const Call& c) { return desk_->Screen(c, *req); });
  }
  void RecordLinkFeedback(UnaryCall* ctx, const v1::RecordLinkFeedbackRequest* req,
                          v1::RecordLinkFeedbackResponse* resp) {
    return Write(ctx, "/sarloop.v1.Linkage/RecordLinkFeedback", *req, resp,
                 [this, req](const Call& c) { return desk_->RecordFeedback(c, *req); });
  }
  void ListHits(UnaryCall* ctx, const v1::ListHitsRequest* req, v1::ListHitsResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Linkage/ListHits", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->ListHits(*req));
                   return absl::OkStatus();
                 });
  }
  void GetHit(UnaryCall* ctx, const v1::GetHitRequest* req, v1::GetHitResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Linkage/GetHit", *req,
                 [=, this](const Call& c) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->GetHit(c, *req));
                   return absl::OkStatus();
                 });
  }
  void GetLinkageStats(UnaryCall* ctx, const v1::GetLinkageStatsRequest* req,
                       v1::GetLinkageStatsResponse* resp) {
    return Serve(ctx, edge_, "/sarloop.v1.Linkage/GetLinkageStats", *req,
                 [=, this](const Call&) -> absl::Status {
                   ASSIGN_OR_RETURN(*resp, desk_->Stats());
                   return absl::OkStatus();
                 });
  }

 private:
  // Write: small changes, run as write jobs on the writer thread. Beside: calls that compare
  // encodings before they write; the comparing runs on the executor, beside the writer, and the
  // desk's short transactions queue for the writer like any other.
  template <typename Response, typename F>
  void Write(UnaryCall* ctx, const char* method, const google::protobuf::Message& request,
             Response* resp, F step) {
    return ServeWrite(ctx, edge_, method, request, Body(resp, step));
  }
  template <typename Response, typename F>
  void Beside(UnaryCall* ctx, const char* method, const google::protobuf::Message& request,
              Response* resp, F step) {
    return Serve(ctx, edge_, method, request, Body(resp, step));
  }
  template <typename Response, typename F>
  static auto Body(Response* resp, F step) {
    return [=](const Call& call) -> absl::Status {
      ASSIGN_OR_RETURN(*resp, step(call));
      return absl::OkStatus();
    };
  }

  const Edge edge_;
  const std::shared_ptr<LinkageDesk> desk_;
};

}  // namespace

absl::StatusOr<ServiceParts> Build(ServiceContext& ctx) {
  LinkageOptions options;
  if (ctx.config.linkage_threshold_milli() > 0) {
    options.threshold_milli = static_cast<uint32_t>(ctx.config.linkage_threshold_milli());
  }
  if (ctx.config.linkage_subjects_per_minute() > 0) {
    options.subjects_per_minute = ctx.config.linkage_subjects_per_minute();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<LinkageDesk> desk,
                   LinkageDesk::Load(ctx.db, ctx.clock, options));
  std::shared_ptr<LinkageDesk> shared = std::move(desk);
  ServiceParts parts;
  // What every service deletes, then the SAR subjects screened and the hits found before the
  // same cutoff (linkage_subjects and linkage_hits are this service's alone).
  parts.purge = [common = RetentionJob(ctx.db), shared](absl::Time now,
                                                        int years) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(std::string summary, common(now, years));
    ASSIGN_OR_RETURN(LinkageDesk::Purged screened,
                     shared->PurgeScreenedBefore(RetentionCutoff(now, years), "sarloop/retention"));
    if (screened.subjects + screened.hits == 0) return summary;
    return absl::StrCat(summary, summary.empty() ? "" : "; ", screened.Summary());
  };
  parts.Serve(std::make_shared<LinkageService>(ctx.edge, shared));
  // New SARs' subjects, from the ukfiu service's outbox.
  parts.Serve(std::make_shared<DeliveryService>(
      ctx.edge, ctx.db, ctx.clock,
      [shared, &db = ctx.db](Txn& txn, const Identity& peer, const v1::Envelope& env) {
        RETURN_IF_ERROR(shared->Receive(txn, peer, env));
        // The in-memory subjects follow what the batch committed.
        db.AfterCommit([shared] { shared->RefreshSubjects(); });
        return absl::OkStatus();
      },
      /*accepts_screens=*/true));
  // Gauges read at each scrape from the desk's figures (the same as GetLinkageStats); how long
  // screens take is the RPC histogram's sarloop_rpc_duration_seconds{method=".../ScreenSubjects"}.
  parts.metrics = [shared](MetricsText& out) -> absl::Status {
    ASSIGN_OR_RETURN(v1::GetLinkageStatsResponse stats, shared->Stats());
    out.Family("sarloop_linkage_subjects_stored", "gauge",
               "SAR subjects held encoded, screened again when an index changes");
    out.Sample("sarloop_linkage_subjects_stored", "", static_cast<double>(stats.subjects_stored()));
    out.Family("sarloop_linkage_threshold", "gauge", "The score a hit must reach, 0 to 1");
    out.Sample("sarloop_linkage_threshold", "", stats.threshold_milli() / 1000.0);
    out.Family("sarloop_linkage_index_records", "gauge", "Records in each force's index in use");
    for (const v1::OrganisationLinkStats& o : stats.organisations()) {
      out.Sample("sarloop_linkage_index_records", Label("organisation", o.organisation()),
                 static_cast<double>(o.index_records()));
    }
    out.Family("sarloop_linkage_index_version", "gauge", "The version of each force's index");
    for (const v1::OrganisationLinkStats& o : stats.organisations()) {
      out.Sample("sarloop_linkage_index_version", Label("organisation", o.organisation()),
                 static_cast<double>(o.index_version()));
    }
    out.Family("sarloop_linkage_hits", "gauge",
               "Hits in each force's index by the force's verdict (open: none yet)");
    for (const v1::OrganisationLinkStats& o : stats.organisations()) {
      for (const auto& [status, n] : {std::pair<const char*, int64_t>{"open", o.open()},
                                      {"confirmed", o.confirmed()},
                                      {"rejected", o.rejected()}}) {
        out.Sample(
            "sarloop_linkage_hits",
            absl::StrCat(Label("organisation", o.organisation()), ",", Label("verdict", status)),
            static_cast<double>(n));
      }
    }
    out.Family("sarloop_linkage_precision", "gauge",
               "confirmed / (confirmed + rejected) per force: the screen's precision in use");
    for (const v1::OrganisationLinkStats& o : stats.organisations()) {
      if (o.confirmed() + o.rejected() == 0) continue;
      out.Sample("sarloop_linkage_precision", Label("organisation", o.organisation()),
                 o.precision());
    }
    return absl::OkStatus();
  };
  return parts;
}

}  // namespace sarloop::linkage
