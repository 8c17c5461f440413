#include "common/version/version.h"

#include <iostream>

#include "sarloop_revision.h"

namespace sarloop {

std::string VersionLine(std::string_view program) {
  return std::string(program) + " " + SARLOOP_VERSION + " (git " + SARLOOP_REVISION + ")";
}

bool PrintVersionOrHelp(int argc, const char* const* argv, std::string_view program,
                        std::string_view usage) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    // Right after an option it may be that option's value ("--reason --version"): a command
    // given such a value must run or be refused by its own parser, not print and exit 0.
    if (i > 1) {
      const std::string_view prev = argv[i - 1];
      if (prev.size() > 1 && prev[0] == '-' && prev.find('=') == std::string_view::npos) continue;
    }
    if (arg == "--version") {
      std::cout << VersionLine(program) << "\n";
      return true;
    }
    if (!usage.empty() && (arg == "--help" || arg == "-h")) {
      std::cout << VersionLine(program) << "\n\n" << usage;
      if (!usage.empty() && usage.back() != '\n') std::cout << "\n";
      return true;
    }
  }
  return false;
}

}  // namespace sarloop
