#include "tools/ctl/views.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "tools/ctl/table.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {
namespace {

std::string Count(int64_t n) { return absl::StrCat(n); }

std::string YesNo(bool value) { return value ? "yes" : "no"; }

std::string Joined(const Repeated<std::string>& values) { return absl::StrJoin(values, ","); }

std::string State(v1::ReferralState state) {
  return state == v1::REFERRAL_STATE_UNSPECIFIED ? "-" : std::string(StateName(state));
}

// "123456 pence (£1234.56)": the proto holds pence, people read pounds.
std::string Pence(int64_t pence) {
  const char* sign = pence < 0 ? "-" : "";
  const uint64_t magnitude = pence < 0 ? -static_cast<uint64_t>(pence) : pence;
  return absl::StrFormat("%d pence (%s£%d.%02d)", pence, sign, magnitude / 100, magnitude % 100);
}

std::string ThrLine(const v1::ThrAssessment& thr) {
  if (thr.threat() == 0 && thr.risk() == 0 && thr.harm() == 0) return "";
  return absl::StrCat("threat ", EnumLabel(thr.threat()), ", risk ", EnumLabel(thr.risk()),
                      ", harm ", EnumLabel(thr.harm()));
}

std::string OutcomeLine(const v1::Outcome& outcome) {
  if (outcome.type() == v1::OUTCOME_TYPE_UNSPECIFIED) return "";
  std::string line(OutcomeName(outcome.type()));
  if (outcome.finding() != v1::CONDUCT_FINDING_UNSPECIFIED) {
    absl::StrAppend(&line, " (", EnumLabel(outcome.finding()));
    if (outcome.misconduct_result() != v1::MISCONDUCT_RESULT_UNSPECIFIED) {
      absl::StrAppend(&line, ": ", EnumLabel(outcome.misconduct_result()));
    }
    absl::StrAppend(&line, ")");
  }
  return line;
}

void AddThr(KeyValues& kv, const v1::ThrAssessment& thr) {
  kv.AddIfSet("thr", ThrLine(thr));
  kv.AddIfSet("rationale", thr.rationale());
}

void AddOutcome(KeyValues& kv, const v1::Outcome& outcome) {
  if (outcome.type() == v1::OUTCOME_TYPE_UNSPECIFIED) return;
  kv.Add("outcome", OutcomeLine(outcome));
  kv.Add("category", EnumLabel(outcome.category()));
  kv.Add("subject role", EnumLabel(outcome.subject_role()));
  kv.AddIfSet("investigated by", outcome.investigating_org());
  kv.Add("opened", FormatDate(outcome.opened_at()));
  kv.Add("closed", FormatDate(outcome.closed_at()));
  kv.AddIfSet("learning summary", outcome.learning_summary());
}

// One line per track: "criminal: CRIMINAL_CONVICTED (final)".
void AddTracks(KeyValues& kv, const Repeated<v1::Outcome>& tracks) {
  for (const v1::Outcome& t : tracks) {
    kv.Add(absl::StrCat("track ", EnumLabel(t.track())),
           absl::StrCat(OutcomeLine(t), IsOpenOutcome(t.type()) ? ", open" : ", final", " (",
                        t.investigating_org(), ")"));
  }
}

void AddSarFields(KeyValues& kv, const v1::Sar& sar) {
  kv.Add("sar", sar.sar_id());
  kv.Add("sector", sar.reporter_sector());
  kv.AddIfSet("reporter ref", sar.reporter_reference());
  kv.Add("submitted", FormatTime(sar.submitted_at()));
  if (sar.amount_pence() != 0) kv.Add("amount", Pence(sar.amount_pence()));
  if (sar.daml()) kv.Add("DAML request", "yes: 7-working-day notice period");
  kv.AddIfSet("glossary codes", Joined(sar.glossary_codes()));
  kv.Add("narrative", sar.narrative());
}

void PrintSubjects(const Repeated<v1::Subject>& subjects, std::ostream& out) {
  Table table({"NAME", "BORN", "ROLE", "EMPLOYER", "SUBJECT_REF", "ADDRESS"});
  for (const v1::Subject& s : subjects) {
    table.AddRow({s.full_name(), s.date_of_birth(), EnumLabel(s.role()), s.employer_code(),
                  s.subject_ref(), s.address()});
  }
  table.Print(out);
}

std::string ActorText(const v1::Actor& actor) {
  if (actor.user().empty()) return actor.identity();
  if (actor.identity().empty()) return actor.user();
  return absl::StrCat(actor.user(), " (", actor.identity(), ")");
}

// The payload fields an event carries, whichever its type: each type sets only its own.
std::string EventDetail(const v1::LifecycleEvent& e) {
  std::vector<std::string> parts;
  if (e.has_due_at()) parts.push_back(absl::StrCat("due ", FormatDate(e.due_at())));
  if (e.has_thr()) parts.push_back(ThrLine(e.thr()));
  if (!e.unit().empty()) parts.push_back(absl::StrCat("unit ", e.unit()));
  if (!e.linked_referral_id().empty()) {
    parts.push_back(absl::StrCat("linked ", e.linked_referral_id()));
  }
  if (e.has_outcome()) parts.push_back(absl::StrCat("outcome ", OutcomeLine(e.outcome())));
  if (e.sequence() != 0) parts.push_back(absl::StrCat("#", e.sequence()));
  if (!e.addressee().empty()) parts.push_back(absl::StrCat("to ", e.addressee()));
  if (!e.other_organisations().empty()) {
    parts.push_back(absl::StrCat("also ", Joined(e.other_organisations())));
  }
  if (e.subject_refs_size() > 0) {
    parts.push_back(
        absl::StrCat(e.subject_refs_size(), e.subject_refs_size() == 1 ? " subject" : " subjects"));
  }
  if (!e.reason().empty()) parts.push_back(absl::StrCat("reason: ", e.reason()));
  parts.erase(std::remove(parts.begin(), parts.end(), ""), parts.end());
  return absl::StrJoin(parts, "; ");
}

std::vector<std::string> SummaryRow(const v1::OrganisationSummary& s, std::string name) {
  return {std::move(name),
          Count(s.referred()),
          Count(s.feedback_received()),
          Count(s.declined_by_force()),
          Count(s.open()),
          Count(s.handed_over()),
          Count(s.assistance_declined()),
          Count(s.overdue()),
          Count(s.escalated()),
          Count(s.withdrawn()),
          Count(s.redirected())};
}

void AddOutcomeRows(Table& table, const v1::OrganisationSummary& s, const std::string& name) {
  for (const v1::OutcomeCount& c : s.outcomes()) {
    table.AddRow({name, std::string(OutcomeName(c.type())), Count(c.count())});
  }
}

}  // namespace

