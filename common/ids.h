// Identifiers and time conversions shared by every service.
#ifndef SARLOOP_COMMON_IDS_H_
#define SARLOOP_COMMON_IDS_H_

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sarloop {

// `prefix` followed by `hex_digits` random hex digits from the OpenSSL CSPRNG.
std::string NewId(absl::string_view prefix, int hex_digits = 16);

google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);

// Microseconds since the Unix epoch: how times are stored in SQLite.
int64_t ToMicros(absl::Time t);
absl::Time FromMicros(int64_t micros);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_IDS_H_
