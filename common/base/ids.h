// Identifiers and time conversions shared by every service.
#ifndef SARLOOP_COMMON_BASE_IDS_H_
#define SARLOOP_COMMON_BASE_IDS_H_

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sarloop {

// `prefix` followed by `hex_digits` random hex digits from the OpenSSL CSPRNG.
std::string NewId(absl::string_view prefix, int hex_digits = 16);

// `prefix` followed by 32 hex digits: `at` in milliseconds since the Unix epoch (12 digits; 0
// before it), then 80 random bits. Such ids sort by time, so a B-tree keyed by them (the event
// log's key, a receiver's record of messages seen, the outbox's) takes each new one at its end: a
// commit's inserts share the last leaf instead of each writing a leaf of its own somewhere in
// the tree, and the pages a service writes are the few most recent, not the whole index. Unique
// as NewId's are, by the random part.
std::string NewTimeOrderedId(absl::string_view prefix, absl::Time at);

// `prefix` followed by 16 hex digits, for the ids whose form is fixed at 16 (SAR-, REF-): `at` in
// whole seconds since the Unix epoch (8 digits; 0 before it), then 32 random bits. Sorted by time
// for the same reason as NewTimeOrderedId's: a referral's events and feed items, keyed by its id
// in every service, go to the end of their indexes while it is in flight. 32 random bits a second
// do not make an id unique by chance: the caller checks that it is unused and draws again.
std::string NewTimeOrderedShortId(absl::string_view prefix, absl::Time at);

google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);

// Microseconds since the Unix epoch: how times are stored in SQLite.
int64_t ToMicros(absl::Time t);
absl::Time FromMicros(int64_t micros);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_IDS_H_
