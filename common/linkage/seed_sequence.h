// std::seed_seq's output without its cost.
//
// The linkage encoder seeds a std::mt19937_64 per field it encodes, from a std::seed_seq of eight
// words, and forces' uploaded encodings depend on that exact stream. libstdc++'s
// seed_seq::generate takes three integer divisions per step (1,248 steps for the 624 words an
// mt19937_64 asks for); a profile of ukfiu under SubmitSar put most of the encoder's time there.
// The algorithm is fixed by the C++ standard ([rand.util.seedseq]), so this gives the same words
// for the same seed, walking its indices instead of dividing.
#ifndef SARLOOP_COMMON_LINKAGE_SEED_SEQUENCE_H_
#define SARLOOP_COMMON_LINKAGE_SEED_SEQUENCE_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

namespace sarloop {

// Meets the standard's SeedSequence requirements as far as the random engines use them
// (generate, size, param), so `std::mt19937_64 rng(seq)` takes it as it takes a std::seed_seq.
class SeedSequence {
 public:
  using result_type = uint32_t;

  explicit SeedSequence(std::span<const uint32_t> seed) : seed_(seed.begin(), seed.end()) {}

  // As std::seed_seq::generate over 32-bit words.
  template <typename It>
  void generate(It begin, It end) const {
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(*begin)>, uint32_t> &&
                  std::contiguous_iterator<It>) {
      Generate(std::to_address(begin), static_cast<size_t>(end - begin));
    } else {
      std::vector<uint32_t> words(static_cast<size_t>(end - begin));
      Generate(words.data(), words.size());
      for (uint32_t w : words) *begin++ = w;
    }
  }
  size_t size() const { return seed_.size(); }
  template <typename Out>
  void param(Out out) const {
    for (uint32_t w : seed_) *out++ = w;
  }

 private:
  void Generate(uint32_t* out, size_t n) const;

  std::vector<uint32_t> seed_;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_LINKAGE_SEED_SEQUENCE_H_
