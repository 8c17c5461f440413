// Requests for information (threads), offered alike by ukfiu, force and racu: `ask`, `answer`
// and `threads` in each of those groups (proto/sarloop/v1/types.proto RequestInformationRequest).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/table.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {
namespace {

void PrintThread(const v1::InformationThread& t, std::ostream& out) {
  KeyValues kv;
  kv.Add("thread", t.thread_id());
  kv.Add("referral", t.referral_id());
  kv.Add("asked", absl::StrCat(t.asked_by(), " -> ", t.asked_of(), " at ",
                               FormatTime(t.question().sent_at())));
  kv.Add("reply due", FormatTime(t.reply_due_at()));
  kv.Add("status", t.has_answer() ? "answered"
                   : t.overdue()  ? "open, overdue"
                   : t.open()     ? "open"
                                  : "unanswered, ended");
  kv.Add("question", t.question().text());
  if (t.question().attachments_size() > 0) {
    kv.Add("attachments", absl::StrJoin(t.question().attachments(), ", "));
  }
  if (t.has_answer()) {
    kv.Add("answered", absl::StrCat(FormatTime(t.answer().sent_at()), " by ",
                                    t.answer().actor().user().empty() ? t.answer().from()
                                                                      : t.answer().actor().user()));
    kv.Add("answer", t.answer().text());
    if (t.answer().attachments_size() > 0) {
      kv.Add("answer attachments", absl::StrJoin(t.answer().attachments(), ", "));
    }
  }
  kv.Print(out);
}

template <typename Stub>
absl::Status Ask(const Input& in, Session& session) {
  v1::RequestInformationRequest request;
  request.set_request_id(session.options().request_id);
  request.set_referral_id(in.operands[0]);
  ASSIGN_OR_RETURN(std::string question, in.args.Require("question"));
  request.set_question(question);
  if (auto to = in.args.Get("to")) request.set_to(OrgCode(*to));
  for (const std::string& a : in.args.GetAll("attachment")) request.add_attachments(a);
  if (auto days = in.args.Get("due-days")) {
    ASSIGN_OR_RETURN(int64_t n, ParseInteger("due-days", *days, 1, 90));
    request.set_reply_due_days(static_cast<int32_t>(n));
  }
  v1::InformationThreadResponse response;
  RETURN_IF_ERROR(session.Call(&Stub::RequestInformation, request, &response));
  return Emit(session, response, [&](std::ostream& out) { PrintThread(response.thread(), out); });
}

template <typename Stub>
absl::Status Answer(const Input& in, Session& session) {
  v1::AnswerInformationRequest request;
  request.set_request_id(session.options().request_id);
  request.set_thread_id(in.operands[0]);
  ASSIGN_OR_RETURN(std::string answer, in.args.Require("answer"));
  request.set_answer(answer);
  for (const std::string& a : in.args.GetAll("attachment")) request.add_attachments(a);
  v1::InformationThreadResponse response;
  RETURN_IF_ERROR(session.Call(&Stub::AnswerInformation, request, &response));
  return Emit(session, response, [&](std::ostream& out) { PrintThread(response.thread(), out); });
}

template <typename Stub>
absl::Status List(const Input& in, Session& session) {
  v1::ListThreadsRequest request;
  if (auto ref = in.args.Get("referral")) request.set_referral_id(*ref);
  request.set_awaiting_our_answer(in.args.Has("awaiting"));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  v1::ListThreadsResponse response;
  RETURN_IF_ERROR(ListPages(session, &Stub::ListThreads, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    Table table({"THREAD", "REFERRAL", "ASKED BY", "ASKED OF", "REPLY DUE", "STATUS"});
    for (const v1::InformationThread& t : response.threads()) {
      table.AddRow({t.thread_id(), t.referral_id(), t.asked_by(), t.asked_of(),
                    FormatDate(t.reply_due_at()),
                    t.has_answer() ? "answered"
                    : t.overdue()  ? "OVERDUE"
                    : t.open()     ? "open"
                                   : "ended"});
    }
    table.Print(out);
    PrintNextPage(response.next_page_token(), out);
  });
}

template <typename Stub>
std::vector<Command> For(const std::string& group, const std::string& whom) {
  return {
      {.group = group,
       .verb = "ask",
       .operands = {"REF_ID"},
       .synopsis = "--question TEXT [--to ORG] [--attachment DOC_REF]... [--due-days N]",
       .summary = absl::StrCat("ask ", whom,
                               " for information (a thread with its own reference; the answer is "
                               "due in 10 days, or --due-days)"),
       .options = {"question", "to", "attachment", "due-days"},
       .repeatable = {"attachment"},
       .mutating = true,
       .run = Ask<Stub>},
      {.group = group,
       .verb = "answer",
       .operands = {"RFI_ID"},
       .synopsis = "--answer TEXT [--attachment DOC_REF]...",
       .summary = "answer a request for information asked of this organisation",
       .options = {"answer", "attachment"},
       .repeatable = {"attachment"},
       .mutating = true,
       .run = Answer<Stub>},
      {.group = group,
       .verb = "threads",
       .synopsis = absl::StrCat("[--referral REF_ID] [--awaiting] ", kPagingSynopsis),
       .summary = "list requests for information, soonest reply due first (--awaiting: only "
                  "those waiting for this organisation's answer)",
       .options = Concat({"referral", "awaiting"}, kPagingOptions),
       .run = List<Stub>},
  };
}

}  // namespace

std::vector<Command> ThreadCommands(const std::string& group) {
  if (group == "ukfiu")
    return For<v1::Ukfiu::Stub>(group, "the force the referral is addressed to");
  if (group == "force") {
    return For<v1::Force::Stub>(group, "UKFIU (default) or, with --to, a unit it was handed to");
  }
  return For<v1::Racu::Stub>(group, "the force that handed the referral over");
}

}  // namespace sarloop::ctl
