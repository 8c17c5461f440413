#include "tools/bench/linkage_attacks.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <set>
#include <thread>

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

namespace {

// One side of the graph attack: distinct nodes, how many records each stands for, and a
// symmetric similarity between two nodes.
struct Graph {
  size_t nodes = 0;
  std::vector<double> count;
  std::vector<double> size;  // bigrams held (estimated from set bits on the encoded side)
  // Edges at or above the minimum similarity, per node: (neighbour, similarity).
  std::vector<std::vector<std::pair<uint32_t, float>>> edges;
};

// Fills g.edges over every pair, on two threads.
template <typename Similarity>
void Connect(Graph& g, double min_similarity, Similarity sim) {
  g.edges.assign(g.nodes, {});
  std::vector<std::vector<std::pair<uint32_t, float>>> half[2];
  half[0].resize(g.nodes);
  half[1].resize(g.nodes);
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t) {
    pool.emplace_back([&, t] {
      for (uint32_t i = t; i < g.nodes; i += 2) {
        for (uint32_t j = i + 1; j < g.nodes; ++j) {
          const double s = sim(i, j);
          if (s >= min_similarity) half[t][i].emplace_back(j, static_cast<float>(s));
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int t = 0; t < 2; ++t) {
    for (uint32_t i = 0; i < g.nodes; ++i) {
      for (const auto& [j, s] : half[t][i]) {
        g.edges[i].emplace_back(j, s);
        g.edges[j].emplace_back(i, s);
      }
    }
  }
}

constexpr double kDegreeAt[] = {0.6, 0.7, 0.8, 0.9};
constexpr int kHistBins = 8;  // over [min_similarity, 1]

std::vector<std::vector<double>> Features(const Graph& g, double min_similarity) {
  std::vector<std::vector<double>> out(g.nodes);
  for (uint32_t i = 0; i < g.nodes; ++i) {
    std::vector<double>& f = out[i];
    f.push_back(std::log1p(g.count[i]));
    f.push_back(g.size[i]);
    double max_s = 0, sum_s = 0, neighbour_degree = 0, neighbour_count = 0;
    double hist[kHistBins] = {};
    for (double at : kDegreeAt) {
      size_t d = 0;
      for (const auto& [j, s] : g.edges[i]) d += s >= at;
      f.push_back(std::log1p(static_cast<double>(d)));
    }
    for (const auto& [j, s] : g.edges[i]) {
      max_s = std::max<double>(max_s, s);
      sum_s += s;
      neighbour_degree += static_cast<double>(g.edges[j].size());
      neighbour_count += g.count[j];
      const int bin = std::min(
          kHistBins - 1, static_cast<int>((s - min_similarity) / (1 - min_similarity) * kHistBins));
      hist[std::max(0, bin)] += 1;
    }
    const double degree = static_cast<double>(g.edges[i].size());
    f.push_back(max_s);
    f.push_back(degree ? sum_s / degree : 0);
    f.push_back(std::log1p(degree ? neighbour_degree / degree : 0));
    f.push_back(std::log1p(neighbour_count));
    for (double h : hist) f.push_back(degree ? h / degree : 0);
  }
  return out;
}

}  // namespace

AttackResult GraphMatchingAttack(const std::vector<Filter>& filters,
                                 const std::vector<std::string>& truth,
                                 const std::vector<std::string>& public_names,
                                 const GraphAttackOptions& options) {
  const size_t n = std::min(filters.size(), options.max_records);
  AttackResult result;
  result.records = n;

  // The encoded graph: distinct name fields.
  absl::flat_hash_map<std::string, uint32_t> enc_id;
  std::vector<uint32_t> node_of(n);
  std::vector<std::array<uint64_t, 8>> fields;
  Graph enc;
  for (size_t i = 0; i < n; ++i) {
    auto [it, inserted] = enc_id.try_emplace(NameField(filters[i]), enc.nodes);
    if (inserted) {
      std::array<uint64_t, 8> w;
      std::copy_n(&filters[i].w[linkage::SpanOf(Field::kName).first_word], 8, w.begin());
      fields.push_back(w);
      enc.count.push_back(0);
      // Bits set -> bigrams, inverting the expected fill m(1 - (1 - 1/m)^(k n)).
      size_t bits = 0;
      for (uint64_t x : w) bits += std::popcount(x);
      const double fill = std::min(0.999, static_cast<double>(bits) / kNameBits);
      enc.size.push_back(std::log1p(-fill) /
                         (options.bits_per_bigram * std::log1p(-1.0 / kNameBits)));
      ++enc.nodes;
    }
    node_of[i] = it->second;
    enc.count[it->second] += 1;
  }
  std::vector<int> pop(enc.nodes);
  for (uint32_t i = 0; i < enc.nodes; ++i) {
    for (uint64_t x : fields[i]) pop[i] += std::popcount(x);
  }
  Connect(enc, options.min_similarity, [&](uint32_t a, uint32_t b) {
    int both = 0;
    for (int w = 0; w < 8; ++w) both += std::popcount(fields[a][w] & fields[b][w]);
    return pop[a] + pop[b] ? 2.0 * both / (pop[a] + pop[b]) : 0.0;
  });

  // The public graph: distinct names, with the Dice their encodings would be expected to have.
  absl::flat_hash_map<std::string, uint32_t> pub_id;
  std::vector<std::string> pub_names;
  std::vector<std::vector<uint16_t>> grams;
  Graph pub;
  for (size_t i = 0; i < std::min(public_names.size(), options.max_records); ++i) {
    auto [it, inserted] = pub_id.try_emplace(public_names[i], pub.nodes);
    if (inserted) {
      pub_names.push_back(public_names[i]);
      std::vector<uint16_t> g;
      for (const std::string& b : Bigrams(public_names[i])) {
        g.push_back(static_cast<uint16_t>(static_cast<unsigned char>(b[0]) << 8 |
                                          static_cast<unsigned char>(b[1])));
      }
      std::sort(g.begin(), g.end());
      pub.size.push_back(static_cast<double>(g.size()));
      grams.push_back(std::move(g));
      pub.count.push_back(0);
      ++pub.nodes;
    }
    pub.count[it->second] += 1;
  }
  const double q = 1.0 - 1.0 / kNameBits, k = options.bits_per_bigram;
  Connect(pub, options.min_similarity, [&](uint32_t a, uint32_t b) {
    const auto& x = grams[a];
    const auto& y = grams[b];
    size_t c = 0;
    for (size_t i = 0, j = 0; i < x.size() && j < y.size();) {
      if (x[i] == y[j]) {
        ++c, ++i, ++j;
      } else if (x[i] < y[j]) {
        ++i;
      } else {
        ++j;
      }
    }
    const double na = static_cast<double>(x.size()), nb = static_cast<double>(y.size());
    const double qa = std::pow(q, k * na), qb = std::pow(q, k * nb);
    const double both = 1 - qa - qb + std::pow(q, k * (na + nb - static_cast<double>(c)));
    return 2 * both / ((1 - qa) + (1 - qb));
  });

  // Features, standardised over both graphs together.
  std::vector<std::vector<double>> fe = Features(enc, options.min_similarity);
  std::vector<std::vector<double>> fp = Features(pub, options.min_similarity);
  if (fe.empty() || fp.empty()) return result;
  const size_t dims = fe[0].size();
  for (size_t d = 0; d < dims; ++d) {
    double sum = 0, sq = 0, m = 0;
    for (const auto* side : {&fe, &fp}) {
      for (const auto& f : *side) sum += f[d], sq += f[d] * f[d], m += 1;
    }
    const double mean = sum / m, sd = std::sqrt(std::max(1e-12, sq / m - mean * mean));
    for (auto* side : {&fe, &fp}) {
      for (auto& f : *side) f[d] = (f[d] - mean) / sd;
    }
  }
  const auto nearest = [dims](const std::vector<double>& f,
                              const std::vector<std::vector<double>>& side) {
    uint32_t best = 0;
    double best_d = 1e300;
    for (uint32_t j = 0; j < side.size(); ++j) {
      double d = 0;
      for (size_t x = 0; x < dims && d < best_d; ++x)
        d += (f[x] - side[j][x]) * (f[x] - side[j][x]);
      if (d < best_d) best_d = d, best = j;
    }
    return best;
  };
  std::vector<uint32_t> enc_best(enc.nodes), pub_best(pub.nodes);
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t) {
    pool.emplace_back([&, t] {
      for (uint32_t i = t; i < enc.nodes; i += 2) enc_best[i] = nearest(fe[i], fp);
      for (uint32_t j = t; j < pub.nodes; j += 2) pub_best[j] = nearest(fp[j], fe);
    });
  }
  for (auto& th : pool) th.join();
  for (size_t i = 0; i < n; ++i) {
    const uint32_t e = node_of[i];
    const uint32_t p = enc_best[e];
    if (pub_best[p] != e) continue;  // not a mutual best match: no guess
    ++result.guesses;
    result.reidentified += pub_names[p] == truth[i];
  }
  return result;
}

}  // namespace sarloop::bench
