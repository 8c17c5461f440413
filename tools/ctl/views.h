// Human output of sarloop messages: one function per kind of thing a command shows. Single
// objects print as `key: value` lines, lists as tables (table.h). Enum values appear without
// their prefix (UNDER_RESEARCH), times as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ in UTC.
#ifndef SARLOOP_TOOLS_CTL_VIEWS_H_
#define SARLOOP_TOOLS_CTL_VIEWS_H_

#include <google/protobuf/repeated_ptr_field.h>

#include <ostream>

#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/nca.pb.h"
#include "sarloop/v1/types.pb.h"
#include "sarloop/v1/ukfiu.pb.h"

namespace sarloop::ctl {

template <typename T>
using Repeated = google::protobuf::RepeatedPtrField<T>;

// A SAR: its fields, then its subjects as a table.
void PrintSar(const v1::Sar& sar, std::ostream& out);

// A referral with every field that is set, then its package (SAR, notes) when it carries one.
void PrintReferral(const v1::Referral& referral, std::ostream& out);

// Events as TIME TYPE PRODUCER ACTOR DETAIL, DETAIL being the fields that type carries.
void PrintEvents(const Repeated<v1::LifecycleEvent>& events, std::ostream& out);

// A force's or unit's list: REFERRAL [FORCE] STATE SAR DUE UPDATED REMINDERS. `show_organisation`
// for a unit, which serves several forces.
void PrintInbox(const Repeated<v1::Referral>& referrals, bool show_organisation, std::ostream& out);

// UKFIU's list across organisations: REFERRAL ORG STATE SAR DISPATCHED DUE REMINDERS ESCALATED.
void PrintReferralList(const Repeated<v1::Referral>& referrals, std::ostream& out);

// One register entry with every field that is set.
void PrintRegisterEntry(const v1::RegisterEntry& entry, std::ostream& out);

// Register entries: REFERRAL ORG STATE DISPATCHED DUE FEEDBACK UNIT REMINDERS ESCALATED.
// One line per escalation or regulation 19 report: when, the referral, the rung or report, and
// where the referral stands now.
void PrintEscalations(const google::protobuf::RepeatedPtrField<v1::EscalationNotice>& notices,
                      std::ostream& out);
void PrintRegisterList(const Repeated<v1::RegisterEntry>& entries, std::ostream& out);

// Per organisation REFERRED FEEDBACK DECLINED OPEN HANDED_OVER ASSIST_DECLINED OVERDUE ESCALATED
// WITHDRAWN REDIRECTED with a TOTAL row, then the outcomes by type per organisation and in total.
void PrintSummary(const v1::GetSummaryResponse& summary, std::ostream& out);

// The outbox per destination.
void PrintBacklog(const v1::GetBacklogResponse& backlog, std::ostream& out);

// What one run of the feedback clock did.
void PrintClockRun(const v1::RunFeedbackClockResponse& run, std::ostream& out);

}  // namespace sarloop::ctl

#endif  // SARLOOP_TOOLS_CTL_VIEWS_H_
