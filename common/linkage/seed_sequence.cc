#include "common/linkage/seed_sequence.h"

#include <algorithm>

namespace sarloop {

void SeedSequence::Generate(uint32_t* out, size_t n) const {
  if (n == 0) return;
  std::fill(out, out + n, 0x8b8b8b8bu);
  const size_t s = seed_.size();
  const size_t t = n >= 623 ? 11 : n >= 68 ? 7 : n >= 39 ? 5 : n >= 7 ? 3 : (n - 1) / 2;
  const size_t p = (n - t) / 2;
  const size_t q = p + t;
  const size_t m = std::max(s + 1, n);
  const auto T = [](uint32_t x) { return x ^ (x >> 27); };
  // k mod n, (k + p) mod n, (k + q) mod n and (k - 1) mod n, stepped together.
  size_t i = 0, ip = p % n, iq = q % n, im = n - 1;
  const auto step = [n](size_t& x) {
    if (++x == n) x = 0;
  };
  for (size_t k = 0; k < m; ++k) {
    const uint32_t r1 = 1664525u * T(out[i] ^ out[ip] ^ out[im]);
    uint32_t r2 = r1 + static_cast<uint32_t>(i);
    if (k == 0) {
      r2 = r1 + static_cast<uint32_t>(s);
    } else if (k <= s) {
      r2 += seed_[k - 1];
    }
    out[ip] += r1;
    out[iq] += r2;
    out[i] = r2;
    step(i), step(ip), step(iq), step(im);
  }
  for (size_t k = m; k < m + n; ++k) {
    const uint32_t r3 = 1566083941u * T(out[i] + out[ip] + out[im]);
    const uint32_t r4 = r3 - static_cast<uint32_t>(i);
    out[ip] ^= r3;
    out[iq] ^= r4;
    out[i] = r4;
    step(i), step(ip), step(iq), step(im);
  }
}

}  // namespace sarloop
