// A benchmark's numeric flag, read whole: "5abc", "" and (for a real number) "nan" or "inf" are
// refused with a usage error, not read as 5, 0 or a phase that never ends.
#ifndef SARLOOP_TOOLS_BENCH_NUMBER_FLAG_H_
#define SARLOOP_TOOLS_BENCH_NUMBER_FLAG_H_

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <type_traits>

#include "absl/strings/numbers.h"

namespace sarloop::bench {

// Writes `text` to `path` whole; false, with a message after `tool`, when it could not.
inline bool WriteWhole(const char* tool, const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) std::cerr << tool << ": cannot write " << path << "\n";
  return static_cast<bool>(out);
}

// The value of `flag` in `text`, or exit 2 naming both after `tool`.
template <typename T>
T NumberFlag(const char* tool, const std::string& flag, const std::string& text) {
  T value{};
  bool ok;
  if constexpr (std::is_floating_point_v<T>) {
    ok = absl::SimpleAtod(text, &value) && std::isfinite(value);
  } else {
    ok = absl::SimpleAtoi(text, &value);
  }
  if (!ok) {
    std::cerr << tool << ": " << flag << ": not a number: '" << text << "'\n";
    std::exit(2);
  }
  return value;
}

}  // namespace sarloop::bench

#endif  // SARLOOP_TOOLS_BENCH_NUMBER_FLAG_H_
