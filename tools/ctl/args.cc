#include "tools/ctl/args.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sarloop::ctl {
namespace {

constexpr char kUsagePayload[] = "type.sarloop/ctl-usage";

bool Contains(const std::vector<std::string>& names, absl::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("1"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

bool IsFlagOption(absl::string_view name) {
  return name == "json" || name == "all" || name == "help" || name == "dry-run" ||
         name == "publication" || name == "witness" || name == "awaiting" || name == "daml" ||
         name == "off-system" || name == "from-start" || name == "needs-action" ||
         name == "overdue" || name == "escalated" || name == "accept-bad-rows";
}

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv) {
  Args args;
  bool options_ended = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& word = argv[i];
    if (!options_ended && word == "-h") {
      args.options_.emplace("help", "");
      continue;
    }
    if (options_ended || !absl::StartsWith(word, "--") || word.size() == 2) {
      if (word == "--" && !options_ended) {
        options_ended = true;
      } else {
        args.operands_.push_back(word);
      }
      continue;
    }
    std::string name = word.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (IsFlagOption(name)) {
      if (value) return UsageError(absl::StrCat("--", name, " takes no value"));
      value = "";
    } else if (!value) {
      if (i + 1 == argv.size()) return UsageError(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    args.options_.emplace(std::move(name), std::move(*value));
  }
  return args;
}

absl::Status Args::CheckOptions(const std::vector<std::string>& allowed,
                                const std::vector<std::string>& repeatable) const {
  for (auto it = options_.begin(); it != options_.end(); it = options_.upper_bound(it->first)) {
    const std::string& name = it->first;
    if (!Contains(allowed, name) && !Contains(repeatable, name)) {
      return UsageError(absl::StrCat("unknown option --", name, " for this command"));
    }
    if (options_.count(name) > 1 && !Contains(repeatable, name)) {
      return UsageError(absl::StrCat("--", name, " given more than once"));
    }
  }
  return absl::OkStatus();
}

bool Args::Has(absl::string_view name) const { return options_.find(name) != options_.end(); }

std::optional<std::string> Args::Get(absl::string_view name) const {
  auto it = options_.find(name);
  if (it == options_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Args::GetAll(absl::string_view name) const {
  std::vector<std::string> values;
  auto [begin, end] = options_.equal_range(name);
  for (auto it = begin; it != end; ++it) values.push_back(it->second);
  return values;
}

absl::StatusOr<std::string> Args::Require(absl::string_view name) const {
  std::optional<std::string> value = Get(name);
  if (!value || value->empty()) return UsageError(absl::StrCat("missing --", name));
  return *value;
}

}  // namespace sarloop::ctl
