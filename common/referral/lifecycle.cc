#include "common/referral/lifecycle.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/clocks.h"
#include "common/referral/outcomes.h"
#include "common/referral/rules.h"

namespace sarloop {

using v1::EventType;
using v1::ReferralState;

namespace {

// The state each state-changing event leads to (UNSPECIFIED for a side event), from the table.
ReferralState TargetOf(EventType type) {
  const referral::EventRule* rule = referral::RuleFor(type);
  return rule == nullptr ? v1::REFERRAL_STATE_UNSPECIFIED : rule->target;
}

bool ChangesStateImpl(EventType type) { return TargetOf(type) != v1::REFERRAL_STATE_UNSPECIFIED; }

// Whether the table lets `type` follow `from`.
bool Allowed(ReferralState from, EventType type) {
  const referral::EventRule* rule = referral::RuleFor(type);
  if (rule == nullptr) return false;
  switch (rule->from_kind) {
    case referral::From::kNothing:
      return from == v1::REFERRAL_STATE_UNSPECIFIED;
    case referral::From::kAnyOpen:
      return from != v1::REFERRAL_STATE_UNSPECIFIED && !IsTerminal(from);
    case referral::From::kListed:
      return std::find(rule->from.begin(), rule->from.end(), from) != rule->from.end();
  }
  return false;
}

// How far along the lifecycle a state is: the lowest rank of the events leading to it (every
// end is furthest); 0 before anything.
int StateRank(ReferralState s) {
  if (s == v1::REFERRAL_STATE_UNSPECIFIED) return 0;
  int rank = 1 << 20;
  for (const referral::EventRule& r : referral::AllRules()) {
    if (r.target == s) rank = std::min(rank, r.rank);
  }
  return rank;
}

// Where an event sits in a referral's life, to order events stamped with the same instant (e.g.
// a dispatch and its deconfliction flag, or steps taken within one clock tick).
int EventRank(EventType t) {
  const referral::EventRule* rule = referral::RuleFor(t);
  return rule == nullptr ? 1 << 20 : rule->rank;
}

}  // namespace

bool ChangesState(EventType type) { return ChangesStateImpl(type); }

absl::StatusOr<ReferralState> NextState(ReferralState from, EventType type) {
  if (!Allowed(from, type)) {
    return WrongState(StateName(from),
                      absl::StrCat(EventName(type), " is not allowed in state ", StateName(from)));
  }
  return ChangesState(type) ? TargetOf(type) : from;
}

bool IsTerminal(ReferralState s) {
  return s == v1::REFERRAL_STATE_DECLINED_BY_FORCE || s == v1::REFERRAL_STATE_CLOSED_BY_FORCE ||
         s == v1::REFERRAL_STATE_OUTCOME_RECORDED || s == v1::REFERRAL_STATE_WITHDRAWN ||
         s == v1::REFERRAL_STATE_REDIRECTED;
}

bool IsFeedback(ReferralState s) {
  return s == v1::REFERRAL_STATE_DECLINED_BY_FORCE || s == v1::REFERRAL_STATE_CLOSED_BY_FORCE ||
         s == v1::REFERRAL_STATE_OUTCOME_RECORDED;
}

namespace {
// An outcome without a type is no outcome (as a stored entry reads back).
bool HasOutcome(const v1::LifecycleEvent& ev) {
  return ev.has_outcome() && ev.outcome().type() != v1::OUTCOME_TYPE_UNSPECIFIED;
}

bool EarlierThan(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return std::make_pair(a.seconds(), a.nanos()) < std::make_pair(b.seconds(), b.nanos());
}

// Strips the enum's prefix: REFERRAL_STATE_UNDER_RESEARCH -> UNDER_RESEARCH.
absl::string_view Strip(const std::string& full, absl::string_view prefix) {
  absl::string_view v(full);
  if (v.substr(0, prefix.size()) == prefix) v.remove_prefix(prefix.size());
  return v;
}
}  // namespace

absl::string_view StateName(ReferralState s) {
  return Strip(v1::ReferralState_Name(s), "REFERRAL_STATE_");
}
absl::string_view EventName(EventType t) { return Strip(v1::EventType_Name(t), "EVENT_TYPE_"); }
absl::string_view OutcomeName(v1::OutcomeType t) {
  return Strip(v1::OutcomeType_Name(t), "OUTCOME_TYPE_");
}

bool EventBefore(const v1::LifecycleEvent& a, const v1::LifecycleEvent& b) {
  const auto ta = std::make_pair(a.occurred_at().seconds(), a.occurred_at().nanos());
  const auto tb = std::make_pair(b.occurred_at().seconds(), b.occurred_at().nanos());
  if (ta != tb) return ta < tb;
  if (EventRank(a.type()) != EventRank(b.type())) return EventRank(a.type()) < EventRank(b.type());
  return a.event_id() < b.event_id();
}

namespace {

// A vector of pointers read as the objects they point to. (std::views::transform would do, but
// clang, which builds the fuzz targets, cannot compile libstdc++ 12's ranges.)
template <typename T>
class Dereferenced {
 public:
  explicit Dereferenced(const std::vector<const T*>& items) : items_(items) {}
  class Iterator {
   public:
    explicit Iterator(typename std::vector<const T*>::const_iterator at) : at_(at) {}
    const T& operator*() const { return **at_; }
    Iterator& operator++() {
      ++at_;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return at_ != other.at_; }

