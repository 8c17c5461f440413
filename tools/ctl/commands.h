// The commands of sarloopctl and what they share. One table (AllCommands) drives dispatch, option
// checking and the usage text, so the help cannot drift from what the tool accepts.
//
// A handler reads its arguments into a request first (usage errors, exit 2), then makes its call
// through the Session (the server's error, exit 1), then prints the response: JSON with --json,
// otherwise tables (views.h).
#ifndef SARLOOP_TOOLS_CTL_COMMANDS_H_
#define SARLOOP_TOOLS_CTL_COMMANDS_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/status.h"
#include "sarloop/v1/linkage.pb.h"
#include "sarloop/v1/types.pb.h"
#include "tools/ctl/args.h"
#include "tools/ctl/client.h"

namespace sarloop::ctl {

// What a handler is given.
struct Input {
  const Args& args;
  // The command's own operands, after the command words; as many as Command::operands names.
  std::vector<std::string> operands;
};

using Handler = absl::Status (*)(const Input& in, Session& session);

// The `= {}` defaults let each table entry name only the members it uses (designated
// initializers) without -Wmissing-field-initializers warnings.
struct Command {
  // The first command word: ukfiu, force, racu, nca, ops or health.
  std::string group = {};
  // The second command word; empty for a one-word command (health).
  std::string verb = {};
  // Operand names for the usage text, e.g. {"REF_ID"}.
  std::vector<std::string> operands = {};
  // The command's options as the usage text shows them.
  std::string synopsis = {};
  // One line: what the command does.
  std::string summary = {};
  // Command options accepted besides the global ones, without dashes.
  std::vector<std::string> options = {};
  // Options that may be given more than once.
  std::vector<std::string> repeatable = {};
  // Whether the call changes something, so --request-id applies.
  bool mutating = false;
  Handler run = nullptr;
};

// Every command, in the order the usage text lists them.
const std::vector<Command>& AllCommands();

// The commands of each group, defined next to their handlers.
std::vector<Command> UkfiuCommands();
std::vector<Command> ForceCommands();
std::vector<Command> RacuCommands();
std::vector<Command> NcaCommands();
std::vector<Command> OversightCommands();
std::vector<Command> ReportCommands();
std::vector<Command> OpsCommands();
std::vector<Command> LinkageCommands();
// ask, answer and threads for the group "ukfiu", "force" or "racu".
std::vector<Command> ThreadCommands(const std::string& group);
// watch for the group "force", "racu", "ukfiu" or "nca".
std::vector<Command> WatchCommands(const std::string& group);
// A linkage hit, from the linkage service (--linkage-target, else SARLOOP_LINKAGE_TARGET), with
// the session's identity: what `ukfiu refer --hit` copies into an INDIRECT referral.
absl::StatusOr<v1::LinkageHit> FetchLinkageHit(const Input& in, const Session& session,
                                               const std::string& hit_id);

// `a` followed by `b`: a command's own options plus a shared set such as kThrOptions.
std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b);

// Prints `response` to stdout as one JSON document with --json, otherwise through `human`.
// INTERNAL if the message cannot be converted (it always can for messages from a server).
absl::Status Emit(const Session& session, const google::protobuf::Message& response,
                  const std::function<void(std::ostream&)>& human);

// --state; UNSPECIFIED (no filter) when absent.
absl::StatusOr<v1::ReferralState> ReadState(const Args& args);
// Every --state given (the option may repeat): the states a list keeps.
absl::StatusOr<std::vector<v1::ReferralState>> ReadStates(const Args& args);
// The to-do filters of a list of referrals: --state (repeatable), --needs-action, --overdue,
// --escalated.
inline const std::vector<std::string> kTodoOptions = {"state", "needs-action", "overdue",
                                                      "escalated"};
inline constexpr char kTodoSynopsis[] =
    "[--state STATE]... [--needs-action] [--overdue] [--escalated]";

// --threat, --risk, --harm and --rationale, all required.
inline const std::vector<std::string> kThrOptions = {"threat", "risk", "harm", "rationale"};
inline constexpr char kThrSynopsis[] = "--threat LEVEL --risk LEVEL --harm LEVEL --rationale TEXT";
absl::StatusOr<v1::ThrAssessment> ReadThr(const Args& args);

// --outcome and --opened are required; --finding and --result (meetings and hearings; the
// severity of a case to answer), --category and --role (optional only when there were no
// proceedings), --closed (a final outcome) and --summary as the outcome needs them: the service
// names what is missing. investigating_org is left to the server.
inline const std::vector<std::string> kOutcomeOptions = {"outcome", "finding", "result", "category",
                                                         "role",    "opened",  "closed", "summary"};
inline constexpr char kOutcomeSynopsis[] =
    "--outcome TYPE [--finding FINDING] [--result RESULT] [--category CATEGORY] [--role ROLE] "
    "--opened DATE [--closed DATE] [--summary TEXT]";
absl::StatusOr<v1::Outcome> ReadOutcome(const Args& args);

// --priority P1..P4 (or PRIORITY_P1); UNSPECIFIED when absent.
absl::StatusOr<v1::Priority> ReadPriority(const Args& args);

// --page-size (1 to 1000; the server's default when absent), --page-token, --all.
struct Paging {
  int32_t page_size = 0;
  std::string page_token{};
  // Follow next_page_token until the last page, printing everything as one list.
  bool all = false;
};
inline const std::vector<std::string> kPagingOptions = {"page-size", "page-token", "all"};
inline constexpr char kPagingSynopsis[] = "[--page-size N] [--page-token T] [--all]";
absl::StatusOr<Paging> ReadPaging(const Args& args);

// Calls a list method once, or page after page with --all, appending each page to `out`. On
// return out->next_page_token() is the token of the page after the last one fetched (empty after
// --all). INTERNAL if the server hands back the token it was given, which would never end.
template <typename Stub, typename Request, typename Response>
absl::Status ListPages(Session& session,
                       grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                    Response*),
                       Request request, const Paging& paging, Response* out) {
  request.set_page_size(paging.page_size);
  request.set_page_token(paging.page_token);
  while (true) {
    Response page;
    RETURN_IF_ERROR(session.Call(method, request, &page));
    out->MergeFrom(page);
    out->set_next_page_token(page.next_page_token());
    if (!paging.all || page.next_page_token().empty()) return absl::OkStatus();
    if (page.next_page_token() == request.page_token()) {
      return absl::InternalError("the server returned the page token it was given");
    }
    request.set_page_token(page.next_page_token());
  }
}

// After a table of one page: how to get the next one, when there is one.
void PrintNextPage(const std::string& next_page_token, std::ostream& out);

}  // namespace sarloop::ctl

#endif  // SARLOOP_TOOLS_CTL_COMMANDS_H_
