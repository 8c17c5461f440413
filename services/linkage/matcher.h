// Screening SAR subjects' encodings against personnel encodings: hits only.
//
// Two paths, both applying the kernel's match rule (kernel.h) exactly:
//  - ScreeningIndex::Screen, for a SAR on arrival: every index record is considered; records are
//    sorted by field popcounts and blocks whose popcounts cannot reach the threshold are skipped
//    (ScoreBound), so nothing that meets the rule is missed.
//  - BulkScreen, for re-screening every stored subject when an index changes: Hamming-LSH
//    blocking (a pair is compared when it agrees on all sampled bit positions of at least one
//    table) and the same popcount bound inside each bucket. Blocking can miss pairs; the
//    evaluation measures how many (tools/bench/linkage_eval).
#ifndef SARLOOP_SERVICES_LINKAGE_MATCHER_H_
#define SARLOOP_SERVICES_LINKAGE_MATCHER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "common/linkage/linkage_encoding.h"
#include "services/linkage/kernel.h"

namespace sarloop::linkage {

struct Hit {
  uint32_t query;   // position in the queries given
  uint32_t record;  // position in the records the index was built from
  uint16_t and_count[kFieldCount];
  friend bool operator==(const Hit&, const Hit&) = default;
};

// A hit's score (kernel.h Score) from its counts and the two filters' per-field popcounts.
double HitScore(const Hit& hit, const Query& query, const uint32_t record_popcount[kFieldCount]);

// Immutable after Build; Screen may be called from many threads at once.
class ScreeningIndex {
 public:
  ScreeningIndex() = default;
  static ScreeningIndex Build(const std::vector<Filter>& records);

  // Appends a hit (query = query_id) for every record that meets the rule at
  // threshold_milli / 1000. Returns the number of record slots compared (the rest were pruned).
  size_t Screen(const Query& query, uint32_t query_id, uint32_t threshold_milli, Kernel kernel,
                std::vector<Hit>* out) const;

  // Per-field popcounts of record `id` (a position in Build's input).
  void RecordPopcounts(uint32_t id, uint32_t out[kFieldCount]) const;

  size_t size() const { return slot_of_.size(); }

  // The blocked records (defined in matcher.cc; BulkScreen lays out each table the same way).
  struct Layout;

 private:
  std::shared_ptr<const Layout> layout_;
  std::vector<uint32_t> slot_of_;  // per record: its slot in the layout
};

struct BlockingParams {
  // 48 x 12 keeps 99.8% of the true pairs above 0.85 on the synthetic population
  // (sarloop-linkage-eval); 30 x 12 kept 99.2%.
  int tables = 48;
  int bits_per_key = 12;
  uint64_t seed = 0x5a4c00b10c;
};

struct BulkStats {
  uint64_t slots_compared = 0;    // record slots the kernel ran over (including padding)
  uint64_t pairs_in_buckets = 0;  // pairs sharing a bucket, before the popcount bound
  uint64_t slots_pruned = 0;      // slots in shared buckets skipped by the popcount bound
};

// Every (query, record) pair with Dice >= threshold that shares a blocking bucket, each once,
// sorted by (query, record). `threads` >= 1 work on tables in parallel.
std::vector<Hit> BulkScreen(const std::vector<Filter>& queries, const std::vector<Filter>& records,
                            uint32_t threshold_milli, const BlockingParams& params, int threads,
                            Kernel kernel, BulkStats* stats);

// Whether a pair shares at least one bucket under `params` (for measuring blocking recall).
class BlockingKeys {
 public:
  explicit BlockingKeys(const BlockingParams& params);
  uint32_t Key(int table, const Filter& f) const;
  bool ShareBucket(const Filter& a, const Filter& b) const;
  int tables() const { return static_cast<int>(positions_.size()); }

 private:
  std::vector<std::vector<uint16_t>> positions_;
};

}  // namespace sarloop::linkage

#endif  // SARLOOP_SERVICES_LINKAGE_MATCHER_H_
