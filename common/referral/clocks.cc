#include "common/referral/clocks.h"

#include <algorithm>

#include "common/base/ids.h"
#include "common/referral/lifecycle.h"

namespace sarloop {
namespace {

constexpr absl::Duration kDay = absl::Hours(24);

absl::Time At(const google::protobuf::Timestamp& t) { return FromProto(t); }

bool Open(v1::ReferralState s) { return s != v1::REFERRAL_STATE_UNSPECIFIED && !IsTerminal(s); }

}  // namespace

absl::Duration ProgressInterval(v1::Priority priority) {
  switch (priority) {
    case v1::PRIORITY_P1:
      return 30 * kDay;
    case v1::PRIORITY_P2:
      return 60 * kDay;
    case v1::PRIORITY_P3:
      return 90 * kDay;
    case v1::PRIORITY_P4:
      return 180 * kDay;
    default:
      return 90 * kDay;
  }
}

Due NextDue(const v1::RegisterEntry& e) {
  if (!Open(e.state())) return {};
  if (!e.has_acknowledged_at()) {
    return {v1::CLOCK_STAGE_ACKNOWLEDGEMENT, At(e.has_ack_due_at() ? e.ack_due_at() : e.due_at())};
  }
  if (!e.has_decided_at()) {
    // Paused while the force waits for UKFIU's answer: nothing is due until it comes.
    if (e.has_decision_paused_since()) return {v1::CLOCK_STAGE_DECISION, absl::InfiniteFuture()};
    return {v1::CLOCK_STAGE_DECISION,
            At(e.has_decision_due_at() ? e.decision_due_at() : e.due_at())};
  }
  const absl::Time since = std::max(At(e.decided_at()), At(e.last_contact_at()));
  return {v1::CLOCK_STAGE_PROGRESS, since + ProgressInterval(e.priority())};
}

bool IsOverdue(const v1::RegisterEntry& e, absl::Time now) {
  const Due due = NextDue(e);
  return due.stage != v1::CLOCK_STAGE_NONE && now >= due.at;
}

absl::Time Reg19DueAt(const v1::RegisterEntry& e, int n) {
  const absl::Time start = At(e.has_received_at() ? e.received_at() : e.dispatched_at());
  const absl::CivilSecond c = absl::ToCivilSecond(start, absl::UTCTimeZone());
  const absl::CivilMonth month =
      absl::CivilMonth(c) + 12 + 6 * static_cast<absl::civil_diff_t>(std::max(n, 1) - 1);
  // The same day of that month, or its last day when it has fewer (received 31 August, due the
  // last of February, not 3 March): CivilSecond would carry the extra days into the next month.
  const int last_day = (absl::CivilDay(month + 1) - 1).day();
  const absl::CivilSecond due(month.year(), month.month(), std::min(c.day(), last_day), c.hour(),
                              c.minute(), c.second());
  return absl::FromCivil(due, absl::UTCTimeZone());
}

bool IsOpenOver12Months(const v1::RegisterEntry& e, absl::Time now) {
  return Open(e.state()) && now >= Reg19DueAt(e, 1);
}

Chase ChaseNow(const v1::RegisterEntry& e, const std::vector<v1::LifecycleEvent>& events,
               absl::Time now, const ChasePolicy& policy) {
  Chase chase;
  const Due due = NextDue(e);
  if (due.stage == v1::CLOCK_STAGE_NONE || now < due.at) return chase;
  // This episode: what UKFIU sent since the due time passed.
  int reminders = 0;
  int escalations = 0;
  absl::Time last_reminder = absl::InfinitePast();
  for (const v1::LifecycleEvent& ev : events) {
    const absl::Time t = At(ev.occurred_at());
    if (t < due.at) continue;
    if (ev.type() == v1::EVENT_TYPE_REMINDER_SENT) {
      ++reminders;
      last_reminder = std::max(last_reminder, t);
    }
    if (ev.type() == v1::EVENT_TYPE_ESCALATED) ++escalations;
  }
  if (reminders == 0 || now >= last_reminder + policy.repeat) chase.reminder = reminders + 1;
  if (escalations < policy.rungs && now >= due.at + policy.grace * (escalations + 1)) {
    chase.rung = escalations + 1;
  }
  return chase;
}

}  // namespace sarloop
