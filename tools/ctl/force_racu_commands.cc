// force and racu: the organisations that act on a referral (proto/sarloop/v1/force.proto and
// racu.proto). Both record outcomes, so they share the outcome options.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/values.h"
#include "tools/ctl/views.h"

namespace sarloop::ctl {
namespace {

using v1::Force;
using v1::Racu;

// A referral and the events this service knows for it: what `show` prints for either service.
template <typename Response>
absl::Status EmitReferralWithEvents(const Session& session, const Response& response) {
  return Emit(session, response, [&](std::ostream& out) {
    PrintReferral(response.referral(), out);
    out << '\n';
    PrintEvents(response.events(), out);
  });
}

// The referral after a step.
template <typename Response>
absl::Status EmitStep(const Session& session, const Response& response) {
  return Emit(session, response,
              [&](std::ostream& out) { PrintReferral(response.referral(), out); });
}

template <typename Response>
absl::Status EmitInbox(const Session& session, const Response& response, bool show_organisation) {
  return Emit(session, response, [&](std::ostream& out) {
    PrintInbox(response.referrals(), show_organisation, out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status ForceInbox(const Input& in, Session& session) {
  v1::ListInboxRequest request;
  ASSIGN_OR_RETURN(std::vector<v1::ReferralState> states, ReadStates(in.args));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  for (v1::ReferralState state : states) request.add_states(state);
  request.set_needs_action(in.args.Has("needs-action"));
  request.set_overdue(in.args.Has("overdue"));
  request.set_escalated(in.args.Has("escalated"));
  v1::ListInboxResponse response;
  RETURN_IF_ERROR(ListPages(session, &Force::Stub::ListInbox, request, paging, &response));
  return EmitInbox(session, response, /*show_organisation=*/false);
}

absl::Status ForceShow(const Input& in, Session& session) {
  v1::GetForceReferralRequest request;
  request.set_referral_id(in.operands[0]);
  v1::GetForceReferralResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::GetReferral, request, &response));
  return EmitReferralWithEvents(session, response);
}

v1::ForceStepRequest StepRequest(const Input& in, const Session& session) {
  v1::ForceStepRequest request;
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  return request;
}

absl::Status ForceAcknowledge(const Input& in, Session& session) {
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::Acknowledge, StepRequest(in, session), &response));
  return EmitStep(session, response);
}

absl::Status ForceResearch(const Input& in, Session& session) {
  v1::ForceStepRequest request = StepRequest(in, session);
  for (const std::string& text : in.args.GetAll("category")) {
    ASSIGN_OR_RETURN(v1::CorruptionCategory category,
                     ParseEnum<v1::CorruptionCategory>("category", text));
    request.add_categories(category);
  }
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::StartResearch, request, &response));
  return EmitStep(session, response);
}

absl::Status ForceDecline(const Input& in, Session& session) {
  v1::DeclineReferralRequest request;
  ASSIGN_OR_RETURN(std::string code, in.args.Require("code"));
  ASSIGN_OR_RETURN(v1::DeclineReason reason_code, ParseEnum<v1::DeclineReason>("code", code));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  request.set_reason_code(reason_code);
  request.set_reason(in.args.Get("reason").value_or(""));
  if (auto employer = in.args.Get("employer")) request.set_named_organisation(OrgCode(*employer));
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::Decline, request, &response));
  return EmitStep(session, response);
}

absl::Status ForceIopc(const Input& in, Session& session) {
  v1::ReferToIopcRequest request;
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  if (auto mode = in.args.Get("mode")) {
    ASSIGN_OR_RETURN(v1::IopcMode m, ParseEnum<v1::IopcMode>("mode", *mode));
    request.set_mode(m);
  }
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::ReferToIopc, request, &response));
  return EmitStep(session, response);
}

absl::Status ForceClose(const Input& in, Session& session) {
  v1::CloseReferralRequest request;
  ASSIGN_OR_RETURN(*request.mutable_outcome(), ReadOutcome(in.args));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::Close, request, &response));
  return EmitStep(session, response);
}