   private:
    typename std::vector<const T*>::const_iterator at_;
  };
  Iterator begin() const { return Iterator(items_.begin()); }
  Iterator end() const { return Iterator(items_.end()); }
  size_t size() const { return items_.size(); }

 private:
  const std::vector<const T*>& items_;
};

}  // namespace

namespace {

// The fold of one referral's events, in order, into its register entry: what each event adds to
// the clocks' inputs and to the facts, then the state step it may take. Ended referrals keep their
// state; what comes after an end is kept in the timeline only.
class Folder {
 public:
  explicit Folder(const Dereferenced<v1::LifecycleEvent>& events) : events_(events) {
    // Requests for information (threads): the first answer from the party asked_, by thread, so an
    // answer stamped before its request by a clock running behind still closes it.
    for (const v1::LifecycleEvent& ev : events_) {
      if (ev.type() != v1::EVENT_TYPE_INFORMATION_PROVIDED || ev.thread_id().empty()) continue;
      for (const v1::LifecycleEvent& ask : events_) {
        if (ask.type() == v1::EVENT_TYPE_INFORMATION_REQUESTED &&
            ask.thread_id() == ev.thread_id() && ask.thread_with() == ev.producer() &&
            ask.producer() == ev.thread_with() && !answers_.count(ev.thread_id())) {
          answers_[ev.thread_id()] = FromProto(ev.occurred_at());
        }
      }
    }
  }

  v1::RegisterEntry Fold() && {
    for (const v1::LifecycleEvent& ev : events_) {
      Identify(ev);
      Clocks(ev);
      Facts(ev);
      Step(ev);
    }
    Finish();
    return std::move(e_);
  }

 private:
  struct Ask {
    absl::Time at;
    bool pauses;  // the force's request to UKFIU before its first decision
  };

  // Whose referral, and its priority while open.
  void Identify(const v1::LifecycleEvent& ev) {
    if (e_.referral_id().empty()) e_.set_referral_id(ev.referral_id());
    if (e_.organisation().empty() && !ev.organisation().empty()) {
      e_.set_organisation(ev.organisation());
    }
    if (ev.priority() != v1::PRIORITY_UNSPECIFIED && v1::Priority_IsValid(ev.priority()) &&
        !IsTerminal(state_)) {
      e_.set_priority(ev.priority());
    }
  }

