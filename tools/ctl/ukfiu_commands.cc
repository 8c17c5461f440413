// ukfiu: SAR intake and referral decisions (proto/sarloop/v1/ukfiu.proto).
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/values.h"
#include "tools/ctl/views.h"

namespace sarloop::ctl {
namespace {

using v1::Ukfiu;

// The options that describe a SAR on the command line; --from-json replaces them all.
const std::vector<std::string> kSarOptions = {
    "sector", "narrative", "reporter-ref", "amount-pence", "subject", "daml", "glossary-code"};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return UsageError(absl::StrCat("--from-json: cannot read '", path, "'"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A Sar in proto JSON (camelCase or the proto field names), from FILE or stdin for "-".
absl::StatusOr<v1::Sar> SarFromJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::string json, ReadFile(path));
  v1::Sar sar;
  auto status = google::protobuf::util::JsonStringToMessage(json, &sar);
  if (!status.ok()) {
    return UsageError(absl::StrCat("--from-json: '", path, "' is not a Sar: ", status.ToString()));
  }
  return sar;
}

absl::StatusOr<v1::Sar> SarFromOptions(const Args& args) {
  v1::Sar sar;
  ASSIGN_OR_RETURN(std::string sector, args.Require("sector"));
  ASSIGN_OR_RETURN(std::string narrative, args.Require("narrative"));
  sar.set_reporter_sector(sector);
  sar.set_narrative(narrative);
  sar.set_reporter_reference(args.Get("reporter-ref").value_or(""));
  if (std::optional<std::string> amount = args.Get("amount-pence")) {
    ASSIGN_OR_RETURN(int64_t pence,
                     ParseInteger("amount-pence", *amount, 0, std::numeric_limits<int64_t>::max()));
    sar.set_amount_pence(pence);
  }
  sar.set_daml(args.Has("daml"));
  for (const std::string& code : args.GetAll("glossary-code")) sar.add_glossary_codes(code);
  const std::vector<std::string> subjects = args.GetAll("subject");
  if (subjects.empty()) return UsageError("missing --subject (at least one)");
  for (const std::string& text : subjects) {
    ASSIGN_OR_RETURN(*sar.add_subjects(), ParseSubject(text));
  }
  return sar;
}

absl::StatusOr<v1::Sar> ReadSar(const Args& args) {
  std::optional<std::string> path = args.Get("from-json");
  if (!path) return SarFromOptions(args);
  for (const std::string& option : kSarOptions) {
    if (args.Has(option)) {
      return UsageError(absl::StrCat("--from-json and --", option, " cannot be combined"));
    }
  }
  return SarFromJson(*path);
}

absl::Status Submit(const Input& in, Session& session) {
  v1::SubmitSarRequest request;
  ASSIGN_OR_RETURN(*request.mutable_sar(), ReadSar(in.args));
  request.set_request_id(session.options().request_id);
  v1::SubmitSarResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::SubmitSar, request, &response));
  return Emit(session, response, [&](std::ostream& out) { PrintSar(response.sar(), out); });
}

absl::Status ShowSar(const Input& in, Session& session) {
  v1::GetSarRequest request;
  request.set_sar_id(in.operands[0]);
  v1::GetSarResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::GetSar, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintSar(response.sar(), out);
    out << "\nreferrals\n";
    PrintReferralList(response.referrals(), out);
  });
}

absl::Status Refer(const Input& in, Session& session) {
  v1::ReferSarRequest request;
  ASSIGN_OR_RETURN(std::string org, in.args.Require("org"));
  ASSIGN_OR_RETURN(*request.mutable_thr(), ReadThr(in.args));
  if (std::optional<std::string> days = in.args.Get("due-days")) {
    ASSIGN_OR_RETURN(int64_t due_days,
                     ParseInteger("due-days", *days, 1, std::numeric_limits<int32_t>::max()));
    request.set_due_in_days(static_cast<int32_t>(due_days));
  }
  request.set_request_id(session.options().request_id);
  request.set_sar_id(in.operands[0]);
  request.set_organisation(OrgCode(org));
  request.set_off_system(in.args.Has("off-system"));
  for (const std::string& other : in.args.GetAll("joint-with")) {
    request.add_joint_with(OrgCode(other));
  }
  if (auto lead = in.args.Get("lead")) request.set_lead_organisation(OrgCode(*lead));
  if (std::optional<std::string> hit_id = in.args.Get("hit")) {
    // An INDIRECT referral from a linkage hit: the hit must be in this organisation's index.
    ASSIGN_OR_RETURN(v1::LinkageHit hit, FetchLinkageHit(in, session, *hit_id));
    if (hit.organisation() != request.organisation() || hit.sar_id() != request.sar_id()) {
      return UsageError(absl::StrCat("--hit ", *hit_id, " is for ", hit.sar_id(), " in ",
                                     hit.organisation(), "'s index"));
    }
    v1::IndirectLink* link = request.mutable_indirect_link();
    link->set_hit_id(hit.hit_id());
    link->set_record_id(hit.record_id());
    link->set_score_milli(hit.score_milli());
    link->mutable_matched_fields()->CopyFrom(hit.matched_fields());
    request.set_route(v1::REFERRAL_ROUTE_INDIRECT);
  }
  v1::ReferSarResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::ReferSar, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintReferral(response.referral(), out);
    for (const v1::Referral& r : response.joint()) {
      out << "\njoint referral\n";
      PrintReferral(r, out);
    }
  });
}