void PrintSar(const v1::Sar& sar, std::ostream& out) {
  KeyValues kv;
  AddSarFields(kv, sar);
  kv.Print(out);
  out << '\n';
  PrintSubjects(sar.subjects(), out);
}

void PrintReferral(const v1::Referral& r, std::ostream& out) {
  KeyValues kv;
  kv.Add("referral", r.referral_id());
  kv.Add("sar", r.sar_id());
  kv.Add("organisation", r.organisation());
  kv.Add("state", State(r.state()));
  kv.Add("dispatched", FormatTime(r.dispatched_at()));
  kv.Add("due", FormatDate(r.due_at()));
  kv.Add("updated", FormatTime(r.updated_at()));
  AddThr(kv, r.thr());
  if (r.route() != v1::REFERRAL_ROUTE_UNSPECIFIED) {
    kv.Add("route", r.route() == v1::REFERRAL_ROUTE_INDIRECT ? "indirect" : "direct");
  }
  kv.AddIfSet("linked referral", r.linked_referral_id());
  kv.AddIfSet("unit", r.unit() + (r.handed_over_on_receipt() ? " (from receipt)" : ""));
  if (r.decline_reason() != v1::DECLINE_REASON_UNSPECIFIED) {
    kv.Add("declined as", EnumLabel(r.decline_reason()));
  }
  kv.AddIfSet("named employer", r.named_organisation());
  kv.AddIfSet("reason", r.reason());
  kv.Add("reminders", Count(r.reminders()));
  kv.Add("escalated", YesNo(r.escalated()));
  kv.AddIfSet("deconfliction", Joined(r.deconfliction_with()));
  if (r.clock_stage() != v1::CLOCK_STAGE_NONE) {
    kv.Add("next due",
           absl::StrCat(EnumLabel(r.clock_stage()), " by ", FormatDate(r.next_due_at())));
  }
  if (r.priority() != v1::PRIORITY_UNSPECIFIED) kv.Add("priority", EnumLabel(r.priority()));
  if (r.daml()) kv.Add("DAML", "yes: the first decision is due within the notice period");
  if (r.recorded_on_behalf()) kv.Add("off-system", "yes: UKFIU records its replies on its behalf");
  if (r.referred_to_iopc()) {
    kv.Add("IOPC", r.iopc_mode() == v1::IOPC_MODE_UNSPECIFIED ? "referred, mode not yet decided"
                                                              : EnumLabel(r.iopc_mode()));
  }
  if (r.requests_open() > 0) kv.Add("requests open", Count(r.requests_open()));
  if (!r.case_id().empty()) {
    kv.Add("joint case", absl::StrCat(r.case_id(), ", led by ", r.lead_organisation()));
  }
  kv.AddIfSet("further SARs", Joined(r.supplementary_sar_ids()));
  if (r.decision_clock_paused()) kv.Add("decision clock", "paused: waiting for UKFIU's answer");
  AddTracks(kv, r.tracks());
  AddOutcome(kv, r.outcome());
  kv.Print(out);
  if (!r.has_package()) return;

  const v1::ReferralPackage& package = r.package();
  out << '\n';
  out << "package\n";
  KeyValues pkg;
  AddSarFields(pkg, package.sar());
  pkg.AddIfSet("handover notes", package.handover_notes());
  pkg.AddIfSet("deconfliction", Joined(package.deconfliction_with()));
  if (package.has_indirect_link()) {
    const v1::IndirectLink& link = package.indirect_link();
    pkg.Add("indirect link",
            absl::StrCat(link.hit_id(), ": your index record ", link.record_id(), ", score ",
                         absl::StrFormat("%.3f", link.score_milli() / 1000.0), ", matched ",
                         Joined(link.matched_fields())));
  }
  pkg.Print(out);
  out << '\n';
  PrintSubjects(package.sar().subjects(), out);
  for (const v1::Sar& further : package.supplementary_sars()) {
    out << "\nfurther SAR\n";
    KeyValues more;
    AddSarFields(more, further);
    more.Print(out);
    out << '\n';
    PrintSubjects(further.subjects(), out);
  }
}

