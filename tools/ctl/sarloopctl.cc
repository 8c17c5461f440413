// sarloopctl: one command line for every sarloop role. Parses the command line, picks the
// command from the table in commands.h, runs it and turns its status into an exit code:
//   0  done
//   1  the call failed: "sarloopctl: <CODE>: <message>" as the server (or gRPC) reported it
//   2  usage error: the message and the command's usage on stderr
#include <google/protobuf/util/json_util.h>
#include <grpc/support/log.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/log_fields.h"
#include "common/base/status.h"
#include "common/base/text.h"
#include "common/version/version.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "sarloop/v1/types.pb.h"
#include "tools/ctl/args.h"
#include "tools/ctl/client.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {
namespace {

constexpr char kProgram[] = "sarloopctl";

// Global options, accepted by every command.
const std::vector<std::string> kGlobalOptions = {"target", "identity", "user",
                                                 "json",   "timeout",  "help"};

struct Group {
  const char* name;
  const char* about;
};

constexpr Group kGroups[] = {
    {"ukfiu", "UKFIU: SAR intake and referral decisions"},
    {"force", "force: the Professional Standards Department's referral inbox"},
    {"racu", "racu: the investigating unit's handovers"},
    {"nca", "nca: the national register (NCA analysts)"},
    {"oversight", "oversight: what the feedback clock escalated to you (chief officers, PCCs)"},
    {"report", "report: the STA summary report (NCA analysts; files, from the nca service)"},
    {"ops", "ops: the service's own outbox"},
    {"linkage", "linkage: screening SAR subjects against force personnel for indirect links"},
    {"audit", "audit: verify a service's tamper-evident audit log (offline)"},
    {"identity", "identity: check a SPIFFE ID as the services parse it (offline)"},
    {"keys", "keys: data keys for encryption at rest (offline, on the service's files)"},
    {"db", "db: back up a service's database while it runs, and restore it (on its host)"},
    {"health", "health: whether the service is up"},
};

bool IsGroup(absl::string_view word) {
  for (const Group& group : kGroups) {
    if (word == group.name) return true;
  }
  return false;
}

// "force decline".
std::string CommandName(const Command& command) {
  return command.verb.empty() ? command.group : absl::StrCat(command.group, " ", command.verb);
}

std::string CommandLine(const Command& command) {
  std::vector<std::string> words = {kProgram, CommandName(command)};
  words.insert(words.end(), command.operands.begin(), command.operands.end());
  if (!command.synopsis.empty()) words.push_back(command.synopsis);
  return absl::StrJoin(words, " ");
}

// `text` as lines of at most kWidth columns, breaking at spaces: the first line after `lead`,
// the rest indented by `hang` spaces.
void PrintWrapped(std::ostream& out, absl::string_view lead, absl::string_view text, size_t hang) {
  constexpr size_t kWidth = 100;
  std::string line(lead);
  bool line_has_word = false;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line_has_word && line.size() + 1 + word.size() > kWidth) {
      out << line << '\n';
      line.assign(hang, ' ');
      line_has_word = false;
    }
    if (line_has_word) line += ' ';
    absl::StrAppend(&line, word);
    line_has_word = true;
  }
  out << line << '\n';
}

void PrintCommand(const Command& command, std::ostream& out) {
  PrintWrapped(out, "  ", CommandLine(command), 8);
  PrintWrapped(out, "      ", command.summary, 6);
}

void PrintGlobalOptions(std::ostream& out) {
  out << "global options (before or after the command words):\n"
         "  --target HOST:PORT   the service to call (env SARLOOP_TARGET)\n"
         "  --identity DIR       mTLS identity: DIR/cert.pem, key.pem, ca.pem "
         "(env SARLOOP_IDENTITY)\n"
         "  --user NAME          the person acting, sent as x-sarloop-user and kept in "
         "every\n"
         "                       audit entry; required for a client system's identity "
         "(env\n"
         "                       SARLOOP_USER)\n"
         "  --json               print the response as one JSON document\n"
         "  --timeout SECONDS    deadline of each call (default 10)\n"
         "  --request-id ID      idempotency key of a command that changes something "
         "(default: random)\n"
         "  --help, -h           this text; `sarloopctl help GROUP` for one group\n"
         "  --version            the version and git revision\n";
}

