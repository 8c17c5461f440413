#include "common/referral/rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"

namespace sarloop::referral {
namespace {

using v1::EventType;
using v1::ReferralState;

constexpr uint8_t kForce = kToUkfiu | kToRegister;
constexpr uint8_t kEnding = kToAddressee | kToUnits | kToRegister;
constexpr uint8_t kSide = kToAddressee | kToRegister;
constexpr uint8_t kUnitStep = kToUkfiu | kToAddressee | kToRegister;

// The table. `rank` orders events stamped with the same instant: the lifecycle's order, an end
// after every step, side events last.
const std::vector<EventRule>& Table() {
  static const std::vector<EventRule>* table = new std::vector<EventRule>{
      {v1::EVENT_TYPE_DISPATCHED,
       Producer::kUkfiu,
       From::kNothing,
       {},
       v1::REFERRAL_STATE_DISPATCHED,
       kToAddressee | kToRegister,
       kToAddressee,
       true,
       1},
      {v1::EVENT_TYPE_RECEIVED,
       Producer::kAddressee,
       From::kListed,
       {v1::REFERRAL_STATE_DISPATCHED},
       v1::REFERRAL_STATE_RECEIVED,
       kForce,
       0,
       false,
       2},
      {v1::EVENT_TYPE_ACKNOWLEDGED,
       Producer::kAddressee,
       From::kListed,
       {v1::REFERRAL_STATE_RECEIVED},
       v1::REFERRAL_STATE_ACKNOWLEDGED,
       kForce,
       0,
       false,
       3},
      {v1::EVENT_TYPE_RESEARCH_STARTED,
       Producer::kAddressee,
       From::kListed,
       {v1::REFERRAL_STATE_ACKNOWLEDGED},
       v1::REFERRAL_STATE_UNDER_RESEARCH,
       kForce,
       0,
       false,
       4},
      // A force's ending goes to every unit it handed the referral to before (one that declined
      // assistance keeps a copy), so that copy ends too.
      // "Not ours" from receipt; other reasons after research (the force desk checks which).
      {v1::EVENT_TYPE_DECLINED_BY_FORCE,
       Producer::kAddressee,
       From::kListed,
       {v1::REFERRAL_STATE_RECEIVED, v1::REFERRAL_STATE_ACKNOWLEDGED,
        v1::REFERRAL_STATE_UNDER_RESEARCH},
       v1::REFERRAL_STATE_DECLINED_BY_FORCE,
       kForce | kToUnits,
       0,
       true,
       7},
      {v1::EVENT_TYPE_CLOSED_BY_FORCE,
       Producer::kAddressee,
       From::kListed,
       {v1::REFERRAL_STATE_UNDER_RESEARCH},
       v1::REFERRAL_STATE_CLOSED_BY_FORCE,
       kForce | kToUnits,
       0,
       true,
       7},
      // From receipt too: an organisation with no anti-corruption department of its own hands
      // every case over as it arrives (the force desk's own handover follows research).
      {v1::EVENT_TYPE_HANDED_OVER,
       Producer::kAddressee,
       From::kListed,
       {v1::REFERRAL_STATE_RECEIVED, v1::REFERRAL_STATE_UNDER_RESEARCH},
       v1::REFERRAL_STATE_HANDED_OVER,
       kForce | kToUnits,
       kToUnits,
       true,
       5},
      {v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED,
       Producer::kUnit,
       From::kListed,
       {v1::REFERRAL_STATE_HANDED_OVER},
       v1::REFERRAL_STATE_JOINT_INVESTIGATION,
       kUnitStep,
       0,
       false,
       6},
      // After the handover it answers, though it returns the referral to research.
      {v1::EVENT_TYPE_ASSISTANCE_DECLINED,
       Producer::kUnit,
       From::kListed,
       {v1::REFERRAL_STATE_HANDED_OVER},
       v1::REFERRAL_STATE_UNDER_RESEARCH,
       kUnitStep,
       0,
       true,
       6},
      {v1::EVENT_TYPE_OUTCOME_RECORDED,
       Producer::kUnit,
       From::kListed,
       {v1::REFERRAL_STATE_JOINT_INVESTIGATION},
       v1::REFERRAL_STATE_OUTCOME_RECORDED,
       kUnitStep,
       0,
       true,
       7},
      // A track's new status goes wherever the referral's work is: UKFIU, the force, its units
      // and the register. Before an ending stamped with the same instant (rank 6).
      {v1::EVENT_TYPE_OUTCOME_UPDATED,
       Producer::kHolder,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kUnitStep | kToUnits,
       0,
       false,
       6},
      // Where the work stands: sent as an outcome update is.
      {v1::EVENT_TYPE_PROGRESS_UPDATED,
       Producer::kHolder,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kUnitStep | kToUnits,
       0,
       false,
       6},
      {v1::EVENT_TYPE_WITHDRAWN,
       Producer::kUkfiu,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_WITHDRAWN,
       kEnding,
       0,
       true,
       7},
      {v1::EVENT_TYPE_REDIRECTED,
       Producer::kUkfiu,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_REDIRECTED,
       kEnding,
       0,
       true,
       7},
      // The IOPC's part: where the work is, as a progress update goes.
      {v1::EVENT_TYPE_REFERRED_TO_IOPC,
       Producer::kAddressee,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kUnitStep | kToUnits,
       0,
       false,
       6},
      // A thread's messages go to its other party only (with the text) and to the register
      // (counts and times).
      {v1::EVENT_TYPE_INFORMATION_REQUESTED,
       Producer::kParty,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kToThreadPeer | kToRegister,
       0,
       true,
       8},
      {v1::EVENT_TYPE_INFORMATION_PROVIDED,
       Producer::kParty,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kToThreadPeer | kToRegister,
       0,
       true,
       8},
      // A further SAR: to whoever works the referral (with the SAR) and the register (without).
      {v1::EVENT_TYPE_SAR_ATTACHED,
       Producer::kUkfiu,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kEnding,
       0,
       true,
       9},
      {v1::EVENT_TYPE_REMINDER_SENT,
       Producer::kUkfiu,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kSide,
       0,
       true,
       9,
       /*by_the_service=*/true},
      {v1::EVENT_TYPE_ESCALATED,
       Producer::kUkfiu,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kSide,
       0,
       true,
       9,
       /*by_the_service=*/true},
      {v1::EVENT_TYPE_DECONFLICTION_FLAG,
       Producer::kUkfiu,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kSide,
       0,
       true,
       9,
       /*by_the_service=*/true},
      {v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG,
       Producer::kUkfiu,
       From::kAnyOpen,
       {},
       v1::REFERRAL_STATE_UNSPECIFIED,
       kSide,
       0,
       true,
       9,
       /*by_the_service=*/true},
  };
  return *table;
}

absl::string_view RoleName(Producer p) {
  switch (p) {
    case Producer::kUkfiu:
      return "UKFIU";
    case Producer::kAddressee:
      return "the organisation the referral is addressed to";
    case Producer::kUnit:
      return "a unit the referral was handed to";
    case Producer::kHolder:
      return "the organisation the referral is addressed to or a unit it was handed to";
    case Producer::kParty:
      return "UKFIU, the organisation the referral is addressed to or a unit it was handed to";
  }
  return "";
}

std::string TypeName(v1::EventType t) {
  std::string n = v1::EventType_Name(t);
  return n.rfind("EVENT_TYPE_", 0) == 0 ? n.substr(11) : n;
}

}  // namespace

const EventRule* RuleFor(v1::EventType type) {
  for (const EventRule& r : Table()) {
    if (r.type == type) return &r;
  }
  return nullptr;
}

std::span<const EventRule> AllRules() { return Table(); }

Parties PartiesOf(const std::vector<v1::LifecycleEvent>& events) {
  Parties p;
  for (const v1::LifecycleEvent& e : events) {
    if (e.type() == v1::EVENT_TYPE_DISPATCHED) p.addressee = e.organisation();
  }
  // A unit declines a handover it received, once: it no longer works the referral when it has
  // declined as often as it was handed it. Counted, not ordered, so the force's and the unit's
  // clocks cannot put a new handover before the decline it answers.
  std::map<std::string, int> handed, declined;
  std::map<std::string, absl::Time> last_decline;
  for (const v1::LifecycleEvent& e : events) {
    if (e.type() == v1::EVENT_TYPE_ASSISTANCE_DECLINED && !e.unit().empty() &&
        e.producer() == e.unit()) {
      ++declined[e.unit()];
      last_decline[e.unit()] = std::max(last_decline[e.unit()], FromProto(e.occurred_at()));
    }
    if (e.type() != v1::EVENT_TYPE_HANDED_OVER) continue;
    // A unit never sees DISPATCHED: its handover names the addressee (who produced it).
    if (p.addressee.empty()) p.addressee = e.organisation();
    if (!e.unit().empty()) {
      p.units.insert(e.unit());
      ++handed[e.unit()];
    }
  }
  for (const auto& [unit, n] : declined) {
    if (n >= handed[unit]) p.declined[unit] = last_decline[unit];
  }
  return p;
}

absl::Status CheckRoomFor(const v1::LifecycleEvent& event,
                          const std::vector<v1::LifecycleEvent>& events) {
  auto counts = [](const v1::LifecycleEvent& e) {
    const EventRule* rule = RuleFor(e.type());
    return rule != nullptr && rule->target == v1::REFERRAL_STATE_UNSPECIFIED &&
           !rule->by_the_service;
  };
  if (!counts(event)) return absl::OkStatus();
  const auto held = std::count_if(events.begin(), events.end(), [&](const v1::LifecycleEvent& e) {
    return e.producer() == event.producer() && counts(e);
  });
  if (held < kMostRequestedSideEvents) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      event.referral_id(), " already holds ", held, " updates and messages from ", event.producer(),
      ", the most one organisation may add to one referral (", kMostRequestedSideEvents, "); ",
      TypeName(event.type()), " is refused. Steps that move the referral are still taken"));
}