void PrintEvents(const Repeated<v1::LifecycleEvent>& events, std::ostream& out) {
  Table table({"TIME", "TYPE", "PRODUCER", "ACTOR", "DETAIL"});
  for (const v1::LifecycleEvent& e : events) {
    table.AddRow({FormatTime(e.occurred_at()), std::string(EventName(e.type())), e.producer(),
                  ActorText(e.actor()), EventDetail(e)});
  }
  table.Print(out);
}

void PrintInbox(const Repeated<v1::Referral>& referrals, bool show_organisation,
                std::ostream& out) {
  std::vector<std::string> headers = {"REFERRAL", "STATE",   "SAR",       "DUE",
                                      "OVERDUE",  "UPDATED", "REMINDERS", "ESCALATED"};
  if (show_organisation) headers.insert(headers.begin() + 1, "FORCE");
  Table table(headers);
  for (const v1::Referral& r : referrals) {
    // DUE: what the running clock waits for next (a decision, a report), else the feedback date.
    std::vector<std::string> row = {
        r.referral_id(),      State(r.state()),
        r.sar_id(),           FormatDate(r.has_next_due_at() ? r.next_due_at() : r.due_at()),
        YesNo(r.overdue()),   FormatTime(r.updated_at()),
        Count(r.reminders()), YesNo(r.escalated())};
    if (show_organisation) row.insert(row.begin() + 1, r.organisation());
    table.AddRow(std::move(row));
  }
  table.Print(out);
}