absl::Status Withdraw(const Input& in, Session& session) {
  v1::WithdrawReferralRequest request;
  ASSIGN_OR_RETURN(std::string reason, in.args.Require("reason"));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  request.set_reason(reason);
  v1::WithdrawReferralResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::WithdrawReferral, request, &response));
  return Emit(session, response,
              [&](std::ostream& out) { PrintReferral(response.referral(), out); });
}

absl::Status Redirect(const Input& in, Session& session) {
  v1::RedirectReferralRequest request;
  // After a decline naming the employer the service fills in what is left out.
  const bool thr_given = in.args.Has("threat") || in.args.Has("risk") || in.args.Has("harm") ||
                         in.args.Has("rationale");
  if (thr_given) {
    ASSIGN_OR_RETURN(*request.mutable_thr(), ReadThr(in.args));
  }
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  request.set_organisation(OrgCode(in.args.Get("org").value_or("")));
  request.set_reason(in.args.Get("reason").value_or(""));
  request.set_off_system(in.args.Has("off-system"));
  v1::RedirectReferralResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::RedirectReferral, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    out << "redirected\n";
    PrintReferral(response.redirected(), out);
    out << "\nnew referral\n";
    PrintReferral(response.referral(), out);
  });
}

absl::Status ShowReferral(const Input& in, Session& session) {
  v1::GetReferralRequest request;
  request.set_referral_id(in.operands[0]);
  v1::GetReferralResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::GetReferral, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintReferral(response.referral(), out);
    out << '\n';
    PrintEvents(response.events(), out);
  });
}