absl::StatusOr<Verdict> Judge(const Receiver& receiver, const Parties& known,
                              const v1::LifecycleEvent& event, const Identity& peer) {
  const EventRule* rule = RuleFor(event.type());
  if (rule == nullptr) {
    return absl::InvalidArgumentError("event.type: not an event type the rules know");
  }
  const std::string type = TypeName(event.type());
  auto denied = [&](absl::string_view why) {
    return absl::PermissionDeniedError(
        absl::StrCat(type, " from ", peer.uri, " for ", event.referral_id(), " refused: ", why));
  };
  // The producer's role, as far as the event and the caller's certificate show it. The holder's
  // role is the addressee's for a force and a unit's for a unit.
  Producer producer = rule->producer;
  if (producer == Producer::kHolder) {
    producer = peer.kind == "racu" ? Producer::kUnit : Producer::kAddressee;
  }
  if (producer == Producer::kParty) {
    producer = peer.kind == "ukfiu"  ? Producer::kUkfiu
               : peer.kind == "racu" ? Producer::kUnit
                                     : Producer::kAddressee;
  }
  switch (producer) {
    case Producer::kUkfiu:
      if (peer.kind != "ukfiu" || event.producer() != kUkfiuCode) {
        return denied(absl::StrCat("only ", RoleName(rule->producer), " produces it"));
      }
      break;
    case Producer::kAddressee:
      // UKFIU records the steps of an organisation not running sarloop on its behalf.
      if (peer.kind == "ukfiu" && event.producer() == kUkfiuCode && event.recorded_on_behalf() &&
          rule->producer == Producer::kAddressee) {
        break;
      }
      if (peer.kind != "force" || event.producer() != peer.org ||
          event.organisation() != peer.org) {
        return denied(
            absl::StrCat("only ", RoleName(rule->producer), " produces it, for its own referrals"));
      }
      break;
    case Producer::kUnit:
      if (peer.kind != "racu" || event.producer() != peer.org || event.unit() != peer.org) {
        return denied(absl::StrCat("only ", RoleName(rule->producer), " produces it"));
      }
      break;
    case Producer::kHolder:
    case Producer::kParty:
      break;  // resolved to one of the above
  }

  // Is this receiver a party the event is sent to?
  const bool is_ukfiu = !receiver.is_register && !receiver.is_unit && receiver.code == kUkfiuCode;
  const bool is_addressee = !receiver.is_register && !receiver.is_unit && !is_ukfiu;
  if (!receiver.is_register) {
    uint8_t party = is_ukfiu ? kToUkfiu : receiver.is_unit ? kToUnits : kToAddressee;
    const bool thread_peer = (rule->to & kToThreadPeer) && event.thread_with() == receiver.code;
    if ((rule->to & party) == 0 && !thread_peer) {
      return denied(absl::StrCat("it is not sent to ", receiver.code));
    }
  }
  if (is_addressee && event.organisation() != receiver.code) {
    return denied(absl::StrCat("the referral is addressed to ", event.organisation(), ", not ",
                               receiver.code));
  }

  // The referral as this receiver knows it.
  if (event.type() == v1::EVENT_TYPE_DISPATCHED) {
    if (!known.addressee.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(event.referral_id(), " was dispatched already (to ", known.addressee, ")"));
    }
    return Verdict::kApply;
  }
  if (known.addressee.empty()) {
    // A unit learns of a referral from its own handover.
    if (receiver.is_unit && event.type() == v1::EVENT_TYPE_HANDED_OVER &&
        event.unit() == receiver.code) {
      return Verdict::kApply;
    }
    // ukfiu made every referral, and an addressee hears of one first from its DISPATCHED (the
    // same path as anything else ukfiu sends it): an unknown referral there is not theirs.
    if (is_ukfiu || is_addressee) {
      return ResourceNotFound(
          "referral", event.referral_id(),
          absl::StrCat("referral_id: no such referral (", event.referral_id(), ")"));
    }
    return Verdict::kHold;
  }
  if (event.organisation() != known.addressee) {
    return denied(absl::StrCat("the referral is addressed to ", known.addressee));
  }
  if (rule->producer == Producer::kParty) {
    // The pairs that talk: UKFIU and the addressee; the addressee and a unit it handed to.
    const bool with_unit = known.units.count(event.thread_with()) > 0;
    const bool paired = producer == Producer::kUkfiu ? event.thread_with() == known.addressee
                        : producer == Producer::kUnit
                            ? event.thread_with() == known.addressee
                            : event.thread_with() == kUkfiuCode || with_unit;
    if (!paired) {
      // A unit or the register may not have seen the handover to the unit named yet.
      if (producer == Producer::kAddressee && !is_ukfiu && !is_addressee &&
          !event.thread_with().empty()) {
        return Verdict::kHold;
      }
      return denied(absl::StrCat("a thread with ", event.thread_with(), " is not one ", peer.org,
                                 " takes part in for this referral"));
    }
  }
  if (event.type() == v1::EVENT_TYPE_HANDED_OVER && receiver.is_unit &&
      event.unit() != receiver.code) {
    return denied(absl::StrCat("the handover is to ", event.unit(), ", not ", receiver.code));
  }
  if (producer == Producer::kUnit && !known.units.count(peer.org)) {
    // The addressee made every handover itself; elsewhere the handover may still be on its way.
    if (is_addressee) return denied(absl::StrCat("it was never handed to ", peer.org));
    return Verdict::kHold;
  }
  // A unit that declined no longer works the referral: it may not open, update or end it, even
  // when another unit holds it now. (Its own steps before the decline reached each receiver
  // before the decline did: one sender's messages to one receiver keep their order.) The
  // addressee made every handover itself; elsewhere one handing it back may be on its way.
  const auto declined = known.declined.find(peer.org);
  if (producer == Producer::kUnit && declined != known.declined.end() &&
      FromProto(event.occurred_at()) > declined->second) {
    if (is_addressee) {
      return denied(
          absl::StrCat(peer.org, " declined assistance with it and has not been handed it again"));
    }
    return Verdict::kHold;
  }
  if (receiver.is_unit && event.type() != v1::EVENT_TYPE_HANDED_OVER &&
      !known.units.count(receiver.code)) {
    return Verdict::kHold;
  }
  return Verdict::kApply;
}

