#include "services/linkage/matcher.h"

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

namespace sarloop::linkage {
namespace {

// Records (or queries) grouped by their key in one table: order[offsets[k] .. offsets[k+1]).
struct Grouped {
  std::vector<uint32_t> order;
  std::vector<uint32_t> offsets;
};

Grouped GroupByKey(const std::vector<uint32_t>& keys, int bits) {
  Grouped g;
  g.offsets.assign((size_t{1} << bits) + 1, 0);
  for (uint32_t k : keys) ++g.offsets[k + 1];
  for (size_t i = 1; i < g.offsets.size(); ++i) g.offsets[i] += g.offsets[i - 1];
  g.order.resize(keys.size());
  std::vector<uint32_t> cursor(g.offsets.begin(), g.offsets.end() - 1);
  for (uint32_t i = 0; i < keys.size(); ++i) g.order[cursor[keys[i]]++] = i;
  return g;
}

struct FieldPopcounts {
  std::vector<uint32_t> field[kFieldCount];
  explicit FieldPopcounts(const std::vector<Filter>& filters) {
    for (int f = 0; f < kFieldCount; ++f) {
      field[f].reserve(filters.size());
      for (const Filter& x : filters) field[f].push_back(Popcount(x, static_cast<Field>(f)));
    }
  }
};

}  // namespace

// Blocked records with per-slot and per-block popcounts: the whole index, or one table's
// buckets one after another.
struct ScreeningIndex::Layout {
  std::vector<Block> blocks;
  std::vector<uint32_t> pops[kFieldCount], low[kFieldCount], high[kFieldCount];
  std::vector<uint32_t> ids;

  SlotPopcounts Slots(size_t block) const {
    return {{pops[0].data() + block * kBlockRecords, pops[1].data() + block * kBlockRecords,
             pops[2].data() + block * kBlockRecords}};
  }

  // Appends `members`, sorted by name then address popcount so that neighbouring records have
  // similar field popcounts and the block bound prunes well.
  void Append(const std::vector<Filter>& records, const FieldPopcounts& rp,
              std::vector<uint32_t>& members) {
    std::sort(members.begin(), members.end(), [&](uint32_t a, uint32_t b) {
      if (rp.field[0][a] != rp.field[0][b]) return rp.field[0][a] < rp.field[0][b];
      if (rp.field[2][a] != rp.field[2][b]) return rp.field[2][a] < rp.field[2][b];
      return a < b;
    });
    const size_t nblocks = (members.size() + kBlockRecords - 1) / kBlockRecords;
    const size_t first = blocks.size();
    blocks.resize(first + nblocks);
    std::vector<const Filter*> ptrs;
    ptrs.reserve(members.size());
    for (uint32_t m : members) ptrs.push_back(&records[m]);
    ToBlocks(ptrs.data(), ptrs.size(), &blocks[first]);
    for (size_t s = 0; s < nblocks * kBlockRecords; ++s) {
      const bool real = s < members.size();
      for (int f = 0; f < kFieldCount; ++f) pops[f].push_back(real ? rp.field[f][members[s]] : 0);
      ids.push_back(real ? members[s] : UINT32_MAX);
    }
    for (size_t b = 0; b < nblocks; ++b) {
      const size_t lo = b * kBlockRecords, hi = std::min(members.size(), lo + kBlockRecords);
      for (int f = 0; f < kFieldCount; ++f) {
        uint32_t mn = UINT32_MAX, mx = 0;
        for (size_t s = lo; s < hi; ++s) {
          mn = std::min(mn, rp.field[f][members[s]]);
          mx = std::max(mx, rp.field[f][members[s]]);
        }
        low[f].push_back(mn);
        high[f].push_back(mx);
      }
    }
  }

  bool Reachable(const Query& q, size_t block, uint32_t threshold_milli) const {
    const uint32_t lo[kFieldCount] = {low[0][block], low[1][block], low[2][block]};
    const uint32_t hi[kFieldCount] = {high[0][block], high[1][block], high[2][block]};
    // A hair of slack so that rounding in the bound never prunes a record the rule takes.
    return ScoreBound(q.popcount, lo, hi) * 1000 >= threshold_milli - 0.01;
  }

