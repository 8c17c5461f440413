// The referral's rules, in one table: a row per event type saying which states it may follow,
// where it moves the referral, who may produce it for a given referral, where it is sent and
// whether it carries the referral's package, and how soon. Everything else in this layer reads the
// table: NextState and Fold (lifecycle.h), every receiver's acceptance check (Judge, below), every
// destination list (Destinations, below). Adding an event type means a row here, its proto and
// its handler.
//
// Pure data and pure functions; no I/O. Thread-safe.
#ifndef SARLOOP_COMMON_REFERRAL_RULES_H_
#define SARLOOP_COMMON_REFERRAL_RULES_H_

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/security/identity.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::referral {

// Who may produce an event about a given referral.
enum class Producer {
  kUkfiu,      // UKFIU (the producer code "UKFIU", the ukfiu service)
  kAddressee,  // the organisation the referral is addressed to (its force service)
  kUnit,       // a unit the referral was handed to (its racu service)
  kHolder,     // either of the last two: whoever holds the referral's work
  kParty,      // any of the three, in a thread with a party it deals with (UKFIU and the
               // addressee, or the addressee and a unit): LifecycleEvent.thread_with
};

// The parties an event is sent to (the register takes every event as well). Bit flags.
enum Party : uint8_t {
  kToUkfiu = 1,
  kToAddressee = 2,
  kToUnits = 4,  // every unit the referral has been handed to, as far as the producer knows
  kToRegister = 8,
  kToThreadPeer = 16,  // the other party of the event's thread (LifecycleEvent.thread_with)
};

// Which states an event may follow.
enum class From {
  kNothing,  // the first event of a referral (DISPATCHED)
  kListed,   // the states in EventRule::from
  kAnyOpen,  // any state that exists and has not ended
};

struct EventRule {
  v1::EventType type;
  Producer producer;
  From from_kind;
  std::vector<v1::ReferralState> from;
  // The state the event moves the referral to; UNSPECIFIED for a side event, which leaves it.
  v1::ReferralState target;
  uint8_t to;
  // The party whose envelope carries the package, because the event gives it its copy of the
  // referral (kToAddressee: the addressee; kToUnits: the unit the event names); 0 for none.
  uint8_t package_to;
  // Whether the event leaves at once for every destination: it asks one of them to act (a
  // referral for its addressee, a handover for its unit, a question for the other party, a
  // reminder), makes a party known (DISPATCHED, HANDED_OVER: receivers hold the events of a party
  // they do not know yet), or ends the referral. Otherwise it only tells (a force's receipt,
  // acknowledgement and research, a unit's opening, an update), and may wait up to inform_within
  // for the next messages to the same place. All or none: an event sent at once to one party and
  // held back from another would let the first act on it and be heard before it.
  bool at_once;
  // The event's place in a referral's life, ordering events stamped with the same instant.
  int rank;
  // Whether the service makes the event on its own schedule (the feedback clock's reminders,
  // escalations and Regulation 19 flags; the deconfliction flags a dispatch sets) rather than at a
  // caller's request. Such events are as many as the schedule makes, and CheckRoomFor leaves them
  // be: refusing one would stop a chase, not a caller.
  bool by_the_service = false;
};

// The row for `type`; nullptr for EVENT_TYPE_UNSPECIFIED and values outside the enum.
const EventRule* RuleFor(v1::EventType type);

// Every row, in event type order.
std::span<const EventRule> AllRules();

// The producer code an event of the ukfiu role carries.
inline constexpr char kUkfiuCode[] = "UKFIU";

// Who takes part in one referral, as a service knows it from the events it holds: the
// organisation it is addressed to (from DISPATCHED; a unit, which never sees DISPATCHED, from the
// handover) and every unit it has been handed to; of those, the ones that declined assistance
// since their last handover, and when: they no longer work it, so nothing more is sent to them
// and nothing they make after the decline is taken.
struct Parties {
  std::string addressee;
  std::set<std::string> units;
  std::map<std::string, absl::Time> declined;
};
Parties PartiesOf(const std::vector<v1::LifecycleEvent>& events);

// The receiving service, as the rules see it.
struct Receiver {
  // Its organisation code ("UKFIU", "NFK", "ERSOU", "NCA").
  std::string code;
  // Whether it is an investigating unit (racu).
  bool is_unit = false;
  // Whether it is the national register (takes every event).
  bool is_register = false;
};

// What a receiver does with a delivered event it may take.
enum class Verdict {
  kApply,  // the producer has the event's role for this referral: apply it now
  kHold,   // it cannot be judged yet (the referral, or the handover to this unit, has not arrived
           // here): keep it aside, and judge it again when the referral's parties grow
};

// Judges `event`, delivered by `peer`, against the table and what `receiver` knows of the
// referral (`known`). PERMISSION_DENIED, naming the rule, when the peer does not have the event's
// producer role for this referral (another organisation's referral, a unit it was not handed
// to, a role that never produces this type), or when the event is not sent to this receiver;
// INVALID_ARGUMENT ("event.type") for a type the table does not know.
absl::StatusOr<Verdict> Judge(const Receiver& receiver, const Parties& known,
                              const v1::LifecycleEvent& event, const Identity& peer);

// The service identity that delivers an event its producer made: ukfiu for UKFIU's, the unit's
// racu service for an event naming its producer as the unit, the force's service otherwise (what
// that service's certificate names). For tools and tests that stand in for the producer.
Identity ProducerIdentity(const v1::LifecycleEvent& event);

// Where a new event produced here goes, by organisation code: the table's parties resolved with
// `known` (after the event itself is counted: a handover's unit is a party of it). The producer
// itself is left out.
std::vector<std::string> Destinations(const v1::LifecycleEvent& event, const Parties& known,
                                      const std::string& producer_code);

// The most side events (events that leave the state as it is: progress, outcome updates, thread
// messages, further SARs, IOPC referrals) one organisation may add to one referral at its
// callers' request. Each is stored, folded with the referral's whole history and sent on to every
// party, so without a bound one client could grow a referral, and the work of every service that
// holds it, for ever. A weekly progress report over a four-year investigation is some 200.
inline constexpr int kMostRequestedSideEvents = 1000;

// FAILED_PRECONDITION, naming the referral, the organisation and the bound, when `event` is a side
// event made at a caller's request and its producer already has kMostRequestedSideEvents of them
// among `events` (the referral's events as held here). Every producing service checks its own
// events with it, and every receiver the events it is sent, so a producer that does not check is
// refused downstream. Steps that move the referral are never refused by it.
absl::Status CheckRoomFor(const v1::LifecycleEvent& event,
                          const std::vector<v1::LifecycleEvent>& events);

// Whether `event`'s envelopes leave at once (EventRule::at_once) or may wait up to
// DeliveryOptions::inform_within for the next messages to the same place
// (common/messaging/messaging.h).
bool SendsAtOnce(const v1::LifecycleEvent& event);

// Whether the envelope of `event` to `destination` carries the package.
bool CarriesPackageTo(const v1::LifecycleEvent& event, const std::string& destination);

}  // namespace sarloop::referral

#endif  // SARLOOP_COMMON_REFERRAL_RULES_H_