Identity ProducerIdentity(const v1::LifecycleEvent& e) {
  if (e.producer() == kUkfiuCode) return Identity{"spiffe://sarloop/ukfiu", "ukfiu", "UKFIU", ""};
  const std::string kind = !e.unit().empty() && e.producer() == e.unit() ? "racu" : "force";
  return Identity{absl::StrCat("spiffe://sarloop/", kind, "/", e.producer()), kind, e.producer(),
                  ""};
}

std::vector<std::string> Destinations(const v1::LifecycleEvent& event, const Parties& known,
                                      const std::string& producer_code) {
  std::vector<std::string> out;
  const EventRule* rule = RuleFor(event.type());
  if (rule == nullptr) return out;
  auto add = [&](const std::string& code) {
    if (!code.empty() && code != producer_code &&
        std::find(out.begin(), out.end(), code) == out.end()) {
      out.push_back(code);
    }
  };
  if (rule->to & kToAddressee) add(event.organisation());
  if (rule->to & kToUkfiu) add(kUkfiuCode);
  if (rule->to & kToUnits) {
    // A unit that declined still hears how the referral goes (its copy ends with everyone's);
    // SendEvent leaves a further SAR out of what it is sent.
    for (const std::string& u : known.units) add(u);
    if (event.type() == v1::EVENT_TYPE_HANDED_OVER) add(event.unit());
  }
  if (rule->to & kToThreadPeer) add(event.thread_with());
  if (rule->to & kToRegister) add(kRegisterCode);
  return out;
}

bool SendsAtOnce(const v1::LifecycleEvent& event) {
  const EventRule* rule = RuleFor(event.type());
  return rule == nullptr || rule->at_once;
}

bool CarriesPackageTo(const v1::LifecycleEvent& event, const std::string& destination) {
  const EventRule* rule = RuleFor(event.type());
  if (rule == nullptr) return false;
  return ((rule->package_to & kToAddressee) && destination == event.organisation()) ||
         ((rule->package_to & kToUnits) && destination == event.unit());
}

}  // namespace sarloop::referral
