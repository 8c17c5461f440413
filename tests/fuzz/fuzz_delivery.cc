// Fuzz target: a force's delivery endpoint, DeliveryService::DeliverFrom over a force desk
// (services/force/desk.h). The input is a DeliverRequest; its envelopes are delivered in order,
// each run of consecutive envelopes by the service that produced them (ERSOU, the force's unit,
// or ukfiu), to force NFK on a fresh database.
//
// Besides not crashing, hanging or leaking:
//  * every envelope of a batch gets a result: an envelope that stopped the batch would be sent
//    again forever and hold up everything queued behind it;
//  * delivering the same batches again changes nothing: each envelope is DUPLICATE, or REJECTED
//    again with the same detail, and the force's inbox and outbox are as they were.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/delivery_service.h"
#include "common/server/server.h"
#include "services/force/desk.h"
#include "tests/fuzz/fuzz_support.h"

namespace sarloop {
namespace {

using fuzz::Fail;

const Identity kUkfiu{"spiffe://sarloop/ukfiu", "ukfiu", "UKFIU", ""};
const Identity kErsou{"spiffe://sarloop/racu/ERSOU", "racu", "ERSOU", ""};

std::vector<Migration> ForceMigrations() {
  // As the force service opens its database.
  return ServiceMigrations(force::DeskMigrations(), force::DeskMigrationsAfterAudit());
}

// What the force holds: its inbox (every referral with its package) and its outbox backlog.
std::string Holdings(Database& db, force::Desk& desk) {
  v1::ListInboxRequest inbox;
  inbox.set_page_size(1000);
  auto listed = desk.Inbox(inbox);
  if (!listed.ok()) Fail(absl::StrCat("Inbox: ", listed.status().ToString()));
  std::string out = listed->SerializeAsString();
  auto backlog = ReadBacklog(db);
  if (!backlog.ok()) Fail(absl::StrCat("ReadBacklog: ", backlog.status().ToString()));
  for (const Backlog& b : *backlog) {
    absl::StrAppend(&out, "|", b.destination, ":", b.pending, ":", b.rejected, ":", b.delivered);
  }
  return out;
}

// Consecutive envelopes with the same producer, delivered by that producer's service: ERSOU's
// events by ERSOU, everything else by ukfiu (so a foreign producer is refused as it would be).
struct Batch {
  const Identity* peer;
  v1::DeliverRequest request;
};

std::vector<Batch> SplitByProducer(const v1::DeliverRequest& request) {
  std::vector<Batch> batches;
  for (const v1::Envelope& env : request.envelopes()) {
    const Identity* peer = env.event().producer() == kErsou.org ? &kErsou : &kUkfiu;
    if (batches.empty() || batches.back().peer != peer) batches.push_back({peer, {}});
    *batches.back().request.add_envelopes() = env;
  }
  return batches;
}

// Delivers every batch once; returns the results in envelope order.
std::vector<v1::EnvelopeResult> DeliverAll(DeliveryService& service,
                                           const std::vector<Batch>& batches) {
  std::vector<v1::EnvelopeResult> results;
  for (const Batch& batch : batches) {
    absl::StatusOr<v1::DeliverResponse> response = service.DeliverFrom(*batch.peer, batch.request);
    // Storage on a scratch disk does not fail, and the batch's size is within limits.
    if (!response.ok()) Fail(absl::StrCat("batch refused: ", response.status().ToString()));
    if (response->results_size() != batch.request.envelopes_size()) {
      Fail(absl::StrCat("only ", response->results_size(), " of ", batch.request.envelopes_size(),
                        " envelopes answered; the next one is stuck"));
    }
    results.insert(results.end(), response->results().begin(), response->results().end());
  }
  return results;
}

void Run(const v1::DeliverRequest& request) {
  static const std::vector<Migration> migrations = ForceMigrations();
  fuzz::ScratchDb db = fuzz::ScratchDir::Get().Fresh("force.db", migrations);
  // The end of the window every timestamp a request may carry lies in (2000-2099): no event is
  // from this service's future, which it would rightly leave for later, unanswered.
  ManualClock clock(absl::FromCivil(absl::CivilDay(2100, 1, 1), absl::UTCTimeZone()));
  force::Desk desk(*db, clock, force::DeskOptions{"NFK", {"ERSOU"}});
  // DeliverFrom is the service past the authorisation gate, so the edge (gate and audit) is unset.
  DeliveryService service(Edge{}, *db, clock,
                          [&desk](Txn& txn, const Identity& peer, const v1::Envelope& env) {
                            return desk.Receive(txn, peer, env);
                          });

  if (request.envelopes_size() == 0 || request.envelopes_size() > 500) {
    absl::StatusOr<v1::DeliverResponse> refused = service.DeliverFrom(kUkfiu, request);
    if (refused.ok() || FieldOf(refused.status()) != "envelopes") {
      Fail("an empty or oversized batch was not refused naming envelopes");
    }
    return;
  }
  const std::vector<Batch> batches = SplitByProducer(request);
  const std::vector<v1::EnvelopeResult> first = DeliverAll(service, batches);
  const std::string before = Holdings(*db, desk);

  clock.Advance(absl::Hours(1));
  const std::vector<v1::EnvelopeResult> again = DeliverAll(service, batches);
  for (size_t i = 0; i < again.size(); ++i) {
    const v1::EnvelopeResult& was = first[i];
    const v1::EnvelopeResult& now = again[i];
    const bool rejected_again = was.status() == v1::DELIVERY_STATUS_REJECTED &&
                                now.status() == v1::DELIVERY_STATUS_REJECTED &&
                                now.detail() == was.detail();
    const bool duplicate = was.status() != v1::DELIVERY_STATUS_REJECTED &&
                           now.status() == v1::DELIVERY_STATUS_DUPLICATE;
    if (!rejected_again && !duplicate) {
      Fail(absl::StrCat("envelope ", i, " redelivered: ", v1::DeliveryStatus_Name(was.status()),
                        " then ", v1::DeliveryStatus_Name(now.status())));
    }
  }
  if (Holdings(*db, desk) != before) Fail("redelivery changed what the force holds");
}

}  // namespace
}  // namespace sarloop

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sarloop::v1::DeliverRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  sarloop::Run(request);
  return 0;
}
