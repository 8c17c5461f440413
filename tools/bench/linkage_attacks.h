// Two published attacks on Bloom-filter encodings, run against the name field of an encoded
// personnel index, to measure how much the hardening protects (issue 9, item 5).
//
// The attacker holds what the linkage service holds (every encoding, the field layout and the
// encoding scheme, not the key) plus public name statistics: a large sample of names drawn
// from the same distribution as the personnel (synth::SampleFullNames), the strongest
// realistic assumption.
//
//  - Frequency attack (after Kuzu et al. 2011): identical name fields are grouped, groups and
//    public names are both ranked by frequency, and the i-th group is guessed to be the i-th
//    name.
//  - Pattern-mining attack (after Christen et al. 2017/2018): the bit positions that are set
//    together in the most filters are the positions of the most frequent bigram; found
//    greedily, assigned to bigrams in frequency order, and the filters that contain a found
//    pattern (or the names that contain its bigram) set aside before looking for the next.
//    A filter is then re-identified when exactly one public name has exactly the found bigrams
//    the filter shows (a pattern counts as present when at least 80% of its positions are set,
//    which tolerates flipped bits).
//
// A record counts as re-identified when the attack's guess of its full name is right.
#ifndef SARLOOP_TOOLS_BENCH_LINKAGE_ATTACKS_H_
#define SARLOOP_TOOLS_BENCH_LINKAGE_ATTACKS_H_

#include <string>
#include <vector>

#include "common/linkage/linkage_encoding.h"

namespace sarloop::bench {

struct AttackResult {
  size_t records = 0;
  size_t reidentified = 0;  // guesses that are right (1-1 for pattern mining)
  size_t guesses = 0;       // records the attack made a guess for
  // Frequency attack: records whose name field is bit-for-bit the same as another record's, the
  // precondition of any frequency attack on the field.
  size_t shared_fields = 0;
  size_t patterns = 0;  // pattern mining: bigram patterns found
  // ... where at least 90% of the filters showing the pattern truly contain its bigram.
  size_t patterns_right = 0;
  double rate() const { return records ? static_cast<double>(reidentified) / records : 0; }
};

// `truth[i]` is the canonical full name of filters[i] (CanonicalName); `public_names` the
// attacker's sample.
AttackResult FrequencyAttack(const std::vector<linkage::Filter>& filters,
                             const std::vector<std::string>& truth,
                             const std::vector<std::string>& public_names);

// `truth` is used only to score the result, never by the attack.
struct PatternAttackOptions {
  int max_patterns = 60;
  int positions_per_pattern = 10;  // the scheme's bits per bigram in the name field
};
AttackResult PatternMiningAttack(const std::vector<linkage::Filter>& filters,
                                 const std::vector<std::string>& truth,
                                 const std::vector<std::string>& public_names,
                                 const PatternAttackOptions& options);

// Graph-matching attack (after Vidanage, Christen, Ranbaduge and Schnell, CIKM 2020): a
// similarity graph of the distinct encoded name fields (Dice) and one of the distinct public
// names (the Dice their encodings would have, from the scheme's public parameters: bits per
// bigram, field size), each node described by features that do not depend on which side it is
// on (how often it occurs, how many bigrams it holds, its degree at several similarities, its
// edges' weights and a histogram of them, its neighbours' degrees and frequencies), features
// standardised over both graphs, then every encoded node matched to the public name nearest in
// feature space and pairs kept that choose each other. A record is re-identified when its
// node's match is its own name. Every pair in each graph is compared, so the attack runs on
// a sample (`max_records` of each side).
struct GraphAttackOptions {
  double min_similarity = 0.6;  // edges at or above this Dice
  size_t max_records = 20000;
  int bits_per_bigram = 10;  // the scheme's, public
};
AttackResult GraphMatchingAttack(const std::vector<linkage::Filter>& filters,
                                 const std::vector<std::string>& truth,
                                 const std::vector<std::string>& public_names,
                                 const GraphAttackOptions& options);

// Name tokens normalised and sorted: "ALICE MARY OBRIEN".
std::string CanonicalName(const std::string& given_names, const std::string& surname);

}  // namespace sarloop::bench

#endif  // SARLOOP_TOOLS_BENCH_LINKAGE_ATTACKS_H_