  // The clocks' inputs (clocks.h): acknowledgement, decision, requests for information and their
  // answers, progress.
  void Clocks(const v1::LifecycleEvent& ev) {
    switch (ev.type()) {
      case v1::EVENT_TYPE_RECEIVED:
        if (!e_.has_received_at()) *e_.mutable_received_at() = ev.occurred_at();
        break;
      case v1::EVENT_TYPE_ACKNOWLEDGED:
      case v1::EVENT_TYPE_RESEARCH_STARTED:
        // A step beyond acknowledgement acknowledges too (its own event may come later).
        if (!e_.has_acknowledged_at()) *e_.mutable_acknowledged_at() = ev.occurred_at();
        for (int c : ev.categories()) {
          if (v1::CorruptionCategory_IsValid(c) && c != v1::CORRUPTION_CATEGORY_UNSPECIFIED &&
              !absl::c_linear_search(e_.research_categories(), c)) {
            e_.add_research_categories(static_cast<v1::CorruptionCategory>(c));
          }
        }
        break;
      case v1::EVENT_TYPE_DECLINED_BY_FORCE:
      case v1::EVENT_TYPE_CLOSED_BY_FORCE:
      case v1::EVENT_TYPE_HANDED_OVER:
      case v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED:
        Decided(ev);
        if (ev.has_thr() && !IsTerminal(state_)) *e_.mutable_decision_thr() = ev.thr();
        if (ev.on_receipt()) e_.set_handed_over_on_receipt(true);
        if (ev.type() == v1::EVENT_TYPE_DECLINED_BY_FORCE && !IsTerminal(state_)) {
          e_.set_decline_reason(ev.decline_reason());
          e_.set_named_organisation(ev.named_organisation());
        }
        break;
      case v1::EVENT_TYPE_INFORMATION_REQUESTED: {
        if (IsTerminal(state_) || ev.thread_id().empty() || !asked_.insert(ev.thread_id()).second) {
          break;
        }
        e_.set_information_requests(e_.information_requests() + 1);
        const absl::Time at = FromProto(ev.occurred_at());
        const bool from_force = ev.producer() == ev.organisation() && ev.unit().empty();
        // Asking UKFIU about it shows the force has it: an acknowledgement.
        if (from_force && !e_.has_acknowledged_at())
          *e_.mutable_acknowledged_at() = ev.occurred_at();
        const bool pauses =
            from_force && ev.thread_with() == referral::kUkfiuCode && !e_.has_decided_at();
        open_asks_[ev.thread_id()] = Ask{at, pauses};
        if (pauses && pausing_++ == 0) *e_.mutable_decision_paused_since() = ev.occurred_at();
        auto early = answers_.find(ev.thread_id());
        if (early != answers_.end() && early->second <= at) Answer(ev.thread_id(), at);
        break;
      }
      case v1::EVENT_TYPE_INFORMATION_PROVIDED: {
        auto it = answers_.find(ev.thread_id());
        if (!IsTerminal(state_) && it != answers_.end() &&
            it->second == FromProto(ev.occurred_at())) {
          Answer(ev.thread_id(), it->second);
        }
        break;
      }
      case v1::EVENT_TYPE_PROGRESS_UPDATED:
        e_.set_progress_updates(e_.progress_updates() + 1);
        // Any progress but a regulation 19 note says an investigation is open: a decision.
        if (ev.progress() != v1::PROGRESS_STATUS_REG19_NOT_REPORTED_PREJUDICE) Decided(ev);
        break;
      default:
        break;
    }
  }

