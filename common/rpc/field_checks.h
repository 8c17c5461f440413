// Field checks every service's requests share, whatever their domain: text within its bounds,
// request ids, times a client gives, lists of text and pages. Every error is a FieldError naming
// the field path the client sent, e.g. "thr.rationale" or "sar.subjects[2].full_name".
#ifndef SARLOOP_COMMON_RPC_FIELD_CHECKS_H_
#define SARLOOP_COMMON_RPC_FIELD_CHECKS_H_

#include <google/protobuf/repeated_ptr_field.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sarloop {

// How far ahead of this service's clock a client's clock may run: a time a client gives (a SAR's
// submitted_at, an outcome's dates) may be at most this far past "now". Every timestamp is also
// bounded to 2000-2099 at the RPC edge (common/rpc/request_checks.h).
inline constexpr absl::Duration kClockSkew = absl::Minutes(5);

// Non-empty (when `required`), at most `max_chars` bytes, valid UTF-8 guaranteed by protobuf.
absl::Status CheckText(absl::string_view field, const std::string& value, size_t max_chars,
                       bool required);

// request_id: 1 to 100 characters.
absl::Status CheckRequestId(const std::string& request_id);

// A time a client gives is not after `now` plus kClockSkew (never, for absl::InfiniteFuture()).
// INVALID_ARGUMENT naming `field`.
absl::Status CheckNotInFuture(absl::string_view field, const google::protobuf::Timestamp& t,
                              absl::Time now);

// Every element of `values` is non-empty text of at most `max_chars`, and there are at most
// `max_count` of them. INVALID_ARGUMENT naming the field (and index).
absl::Status CheckTextList(absl::string_view field,
                           const google::protobuf::RepeatedPtrField<std::string>& values,
                           int max_count, size_t max_chars);

// Decodes page_size (0 -> 100, 1..1000) and page_token (an opaque offset) into limit and offset.
struct Page {
  int64_t limit;
  int64_t offset;
};
absl::StatusOr<Page> CheckPage(int32_t page_size, const std::string& page_token);
// The token for the page after `page` when it came back full.
std::string NextPageToken(const Page& page, size_t returned);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_FIELD_CHECKS_H_