void PrintValues(std::ostream& out) {
  using google::protobuf::GetEnumDescriptor;
  const std::pair<const char*, std::string> values[] = {
      {"STATE", AllowedNames(GetEnumDescriptor<v1::ReferralState>())},
      {"LEVEL", AllowedNames(GetEnumDescriptor<v1::ThrLevel>())},
      {"TYPE", AllowedNames(GetEnumDescriptor<v1::OutcomeType>())},
      {"RESULT", AllowedNames(GetEnumDescriptor<v1::MisconductResult>())},
      {"CATEGORY", AllowedNames(GetEnumDescriptor<v1::CorruptionCategory>())},
      {"ROLE", AllowedNames(GetEnumDescriptor<v1::SubjectRole>())},
      {"DATE", "YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM:SSZ"},
      {"CODE", "an organisation or unit code (organisations.csv), any case"},
  };
  out << "values (any case, - or _ alike):\n";
  for (const auto& [name, text] : values) {
    PrintWrapped(out, absl::StrFormat("  %-10s", name), text, 12);
  }
}

// The whole usage, or only one group's commands when `only_group` names one.
void PrintHelp(absl::string_view only_group, std::ostream& out) {
  out << "usage: " << kProgram << " [global options] GROUP VERB [OPERANDS] [options]\n\n";
  PrintGlobalOptions(out);
  for (const Group& group : kGroups) {
    if (!only_group.empty() && only_group != group.name) continue;
    out << '\n' << group.about << '\n';
    for (const Command& command : AllCommands()) {
      if (command.group == group.name) PrintCommand(command, out);
    }
  }
  out << '\n';
  PrintValues(out);
  out << "\nexit status: 0 done, 2 usage error, 3 refused (invalid argument, wrong state,\n"
         "  permission), 4 not found, 5 unavailable (retry: unavailable, busy, deadline),\n"
         "  1 any other failure. The code and message go to stderr; with --json the error is\n"
         "  printed on stdout as {\"error\": google.rpc.Status as JSON} with its details\n"
         "  (ErrorInfo reason, BadRequest fields, PreconditionFailure, ResourceInfo, RetryInfo)\n";
}

// The short usage for a command line too broken to name a command: every command word.
void PrintCommandIndex(std::ostream& out) {
  out << "usage: " << kProgram << " [global options] GROUP VERB [OPERANDS] [options]\n";
  for (const Group& group : kGroups) {
    std::vector<std::string> verbs;
    for (const Command& command : AllCommands()) {
      if (command.group == group.name && !command.verb.empty()) verbs.push_back(command.verb);
    }
    const std::string line = absl::StrFormat("  %-8s%s", group.name, absl::StrJoin(verbs, " "));
    out << absl::StripTrailingAsciiWhitespace(line) << '\n';
  }
}

// Usage errors: the message, then the usage of the command when one was named, else of the
// group when one was named, else the index of commands.
int UsageFailure(const absl::Status& status, const Command* command, absl::string_view group = "") {
  std::cerr << kProgram << ": " << status.message() << '\n';
  if (command != nullptr) {
    std::cerr << "usage:\n";
    PrintCommand(*command, std::cerr);
  } else if (IsGroup(group)) {
    std::cerr << "usage:\n";
    for (const Command& candidate : AllCommands()) {
      if (candidate.group == group) PrintCommand(candidate, std::cerr);
    }
  } else {
    PrintCommandIndex(std::cerr);
  }
  std::cerr << "run '" << kProgram << " help' for every command and option\n";
  return 2;
}

// The exit status of a failed call: what a script needs to decide whether to retry, to fix its
// input, or to give up.
int ExitCodeOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kAborted:
      return 3;
    case absl::StatusCode::kNotFound:
      return 4;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
      return 5;
    default:
      return 1;
  }
}

