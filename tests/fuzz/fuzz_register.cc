// Fuzz target: the NCA register's convergence promise (README: each referral's events fold into
// one entry, "the same for any arrival order and any duplication").
//
// The input is a DeliverRequest. The events of its envelopes that the delivery service would pass
// on (CheckEvent; at most 500, like DeliverFrom) are delivered through Register::Receive, each by
// the service its producer names (referral::ProducerIdentity), one delivery transaction each, to a
// fresh database in the order given, and to a second fresh database in reverse order with every
// event delivered twice. An event the rules refuse is rolled back, as the delivery batch does; one
// held until its referral's parties arrive is kept aside. Both registers must answer the analyst
// queries (timeline of every referral, list, overdue list, summary) byte for byte the same, and
// every entry must be Fold of the events its timeline holds. Fold is also checked directly on all
// parsed events, valid or not: permuting and duplicating its input must not change its result.
//
// Events are first made distinct by event_id (the first one wins), and a referral keeps only its
// first DISPATCHED. Producers mint a fresh event_id per event and ukfiu dispatches a referral once;
// two different events under one id, or two dispatches of one referral, are outside the promise,
// since the register keeps whichever arrived first.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/messaging/messaging.h"
#include "common/referral/delivery_service.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/rules.h"
#include "common/server/server.h"
#include "services/nca/register.h"
#include "tests/fuzz/fuzz_support.h"

