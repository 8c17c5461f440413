// The one way a service keeps its copy of a referral: the events it holds, folded (lifecycle.h
// Fold), so the copy at ukfiu, the force, the unit and the NCA register is the same function of
// the same events whatever order they arrived in.
//
// A delivered event is judged against the rules table (rules.h Judge) with what this service
// knows of the referral: applied, refused (nothing changes; the delivery batch rejects and audits
// it), or kept aside in `held_events` when the referral or the handover that gives the producer
// its role has not arrived here yet, and judged again as soon as it has. A held event later found
// to have come from an organisation without the role is dropped and audited, never applied.
//
// When a service learns of a unit the referral was handed to, the events it produced before that
// the table sends to units (ukfiu's withdrawal or redirection) are sent to the new unit too, so
// a copy made later still ends the same way.
//
// Used inside the caller's transaction; holds no state between calls besides counters. Thread-
// compatible, as the transactions it runs in.
#ifndef SARLOOP_COMMON_REFERRAL_MIRROR_H_
#define SARLOOP_COMMON_REFERRAL_MIRROR_H_

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/messaging/messaging.h"
#include "common/referral/rules.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/nca.pb.h"

namespace sarloop::referral {

// What changed a referral, for the service's SaveCopy.
struct Change {
  // The delivered event and its envelope (whose package gives this service its copy), or null
  // for this service's own events and for held events applied later.
  const v1::LifecycleEvent* event = nullptr;
  const v1::Envelope* delivered = nullptr;
  // The service's working copy when one of its own steps changed it (fields the fold does not
  // own, such as a handover's notes in the package); null otherwise. Updated in place.
  v1::Referral* copy = nullptr;
};

// How a service stores its copy after a change: `folded` is the fold of every event it now holds.
using SaveCopy =
    std::function<absl::Status(Txn&, const v1::RegisterEntry& folded, const Change& change)>;

// What became of a delivered event.
enum class Receipt {
  kApplied,   // stored and folded into the copy
  kHeld,      // kept aside until it can be judged
  kRepeated,  // already held or applied here (in an earlier message): nothing changed
};

// How many delivered events from one peer a service keeps aside at most. Held events are the few
// that overtook the dispatch or handover that makes them legitimate, and they are judged again
// when it arrives; a peer past this bound (a long partition upstream, or a peer sending events
// about referrals that do not exist) is answered UNAVAILABLE, and its outbox sends them again
// later, so nothing is lost and no peer fills the table.
inline constexpr int kMostHeldFromOnePeer = 10000;

class Mirror {
 public:
  // `outbox` sends what this service produces and forwards; `save` stores its copy.
  Mirror(Receiver self, Outbox& outbox, SaveCopy save, Clock& clock,
         int most_held_from_one_peer = kMostHeldFromOnePeer);

  const Receiver& self() const { return self_; }

  // A delivered envelope from `peer`, inside the delivery batch's transaction. INVALID_ARGUMENT
  // for a malformed event or a package where the rules give none (or none where they do);
  // PERMISSION_DENIED when the rules do not let `peer` produce it for this referral;
  // NOT_FOUND / FAILED_PRECONDITION for a referral this service must already (or must not yet)
  // know. On any error nothing is changed.
  absl::StatusOr<Receipt> Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);

  // This service's own new event, its transition already checked against the copy (NextState):
  // stored, folded into the copy (saved with `copy` when given), and sent where the table says,
  // with `package` to the party the table gives it to, a thread's `message` to the party the
  // thread is with (threads.h) and an attached SAR (`supplementary`) to the addressee and its
  // units. Returns the fold.
  absl::StatusOr<v1::RegisterEntry> Produce(Txn& txn, const v1::LifecycleEvent& event,
                                            const v1::ReferralPackage* package = nullptr,
                                            v1::Referral* copy = nullptr,
                                            const v1::ThreadMessage* message = nullptr,
                                            const v1::Sar* supplementary = nullptr);

  // Delivered events that were already held or applied here when a new message brought them
  // again: with receivers deduplicating by message, always 0 unless a message was applied twice.
  int64_t repeats() const { return repeats_.load(); }

 private:
  struct Applied {
    v1::RegisterEntry folded;
    Parties parties;  // after the event
  };
  // Stores `event` beside `events` (the referral's events as read before it, in EventBefore
  // order; read once per event, not again here), saves the new fold and, when the parties grew,
  // forwards this service's earlier events to new units (all but `produced`, which Produce sends)
  // and judges the held events again (unless `judging_held`, whose loop does that).
  absl::StatusOr<Applied> Apply(Txn& txn, const v1::LifecycleEvent& event, const Change& change,
                                std::vector<v1::LifecycleEvent> events, const std::string& produced,
                                bool judging_held);
  // Judges the referral's held events again until none moves.
  absl::Status JudgeHeld(Txn& txn, const std::string& referral_id);

  const Receiver self_;
  Outbox& outbox_;
  const SaveCopy save_;
  Clock& clock_;
  const int most_held_from_one_peer_;
  std::atomic<int64_t> repeats_{0};
};

}  // namespace sarloop::referral

#endif  // SARLOOP_COMMON_REFERRAL_MIRROR_H_
