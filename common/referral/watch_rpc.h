// The watch of a service that keeps a copy of each referral (force, unit, UKFIU): every event in
// its feed, with the referral as it stands now, without its package (common/messaging/watch.h).
#ifndef SARLOOP_COMMON_REFERRAL_WATCH_RPC_H_
#define SARLOOP_COMMON_REFERRAL_WATCH_RPC_H_

#include <utility>
#include <vector>

#include "common/messaging/watch.h"
#include "common/rpc/rpc.h"
#include "common/security/token.h"
#include "common/server/server.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::referral {

// At most `limit` messages after feed position `after`.
absl::Status ReadReferralFeed(Database& db, int64_t after, int limit,
                              std::vector<std::pair<int64_t, v1::WatchEvent>>& out);

// The feed's last position.
absl::StatusOr<int64_t> ReferralFeedHead(Database& db);

// Force.WatchInbox, Racu.WatchHandovers, Ukfiu.WatchReferrals: made once as the service is built.
class ReferralWatch {
 public:
  // Reads (or makes) the service's cursor secret.
  static absl::StatusOr<std::shared_ptr<ReferralWatch>> Create(ServiceContext& ctx);

  ServerStream<v1::WatchEvent>* Serve(grpc::ServerContextBase* ctx, const char* method,
                                      const v1::WatchRequest& request);

  ReferralWatch(ServiceContext& ctx, std::shared_ptr<const TokenSigner> signer)
      : edge_(ctx.edge), hub_(ctx.watch), db_(ctx.db), signer_(std::move(signer)) {}

 private:
  const Edge edge_;
  WatchHub& hub_;
  Database& db_;
  const std::shared_ptr<const TokenSigner> signer_;
};

}  // namespace sarloop::referral

#endif  // SARLOOP_COMMON_REFERRAL_WATCH_RPC_H_