  // What the register reports besides the clocks: the dispatch's facts, attached_ SARs, the IOPC,
  // reminders and escalations, declined assistance, flags and outcomes by track.
  void Facts(const v1::LifecycleEvent& ev) {
    switch (ev.type()) {
      case v1::EVENT_TYPE_DISPATCHED:
        e_.set_organisation(ev.organisation());
        *e_.mutable_dispatched_at() = ev.occurred_at();
        *e_.mutable_due_at() = ev.due_at();
        if (ev.has_ack_due_at()) *e_.mutable_ack_due_at() = ev.ack_due_at();
        if (!e_.has_decided_at()) *e_.mutable_decision_due_at() = ev.due_at();
        *e_.mutable_thr() = ev.thr();
        e_.mutable_subject_refs()->CopyFrom(ev.subject_refs());
        e_.mutable_subject_roles()->CopyFrom(ev.subject_roles());
        e_.set_route(ev.route());
        if (!ev.linked_referral_id().empty()) e_.set_linked_referral_id(ev.linked_referral_id());
        e_.set_daml(ev.daml());
        e_.mutable_glossary_codes()->CopyFrom(ev.glossary_codes());
        e_.set_recorded_on_behalf(ev.recorded_on_behalf());
        e_.set_case_id(ev.case_id());
        e_.set_lead_organisation(ev.lead_organisation());
        break;
      case v1::EVENT_TYPE_SAR_ATTACHED:
        if (IsTerminal(state_)) break;
        e_.set_supplementary_sars(e_.supplementary_sars() + 1);
        for (int i = 0; i < ev.subject_refs_size(); ++i) {
          attached_.emplace_back(ev.subject_refs(i), i < ev.subject_roles_size()
                                                         ? ev.subject_roles(i)
                                                         : v1::SUBJECT_ROLE_UNSPECIFIED);
        }
        break;
      case v1::EVENT_TYPE_REFERRED_TO_IOPC:
        if (IsTerminal(state_)) break;
        e_.set_referred_to_iopc(true);
        // The IOPC's decision stands once made (a later referral record without one keeps it).
        if (ev.iopc_mode() != v1::IOPC_MODE_UNSPECIFIED && v1::IopcMode_IsValid(ev.iopc_mode())) {
          e_.set_iopc_mode(ev.iopc_mode());
        }
        break;
      case v1::EVENT_TYPE_REDIRECTED:
        e_.set_linked_referral_id(ev.linked_referral_id());
        break;
      case v1::EVENT_TYPE_REMINDER_SENT:
        if (!IsTerminal(state_)) e_.set_reminders(e_.reminders() + 1);
        break;
      case v1::EVENT_TYPE_ESCALATED:
        if (!IsTerminal(state_)) e_.set_escalated(true);
        break;
      case v1::EVENT_TYPE_ASSISTANCE_DECLINED: {
        e_.set_assistance_declines(e_.assistance_declines() + 1);
        // Back with the force, which owes a new decision in the time it had for the first.
        absl::Duration span = absl::Hours(24 * 28);
        if (e_.has_dispatched_at() && e_.has_due_at()) {
          // At least a day: a referral recorded with its due date at or before its dispatch
          // must not owe its new decision before the decline.
          span = std::max(absl::Hours(24), FromProto(e_.due_at()) - FromProto(e_.dispatched_at()));
        }
        e_.clear_decided_at();
        *e_.mutable_decision_due_at() = ToProto(FromProto(ev.occurred_at()) + span);
        if (ev.has_thr()) *e_.mutable_decision_thr() = ev.thr();
        Contact(ev);
        break;
      }
      case v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG:
        if (!IsTerminal(state_)) e_.set_open_investigation_flags(e_.open_investigation_flags() + 1);
        break;
      case v1::EVENT_TYPE_DECONFLICTION_FLAG:
        deconfliction_.insert(ev.other_organisations().begin(), ev.other_organisations().end());
        break;
      case v1::EVENT_TYPE_OUTCOME_UPDATED:
        if (!IsTerminal(state_) && HasOutcome(ev)) {
          SetTrack(*e_.mutable_tracks(), ev.outcome());
          Decided(ev);
        }
        break;
      default:
        break;
    }
  }

  // The state the event moves the referral to, if any, with the unit, reason and outcome it sets.
  void Step(const v1::LifecycleEvent& ev) {
    if (!ChangesState(ev.type()) || IsTerminal(state_)) return;
    // A step that follows from the state_ applies; so does one further along (the steps between
    // have not arrived). One behind is stale (another producer's clock ran behind) and is kept
    // in the timeline only.
    const ReferralState target = TargetOf(ev.type());
    // (A declined assistance answers the handover just before it: it never skips ahead.)
    if (!Allowed(state_, ev.type()) &&
        (EventRank(ev.type()) > StateRank(target) || StateRank(target) <= StateRank(state_))) {
      return;
    }
    state_ = target;
    if (!ev.unit().empty()) e_.set_unit(ev.unit());
    if (!ev.reason().empty()) e_.set_reason(ev.reason());
    if (HasOutcome(ev)) {
      *e_.mutable_outcome() = ev.outcome();
      UpgradeOutcome(*e_.mutable_outcome());
      SetTrack(*e_.mutable_tracks(), e_.outcome());
    }
    if (IsFeedback(state_)) *e_.mutable_feedback_at() = ev.occurred_at();
  }

