#include "common/reference/workforce.h"

#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sarloop {
namespace internal {
extern const char kWorkforceCsv[];
}  // namespace internal

absl::StatusOr<std::map<std::string, Workforce>> ParseWorkforce(const std::string& csv) {
  std::map<std::string, Workforce> out;
  bool header = true;
  int line = 0;
  for (absl::string_view text : absl::StrSplit(csv, '\n')) {
    ++line;
    text = absl::StripSuffix(text, "\r");
    if (text.empty() || absl::StartsWith(text, "#")) continue;
    if (header) {
      header = false;
      continue;
    }
    // The source is last and may not hold a comma; four fields exactly.
    std::vector<std::string> f = absl::StrSplit(text, ',');
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("workforce.csv line ", line, ": ", why));
    };
    if (f.size() != 4) return bad("4 columns expected (code,officers_fte,as_at,source)");
    Workforce w;
    if (!absl::SimpleAtod(f[1], &w.officers_fte) || w.officers_fte <= 0) {
      return bad(absl::StrCat("officers_fte '", f[1], "' is not a positive number"));
    }
    if (f[2].empty() || f[3].empty()) return bad("as_at and source are required");
    w.as_at = f[2];
    w.source = f[3];
    if (!out.emplace(f[0], std::move(w)).second) return bad(absl::StrCat("code ", f[0], " twice"));
  }
  return out;
}

const std::map<std::string, Workforce>& PublishedWorkforce() {
  static const auto* figures = [] {
    auto parsed = ParseWorkforce(internal::kWorkforceCsv);
    // A unit test parses the built-in copy; failing here means a broken build.
    if (!parsed.ok()) std::abort();
    return new std::map<std::string, Workforce>(std::move(*parsed));
  }();
  return *figures;
}

}  // namespace sarloop
