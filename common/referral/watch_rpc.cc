#include "common/referral/watch_rpc.h"

#include "common/base/ids.h"
#include "common/referral/event_log.h"
#include "common/referral/referral_store.h"

namespace sarloop::referral {

absl::Status ReadReferralFeed(Database& db, int64_t after, int limit,
                              std::vector<std::pair<int64_t, v1::WatchEvent>>& out) {
  return db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<FeedItem> items, ReadFeed(txn, after, limit));
    out.reserve(items.size());
    for (FeedItem& item : items) {
      v1::WatchEvent message;
      *message.mutable_recorded_at() = ToProto(item.recorded_at);
      absl::StatusOr<v1::Referral> referral = LoadReferral(txn, item.event.referral_id());
      if (referral.ok()) {
        referral->clear_package();
        *message.mutable_referral() = *std::move(referral);
      } else if (!absl::IsNotFound(referral.status())) {
        return referral.status();
      }
      *message.mutable_event() = std::move(item.event);
      out.emplace_back(item.seq, std::move(message));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> ReferralFeedHead(Database& db) {
  int64_t head = 0;
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(head, FeedHead(txn));
    return absl::OkStatus();
  }));
  return head;
}

absl::StatusOr<std::shared_ptr<ReferralWatch>> ReferralWatch::Create(ServiceContext& ctx) {
  ASSIGN_OR_RETURN(std::shared_ptr<const TokenSigner> signer, TokenSigner::ForDatabase(ctx.db));
  return std::make_shared<ReferralWatch>(ctx, std::move(signer));
}

ServerStream<v1::WatchEvent>* ReferralWatch::Serve(grpc::ServerContextBase* ctx, const char* method,
                                                   const v1::WatchRequest& request) {
  Database& db = db_;
  return ServeWatch<v1::WatchEvent>(
      ctx, edge_.audit_db, edge_.clock, hub_, *signer_, method, request,
      [&db] { return ReferralFeedHead(db); },
      [&db](int64_t after, int limit, std::vector<std::pair<int64_t, v1::WatchEvent>>& out) {
        return ReadReferralFeed(db, after, limit, out);
      });
}

}  // namespace sarloop::referral