absl::Status ListReferrals(const Input& in, Session& session) {
  v1::ListReferralsRequest request;
  ASSIGN_OR_RETURN(std::vector<v1::ReferralState> states, ReadStates(in.args));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  for (v1::ReferralState state : states) request.add_states(state);
  request.set_overdue(in.args.Has("overdue"));
  request.set_escalated(in.args.Has("escalated"));
  request.set_organisation(OrgCode(in.args.Get("org").value_or("")));
  v1::ListReferralsResponse response;
  RETURN_IF_ERROR(ListPages(session, &Ukfiu::Stub::ListReferrals, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintReferralList(response.referrals(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status RecordOnBehalf(const Input& in, Session& session) {
  v1::RecordOnBehalfRequest request;
  ASSIGN_OR_RETURN(std::string step, in.args.Require("step"));
  ASSIGN_OR_RETURN(v1::EventType type, ParseEnum<v1::EventType>("step", step));
  ASSIGN_OR_RETURN(std::string received_by, in.args.Require("received-by"));
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  request.set_step(type);
  request.set_received_by(received_by);
  if (auto code = in.args.Get("code")) {
    ASSIGN_OR_RETURN(v1::DeclineReason reason, ParseEnum<v1::DeclineReason>("code", *code));
    request.set_reason_code(reason);
  }
  request.set_reason(in.args.Get("reason").value_or(""));
  if (auto employer = in.args.Get("employer")) request.set_named_organisation(OrgCode(*employer));
  if (in.args.Has("outcome")) {
    ASSIGN_OR_RETURN(*request.mutable_outcome(), ReadOutcome(in.args));
  }
  v1::RecordOnBehalfResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::RecordOnBehalf, request, &response));
  return Emit(session, response,
              [&](std::ostream& out) { PrintReferral(response.referral(), out); });
}

absl::Status Attach(const Input& in, Session& session) {
  v1::AttachSarRequest request;
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  request.set_sar_id(in.operands[1]);
  v1::AttachSarResponse response;
  RETURN_IF_ERROR(session.Call(&Ukfiu::Stub::AttachSar, request, &response));
  return Emit(session, response,
              [&](std::ostream& out) { PrintReferral(response.referral(), out); });
}

absl::Status RunClock(const Input& in, Session& session) {
  v1::RunFeedbackClockResponse response;
  RETURN_IF_ERROR(
      session.Call(&Ukfiu::Stub::RunFeedbackClock, v1::RunFeedbackClockRequest(), &response));
  return Emit(session, response, [&](std::ostream& out) { PrintClockRun(response, out); });
}

}  // namespace

std::vector<Command> UkfiuCommands() {
  std::vector<Command> commands = {
      {.group = "ukfiu",
       .verb = "submit",
       .synopsis = "--sector S --narrative TEXT --subject SUBJECT... [--reporter-ref R] "
                   "[--amount-pence N] [--daml] [--glossary-code XX..XX]... | --from-json FILE",
       .summary = "store a SAR; SUBJECT is \"Full Name|YYYY-MM-DD|ROLE|EMPLOYER|address\" (only "
                  "the name is required); --daml: a defence against money laundering request "
                  "(its referrals' first decision is due within the 7-working-day notice "
                  "period); FILE is a Sar in JSON, - for stdin",
       .options = {"sector", "narrative", "reporter-ref", "amount-pence", "from-json", "daml"},
       .repeatable = {"subject", "glossary-code"},
       .mutating = true,
       .run = Submit},
      {.group = "ukfiu",
       .verb = "sar",
       .operands = {"SAR_ID"},
       .summary = "show a SAR and the referrals made from it",
       .run = ShowSar},
      {.group = "ukfiu",
       .verb = "refer",
       .operands = {"SAR_ID"},
       .synopsis = absl::StrCat("--org CODE ", kThrSynopsis,
                                " [--due-days N] [--hit HIT_ID [--linkage-target HOST:PORT]] "
                                "[--off-system] [--joint-with CODE... [--lead CODE]]"),
       .summary = "refer a SAR to an organisation with a THR assessment (--hit: an indirect "
                  "link the linkage screen found; --off-system: the organisation does not run "
                  "sarloop, and UKFIU records its replies with record-on-behalf; --joint-with: "
                  "people in other organisations too, one case with a referral each, led by "
                  "--org or --lead)",
       .options =
           Concat({"org", "due-days", "hit", "linkage-target", "off-system", "lead"}, kThrOptions),
       .repeatable = {"joint-with"},
       .mutating = true,
       .run = Refer},
      {.group = "ukfiu",
       .verb = "withdraw",
       .operands = {"REF_ID"},
       .synopsis = "--reason TEXT",
       .summary = "withdraw an open referral",
       .options = {"reason"},
       .mutating = true,
       .run = Withdraw},
      {.group = "ukfiu",
       .verb = "redirect",
       .operands = {"REF_ID"},
       .synopsis = absl::StrCat("[--org CODE ", kThrSynopsis, " --reason TEXT] [--off-system]"),
       .summary = "redirect an open referral to another organisation (a new, linked referral); "
                  "after a decline naming the employer, with no options, to that employer",
       .options = Concat({"org", "reason", "off-system"}, kThrOptions),
       .mutating = true,
       .run = Redirect},
      {.group = "ukfiu",
       .verb = "referral",
       .operands = {"REF_ID"},
       .summary = "show a referral and every event UKFIU knows for it",
       .run = ShowReferral},
      {.group = "ukfiu",
       .verb = "referrals",
       .synopsis = absl::StrCat("[--org CODE] [--state STATE]... [--overdue] [--escalated] ",
                                kPagingSynopsis),
       .summary = "list referrals, newest first",
       .options = Concat({"org", "state", "overdue", "escalated"}, kPagingOptions),
       .repeatable = {"state"},
       .run = ListReferrals},
      {.group = "ukfiu",
       .verb = "attach",
       .operands = {"REF_ID", "SAR_ID"},
       .summary = "attach a further SAR to an open referral (the force and its units receive it; "
                  "the clock does not restart)",
       .mutating = true,
       .run = Attach},
      {.group = "ukfiu",
       .verb = "record-on-behalf",
       .operands = {"REF_ID"},
       .synopsis = absl::StrCat("--step received|acknowledged|research_started|declined_by_force|"
                                "closed_by_force --received-by TEXT [--code C [--employer CODE] "
                                "[--reason TEXT]] [",
                                kOutcomeSynopsis, "]"),
       .summary = "record the reply an organisation not on sarloop gave by other means, on its "
                  "behalf (audited; marked in the register)",
       .options = Concat({"step", "received-by", "code", "employer", "reason"}, kOutcomeOptions),
       .mutating = true,
       .run = RecordOnBehalf},
      {.group = "ukfiu",
       .verb = "clock",
       .summary = "run the feedback clock now: reminders, escalations, open-investigation flags",
       .run = RunClock},
  };
  std::vector<Command> threads = ThreadCommands("ukfiu");
  commands.insert(commands.end(), threads.begin(), threads.end());
  std::vector<Command> watch = WatchCommands("ukfiu");
  commands.insert(commands.end(), watch.begin(), watch.end());
  return commands;
}

}  // namespace sarloop::ctl