void PrintReferralList(const Repeated<v1::Referral>& referrals, std::ostream& out) {
  Table table({"REFERRAL", "ORG", "STATE", "SAR", "DISPATCHED", "DUE", "OVERDUE", "REMINDERS",
               "ESCALATED"});
  for (const v1::Referral& r : referrals) {
    table.AddRow({r.referral_id(), r.organisation(), State(r.state()), r.sar_id(),
                  FormatDate(r.dispatched_at()),
                  FormatDate(r.has_next_due_at() ? r.next_due_at() : r.due_at()),
                  YesNo(r.overdue()), Count(r.reminders()), YesNo(r.escalated())});
  }
  table.Print(out);
}

void PrintRegisterEntry(const v1::RegisterEntry& e, std::ostream& out) {
  KeyValues kv;
  kv.Add("referral", e.referral_id());
  kv.Add("organisation", e.organisation());
  kv.Add("state", State(e.state()));
  kv.Add("dispatched", FormatTime(e.dispatched_at()));
  kv.Add("due", FormatDate(e.due_at()));
  kv.Add("feedback", FormatTime(e.feedback_at()));
  AddThr(kv, e.thr());
  kv.AddIfSet("unit", e.unit() + (e.handed_over_on_receipt() ? " (from receipt)" : ""));
  {
    std::vector<std::string> categories;
    for (int c : e.research_categories()) {
      categories.push_back(EnumLabel(static_cast<v1::CorruptionCategory>(c)));
    }
    kv.AddIfSet("categories at research", absl::StrJoin(categories, ", "));
  }
  kv.AddIfSet("linked referral", e.linked_referral_id());
  if (e.decline_reason() != v1::DECLINE_REASON_UNSPECIFIED) {
    kv.Add("declined as", EnumLabel(e.decline_reason()));
  }
  kv.AddIfSet("named employer", e.named_organisation());
  kv.AddIfSet("reason", e.reason());
  kv.Add("reminders", Count(e.reminders()));
  kv.Add("escalated", YesNo(e.escalated()));
  kv.Add("assistance declines", Count(e.assistance_declines()));
  kv.Add("open flags", Count(e.open_investigation_flags()));
  kv.AddIfSet("subject refs", Joined(e.subject_refs()));
  kv.AddIfSet("deconfliction", Joined(e.deconfliction_with()));
  kv.Add("events", Count(e.event_count()));
  if (e.clock_stage() != v1::CLOCK_STAGE_NONE) {
    kv.Add("next due",
           absl::StrCat(EnumLabel(e.clock_stage()), " by ", FormatDate(e.next_due_at())));
  }
  if (e.priority() != v1::PRIORITY_UNSPECIFIED) kv.Add("priority", EnumLabel(e.priority()));
  kv.Add("progress updates", Count(e.progress_updates()));
  if (e.information_requests() > 0) {
    kv.Add("requests for information",
           absl::StrCat(e.information_requests(), " asked, ", e.information_answered(),
                        " answered, ", e.information_open(), " open"));
  }
  if (e.has_decision_paused_since()) {
    kv.Add("decision clock", absl::StrCat("paused since ", FormatTime(e.decision_paused_since())));
  }
  if (e.daml()) kv.Add("DAML", "yes");
  if (!e.case_id().empty()) {
    kv.Add("joint case", absl::StrCat(e.case_id(), ", led by ", e.lead_organisation()));
  }
  if (e.supplementary_sars() > 0) kv.Add("further SARs", Count(e.supplementary_sars()));
  kv.AddIfSet("glossary codes", Joined(e.glossary_codes()));
  if (e.recorded_on_behalf()) kv.Add("recorded on behalf", "yes (not on sarloop)");
  if (e.referred_to_iopc()) {
    kv.Add("IOPC", e.iopc_mode() == v1::IOPC_MODE_UNSPECIFIED ? "referred, mode not yet decided"
                                                              : EnumLabel(e.iopc_mode()));
  }
  AddTracks(kv, e.tracks());
  AddOutcome(kv, e.outcome());
  kv.Print(out);
}