int CallFailure(const absl::Status& status, const Session& session) {
  const bool json = session.options().json;
  std::cerr << kProgram << ": " << absl::StatusCodeToString(status.code());
  if (!status.message().empty()) std::cerr << ": " << Printable(status.message());
  std::cerr << '\n';
  // No answer came back to a write: it may have been carried out. The same request_id makes the
  // retry safe (the service answers a repeat with the first answer); a new one would do it twice.
  const bool unanswered = status.code() == absl::StatusCode::kDeadlineExceeded ||
                          status.code() == absl::StatusCode::kUnavailable;
  const std::string& rid = session.options().request_id;
  if (unanswered && session.sent_request_id()) {
    std::cerr << kProgram << ": it may have been carried out; to retry without doing it twice, "
              << "run the same command with --request-id " << rid << '\n';
  }
  // Each service offers only its own API, so this usually means the call went to the wrong one.
  if (status.code() == absl::StatusCode::kUnimplemented) {
    std::cerr << kProgram << ": is --target (or SARLOOP_TARGET) the service this command is for?\n";
  }
  if (json) {
    // The server's google.rpc.Status as sent; one made here for errors that never reached a
    // server (no connection), with the reason a server would give.
    google::rpc::Status details;
    if (const std::string sent = DetailsOf(status);
        sent.empty() || !details.ParseFromString(sent)) {
      details.set_code(static_cast<int>(status.code()));
      details.set_message(std::string(status.message()));
      google::rpc::ErrorInfo info;
      info.set_reason(ReasonOf(status));
      info.set_domain(kErrorDomain);
      details.add_details()->PackFrom(info);
    }
    std::string body;
    if (!google::protobuf::util::MessageToJsonString(details, &body).ok()) body = "{}";
    std::cout << "{\"error\":" << body << ",\"status\":\""
              << absl::StatusCodeToString(status.code())
              << "\",\"exit_code\":" << ExitCodeOf(status.code());
    if (session.sent_request_id()) {
      std::string escaped;
      AppendJsonEscaped(rid, escaped);
      std::cout << ",\"request_id\":\"" << escaped << "\"";
    }
    std::cout << "}\n";
  }
  return ExitCodeOf(status.code());
}

// The command the operands name: one word for health, two for the rest.
const Command* FindCommand(const std::vector<std::string>& operands) {
  for (const Command& command : AllCommands()) {
    if (operands[0] != command.group) continue;
    if (command.verb.empty() || (operands.size() > 1 && operands[1] == command.verb)) {
      return &command;
    }
  }
  return nullptr;
}

absl::Status UnknownCommand(const std::vector<std::string>& operands) {
  if (IsGroup(operands[0]) && operands.size() > 1) {
    return UsageError(absl::StrCat("unknown command '", operands[0], " ", operands[1], "'"));
  }
  if (IsGroup(operands[0])) {
    return UsageError(absl::StrCat("'", operands[0], "' needs a command word"));
  }
  return UsageError(absl::StrCat("unknown command '", operands[0], "'"));
}

absl::Status CheckInvocation(const Command& command, const Args& args, size_t operand_count) {
  std::vector<std::string> allowed = Concat(kGlobalOptions, command.options);
  if (command.mutating) allowed.push_back("request-id");
  RETURN_IF_ERROR(args.CheckOptions(allowed, command.repeatable));
  if (operand_count != command.operands.size()) {
    const std::string wanted = command.operands.empty() ? std::string("no operands")
                                                        : absl::StrJoin(command.operands, " ");
    return UsageError(
        absl::StrCat(CommandName(command), " takes ", wanted, ", given ", operand_count));
  }
  return absl::OkStatus();
}

// gRPC logs connection failures on stderr as well as returning them in the status; one message
// per failure is enough for a command-line tool. GRPC_VERBOSITY brings gRPC's own logs back.
void QuietGrpcLogs() {
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
}

int Run(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv);
  if (!args.ok()) return UsageFailure(args.status(), nullptr);
  const std::vector<std::string>& operands = args->operands();
  const bool help_word = !operands.empty() && operands[0] == "help";
  if (args->Has("help") || help_word) {
    const size_t group_at = help_word ? 1 : 0;
    const bool one_group = operands.size() > group_at && IsGroup(operands[group_at]);
    PrintHelp(one_group ? operands[group_at] : "", std::cout);
    return 0;
  }
  if (operands.empty()) return UsageFailure(UsageError("no command given"), nullptr);

  const Command* command = FindCommand(operands);
  if (command == nullptr) return UsageFailure(UnknownCommand(operands), nullptr, operands[0]);
  const size_t words = command->verb.empty() ? 1 : 2;
  absl::Status valid = CheckInvocation(*command, *args, operands.size() - words);
  if (!valid.ok()) return UsageFailure(valid, command);
  absl::StatusOr<GlobalOptions> options = ReadGlobalOptions(*args);
  if (!options.ok()) return UsageFailure(options.status(), command);

  Session session(*std::move(options));
  const Input input{*args, std::vector<std::string>(operands.begin() + words, operands.end())};
  absl::Status status = command->run(input, session);
  if (status.ok()) return 0;
  return IsUsageError(status) ? UsageFailure(status, command) : CallFailure(status, session);
}

}  // namespace
}  // namespace sarloop::ctl

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(argc, argv, "sarloopctl", "")) return 0;
  sarloop::ctl::QuietGrpcLogs();
  return sarloop::ctl::Run(std::vector<std::string>(argv + 1, argv + argc));
}
