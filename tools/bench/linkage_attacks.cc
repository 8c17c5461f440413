#include "tools/bench/linkage_attacks.h"

#include <algorithm>
#include <bit>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sarloop::bench {
namespace {

using linkage::Field;
using linkage::Filter;

constexpr int kNameBits = 512;

std::string NameField(const Filter& f) {
  const linkage::FieldSpan s = linkage::SpanOf(Field::kName);
  return std::string(reinterpret_cast<const char*>(&f.w[s.first_word]), s.words * 8);
}

bool Bit(const Filter& f, int pos) { return (f.w[pos / 64] >> (pos % 64)) & 1; }

// Distinct public names, most frequent first.
std::vector<std::pair<std::string, size_t>> Ranked(const std::vector<std::string>& names) {
  absl::flat_hash_map<std::string, size_t> counts;
  for (const std::string& n : names) ++counts[n];
  std::vector<std::pair<std::string, size_t>> out(counts.begin(), counts.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

// The bigrams the encoder makes of a canonical name (padded, per token).
std::vector<std::string> Bigrams(const std::string& canonical) {
  absl::flat_hash_set<std::string> set;
  for (absl::string_view token : absl::StrSplit(canonical, ' ', absl::SkipEmpty())) {
    const std::string padded = absl::StrCat("_", token, "_");
    for (size_t i = 0; i + 1 < padded.size(); ++i) set.insert(padded.substr(i, 2));
  }
  return std::vector<std::string>(set.begin(), set.end());
}

using Bits = std::vector<uint64_t>;
size_t Count(const Bits& b) {
  size_t n = 0;
  for (uint64_t w : b) n += std::popcount(w);
  return n;
}

}  // namespace

std::string CanonicalName(const std::string& given_names, const std::string& surname) {
  std::vector<std::string> tokens = absl::StrSplit(
      linkage::NormaliseName(absl::StrCat(given_names, " ", surname)), ' ', absl::SkipEmpty());
  std::sort(tokens.begin(), tokens.end());
  return absl::StrJoin(tokens, " ");
}

AttackResult FrequencyAttack(const std::vector<Filter>& filters,
                             const std::vector<std::string>& truth,
                             const std::vector<std::string>& public_names) {
  absl::flat_hash_map<std::string, std::vector<uint32_t>> groups;
  for (uint32_t i = 0; i < filters.size(); ++i) groups[NameField(filters[i])].push_back(i);
  std::vector<const std::vector<uint32_t>*> ranked;
  for (const auto& [field, members] : groups) ranked.push_back(&members);
  std::sort(ranked.begin(), ranked.end(), [](const auto* a, const auto* b) {
    return a->size() != b->size() ? a->size() > b->size() : (*a)[0] < (*b)[0];
  });
  const auto names = Ranked(public_names);
  AttackResult r;
  r.records = filters.size();
  for (const auto* g : ranked) r.shared_fields += g->size() > 1 ? g->size() : 0;
  for (size_t i = 0; i < ranked.size() && i < names.size(); ++i) {
    for (uint32_t member : *ranked[i]) {
      ++r.guesses;
      r.reidentified += truth[member] == names[i].first;
    }
  }
  return r;
}

AttackResult PatternMiningAttack(const std::vector<Filter>& filters,
                                 const std::vector<std::string>& truth,
                                 const std::vector<std::string>& public_names,
                                 const PatternAttackOptions& options) {
  const size_t n = filters.size();
  const size_t words = (n + 63) / 64;
  const int name_first_bit = linkage::SpanOf(Field::kName).first_word * 64;
  // One bitset over the filters per bit position of the name field.
  std::vector<Bits> column(kNameBits, Bits(words, 0));
  for (size_t i = 0; i < n; ++i) {
    for (int p = 0; p < kNameBits; ++p) {
      if (Bit(filters[i], name_first_bit + p)) column[p][i / 64] |= uint64_t{1} << (i % 64);
    }
  }
  Bits active(words, ~uint64_t{0});
  if (n % 64) active.back() = (uint64_t{1} << (n % 64)) - 1;

  const auto names = Ranked(public_names);
  std::vector<std::vector<std::string>> name_bigrams;
  for (const auto& [name, count] : names) name_bigrams.push_back(Bigrams(name));
  std::vector<bool> name_active(names.size(), true);

  struct Pattern {
    std::vector<int> positions;
    std::string bigram;
  };
  std::vector<Pattern> found;
  const size_t min_left = std::max<size_t>(n / 100, 20);
  Bits cur(words), trial(words);
  for (int iteration = 0; iteration < std::min(options.max_patterns, 64); ++iteration) {
    // The most frequent bigram among the public names not yet set aside.
    absl::flat_hash_map<std::string, size_t> bigram_counts;
    size_t names_left = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!name_active[i]) continue;
      names_left += names[i].second;
      for (const std::string& b : name_bigrams[i]) bigram_counts[b] += names[i].second;
    }
    if (names_left < public_names.size() / 100 || Count(active) < min_left) break;
    std::string bigram;
    size_t best_count = 0;
    for (const auto& [b, c] : bigram_counts) {
      if (c > best_count || (c == best_count && b < bigram)) best_count = c, bigram = b;
    }
    // The positions set together in the most filters still in play, grown greedily from each
    // of the four most frequent positions.
    std::vector<std::pair<size_t, int>> starts;
    for (int p = 0; p < kNameBits; ++p) {
      size_t c = 0;
      for (size_t w = 0; w < words; ++w) c += std::popcount(active[w] & column[p][w]);
      starts.push_back({c, p});
    }
    std::sort(starts.rbegin(), starts.rend());
    std::vector<int> best_pattern;
    size_t best_support = 0;
    for (int s = 0; s < 4; ++s) {
      std::vector<int> pattern = {starts[s].second};
      for (size_t w = 0; w < words; ++w) cur[w] = active[w] & column[pattern[0]][w];
      while (static_cast<int>(pattern.size()) < options.positions_per_pattern) {
        int best_p = -1;
        size_t best_c = 0;
        for (int p = 0; p < kNameBits; ++p) {
          if (std::find(pattern.begin(), pattern.end(), p) != pattern.end()) continue;
          size_t c = 0;
          for (size_t w = 0; w < words; ++w) c += std::popcount(cur[w] & column[p][w]);
          if (c > best_c) best_c = c, best_p = p;
        }
        if (best_p < 0) break;
        pattern.push_back(best_p);
        for (size_t w = 0; w < words; ++w) cur[w] &= column[best_p][w];
      }
      const size_t support = Count(cur);
      if (support > best_support) best_support = support, best_pattern = pattern;
    }
    if (best_pattern.empty() || best_support == 0) break;
    found.push_back({best_pattern, bigram});
    // Set aside the filters showing the pattern and the names with the bigram.
    for (size_t i = 0; i < n; ++i) {
      int set = 0;
      for (int p : best_pattern) set += Bit(filters[i], name_first_bit + p);
      if (set * 10 >= static_cast<int>(best_pattern.size()) * 8) {
        active[i / 64] &= ~(uint64_t{1} << (i % 64));
      }
    }
    for (size_t i = 0; i < names.size(); ++i) {
      const auto& bs = name_bigrams[i];
      if (std::find(bs.begin(), bs.end(), bigram) != bs.end()) name_active[i] = false;
    }
  }