void PrintEscalations(const Repeated<v1::EscalationNotice>& notices, std::ostream& out) {
  Table table({"WHEN", "REFERRAL", "ORG", "WHAT", "STATE NOW", "NEXT DUE"});
  for (const v1::EscalationNotice& n : notices) {
    const v1::LifecycleEvent& e = n.event();
    const std::string what = e.type() == v1::EVENT_TYPE_ESCALATED
                                 ? absl::StrCat("escalation, rung ", e.sequence())
                                 : absl::StrCat("regulation 19 report ", e.sequence());
    table.AddRow({FormatDate(e.occurred_at()), e.referral_id(), e.organisation(), what,
                  std::string(StateName(n.entry().state())),
                  n.entry().has_next_due_at() ? FormatDate(n.entry().next_due_at()) : "-"});
  }
  table.Print(out);
}

void PrintRegisterList(const Repeated<v1::RegisterEntry>& entries, std::ostream& out) {
  Table table({"REFERRAL", "ORG", "STATE", "DISPATCHED", "DUE", "FEEDBACK", "UNIT", "REMINDERS",
               "ESCALATED"});
  for (const v1::RegisterEntry& e : entries) {
    table.AddRow({e.referral_id(), e.organisation(), State(e.state()),
                  FormatDate(e.dispatched_at()), FormatDate(e.due_at()),
                  FormatDate(e.feedback_at()), e.unit(), Count(e.reminders()),
                  YesNo(e.escalated())});
  }
  table.Print(out);
}

void PrintSummary(const v1::GetSummaryResponse& summary, std::ostream& out) {
  out << "as of " << FormatTime(summary.as_of()) << "\n\n";
  Table counts({"ORG", "REFERRED", "FEEDBACK", "DECLINED", "OPEN", "HANDED_OVER", "ASSIST_DECLINED",
                "OVERDUE", "ESCALATED", "WITHDRAWN", "REDIRECTED"});
  for (const v1::OrganisationSummary& s : summary.organisations()) {
    counts.AddRow(SummaryRow(s, s.organisation()));
  }
  counts.AddRow(SummaryRow(summary.total(), "TOTAL"));
  counts.Print(out);

  out << '\n';
  out << "outcomes by type\n";
  Table outcomes({"ORG", "OUTCOME", "COUNT"});
  for (const v1::OrganisationSummary& s : summary.organisations()) {
    AddOutcomeRows(outcomes, s, s.organisation());
  }
  AddOutcomeRows(outcomes, summary.total(), "TOTAL");
  outcomes.Print(out);
}

void PrintBacklog(const v1::GetBacklogResponse& backlog, std::ostream& out) {
  Table table({"DESTINATION", "PENDING", "REJECTED", "DELIVERED", "OLDEST_PENDING", "LAST_ERROR"});
  for (const v1::DestinationBacklog& d : backlog.destinations()) {
    const int64_t age = d.oldest_pending_age_seconds();
    table.AddRow({d.destination(), Count(d.pending()), Count(d.rejected()), Count(d.delivered()),
                  age == 0 ? "-" : absl::FormatDuration(absl::Seconds(age)), d.last_error()});
  }
  table.Print(out);
  const v1::StorageStats& s = backlog.storage();
  if (s.commits() > 0) {
    out << "\nstorage since start: " << s.transactions() << " write transactions in " << s.commits()
        << " commits ("
        << absl::StrFormat("%.1f", static_cast<double>(s.transactions()) / s.commits())
        << " per commit)\n";
  }
}

void PrintClockRun(const v1::RunFeedbackClockResponse& run, std::ostream& out) {
  KeyValues kv;
  kv.Add("as of", FormatTime(run.as_of()));
  kv.Add("reminders sent", Count(run.reminders_sent()));
  kv.Add("escalations", Count(run.escalations()));
  kv.Add("open investigation flags", Count(run.open_investigation_flags()));
  kv.Print(out);
}

}  // namespace sarloop::ctl
