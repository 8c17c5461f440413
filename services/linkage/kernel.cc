#include "services/linkage/kernel.h"

#include <algorithm>
#include <bit>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define SARLOOP_TARGET(isa) __attribute__((target(isa)))
#else
#define SARLOOP_TARGET(isa)
#endif

namespace sarloop::linkage {
namespace {

constexpr int kNameWords = 8, kDobWords = 2;  // then 6 address words

SARLOOP_TARGET("popcnt")
void RowMajor(const Query& query, uint32_t t, const Filter* records, SlotPopcounts pops, size_t n,
              uint32_t first, std::vector<KernelHit>* out) {
  const uint64_t* q = query.filter.w.data();
  for (size_t i = 0; i < n; ++i) {
    const uint64_t* r = records[i].w.data();
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int w = 0; w < kNameWords; w += 4) {
      a0 += std::popcount(q[w] & r[w]);
      a1 += std::popcount(q[w + 1] & r[w + 1]);
      a2 += std::popcount(q[w + 2] & r[w + 2]);
      a3 += std::popcount(q[w + 3] & r[w + 3]);
    }
    const uint64_t dob = std::popcount(q[8] & r[8]) + std::popcount(q[9] & r[9]);
    uint64_t b0 = 0, b1 = 0;
    for (int w = 10; w < kFilterWords; w += 2) {
      b0 += std::popcount(q[w] & r[w]);
      b1 += std::popcount(q[w + 1] & r[w + 1]);
    }
    const uint32_t c[kFieldCount] = {static_cast<uint32_t>(a0 + a1 + a2 + a3),
                                     static_cast<uint32_t>(dob), static_cast<uint32_t>(b0 + b1)};
    const uint32_t rp[kFieldCount] = {pops.field[0][i], pops.field[1][i], pops.field[2][i]};
    if (Meets(c, query.popcount, rp, t)) {
      out->push_back({first + static_cast<uint32_t>(i),
                      {static_cast<uint16_t>(c[0]), static_cast<uint16_t>(c[1]),
                       static_cast<uint16_t>(c[2])}});
    }
  }
}

SARLOOP_TARGET("popcnt")
void Portable(const Query& query, uint32_t t, const Block* blocks, SlotPopcounts pops,
              size_t nblocks, uint32_t first, std::vector<KernelHit>* out) {
  const uint64_t* q = query.filter.w.data();
  for (size_t b = 0; b < nblocks; ++b) {
    uint32_t c[kFieldCount][kBlockRecords] = {};
    const uint64_t* words = blocks[b].words;
    for (int w = 0; w < kFilterWords; ++w) {
      const int field = w < kNameWords ? 0 : w < kNameWords + kDobWords ? 1 : 2;
      for (int r = 0; r < kBlockRecords; ++r) {
        c[field][r] += std::popcount(words[w * kBlockRecords + r] & q[w]);
      }
    }
    for (int r = 0; r < kBlockRecords; ++r) {
      const size_t slot = b * kBlockRecords + r;
      const uint32_t cr[kFieldCount] = {c[0][r], c[1][r], c[2][r]};
      const uint32_t rp[kFieldCount] = {pops.field[0][slot], pops.field[1][slot],
                                        pops.field[2][slot]};
      if (Meets(cr, query.popcount, rp, t)) {
        out->push_back({first + static_cast<uint32_t>(slot),
                        {static_cast<uint16_t>(cr[0]), static_cast<uint16_t>(cr[1]),
                         static_cast<uint16_t>(cr[2])}});
      }
    }
  }
}

#if defined(__x86_64__)
// The rule on eight records at once (32-bit lanes, record order); the same arithmetic as Meets.
struct RuleConstants {
  __m256i q[kFieldCount];
  __m256i q_present[kFieldCount];
  __m256i present_min[kFieldCount];
  __m256i t, t2, k2000, dob_min;
};

SARLOOP_TARGET("avx2")
RuleConstants MakeRule(const Query& query, uint32_t t) {
  RuleConstants rc;
  for (int f = 0; f < kFieldCount; ++f) {
    rc.q[f] = _mm256_set1_epi32(static_cast<int>(query.popcount[f]));
    rc.q_present[f] = _mm256_set1_epi32(query.popcount[f] >= kPresentMin[f] ? -1 : 0);
    rc.present_min[f] = _mm256_set1_epi32(static_cast<int>(kPresentMin[f]) - 1);
  }
  rc.t = _mm256_set1_epi32(static_cast<int>(t));
  rc.t2 = _mm256_set1_epi32(static_cast<int>(t + kTwoFieldPenaltyMilli));
  rc.k2000 = _mm256_set1_epi32(2000);
  rc.dob_min = _mm256_set1_epi32(static_cast<int>(kDateOfBirthMinMilli));
  return rc;
}

// Lanes where lhs >= rhs (both below 2^31, so the signed compare is exact).
SARLOOP_TARGET("avx2")
inline __m256i AtLeast(__m256i lhs, __m256i rhs) {
  return _mm256_xor_si256(_mm256_cmpgt_epi32(rhs, lhs), _mm256_set1_epi32(-1));
}

SARLOOP_TARGET("avx2")
inline void DecideAndEmit(const RuleConstants& rc, const __m256i c[kFieldCount], SlotPopcounts pops,
                          size_t b, uint32_t first, std::vector<KernelHit>* out) {
  __m256i r[kFieldCount], present[kFieldCount], sum[kFieldCount];
  for (int f = 0; f < kFieldCount; ++f) {
    r[f] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pops.field[f] + b * kBlockRecords));
    present[f] = _mm256_and_si256(rc.q_present[f], _mm256_cmpgt_epi32(r[f], rc.present_min[f]));
    sum[f] = _mm256_add_epi32(rc.q[f], r[f]);
  }
  const __m256i c_nd = _mm256_add_epi32(c[0], c[1]);
  const __m256i c_na = _mm256_add_epi32(c[0], c[2]);
  const __m256i c_all = _mm256_add_epi32(c_nd, c[2]);
  const __m256i s_nd = _mm256_add_epi32(sum[0], sum[1]);
  const __m256i s_na = _mm256_add_epi32(sum[0], sum[2]);
  const __m256i s_all = _mm256_add_epi32(s_nd, sum[2]);
  const __m256i all = _mm256_and_si256(
      _mm256_and_si256(present[1], present[2]),
      AtLeast(_mm256_mullo_epi32(c_all, rc.k2000), _mm256_mullo_epi32(s_all, rc.t)));
  const __m256i dob_ok = _mm256_and_si256(
      present[1],
      AtLeast(_mm256_mullo_epi32(c[1], rc.k2000), _mm256_mullo_epi32(sum[1], rc.dob_min)));
  const __m256i nd = _mm256_and_si256(
      dob_ok, AtLeast(_mm256_mullo_epi32(c_nd, rc.k2000), _mm256_mullo_epi32(s_nd, rc.t2)));
  const __m256i na = _mm256_and_si256(
      present[2], AtLeast(_mm256_mullo_epi32(c_na, rc.k2000), _mm256_mullo_epi32(s_na, rc.t2)));
  const __m256i c_da = _mm256_add_epi32(c[1], c[2]);
  const __m256i s_da = _mm256_add_epi32(sum[1], sum[2]);
  const __m256i da = _mm256_and_si256(
      _mm256_and_si256(dob_ok, present[2]),
      AtLeast(_mm256_mullo_epi32(c_da, rc.k2000), _mm256_mullo_epi32(s_da, rc.t2)));
  const __m256i hit = _mm256_and_si256(
      present[0], _mm256_or_si256(_mm256_or_si256(all, da), _mm256_or_si256(nd, na)));
  unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(hit)));
  if (mask == 0) return;
  alignas(32) uint32_t counts[kFieldCount][kBlockRecords];
  for (int f = 0; f < kFieldCount; ++f) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(counts[f]), c[f]);
  }
  while (mask) {
    const int i = std::countr_zero(mask);
    mask &= mask - 1;
    out->push_back({first + static_cast<uint32_t>(b * kBlockRecords + i),
                    {static_cast<uint16_t>(counts[0][i]), static_cast<uint16_t>(counts[1][i]),
                     static_cast<uint16_t>(counts[2][i])}});
  }
}

