// Command-line splitting for sarloopctl: options may come before, between or after the command
// words, so argv is split once into operands and options and each command then checks the
// options it was given against the ones it accepts.
//
// Errors here are usage errors (see UsageError): the caller prints them with the usage text and
// exits 2, never 1, so scripts can tell a mistyped command from a refusal by the server.
#ifndef SARLOOP_TOOLS_CTL_ARGS_H_
#define SARLOOP_TOOLS_CTL_ARGS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sarloop::ctl {

// An INVALID_ARGUMENT status marked as a usage error (bad or missing arguments, unusable local
// files), as opposed to an error the server returned.
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);

// The options that take no value. Every other option takes exactly one.
bool IsFlagOption(absl::string_view name);

class Args {
 public:
  // Splits argv (without the program name). `--name value` and `--name=value` set an option;
  // the token after `--name` is its value even when it starts with `--`, as with getopt. A bare
  // `--` ends the options: everything after it is an operand; `-h` is `--help`. Usage error when an
  // option that needs a value ends argv, or a flag option is given a value.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv);

  // The non-option words in order: command group, verb, then the command's operands.
  const std::vector<std::string>& operands() const { return operands_; }

  // Usage error naming the first option not in `allowed`, or given twice unless in
  // `repeatable`. Option names are written without the leading dashes.
  absl::Status CheckOptions(const std::vector<std::string>& allowed,
                            const std::vector<std::string>& repeatable) const;

  bool Has(absl::string_view name) const;
  // The value of an option given once; nullopt when absent.
  std::optional<std::string> Get(absl::string_view name) const;
  // Every value of a repeatable option, in order.
  std::vector<std::string> GetAll(absl::string_view name) const;
  // The value of a required option; usage error "missing --name" when absent or empty.
  absl::StatusOr<std::string> Require(absl::string_view name) const;

 private:
  std::vector<std::string> operands_;
  std::multimap<std::string, std::string, std::less<>> options_;
};

}  // namespace sarloop::ctl

#endif  // SARLOOP_TOOLS_CTL_ARGS_H_
