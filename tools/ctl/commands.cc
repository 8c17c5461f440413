#include "tools/ctl/commands.h"

#include <google/protobuf/util/json_util.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {

const std::vector<Command>& AllCommands() {
  static const std::vector<Command>* commands = [] {
    auto* all = new std::vector<Command>();
    for (auto group : {UkfiuCommands, ForceCommands, RacuCommands, NcaCommands, OversightCommands,
                       ReportCommands, OpsCommands, LinkageCommands}) {
      std::vector<Command> commands = group();
      all->insert(all->end(), commands.begin(), commands.end());
    }
    return all;
  }();
  return *commands;
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

absl::Status Emit(const Session& session, const google::protobuf::Message& response,
                  const std::function<void(std::ostream&)>& human) {
  if (!session.options().json) {
    human(std::cout);
    return absl::OkStatus();
  }
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(response, &json);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the response as JSON: ", status.ToString()));
  }
  std::cout << json << '\n';
  return absl::OkStatus();
}

absl::StatusOr<v1::ReferralState> ReadState(const Args& args) {
  std::optional<std::string> state = args.Get("state");
  if (!state) return v1::REFERRAL_STATE_UNSPECIFIED;
  return ParseEnum<v1::ReferralState>("state", *state);
}

absl::StatusOr<std::vector<v1::ReferralState>> ReadStates(const Args& args) {
  std::vector<v1::ReferralState> states;
  for (const std::string& text : args.GetAll("state")) {
    ASSIGN_OR_RETURN(v1::ReferralState state, ParseEnum<v1::ReferralState>("state", text));
    states.push_back(state);
  }
  return states;
}

absl::StatusOr<v1::ThrAssessment> ReadThr(const Args& args) {
  v1::ThrAssessment thr;
  ASSIGN_OR_RETURN(std::string threat, args.Require("threat"));
  ASSIGN_OR_RETURN(std::string risk, args.Require("risk"));
  ASSIGN_OR_RETURN(std::string harm, args.Require("harm"));
  ASSIGN_OR_RETURN(std::string rationale, args.Require("rationale"));
  ASSIGN_OR_RETURN(v1::ThrLevel threat_level, ParseEnum<v1::ThrLevel>("threat", threat));
  ASSIGN_OR_RETURN(v1::ThrLevel risk_level, ParseEnum<v1::ThrLevel>("risk", risk));
  ASSIGN_OR_RETURN(v1::ThrLevel harm_level, ParseEnum<v1::ThrLevel>("harm", harm));
  thr.set_threat(threat_level);
  thr.set_risk(risk_level);
  thr.set_harm(harm_level);
  thr.set_rationale(rationale);
  return thr;
}

absl::StatusOr<v1::Outcome> ReadOutcome(const Args& args) {
  v1::Outcome outcome;
  ASSIGN_OR_RETURN(std::string type, args.Require("outcome"));
  ASSIGN_OR_RETURN(v1::OutcomeType outcome_type, ParseEnum<v1::OutcomeType>("outcome", type));
  outcome.set_type(outcome_type);
  if (std::optional<std::string> result = args.Get("result")) {
    ASSIGN_OR_RETURN(v1::MisconductResult misconduct,
                     ParseEnum<v1::MisconductResult>("result", *result));
    outcome.set_misconduct_result(misconduct);
  }
  if (std::optional<std::string> finding = args.Get("finding")) {
    ASSIGN_OR_RETURN(v1::ConductFinding f, ParseEnum<v1::ConductFinding>("finding", *finding));
    outcome.set_finding(f);
  }
  // Not our personnel and intelligence only may leave category and role unset; the service says
  // which outcome needs them.
  if (std::optional<std::string> category = args.Get("category")) {
    ASSIGN_OR_RETURN(v1::CorruptionCategory corruption,
                     ParseEnum<v1::CorruptionCategory>("category", *category));
    outcome.set_category(corruption);
  }
  if (std::optional<std::string> role = args.Get("role")) {
    ASSIGN_OR_RETURN(v1::SubjectRole subject_role, ParseEnum<v1::SubjectRole>("role", *role));
    outcome.set_subject_role(subject_role);
  }
  ASSIGN_OR_RETURN(std::string opened, args.Require("opened"));
  ASSIGN_OR_RETURN(*outcome.mutable_opened_at(), ParseTimestamp("opened", opened));
  // An open outcome (charged, a case to answer) has not closed.
  if (std::optional<std::string> closed = args.Get("closed")) {
    ASSIGN_OR_RETURN(*outcome.mutable_closed_at(), ParseTimestamp("closed", *closed));
  }
  outcome.set_learning_summary(args.Get("summary").value_or(""));
  return outcome;
}

absl::StatusOr<v1::Priority> ReadPriority(const Args& args) {
  std::optional<std::string> p = args.Get("priority");
  if (!p) return v1::PRIORITY_UNSPECIFIED;
  return ParseEnum<v1::Priority>("priority", *p);
}

absl::StatusOr<Paging> ReadPaging(const Args& args) {
  Paging paging;
  if (std::optional<std::string> size = args.Get("page-size")) {
    ASSIGN_OR_RETURN(paging.page_size, ParseInteger("page-size", *size, 1, 1000));
  }
  paging.page_token = args.Get("page-token").value_or("");
  paging.all = args.Has("all");
  return paging;
}

void PrintNextPage(const std::string& next_page_token, std::ostream& out) {
  if (next_page_token.empty()) return;
  out << "\nmore: --page-token " << next_page_token << " (or --all)\n";
}

}  // namespace sarloop::ctl