// Popcount per 64-bit lane with Mula's nibble table: byte counts accumulate across a field's
// words (at most 64 per byte, so no overflow) and one vpsadbw per register and field sums each
// lane.
SARLOOP_TARGET("avx2")
void Avx2(const Query& query, uint32_t t, const Block* blocks, SlotPopcounts pops, size_t nblocks,
          uint32_t first, std::vector<KernelHit>* out) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                       1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const RuleConstants rc = MakeRule(query, t);
  alignas(32) __m256i qb[kFilterWords];
  for (int w = 0; w < kFilterWords; ++w) {
    qb[w] = _mm256_set1_epi64x(static_cast<int64_t>(query.filter.w[w]));
  }
  static constexpr int kFirst[kFieldCount + 1] = {0, kNameWords, kNameWords + kDobWords,
                                                  kFilterWords};
  for (size_t b = 0; b < nblocks; ++b) {
    const __m256i* words = reinterpret_cast<const __m256i*>(blocks[b].words);
    __m256i c[kFieldCount];
    for (int f = 0; f < kFieldCount; ++f) {
      __m256i acc0 = zero, acc1 = zero;
      for (int w = kFirst[f]; w < kFirst[f + 1]; ++w) {
        const __m256i x0 = _mm256_and_si256(_mm256_load_si256(words + 2 * w), qb[w]);
        const __m256i x1 = _mm256_and_si256(_mm256_load_si256(words + 2 * w + 1), qb[w]);
        acc0 = _mm256_add_epi8(acc0, _mm256_shuffle_epi8(lut, _mm256_and_si256(x0, low)));
        acc0 = _mm256_add_epi8(
            acc0, _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x0, 4), low)));
        acc1 = _mm256_add_epi8(acc1, _mm256_shuffle_epi8(lut, _mm256_and_si256(x1, low)));
        acc1 = _mm256_add_epi8(
            acc1, _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x1, 4), low)));
      }
      // Records 0-3 in acc0's lanes, 4-7 in acc1's; interleave into 32-bit lanes and put them
      // back in record order.
      const __m256i both = _mm256_or_si256(_mm256_sad_epu8(acc0, zero),
                                           _mm256_slli_epi64(_mm256_sad_epu8(acc1, zero), 32));
      c[f] = _mm256_permutevar8x32_epi32(both, order);
    }
    DecideAndEmit(rc, c, pops, b, first, out);
  }
}