  // Runs the kernel over the reachable blocks in [first, last); returns slots compared.
  size_t Screen(const Query& q, uint32_t threshold_milli, Kernel kernel, size_t first, size_t last,
                std::vector<KernelHit>* out) const {
    size_t compared = 0;
    for (size_t b = first; b < last;) {
      if (!Reachable(q, b, threshold_milli)) {
        ++b;
        continue;
      }
      size_t e = b + 1;
      while (e < last && Reachable(q, e, threshold_milli)) ++e;
      ScreenBlocks(kernel, q, threshold_milli, &blocks[b], Slots(b), e - b,
                   static_cast<uint32_t>(b * kBlockRecords), out);
      compared += (e - b) * kBlockRecords;
      b = e;
    }
    return compared;
  }
};

double HitScore(const Hit& hit, const Query& query, const uint32_t record_popcount[kFieldCount]) {
  const uint32_t c[kFieldCount] = {hit.and_count[0], hit.and_count[1], hit.and_count[2]};
  return Score(c, query.popcount, record_popcount);
}

ScreeningIndex ScreeningIndex::Build(const std::vector<Filter>& records) {
  ScreeningIndex index;
  const FieldPopcounts rp(records);
  std::vector<uint32_t> members(records.size());
  for (uint32_t i = 0; i < members.size(); ++i) members[i] = i;
  auto layout = std::make_shared<Layout>();
  if (!members.empty()) layout->Append(records, rp, members);
  index.slot_of_.assign(records.size(), 0);
  for (uint32_t s = 0; s < layout->ids.size(); ++s) {
    if (layout->ids[s] != UINT32_MAX) index.slot_of_[layout->ids[s]] = s;
  }
  index.layout_ = std::move(layout);
  return index;
}

void ScreeningIndex::RecordPopcounts(uint32_t id, uint32_t out[kFieldCount]) const {
  for (int f = 0; f < kFieldCount; ++f) out[f] = layout_->pops[f][slot_of_[id]];
}

size_t ScreeningIndex::Screen(const Query& query, uint32_t query_id, uint32_t threshold_milli,
                              Kernel kernel, std::vector<Hit>* out) const {
  if (!layout_) return 0;
  std::vector<KernelHit> hits;
  const size_t compared =
      layout_->Screen(query, threshold_milli, kernel, 0, layout_->blocks.size(), &hits);
  for (const KernelHit& h : hits) {
    out->push_back(
        {query_id, layout_->ids[h.record], {h.and_count[0], h.and_count[1], h.and_count[2]}});
  }
  return compared;
}

BlockingKeys::BlockingKeys(const BlockingParams& params) {
  std::mt19937_64 rng(params.seed);
  std::uniform_int_distribution<int> bit(0, kFilterBits - 1);
  for (int t = 0; t < params.tables; ++t) {
    std::vector<uint16_t> pos;
    while (static_cast<int>(pos.size()) < params.bits_per_key) {
      const uint16_t p = static_cast<uint16_t>(bit(rng));
      if (std::find(pos.begin(), pos.end(), p) == pos.end()) pos.push_back(p);
    }
    positions_.push_back(std::move(pos));
  }
}

uint32_t BlockingKeys::Key(int table, const Filter& f) const {
  uint32_t key = 0;
  for (uint16_t p : positions_[table]) key = key << 1 | ((f.w[p / 64] >> (p % 64)) & 1);
  return key;
}

bool BlockingKeys::ShareBucket(const Filter& a, const Filter& b) const {
  for (int t = 0; t < tables(); ++t) {
    if (Key(t, a) == Key(t, b)) return true;
  }
  return false;
}

std::vector<Hit> BulkScreen(const std::vector<Filter>& queries, const std::vector<Filter>& records,
                            uint32_t threshold_milli, const BlockingParams& params, int threads,
                            Kernel kernel, BulkStats* stats) {
  const BlockingKeys keys(params);
  const FieldPopcounts rp(records);
  std::vector<Query> qs;
  qs.reserve(queries.size());
  for (const Filter& f : queries) qs.push_back(Query::From(f));

  std::atomic<int> next_table{0};
  std::vector<std::vector<Hit>> hits(threads);
  std::vector<BulkStats> part(threads);
  const auto work = [&](int worker) {
    std::vector<KernelHit> kernel_hits;
    for (int table; (table = next_table.fetch_add(1)) < params.tables;) {
      std::vector<uint32_t> rkeys(records.size()), qkeys(queries.size());
      for (size_t i = 0; i < records.size(); ++i) rkeys[i] = keys.Key(table, records[i]);
      for (size_t i = 0; i < queries.size(); ++i) qkeys[i] = keys.Key(table, queries[i]);
      const Grouped rg = GroupByKey(rkeys, params.bits_per_key);
      const Grouped qg = GroupByKey(qkeys, params.bits_per_key);
      const size_t nkeys = rg.offsets.size() - 1;
      ScreeningIndex::Layout layout;
      layout.blocks.reserve(records.size() / kBlockRecords + nkeys);
      std::vector<uint32_t> first_block(nkeys, 0), block_count(nkeys, 0);
      for (size_t k = 0; k < nkeys; ++k) {
        if (rg.offsets[k + 1] == rg.offsets[k] || qg.offsets[k + 1] == qg.offsets[k]) continue;
        std::vector<uint32_t> members(rg.order.begin() + rg.offsets[k],
                                      rg.order.begin() + rg.offsets[k + 1]);
        first_block[k] = static_cast<uint32_t>(layout.blocks.size());
        layout.Append(records, rp, members);
        block_count[k] = static_cast<uint32_t>(layout.blocks.size()) - first_block[k];
      }
      for (size_t k = 0; k < nkeys; ++k) {
        if (block_count[k] == 0) continue;
        const uint64_t rn = rg.offsets[k + 1] - rg.offsets[k];
        part[worker].pairs_in_buckets += uint64_t{qg.offsets[k + 1] - qg.offsets[k]} * rn;
        for (uint32_t qi = qg.offsets[k]; qi < qg.offsets[k + 1]; ++qi) {
          const uint32_t q = qg.order[qi];
          kernel_hits.clear();
          const size_t compared = layout.Screen(qs[q], threshold_milli, kernel, first_block[k],
                                                first_block[k] + block_count[k], &kernel_hits);
          part[worker].slots_compared += compared;
          part[worker].slots_pruned += uint64_t{block_count[k]} * kBlockRecords - compared;
          for (const KernelHit& h : kernel_hits) {
            hits[worker].push_back(
                {q, layout.ids[h.record], {h.and_count[0], h.and_count[1], h.and_count[2]}});
          }
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  for (std::thread& t : pool) t.join();

  std::vector<Hit> all;
  for (auto& h : hits) all.insert(all.end(), h.begin(), h.end());
  std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) {
    return a.query != b.query ? a.query < b.query : a.record < b.record;
  });
  all.erase(std::unique(all.begin(), all.end()), all.end());
  if (stats) {
    for (const BulkStats& p : part) {
      stats->slots_compared += p.slots_compared;
      stats->pairs_in_buckets += p.pairs_in_buckets;
      stats->slots_pruned += p.slots_pruned;
    }
  }
  return all;
}

}  // namespace sarloop::linkage