namespace sarloop {
namespace {

using fuzz::Fail;

// A fixed "now" for the overdue list and the summary, so both registers are asked the same.
const absl::Time kAsOf = absl::FromUnixSeconds(1750000000);

std::vector<v1::LifecycleEvent> DistinctById(std::vector<v1::LifecycleEvent> events) {
  std::set<std::string> seen, dispatched;
  std::vector<v1::LifecycleEvent> out;
  for (v1::LifecycleEvent& e : events) {
    if (e.type() == v1::EVENT_TYPE_DISPATCHED && !dispatched.insert(e.referral_id()).second) {
      continue;
    }
    if (seen.insert(e.event_id()).second) out.push_back(std::move(e));
  }
  return out;
}

// Everything an analyst can ask the register, serialized.
struct Answers {
  std::map<std::string, std::string> timelines;
  std::string list;
  std::string overdue;
  std::string summary;
};

Answers Ask(nca::Register& reg, const std::set<std::string>& referral_ids) {
  Answers a;
  for (const std::string& id : referral_ids) {
    auto timeline = reg.Timeline(id);
    // A referral whose DISPATCHED never came has no entry (its events are held): the same in
    // either order.
    if (absl::IsNotFound(timeline.status())) {
      a.timelines[id] = "";
      continue;
    }
    if (!timeline.ok()) Fail(absl::StrCat("Timeline(", id, "): ", timeline.status().ToString()));
    a.timelines[id] = timeline->SerializeAsString();
  }
  v1::ListRegisterRequest list;
  list.set_page_size(1000);
  auto listed = reg.List(list);
  if (!listed.ok()) Fail(absl::StrCat("List: ", listed.status().ToString()));
  // A referral whose DISPATCHED never came has no entry: the list holds the others, each once.
  size_t with_entry = 0;
  for (const auto& [id, timeline] : a.timelines) with_entry += timeline.empty() ? 0 : 1;
  if (static_cast<size_t>(listed->entries_size()) != with_entry) {
    Fail(absl::StrCat("List has ", listed->entries_size(), " entries for ", with_entry,
                      " referrals with an entry"));
  }
  a.list = listed->SerializeAsString();
  v1::ListOverdueRequest overdue;
  overdue.set_page_size(1000);
  auto late = reg.Overdue(overdue, kAsOf);
  if (!late.ok()) Fail(absl::StrCat("Overdue: ", late.status().ToString()));
  a.overdue = late->SerializeAsString();
  auto summary = reg.Summary(kAsOf);
  if (!summary.ok()) Fail(absl::StrCat("Summary: ", summary.status().ToString()));
  a.summary = summary->SerializeAsString();
  return a;
}

std::vector<Migration> NcaMigrations() {
  // As the nca service opens its database.
  return ServiceMigrations(nca::RegisterMigrations().first(nca::kRegisterMigrationsBeforeAudit),
                           nca::RegisterMigrations().subspan(nca::kRegisterMigrationsBeforeAudit));
}

Answers ApplyAll(const std::string& name, const std::vector<const v1::LifecycleEvent*>& order,
                 const std::set<std::string>& referral_ids) {
  static const std::vector<Migration> migrations = NcaMigrations();
  fuzz::ScratchDb db = fuzz::ScratchDir::Get().Fresh(name, migrations);
  ManualClock clock(kAsOf);
  nca::Register reg(*db, ReferenceData::BuiltIn(), clock);
  for (const v1::LifecycleEvent* e : order) {
    // A refusal must be permanent (ReceiveBatch rejects the envelope); anything else would stop
    // the sender's batch at this event forever.
    absl::Status applied = db->Transact(
        [&](Txn& txn) { return reg.Receive(txn, referral::ProducerIdentity(*e), *e); });
    const absl::StatusCode code = applied.code();
    if (!applied.ok() && code != absl::StatusCode::kPermissionDenied &&
        code != absl::StatusCode::kFailedPrecondition &&
        code != absl::StatusCode::kInvalidArgument && code != absl::StatusCode::kNotFound) {
      Fail(absl::StrCat("Receive(", e->event_id(), "): ", applied.ToString()));
    }
  }
  return Ask(reg, referral_ids);
}

void CheckFoldIsOrderFree(const std::vector<v1::LifecycleEvent>& distinct) {
  std::map<std::string, std::vector<v1::LifecycleEvent>> by_referral;
  for (const v1::LifecycleEvent& e : distinct) by_referral[e.referral_id()].push_back(e);
  for (auto& [id, events] : by_referral) {
    const std::string forward = Fold(events).SerializeAsString();
    std::vector<v1::LifecycleEvent> shuffled(events.rbegin(), events.rend());
    shuffled.insert(shuffled.end(), events.begin(), events.end());
    std::rotate(shuffled.begin(), shuffled.begin() + shuffled.size() / 3, shuffled.end());
    if (Fold(std::move(shuffled)).SerializeAsString() != forward) {
      Fail(absl::StrCat("Fold depends on the order of referral ", id, "'s events"));
    }
  }
}

void Run(const v1::DeliverRequest& request) {
  if (request.envelopes_size() > 500) return;  // DeliverFrom refuses the batch.
  std::vector<v1::LifecycleEvent> all;
  for (const v1::Envelope& env : request.envelopes()) all.push_back(env.event());
  const std::vector<v1::LifecycleEvent> distinct = DistinctById(std::move(all));
  CheckFoldIsOrderFree(distinct);

  std::vector<const v1::LifecycleEvent*> forward;
  std::set<std::string> referral_ids;
  std::map<std::string, std::vector<v1::LifecycleEvent>> by_referral;
  for (const v1::LifecycleEvent& e : distinct) {
    if (!CheckEvent(e).ok()) continue;
    forward.push_back(&e);
    referral_ids.insert(e.referral_id());
    by_referral[e.referral_id()].push_back(e);
  }
  std::vector<const v1::LifecycleEvent*> backward;
  for (auto it = forward.rbegin(); it != forward.rend(); ++it) {
    backward.push_back(*it);
    backward.push_back(*it);
  }
  const Answers a = ApplyAll("forward.db", forward, referral_ids);
  const Answers b = ApplyAll("backward.db", backward, referral_ids);
  for (const std::string& id : referral_ids) {
    if (a.timelines.at(id) != b.timelines.at(id)) {
      Fail(absl::StrCat("timeline of ", id, " depends on arrival order or duplication"));
    }
    v1::GetTimelineResponse timeline;
    if (!timeline.ParseFromString(a.timelines.at(id))) Fail("timeline does not parse back");
    if (timeline.events_size() == 0) continue;  // never dispatched here: nothing applied
    std::vector<v1::LifecycleEvent> held(timeline.events().begin(), timeline.events().end());
    if (timeline.entry().SerializeAsString() != Fold(held).SerializeAsString()) {
      Fail(absl::StrCat("register entry of ", id, " is not the fold of its events"));
    }
    if (timeline.events_size() > static_cast<int>(by_referral[id].size())) {
      Fail(absl::StrCat("timeline of ", id, " has ", timeline.events_size(),
                        " events, more than were sent (", by_referral[id].size(), ")"));
    }
  }
  if (a.list != b.list) Fail("the register list depends on arrival order or duplication");
  if (a.overdue != b.overdue) Fail("the overdue list depends on arrival order or duplication");
  if (a.summary != b.summary) Fail("the summary depends on arrival order or duplication");
}

}  // namespace
}  // namespace sarloop

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sarloop::v1::DeliverRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  sarloop::Run(request);
  return 0;
}
