#include "common/base/ids.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "common/base/crypto.h"

namespace sarloop {

std::string NewId(absl::string_view prefix, int hex_digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::vector<unsigned char> bytes((hex_digits + 1) / 2);
  if (!PublicRandomBytes(bytes.data(), bytes.size())) {
    // Without randomness no identifier is safe to hand out; this is not recoverable.
    throw std::runtime_error("RAND_bytes failed");
  }
  std::string id(prefix);
  for (int i = 0; i < hex_digits; ++i) {
    unsigned char b = bytes[i / 2];
    id.push_back(kHex[(i % 2 == 0) ? (b >> 4) : (b & 0xf)]);
  }
  return id;
}

namespace {
// `prefix`, then `value` in `digits` hex digits, then `random_digits` random ones.
std::string TimePrefixedId(absl::string_view prefix, int64_t value, int digits, int random_digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) {
    id.push_back(kHex[(value >> shift) & 0xf]);
  }
  return NewId(id, random_digits);
}
}  // namespace

std::string NewTimeOrderedId(absl::string_view prefix, absl::Time at) {
  const int64_t millis = std::clamp<int64_t>(absl::ToUnixMillis(at), 0, (int64_t{1} << 48) - 1);
  return TimePrefixedId(prefix, millis, 12, 20);
}

std::string NewTimeOrderedShortId(absl::string_view prefix, absl::Time at) {
  const int64_t seconds = std::clamp<int64_t>(absl::ToUnixSeconds(at), 0, (int64_t{1} << 32) - 1);
  return TimePrefixedId(prefix, seconds, 8, 8);
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rem * 1000));
  return ts;
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t micros) { return absl::FromUnixMicros(micros); }

}  // namespace sarloop