  // What is known only once every event is in: the attached SARs' subjects, open requests, the
  // route's default, the clock's next due time, deconfliction.
  void Finish() {
    e_.set_state(state_);
    // The subjects of attached_ SARs follow the dispatched SAR's, each once.
    for (const auto& [ref, role] : attached_) {
      if (absl::c_linear_search(e_.subject_refs(), ref)) continue;
      while (e_.subject_roles_size() < e_.subject_refs_size()) {
        e_.add_subject_roles(v1::SUBJECT_ROLE_UNSPECIFIED);
      }
      e_.add_subject_refs(ref);
      e_.add_subject_roles(v1::SubjectRole_IsValid(role) ? static_cast<v1::SubjectRole>(role)
                                                         : v1::SUBJECT_ROLE_UNSPECIFIED);
    }
    if (IsTerminal(state_)) {
      e_.clear_decision_paused_since();
    } else {
      e_.set_information_open(static_cast<int32_t>(open_asks_.size()));
    }
    if (e_.route() == v1::REFERRAL_ROUTE_UNSPECIFIED) e_.set_route(v1::REFERRAL_ROUTE_DIRECT);
    const Due due = NextDue(e_);
    e_.set_clock_stage(due.stage);
    // A paused clock has no due time.
    if (due.stage != v1::CLOCK_STAGE_NONE && due.at != absl::InfiniteFuture()) {
      *e_.mutable_next_due_at() = ToProto(due.at);
    }
    for (const std::string& org : deconfliction_) e_.add_deconfliction_with(org);
    e_.set_event_count(static_cast<int32_t>(events_.size()));
  }

  void Contact(const v1::LifecycleEvent& ev) {
    if (!e_.has_last_contact_at() || EarlierThan(e_.last_contact_at(), ev.occurred_at())) {
      *e_.mutable_last_contact_at() = ev.occurred_at();
    }
  }
  void Resume(absl::Time at) {
    if (e_.has_decision_paused_since() && e_.has_decision_due_at()) {
      const absl::Duration waited = at - FromProto(e_.decision_paused_since());
      if (waited > absl::ZeroDuration()) {
        *e_.mutable_decision_due_at() = ToProto(FromProto(e_.decision_due_at()) + waited);
      }
    }
    e_.clear_decision_paused_since();
  }
  // A decision acknowledges too (its own acknowledgement may come later, or never), and ends a
  // pause of the decision clock (what it waited for no longer holds it).
  void Decided(const v1::LifecycleEvent& ev) {
    if (!e_.has_acknowledged_at()) *e_.mutable_acknowledged_at() = ev.occurred_at();
    if (!e_.has_decided_at()) *e_.mutable_decided_at() = ev.occurred_at();
    Contact(ev);
    e_.clear_decision_paused_since();
    pausing_ = 0;
    for (auto& [id, ask] : open_asks_) ask.pauses = false;
  }
  void Answer(const std::string& thread_id, absl::Time at) {
    auto it = open_asks_.find(thread_id);
    if (it == open_asks_.end()) return;
    e_.set_information_answered(e_.information_answered() + 1);
    e_.set_information_reply_seconds(
        e_.information_reply_seconds() +
        std::max<int64_t>(0, absl::ToInt64Seconds(at - it->second.at)));
    if (it->second.pauses && --pausing_ == 0) Resume(std::max(at, it->second.at));
    open_asks_.erase(it);
  }

  const Dereferenced<v1::LifecycleEvent>& events_;
  v1::RegisterEntry e_;
  ReferralState state_ = v1::REFERRAL_STATE_UNSPECIFIED;
  std::set<std::string> deconfliction_;
  std::map<std::string, absl::Time> answers_;
  std::map<std::string, Ask> open_asks_;
  std::vector<std::pair<std::string, int>> attached_;  // subjects of attached_ SARs, in order
  std::set<std::string> asked_;
  int pausing_ = 0;
};

}  // namespace

v1::RegisterEntry Fold(const std::vector<v1::LifecycleEvent>& all) {
  // Ordered and deduplicated through pointers: every step folds the referral's whole history,
  // and copying it (each event's strings and sub-messages, then freeing them) was a share of
  // every step the profile could see.
  std::vector<const v1::LifecycleEvent*> order;
  order.reserve(all.size());
  for (const v1::LifecycleEvent& ev : all) order.push_back(&ev);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return EventBefore(*a, *b); });
  order.erase(std::unique(order.begin(), order.end(),
                          [](auto* a, auto* b) { return a->event_id() == b->event_id(); }),
              order.end());
  const Dereferenced events{order};
  return Folder(events).Fold();
}

}  // namespace sarloop
