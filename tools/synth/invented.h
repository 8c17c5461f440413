// Invented people and case details shared by the synthetic scenario (scenario.h) and the
// national exercise (exercise_model.h): a seeded generator that draws the same numbers on every
// standard library, names, dates of birth and addresses, and outcomes fitted to the subject's role.
// Pure; nothing here talks to a service.
#ifndef SARLOOP_TOOLS_SYNTH_INVENTED_H_
#define SARLOOP_TOOLS_SYNTH_INVENTED_H_

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::synth {

// Random helpers over mt19937_64 so the scenario is the same on every standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  // 0 <= result < n.
  int Below(int n) { return static_cast<int>(gen_() % static_cast<uint64_t>(n)); }
  int Between(int lo, int hi) { return lo + Below(hi - lo + 1); }
  // True with probability percent/100.
  bool Percent(int percent) { return Below(100) < percent; }
  // An index chosen with the given weights.
  template <size_t N>
  int Weighted(const std::array<int, N>& weights) {
    int total = 0;
    for (int w : weights) total += w;
    int r = Below(total);
    for (size_t i = 0; i < N; ++i) {
      if (r < weights[i]) return static_cast<int>(i);
      r -= weights[i];
    }
    return static_cast<int>(N - 1);
  }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(static_cast<int>(N))];
  }
  template <typename T>
  T Pick(const std::vector<T>& items) {
    return items[Below(static_cast<int>(items.size()))];
  }

  // A uniform double in [0, 1), from the top 53 bits.
  double Unit() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  // A standard normal deviate (Box-Muller over Unit(), not std::normal_distribution, whose
  // algorithm each library chooses).
  double Normal() {
    const double u = 1.0 - Unit();  // (0, 1]
    const double v = Unit();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

 private:
  std::mt19937_64 gen_;
};

// "GBP 12,345" for an amount in pence.
std::string Pounds(int64_t pence);
// How a narrative names a role ("police officer", "member of police staff", ...).
absl::string_view RoleText(v1::SubjectRole role);

// An invented name ("Amelia K Turner"), date of birth (YYYY-MM-DD, 1962-2003) and address near
// organisation `org`'s area (any code; unknown ones get towns of the east of England).
std::string InventName(Rng& rng);
std::string InventDob(Rng& rng);
std::string InventAddress(Rng& rng, const std::string& org);

// `type` if the Police (Conduct) Regulations and the staff and contractor routes allow it for a
// subject of `role`, else the nearest outcome that is open to them.
v1::OutcomeType FitOutcomeToRole(v1::OutcomeType type, v1::SubjectRole role);

// One outcome of `type` for a subject of `role` in `category`, with a finding and action
// regulation 42 allows and a learning summary (sometimes empty). No dates.
v1::Outcome PlainOutcome(Rng& rng, v1::OutcomeType type, v1::SubjectRole role,
                         v1::CorruptionCategory category);

}  // namespace sarloop::synth

#endif  // SARLOOP_TOOLS_SYNTH_INVENTED_H_