SARLOOP_TARGET("avx512f,avx512vpopcntdq")
inline __m512i AndPopcount(const __m512i* words, const __m512i* qb, int w) {
  return _mm512_popcnt_epi64(_mm512_and_si512(_mm512_load_si512(words + w), qb[w]));
}

SARLOOP_TARGET("avx512f,avx512vpopcntdq,avx2")
void Avx512(const Query& query, uint32_t t, const Block* blocks, SlotPopcounts pops, size_t nblocks,
            uint32_t first, std::vector<KernelHit>* out) {
  const RuleConstants rc = MakeRule(query, t);
  __m512i qb[kFilterWords];
  for (int w = 0; w < kFilterWords; ++w) {
    qb[w] = _mm512_set1_epi64(static_cast<int64_t>(query.filter.w[w]));
  }
  for (size_t b = 0; b < nblocks; ++b) {
    const __m512i* words = reinterpret_cast<const __m512i*>(blocks[b].words);
    const __m512i n = _mm512_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(AndPopcount(words, qb, 0), AndPopcount(words, qb, 1)),
                         _mm512_add_epi64(AndPopcount(words, qb, 2), AndPopcount(words, qb, 3))),
        _mm512_add_epi64(_mm512_add_epi64(AndPopcount(words, qb, 4), AndPopcount(words, qb, 5)),
                         _mm512_add_epi64(AndPopcount(words, qb, 6), AndPopcount(words, qb, 7))));
    const __m512i d = _mm512_add_epi64(AndPopcount(words, qb, 8), AndPopcount(words, qb, 9));
    const __m512i a = _mm512_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(AndPopcount(words, qb, 10), AndPopcount(words, qb, 11)),
                         _mm512_add_epi64(AndPopcount(words, qb, 12), AndPopcount(words, qb, 13))),
        _mm512_add_epi64(AndPopcount(words, qb, 14), AndPopcount(words, qb, 15)));
    const __m256i c[kFieldCount] = {_mm512_maskz_cvtepi64_epi32(0xff, n),
                                    _mm512_maskz_cvtepi64_epi32(0xff, d),
                                    _mm512_maskz_cvtepi64_epi32(0xff, a)};
    DecideAndEmit(rc, c, pops, b, first, out);
  }
}
#endif

}  // namespace