  AttackResult r;
  r.records = n;
  r.patterns = found.size();
  // Which found bigrams each filter shows, and which each public name has.
  std::vector<uint64_t> filter_mask(n, 0);
  std::vector<size_t> shown(found.size(), 0), shown_right(found.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    const std::vector<std::string> true_bigrams = Bigrams(truth[i]);
    for (size_t k = 0; k < found.size(); ++k) {
      int set = 0;
      for (int p : found[k].positions) set += Bit(filters[i], name_first_bit + p);
      if (set * 10 >= static_cast<int>(found[k].positions.size()) * 8) {
        filter_mask[i] |= uint64_t{1} << k;
        ++shown[k];
        shown_right[k] += std::find(true_bigrams.begin(), true_bigrams.end(), found[k].bigram) !=
                          true_bigrams.end();
      }
    }
  }
  for (size_t k = 0; k < found.size(); ++k) {
    r.patterns_right += shown[k] > 0 && shown_right[k] * 10 >= shown[k] * 9;
  }
  absl::flat_hash_map<uint64_t, std::pair<size_t, size_t>> by_mask;  // mask -> (names, first)
  for (size_t i = 0; i < names.size(); ++i) {
    uint64_t mask = 0;
    for (size_t k = 0; k < found.size(); ++k) {
      const auto& bs = name_bigrams[i];
      if (std::find(bs.begin(), bs.end(), found[k].bigram) != bs.end()) mask |= uint64_t{1} << k;
    }
    auto [it, inserted] = by_mask.try_emplace(mask, 0, i);
    ++it->second.first;
  }
  for (size_t i = 0; i < n; ++i) {
    const auto it = by_mask.find(filter_mask[i]);
    if (it == by_mask.end() || it->second.first != 1) continue;
    ++r.guesses;
    r.reidentified += names[it->second.second].first == truth[i];
  }
  return r;
}

}  // namespace sarloop::bench