absl::Status ForceUpdateOutcome(const Input& in, Session& session) {
  v1::UpdateOutcomeRequest request;
  ASSIGN_OR_RETURN(*request.mutable_outcome(), ReadOutcome(in.args));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::UpdateOutcome, request, &response));
  return EmitStep(session, response);
}

// --status (required) and --note.
template <typename Request>
absl::Status ReadProgress(const Input& in, Request& request) {
  ASSIGN_OR_RETURN(std::string status, in.args.Require("status"));
  ASSIGN_OR_RETURN(v1::ProgressStatus s, ParseEnum<v1::ProgressStatus>("status", status));
  request.set_status(s);
  request.set_note(in.args.Get("note").value_or(""));
  return absl::OkStatus();
}

absl::Status ForceProgress(const Input& in, Session& session) {
  v1::ReportProgressRequest request;
  RETURN_IF_ERROR(ReadProgress(in, request));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::ReportProgress, request, &response));
  return EmitStep(session, response);
}

absl::Status ForceHandOver(const Input& in, Session& session) {
  v1::HandOverRequest request;
  ASSIGN_OR_RETURN(std::string notes, in.args.Require("notes"));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  request.set_notes(notes);
  ASSIGN_OR_RETURN(v1::Priority priority, ReadPriority(in.args));
  request.set_priority(priority);
  ASSIGN_OR_RETURN(*request.mutable_thr(), ReadThr(in.args));
  request.set_unit(in.args.Get("unit").value_or(""));
  v1::ForceStepResponse response;
  RETURN_IF_ERROR(session.Call(&Force::Stub::HandOver, request, &response));
  return EmitStep(session, response);
}

absl::Status RacuInbox(const Input& in, Session& session) {
  v1::ListHandoversRequest request;
  ASSIGN_OR_RETURN(std::vector<v1::ReferralState> states, ReadStates(in.args));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  for (v1::ReferralState state : states) request.add_states(state);
  request.set_needs_action(in.args.Has("needs-action"));
  request.set_overdue(in.args.Has("overdue"));
  request.set_escalated(in.args.Has("escalated"));
  v1::ListHandoversResponse response;
  RETURN_IF_ERROR(ListPages(session, &Racu::Stub::ListHandovers, request, paging, &response));
  return EmitInbox(session, response, /*show_organisation=*/true);
}

absl::Status RacuShow(const Input& in, Session& session) {
  v1::GetHandoverRequest request;
  request.set_referral_id(in.operands[0]);
  v1::GetHandoverResponse response;
  RETURN_IF_ERROR(session.Call(&Racu::Stub::GetHandover, request, &response));
  return EmitReferralWithEvents(session, response);
}

absl::Status RacuAccept(const Input& in, Session& session) {
  v1::AcceptHandoverRequest request;
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  ASSIGN_OR_RETURN(v1::Priority priority, ReadPriority(in.args));
  request.set_priority(priority);
  ASSIGN_OR_RETURN(*request.mutable_thr(), ReadThr(in.args));
  v1::UnitStepResponse response;
  RETURN_IF_ERROR(session.Call(&Racu::Stub::Accept, request, &response));
  return EmitStep(session, response);
}

absl::Status RacuDecline(const Input& in, Session& session) {
  v1::DeclineAssistanceRequest request;
  ASSIGN_OR_RETURN(std::string reason, in.args.Require("reason"));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  request.set_reason(reason);
  ASSIGN_OR_RETURN(v1::Priority priority, ReadPriority(in.args));
  request.set_priority(priority);
  ASSIGN_OR_RETURN(*request.mutable_thr(), ReadThr(in.args));
  v1::UnitStepResponse response;
  RETURN_IF_ERROR(session.Call(&Racu::Stub::DeclineAssistance, request, &response));
  return EmitStep(session, response);
}

absl::Status RacuOutcome(const Input& in, Session& session) {
  v1::RecordOutcomeRequest request;
  ASSIGN_OR_RETURN(*request.mutable_outcome(), ReadOutcome(in.args));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  v1::UnitStepResponse response;
  RETURN_IF_ERROR(session.Call(&Racu::Stub::RecordOutcome, request, &response));
  return EmitStep(session, response);
}

