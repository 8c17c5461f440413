// What `--version` and `--help` print, the same way in every sarloop binary.
#ifndef SARLOOP_COMMON_VERSION_VERSION_H_
#define SARLOOP_COMMON_VERSION_VERSION_H_

#include <string>
#include <string_view>

namespace sarloop {

// "sarloop-force 0.1.0 (git 0be64b1c2d3e)": the program, the release and the commit it was built
// from ("-dirty" when the tree had uncommitted changes).
std::string VersionLine(std::string_view program);

// If the arguments hold --version, or --help / -h and `usage` is not empty (either not right
// after an option, whose value it may be), prints the version line or the usage (after the
// version line) to stdout and returns true: the caller exits 0.
// Programs that answer --help themselves pass an empty `usage`.
bool PrintVersionOrHelp(int argc, const char* const* argv, std::string_view program,
                        std::string_view usage);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_VERSION_VERSION_H_
