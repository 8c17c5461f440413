// nca, ops and health: looking at the register and at a service rather than acting on a
// referral (proto/sarloop/v1/nca.proto, delivery.proto's Ops, grpc.health.v1).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/audit.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/health.h"
#include "tools/ctl/values.h"
#include "tools/ctl/views.h"

namespace sarloop::ctl {
namespace {

using v1::Nca;

// --as-of sets the request's as_of; absent leaves it unset, which the server reads as now.
// (mutable_as_of() would mark the field present, so it is only called when the flag is given.)
template <typename Request>
absl::Status ReadAsOf(const Args& args, Request& request) {
  std::optional<std::string> text = args.Get("as-of");
  if (!text) return absl::OkStatus();
  ASSIGN_OR_RETURN(*request.mutable_as_of(), ParseTimestamp("as-of", *text));
  return absl::OkStatus();
}

absl::Status Timeline(const Input& in, Session& session) {
  v1::GetTimelineRequest request;
  request.set_referral_id(in.operands[0]);
  v1::GetTimelineResponse response;
  RETURN_IF_ERROR(session.Call(&Nca::Stub::GetTimeline, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintRegisterEntry(response.entry(), out);
    out << '\n';
    PrintEvents(response.events(), out);
  });
}

absl::Status ListRegister(const Input& in, Session& session) {
  v1::ListRegisterRequest request;
  ASSIGN_OR_RETURN(v1::ReferralState state, ReadState(in.args));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  request.set_state(state);
  request.set_organisation(OrgCode(in.args.Get("org").value_or("")));
  v1::ListRegisterResponse response;
  RETURN_IF_ERROR(ListPages(session, &Nca::Stub::ListRegister, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintRegisterList(response.entries(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status ListOverdue(const Input& in, Session& session) {
  v1::ListOverdueRequest request;
  RETURN_IF_ERROR(ReadAsOf(in.args, request));
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  request.set_organisation(OrgCode(in.args.Get("org").value_or("")));
  v1::ListOverdueResponse response;
  RETURN_IF_ERROR(ListPages(session, &Nca::Stub::ListOverdue, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintRegisterList(response.entries(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status Summary(const Input& in, Session& session) {
  v1::GetSummaryRequest request;
  RETURN_IF_ERROR(ReadAsOf(in.args, request));
  v1::GetSummaryResponse response;
  RETURN_IF_ERROR(session.Call(&Nca::Stub::GetSummary, request, &response));
  return Emit(session, response, [&](std::ostream& out) { PrintSummary(response, out); });
}

absl::Status Backlog(const Input& in, Session& session) {
  v1::GetBacklogResponse response;
  RETURN_IF_ERROR(session.Call(&v1::Ops::Stub::GetBacklog, v1::GetBacklogRequest(), &response));
  return Emit(session, response, [&](std::ostream& out) { PrintBacklog(response, out); });
}

// Prints the status, and fails (exit 1) unless the server is SERVING, so scripts can wait on it.
absl::Status Health(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> response, CheckHealth(session));
  const std::string status = ServingStatusName(*response);
  RETURN_IF_ERROR(
      Emit(session, *response, [&](std::ostream& out) { out << "status: " << status << '\n'; }));
  if (status != "SERVING") return absl::UnavailableError(absl::StrCat("the server is ", status));
  return absl::OkStatus();
}

// Offline: reads the service's database and checkpoint file directly (no server call), so an
// auditor can check a copy. Exit 1 naming the first bad entry when the chain does not verify.
absl::Status AuditVerify(const Input& in, Session& session) {
  const std::string database = in.args.Get("database").value_or("");
  if (database.empty()) return absl::InvalidArgumentError("--database: required");
  const std::string checkpoints =
      in.args.Get("checkpoints").value_or(database + ".audit-checkpoints");
  const std::string key = in.args.Get("key").value_or(database + ".audit-key.pub");
  ASSIGN_OR_RETURN(AuditReport report, VerifyAudit(database, checkpoints, key));
  if (report.first_bad != 0) {
    return absl::DataLossError(absl::StrCat("audit log does not verify: first bad entry ",
                                            report.first_bad, ": ", report.problem));
  }
  std::cout << "audit log verifies: " << report.entries << " entries, " << report.checkpoints
            << " signed checkpoints\n";
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> NcaCommands() {
  return {
      {.group = "nca",
       .verb = "timeline",
       .operands = {"REF_ID"},
       .summary = "show a register entry and every event, in the register's order",
       .run = Timeline},
      {.group = "nca",
       .verb = "list",
       .synopsis = absl::StrCat("[--org CODE] [--state STATE] ", kPagingSynopsis),
       .summary = "list the register",
       .options = Concat({"org", "state"}, kPagingOptions),
       .run = ListRegister},
      {.group = "nca",
       .verb = "overdue",
       .synopsis = absl::StrCat("[--org CODE] [--as-of DATE] ", kPagingSynopsis),
       .summary = "list referrals past their due date without feedback, most overdue first",
       .options = Concat({"org", "as-of"}, kPagingOptions),
       .run = ListOverdue},
      {.group = "nca",
       .verb = "summary",
       .synopsis = "[--as-of DATE]",
       .summary = "counts per organisation and outcomes by type",
       .options = {"as-of"},
       .run = Summary},
  };
}

std::vector<Command> OpsCommands() {
  return {
      {.group = "ops",
       .verb = "backlog",
       .summary = "the outbox backlog of this service per destination",
       .run = Backlog},
      {.group = "audit",
       .verb = "verify",
       .synopsis = "--database FILE [--checkpoints FILE] [--key PUBKEY]",
       .summary = "verify a service's audit chain and signed checkpoints (offline, read-only)",
       .options = {"database", "checkpoints", "key"},
       .run = AuditVerify},
      {.group = "health",
       .summary = "grpc.health.v1 check of the server; exit 1 unless SERVING",
       .run = Health},
  };
}

}  // namespace sarloop::ctl