absl::Status RacuProgress(const Input& in, Session& session) {
  v1::ReportUnitProgressRequest request;
  RETURN_IF_ERROR(ReadProgress(in, request));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  v1::UnitStepResponse response;
  RETURN_IF_ERROR(session.Call(&Racu::Stub::ReportProgress, request, &response));
  return EmitStep(session, response);
}

absl::Status RacuUpdateOutcome(const Input& in, Session& session) {
  v1::UpdateUnitOutcomeRequest request;
  ASSIGN_OR_RETURN(*request.mutable_outcome(), ReadOutcome(in.args));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  v1::UnitStepResponse response;
  RETURN_IF_ERROR(session.Call(&Racu::Stub::UpdateOutcome, request, &response));
  return EmitStep(session, response);
}

}  // namespace

std::vector<Command> ForceCommands() {
  std::vector<Command> commands = {
      {.group = "force",
       .verb = "inbox",
       .synopsis = absl::StrCat(kTodoSynopsis, " ", kPagingSynopsis),
       .summary = "list the referrals addressed to this force, oldest first, as a to-do list: "
                  "--needs-action (received, acknowledged or under research), --overdue, "
                  "--escalated, any of several --state; DUE is the running clock's due date",
       .options = Concat(kTodoOptions, kPagingOptions),
       .repeatable = {"state"},
       .run = ForceInbox},
      {.group = "force",
       .verb = "show",
       .operands = {"REF_ID"},
       .summary = "show a referral with its package and events",
       .run = ForceShow},
      {.group = "force",
       .verb = "ack",
       .operands = {"REF_ID"},
       .summary = "acknowledge a received referral (RECEIVED -> ACKNOWLEDGED)",
       .mutating = true,
       .run = ForceAcknowledge},
      {.group = "force",
       .verb = "research",
       .operands = {"REF_ID"},
       .synopsis = "[--category C]...",
       .summary = "start research (ACKNOWLEDGED -> UNDER_RESEARCH), with the corruption categories "
                  "it concerns so far (e.g. --category THEFT_AND_FRAUD)",
       .options = {"category"},
       .repeatable = {"category"},
       .mutating = true,
       .run = ForceResearch},
      {.group = "force",
       .verb = "decline",
       .operands = {"REF_ID"},
       .synopsis = "--code CODE [--reason TEXT] [--employer ORG]",
       .summary = "decline to act (-> DECLINED_BY_FORCE). --code: not_our_employee or "
                  "employee_of_another_organisation (with --employer, the employer's code; both "
                  "from RECEIVED on), or after research insufficient_identifiers, "
                  "activity_explained, already_known_and_managed, other (--reason required); a "
                  "former employee's referral stays with the force (close it instead)",
       .options = {"code", "reason", "employer"},
       .mutating = true,
       .run = ForceDecline},
      {.group = "force",
       .verb = "close",
       .operands = {"REF_ID"},
       .synopsis = kOutcomeSynopsis,
       .summary = "close with the force's own final outcome (UNDER_RESEARCH -> CLOSED_BY_FORCE)",
       .options = kOutcomeOptions,
       .mutating = true,
       .run = ForceClose},
      {.group = "force",
       .verb = "update-outcome",
       .operands = {"REF_ID"},
       .synopsis = kOutcomeSynopsis,
       .summary = "record or amend one outcome track (charged, a case to answer, a hearing) while "
                  "the referral is open",
       .options = kOutcomeOptions,
       .mutating = true,
       .run = ForceUpdateOutcome},
      {.group = "force",
       .verb = "handover",
       .operands = {"REF_ID"},
       .synopsis =
           absl::StrCat("--notes TEXT --priority P1|P2|P3|P4 ", kThrSynopsis, " [--unit CODE]"),
       .summary = "hand over to a unit (UNDER_RESEARCH -> HANDED_OVER): the force's default "
                  "unit, or --unit, another it is configured for (its ROCU, the NCA's ACU); the "
                  "priority sets how often progress is due",
       .options = Concat({"notes", "priority", "unit"}, kThrOptions),
       .mutating = true,
       .run = ForceHandOver},
      {.group = "force",
       .verb = "iopc",
       .operands = {"REF_ID"},
       .synopsis = "[--mode local|directed|independent]",
       .summary = "record a referral to the IOPC (no --mode), then the mode the IOPC decided "
                  "(independent: later outcomes name the IOPC as the investigating body)",
       .options = {"mode"},
       .mutating = true,
       .run = ForceIopc},
      {.group = "force",
       .verb = "progress",
       .operands = {"REF_ID"},
       .synopsis = "--status STATUS [--note TEXT]",
       .summary = "report where an open investigation stands (restarts its progress clock)",
       .options = {"status", "note"},
       .mutating = true,
       .run = ForceProgress},
  };
  std::vector<Command> threads = ThreadCommands("force");
  commands.insert(commands.end(), threads.begin(), threads.end());
  std::vector<Command> watch = WatchCommands("force");
  commands.insert(commands.end(), watch.begin(), watch.end());
  return commands;
}

