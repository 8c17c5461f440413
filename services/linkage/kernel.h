// The comparison kernel: which index records are close enough to a query filter.
//
// Index records are stored interleaved in blocks of eight: word w of the block's record r is at
// words[w * 8 + r]. A block is 1 KiB, so a tile of blocks stays in L1/L2 while many queries pass
// over it, and one vector instruction works on the same word of 4 (AVX2) or 8 (AVX-512) records:
// the kernel vectorises across comparisons, not within one.
//
// The kernel counts |q AND r| per field (name, date of birth, address) and applies the match
// rule (Meets), in exact integer arithmetic that every kernel shares, so every kernel returns
// the same hits as the reference for any input (tests check this).
//
// The match rule. A field is present in a filter when enough of its bits are set (an absent
// field holds only flipped bits). The name must be present on both sides. Then a pair matches
// when any of these Dice coefficients, over the fields present on both sides, reaches the
// threshold:
//   name + date of birth + address             >= t
//   name + date of birth                       >= t + 0.03   (moved, or no address on one side)
//   name + address                             >= t + 0.03   (no date of birth on one side)
//   date of birth + address                    >= t + 0.03   (surname changed, name misspelt)
// The two-field rules ask for more because two fields identify less than three, and the two
// with the date of birth also need the date of birth alone to reach 0.8: otherwise namesakes
// born in the same year, or neighbours, would pass on the strength of the other field.
#ifndef SARLOOP_SERVICES_LINKAGE_KERNEL_H_
#define SARLOOP_SERVICES_LINKAGE_KERNEL_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/linkage/linkage_encoding.h"

namespace sarloop::linkage {

inline constexpr int kBlockRecords = 8;
// Bits that must be set for a field to count as present: name, date of birth, address.
inline constexpr uint32_t kPresentMin[kFieldCount] = {30, 12, 30};
inline constexpr uint32_t kTwoFieldPenaltyMilli = 30;
inline constexpr uint32_t kDateOfBirthMinMilli = 800;

struct alignas(64) Block {
  uint64_t words[kFilterWords * kBlockRecords];
};

// Per-field popcounts of a run of slots, one array per field (0 for padding slots, which the
// rule then never matches).
struct SlotPopcounts {
  const uint32_t* field[kFieldCount];
  SlotPopcounts Offset(size_t slots) const {
    return {{field[0] + slots, field[1] + slots, field[2] + slots}};
  }
};

// A query filter with its per-field popcounts.
struct Query {
  Filter filter;
  uint32_t popcount[kFieldCount];
  static Query From(const Filter& f);
};

enum class Kernel {
  kReference,  // one record at a time, row-major, a plain 4-accumulator popcount loop
  kPortable,   // the blocked layout in plain C++
  kAvx2,       // the blocked layout, nibble-table popcount (vpshufb) and vpsadbw per record
  kAvx512,     // the blocked layout, vpopcntq (AVX-512 VPOPCNTDQ)
};

std::string_view KernelName(Kernel kernel);
// Whether this CPU can run the kernel.
bool KernelSupported(Kernel kernel);
// The fastest supported blocked kernel.
Kernel BestKernel();
// All kernels this CPU supports, reference first.
std::vector<Kernel> SupportedKernels();

struct KernelHit {
  uint32_t record;  // first_record + position in the blocks
  uint16_t and_count[kFieldCount];
};

// The match rule for one pair: per-field |q AND r|, |q|, |r|; threshold_milli in [1, 950].
bool Meets(const uint32_t and_count[kFieldCount], const uint32_t query[kFieldCount],
           const uint32_t record[kFieldCount], uint32_t threshold_milli);
// The score the rule compares: the best applicable Dice minus its penalty; -1 when no rule
// applies (no name on one side, or only the name).
double Score(const uint32_t and_count[kFieldCount], const uint32_t query[kFieldCount],
             const uint32_t record[kFieldCount]);
// The best score a record with per-field popcounts within [low, high] can reach against the
// query: block-level pruning. Never below the score of any record in the box.
double ScoreBound(const uint32_t query[kFieldCount], const uint32_t low[kFieldCount],
                  const uint32_t high[kFieldCount]);

// Appends every record in `nblocks` blocks that meets the rule.
void ScreenBlocks(Kernel kernel, const Query& query, uint32_t threshold_milli, const Block* blocks,
                  SlotPopcounts popcounts, size_t nblocks, uint32_t first_record,
                  std::vector<KernelHit>* out);

// The reference over row-major filters: the baseline the benchmark compares against and the
// oracle the tests compare every kernel with.
void ScreenRowMajor(const Query& query, uint32_t threshold_milli, const Filter* records,
                    SlotPopcounts popcounts, size_t n, uint32_t first_record,
                    std::vector<KernelHit>* out);

// Copies filters into blocks (the last one padded with empty slots).
void ToBlocks(const Filter* const* filters, size_t n, Block* blocks);

}  // namespace sarloop::linkage

#endif  // SARLOOP_SERVICES_LINKAGE_KERNEL_H_