Query Query::From(const Filter& f) {
  Query q;
  q.filter = f;
  for (int i = 0; i < kFieldCount; ++i) q.popcount[i] = Popcount(f, static_cast<Field>(i));
  return q;
}

bool Meets(const uint32_t c[kFieldCount], const uint32_t q[kFieldCount],
           const uint32_t r[kFieldCount], uint32_t t) {
  bool present[kFieldCount];
  for (int f = 0; f < kFieldCount; ++f)
    present[f] = q[f] >= kPresentMin[f] && r[f] >= kPresentMin[f];
  if (!present[0]) return false;
  const uint32_t t2 = t + kTwoFieldPenaltyMilli;
  const uint32_t s[kFieldCount] = {q[0] + r[0], q[1] + r[1], q[2] + r[2]};
  if (present[1] && present[2] && 2000 * (c[0] + c[1] + c[2]) >= t * (s[0] + s[1] + s[2])) {
    return true;
  }
  const bool dob_ok = present[1] && 2000 * c[1] >= kDateOfBirthMinMilli * s[1];
  if (dob_ok && 2000 * (c[0] + c[1]) >= t2 * (s[0] + s[1])) return true;
  if (present[2] && 2000 * (c[0] + c[2]) >= t2 * (s[0] + s[2])) return true;
  if (dob_ok && present[2] && 2000 * (c[1] + c[2]) >= t2 * (s[1] + s[2])) return true;
  return false;
}

namespace {
// The best score over the rules, given a numerator and denominator per field.
template <typename T>
double BestRule(const T num[kFieldCount], const T den[kFieldCount], const bool present[kFieldCount],
                bool dob_ok) {
  if (!present[0]) return -1;
  const double penalty = kTwoFieldPenaltyMilli / 1000.0;
  const auto dice = [](double n, double d) { return d > 0 ? 2.0 * n / d : 0.0; };
  double best = -1;
  if (present[1] && present[2]) {
    best = std::max(best, dice(num[0] + num[1] + num[2], den[0] + den[1] + den[2]));
  }
  if (dob_ok) best = std::max(best, dice(num[0] + num[1], den[0] + den[1]) - penalty);
  if (present[2]) best = std::max(best, dice(num[0] + num[2], den[0] + den[2]) - penalty);
  if (dob_ok && present[2]) {
    best = std::max(best, dice(num[1] + num[2], den[1] + den[2]) - penalty);
  }
  return best;
}
}  // namespace

double Score(const uint32_t c[kFieldCount], const uint32_t q[kFieldCount],
             const uint32_t r[kFieldCount]) {
  bool present[kFieldCount];
  uint32_t den[kFieldCount];
  for (int f = 0; f < kFieldCount; ++f) {
    present[f] = q[f] >= kPresentMin[f] && r[f] >= kPresentMin[f];
    den[f] = q[f] + r[f];
  }
  const bool dob_ok = present[1] && 2000 * c[1] >= kDateOfBirthMinMilli * den[1];
  return BestRule(c, den, present, dob_ok);
}