std::vector<Command> RacuCommands() {
  std::vector<Command> commands = {
      {.group = "racu",
       .verb = "inbox",
       .synopsis = absl::StrCat(kTodoSynopsis, " ", kPagingSynopsis),
       .summary = "list the handovers to this unit, oldest first, as a to-do list: "
                  "--needs-action (handed over or in joint investigation), --overdue, "
                  "--escalated, any of several --state",
       .options = Concat(kTodoOptions, kPagingOptions),
       .repeatable = {"state"},
       .run = RacuInbox},
      {.group = "racu",
       .verb = "show",
       .operands = {"REF_ID"},
       .summary = "show a handover with its package and events",
       .run = RacuShow},
      {.group = "racu",
       .verb = "accept",
       .operands = {"REF_ID"},
       .synopsis = absl::StrCat("--priority P1|P2|P3|P4 ", kThrSynopsis),
       .summary = "adopt: open a joint investigation (HANDED_OVER -> JOINT_INVESTIGATION); the "
                  "rationale is the adoption rationale",
       .options = Concat({"priority"}, kThrOptions),
       .mutating = true,
       .run = RacuAccept},
      {.group = "racu",
       .verb = "progress",
       .operands = {"REF_ID"},
       .synopsis = "--status STATUS [--note TEXT]",
       .summary = "report where the joint investigation stands (restarts its progress clock)",
       .options = {"status", "note"},
       .mutating = true,
       .run = RacuProgress},
      {.group = "racu",
       .verb = "decline",
       .operands = {"REF_ID"},
       .synopsis = absl::StrCat("--reason TEXT --priority P1|P2|P3|P4 ", kThrSynopsis),
       .summary = "decline to assist; the referral returns to the force",
       .options = Concat({"reason", "priority"}, kThrOptions),
       .mutating = true,
       .run = RacuDecline},
      {.group = "racu",
       .verb = "outcome",
       .operands = {"REF_ID"},
       .synopsis = kOutcomeSynopsis,
       .summary = "record the joint investigation's final outcome (-> OUTCOME_RECORDED)",
       .options = kOutcomeOptions,
       .mutating = true,
       .run = RacuOutcome},
      {.group = "racu",
       .verb = "update-outcome",
       .operands = {"REF_ID"},
       .synopsis = kOutcomeSynopsis,
       .summary = "record or amend one outcome track (charged, then convicted) during the joint "
                  "investigation",
       .options = kOutcomeOptions,
       .mutating = true,
       .run = RacuUpdateOutcome},
  };
  std::vector<Command> threads = ThreadCommands("racu");
  commands.insert(commands.end(), threads.begin(), threads.end());
  std::vector<Command> watch = WatchCommands("racu");
  commands.insert(commands.end(), watch.begin(), watch.end());
  return commands;
}

}  // namespace sarloop::ctl
