#include "common/referral/mirror.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/threads.h"
#include "common/rpc/field_checks.h"
#include "common/security/audit.h"
#include "spdlog/spdlog.h"

namespace sarloop::referral {
namespace {

// A delivered event dated before its referral was dispatched (beyond the clocks' tolerance) came
// from a clock or a producer that cannot be trusted with the referral's dates: a receipt dated
// years back would make every Regulation 19 report due at once. Judged where the dispatch is
// known (ukfiu, the force, the register); a unit never sees it.
absl::Status CheckNotBeforeDispatch(const v1::LifecycleEvent& event,
                                    const std::vector<v1::LifecycleEvent>& events) {
  if (event.type() == v1::EVENT_TYPE_DISPATCHED) return absl::OkStatus();
  for (const v1::LifecycleEvent& e : events) {
    if (e.type() != v1::EVENT_TYPE_DISPATCHED) continue;
    if (FromProto(event.occurred_at()) < FromProto(e.occurred_at()) - kClockSkew) {
      return FieldError("event.occurred_at",
                        absl::StrCat("is before ", event.referral_id(), " was dispatched"));
    }
  }
  return absl::OkStatus();
}

bool Changed(const Parties& before, const Parties& after) {
  // A unit handed the referral again after declining: what was held for that may now be judged.
  return before.addressee != after.addressee || before.units != after.units ||
         before.declined != after.declined;
}

// Whether this receiver is the party the rules give `event`'s package to.
bool TakesPackage(const Receiver& self, const v1::LifecycleEvent& event) {
  const EventRule* rule = RuleFor(event.type());
  if (rule == nullptr || self.is_register) return false;
  if (rule->package_to & kToUnits) return self.is_unit && event.unit() == self.code;
  if (rule->package_to & kToAddressee) {
    return !self.is_unit && self.code != kUkfiuCode && event.organisation() == self.code;
  }
  return false;
}

}  // namespace

Mirror::Mirror(Receiver self, Outbox& outbox, SaveCopy save, Clock& clock,
               int most_held_from_one_peer)
    : self_(std::move(self)),
      outbox_(outbox),
      save_(std::move(save)),
      clock_(clock),
      most_held_from_one_peer_(most_held_from_one_peer) {}

absl::StatusOr<Receipt> Mirror::Receive(Txn& txn, const Identity& peer,
                                        const v1::Envelope& envelope) {
  const v1::LifecycleEvent& event = envelope.event();
  if (RuleFor(event.type()) == nullptr) {
    return FieldError("event.type", "is not an event type the rules know");
  }
  // An event id is its producer's: one naming another producer, or one this service already
  // holds for another producer's event (an id of the older form, which names nobody), is refused,
  // so a party that received an event cannot send its id first and have the real one dropped as
  // a repeat.
  const absl::string_view named = ProducerNamedBy(event.event_id());
  if (!named.empty() && named != event.producer()) {
    return FieldError("event.event_id",
                      absl::StrCat("names producer ", named, ", not ", event.producer()));
  }
  ASSIGN_OR_RETURN(auto same_id, txn.Query("SELECT referral_id, event FROM events "
                                           "WHERE event_id = ? UNION ALL "
                                           "SELECT referral_id, event FROM held_events "
                                           "WHERE event_id = ?",
                                           {event.event_id(), event.event_id()}));
  for (const Row& row : same_id) {
    v1::LifecycleEvent stored;
    if (!stored.ParseFromString(row.Text(1))) {
      return absl::DataLossError("stored event does not parse");
    }
    if (row.Text(0) != event.referral_id() || stored.producer() != event.producer() ||
        stored.type() != event.type()) {
      return FieldError("event.event_id",
                        absl::StrCat("is the id of another event here (", EventName(stored.type()),
                                     " of ", row.Text(0), " by ", stored.producer(),
                                     "); an event id is its producer's own"));
    }
  }
  ASSIGN_OR_RETURN(auto events, EventsOf(txn, event.referral_id()));
  if (!same_id.empty()) {
    // Receivers deduplicate by message, and a message carries one event: the same event in a
    // new message means a message was applied twice somewhere. Never applied twice here.
    repeats_.fetch_add(1);
    spdlog::warn("event {} ({} of {}) arrived again in a new message; it is applied once",
                 event.event_id(), std::string(EventName(event.type())), event.referral_id());
    return Receipt::kRepeated;
  }
  const Parties parties = PartiesOf(events);
  ASSIGN_OR_RETURN(Verdict verdict, Judge(self_, parties, event, peer));
  RETURN_IF_ERROR(CheckRoomFor(event, events));
  RETURN_IF_ERROR(CheckNotBeforeDispatch(event, events));
  if (TakesPackage(self_, event)) {
    if (!envelope.has_package()) {
      return FieldError("package", absl::StrCat("is required with ", EventName(event.type())));
    }
    if (envelope.package().referral_id() != event.referral_id()) {
      return FieldError("package.referral_id", "is not the event's referral");
    }
  } else if (envelope.has_package()) {
    return FieldError(
        "package", absl::StrCat("is not sent to ", self_.code, " with ", EventName(event.type())));
  }
  // A thread's text comes to the party the thread is with, and to nobody else.
  if (IsThreadEvent(event.type()) && !self_.is_register && event.thread_with() == self_.code) {
    RETURN_IF_ERROR(ReceiveThreadMessage(txn, self_, envelope));
  } else if (envelope.has_thread_message()) {
    return FieldError("thread_message", absl::StrCat("is not sent to ", self_.code, " with ",
                                                     EventName(event.type())));
  }
  // A further SAR comes to whoever works the referral, with the SAR itself.
  const bool works_it = !self_.is_register && self_.code != kUkfiuCode;
  const bool declined_here = self_.is_unit && parties.declined.count(self_.code) > 0;
  if (event.type() == v1::EVENT_TYPE_SAR_ATTACHED && works_it && !declined_here) {
    if (!envelope.has_supplementary_sar() || envelope.supplementary_sar().sar_id().empty()) {
      return FieldError("supplementary_sar", "is required with SAR_ATTACHED");
    }
    // Not held: a held event keeps no SAR. The handover this unit waits for is on its way from
    // the force; until it is here the envelope is answered as not yet taken and sent again.
    if (verdict == Verdict::kHold) {
      return absl::UnavailableError(absl::StrCat("SAR_ATTACHED for ", event.referral_id(),
                                                 " waits for its handover to reach ", self_.code));
    }
  } else if (envelope.has_supplementary_sar() && !declined_here) {
    return FieldError("supplementary_sar", absl::StrCat("is not sent to ", self_.code, " with ",
                                                        EventName(event.type())));
  }
  if (verdict == Verdict::kHold) {
    // Counted only on this rare path: held events are few, and their table small.
    ASSIGN_OR_RETURN(auto held_from_peer,
                     txn.Query("SELECT COUNT(*) FROM held_events WHERE peer = ?", {peer.uri}));
    if (held_from_peer[0].Int(0) >= most_held_from_one_peer_) {
      return absl::UnavailableError(absl::StrCat(
          self_.code, " already holds ", held_from_peer[0].Int(0), " events from ", peer.uri,
          " that wait for their referral or handover to arrive; ", EventName(event.type()), " of ",
          event.referral_id(), " is taken when some of those have been judged"));
    }
    RETURN_IF_ERROR(
        txn.Exec("INSERT INTO held_events (event_id, referral_id, peer, received_at, event) "
                 "VALUES (?, ?, ?, ?, ?)",
                 {event.event_id(), event.referral_id(), peer.uri, ToMicros(clock_.Now()),
                  Blob{event.SerializeAsString()}}));
    spdlog::info("{} of {} from {} held until its referral's parties are known here",
                 std::string(EventName(event.type())), event.referral_id(), peer.org);
    return Receipt::kHeld;
  }
  // A unit that declined keeps the event but not a further SAR: it no longer works the referral,
  // and should it be handed the referral again, that handover brings the whole package.
  v1::Envelope without_sar;
  const v1::Envelope* delivered = &envelope;
  if (self_.is_unit && envelope.has_supplementary_sar() && parties.declined.count(self_.code)) {
    without_sar = envelope;
    without_sar.clear_supplementary_sar();
    delivered = &without_sar;
  }
  RETURN_IF_ERROR(
      Apply(txn, event, Change{&event, delivered, nullptr}, std::move(events), "", false).status());
  return Receipt::kApplied;
}

absl::StatusOr<v1::RegisterEntry> Mirror::Produce(Txn& txn, const v1::LifecycleEvent& event,
                                                  const v1::ReferralPackage* package,
                                                  v1::Referral* copy,
                                                  const v1::ThreadMessage* message,
                                                  const v1::Sar* supplementary) {
  // The package is copied first: a caller may pass its own copy's package, and saving the copy
  // (Apply) replaces that copy's sub-messages, which would leave `package` dangling. (Reading it
  // afterwards made a force grow without bound or crash at a handover.)
  std::optional<v1::ReferralPackage> sent;
  if (package != nullptr) sent = *package;
  ASSIGN_OR_RETURN(auto events, EventsOf(txn, event.referral_id()));
  RETURN_IF_ERROR(CheckRoomFor(event, events));
  ASSIGN_OR_RETURN(Applied applied, Apply(txn, event, Change{nullptr, nullptr, copy},
                                          std::move(events), event.event_id(), false));
  RETURN_IF_ERROR(SendEvent(txn, outbox_, event, applied.parties, clock_.Now(),
                            sent ? &*sent : nullptr, message, supplementary));
  return std::move(applied.folded);
}

absl::StatusOr<Mirror::Applied> Mirror::Apply(Txn& txn, const v1::LifecycleEvent& event,
                                              const Change& change,
                                              std::vector<v1::LifecycleEvent> events,
                                              const std::string& produced, bool judging_held) {
  const Parties before = PartiesOf(events);
  ASSIGN_OR_RETURN(const bool is_new, AppendEvent(txn, event));
  if (is_new) {
    events.insert(std::upper_bound(events.begin(), events.end(), event, EventBefore), event);
  }
  Applied applied{Fold(events), PartiesOf(events)};
  RETURN_IF_ERROR(save_(txn, applied.folded, change));
  const Parties& after = applied.parties;
  if (!Changed(before, after)) return applied;
  // A unit learnt of now gets what this service sent to units before it knew of this one (the
  // register sends nothing: an organisation whose code is the register's, NCA, is not it).
  for (const std::string& unit : self_.is_register ? std::set<std::string>{} : after.units) {
    if (before.units.count(unit) || !outbox_.Reaches(unit) || unit == self_.code) continue;
    for (const v1::LifecycleEvent& mine : events) {
      const EventRule* rule = RuleFor(mine.type());
      if (mine.event_id() == produced || mine.producer() != self_.code || rule == nullptr ||
          !(rule->to & kToUnits)) {
        continue;
      }
      v1::Envelope env;
      env.set_message_id(mine.event_id());
      *env.mutable_event() = mine;
      RETURN_IF_ERROR(outbox_.Send(txn, unit, env, clock_.Now()));
    }
  }
  if (!judging_held) RETURN_IF_ERROR(JudgeHeld(txn, event.referral_id()));
  return applied;
}

absl::Status Mirror::JudgeHeld(Txn& txn, const std::string& referral_id) {
  for (bool moved = true; moved;) {
    moved = false;
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT event_id, peer, event FROM held_events "
                                          "WHERE referral_id = ? ORDER BY received_at, event_id",
                                          {referral_id}));
    for (const Row& row : rows) {
      v1::LifecycleEvent event;
      if (!event.ParseFromString(row.Text(2))) {
        return absl::DataLossError("a held event does not parse");
      }
      ASSIGN_OR_RETURN(Identity peer, ParseIdentity(row.Text(1)));
      ASSIGN_OR_RETURN(auto events, EventsOf(txn, referral_id));
      absl::StatusOr<Verdict> verdict = Judge(self_, PartiesOf(events), event, peer);
      if (verdict.ok() && *verdict == Verdict::kHold) continue;
      if (verdict.ok()) {
        if (absl::Status room = CheckRoomFor(event, events); !room.ok()) verdict = room;
      }
      if (verdict.ok()) {
        if (absl::Status when = CheckNotBeforeDispatch(event, events); !when.ok()) verdict = when;
      }
      RETURN_IF_ERROR(txn.Exec("DELETE FROM held_events WHERE event_id = ?", {row.Text(0)}));
      moved = true;
      if (verdict.ok()) {
        RETURN_IF_ERROR(
            Apply(txn, event, Change{&event, nullptr, nullptr}, std::move(events), "", true)
                .status());
        continue;
      }
      // Accepted in transit, refused now that the referral is known: recorded, never applied.
      spdlog::warn("held {} of {} from {} refused: {}", std::string(EventName(event.type())),
                   referral_id, peer.uri, verdict.status().ToString());
      AuditEntry entry{clock_.Now(),
                       peer.uri,
                       "",
                       "sarloop.referral/JudgeHeldEvent",
                       referral_id,
                       static_cast<int>(verdict.status().code()),
                       std::string(verdict.status().message()).substr(0, 300)};
      RETURN_IF_ERROR(AppendAudit(txn, entry));
    }
  }
  return absl::OkStatus();
}

}  // namespace sarloop::referral