double ScoreBound(const uint32_t q[kFieldCount], const uint32_t low[kFieldCount],
                  const uint32_t high[kFieldCount]) {
  // Per field, |q AND r| <= min(|q|, |r|), and 2 min(q, r) / (q + r) peaks at r = q: so the best
  // record in the box has each field's popcount as close to the query's as the box allows.
  bool present[kFieldCount];
  double num[kFieldCount], den[kFieldCount];
  for (int f = 0; f < kFieldCount; ++f) {
    const uint32_t lo = std::max(low[f], kPresentMin[f]);
    present[f] = q[f] >= kPresentMin[f] && high[f] >= kPresentMin[f];
    const uint32_t r = std::clamp(q[f], lo, std::max(lo, high[f]));
    num[f] = std::min(q[f], r);
    den[f] = q[f] + r;
  }
  // The date-of-birth condition only narrows the two rules it is part of; leaving it out
  // keeps this an upper bound.
  return BestRule(num, den, present, present[1]);
}

std::string_view KernelName(Kernel kernel) {
  switch (kernel) {
    case Kernel::kReference:
      return "reference";
    case Kernel::kPortable:
      return "portable";
    case Kernel::kAvx2:
      return "avx2";
    case Kernel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool KernelSupported(Kernel kernel) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool popcnt = __builtin_cpu_supports("popcnt");
  switch (kernel) {
    case Kernel::kReference:
    case Kernel::kPortable:
      return popcnt;
    case Kernel::kAvx2:
      return popcnt && __builtin_cpu_supports("avx2");
    case Kernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq") &&
             __builtin_cpu_supports("avx2");
  }
  return false;
#else
  return kernel == Kernel::kReference || kernel == Kernel::kPortable;
#endif
}

Kernel BestKernel() {
  for (Kernel k : {Kernel::kAvx512, Kernel::kAvx2}) {
    if (KernelSupported(k)) return k;
  }
  return Kernel::kPortable;
}

std::vector<Kernel> SupportedKernels() {
  std::vector<Kernel> out;
  for (Kernel k : {Kernel::kReference, Kernel::kPortable, Kernel::kAvx2, Kernel::kAvx512}) {
    if (KernelSupported(k)) out.push_back(k);
  }
  return out;
}

void ScreenBlocks(Kernel kernel, const Query& query, uint32_t threshold_milli, const Block* blocks,
                  SlotPopcounts popcounts, size_t nblocks, uint32_t first_record,
                  std::vector<KernelHit>* out) {
  switch (kernel) {
#if defined(__x86_64__)
    case Kernel::kAvx512:
      return Avx512(query, threshold_milli, blocks, popcounts, nblocks, first_record, out);
    case Kernel::kAvx2:
      return Avx2(query, threshold_milli, blocks, popcounts, nblocks, first_record, out);
#endif
    default:
      return Portable(query, threshold_milli, blocks, popcounts, nblocks, first_record, out);
  }
}

void ScreenRowMajor(const Query& query, uint32_t threshold_milli, const Filter* records,
                    SlotPopcounts popcounts, size_t n, uint32_t first_record,
                    std::vector<KernelHit>* out) {
  RowMajor(query, threshold_milli, records, popcounts, n, first_record, out);
}

void ToBlocks(const Filter* const* filters, size_t n, Block* blocks) {
  const size_t nblocks = (n + kBlockRecords - 1) / kBlockRecords;
  std::memset(blocks, 0, nblocks * sizeof(Block));
  for (size_t i = 0; i < n; ++i) {
    Block& b = blocks[i / kBlockRecords];
    for (int w = 0; w < kFilterWords; ++w) {
      b.words[w * kBlockRecords + i % kBlockRecords] = filters[i]->w[w];
    }
  }
}

}  // namespace sarloop::linkage
