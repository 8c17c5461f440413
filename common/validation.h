// Input validation shared by the services. Every error is a FieldError naming the field path the
// client sent, e.g. "thr.rationale" or "sar.subjects[2].full_name".
#ifndef SARLOOP_COMMON_VALIDATION_H_
#define SARLOOP_COMMON_VALIDATION_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

// How far ahead of this service's clock a client's clock may run: a time a client gives (a SAR's
// submitted_at, an outcome's dates) may be at most this far past "now". Every timestamp is also
// bounded to 2000-2099 at the RPC edge (common/request_checks.h).
inline constexpr absl::Duration kClockSkew = absl::Minutes(5);

// Non-empty (when `required`), at most `max_chars` bytes, valid UTF-8 guaranteed by protobuf.
absl::Status CheckText(absl::string_view field, const std::string& value, size_t max_chars,
                       bool required);

// request_id: 1 to 100 characters.
absl::Status CheckRequestId(const std::string& request_id);

// All three scores set and a rationale of 1 to 4,000 characters.
absl::Status CheckThr(absl::string_view field, const v1::ThrAssessment& thr);

// A time a client gives is not after `now` plus kClockSkew (never, for absl::InfiniteFuture()).
// INVALID_ARGUMENT naming `field`.
absl::Status CheckNotInFuture(absl::string_view field, const google::protobuf::Timestamp& t,
                              absl::Time now);

// Sector and narrative present, 1 to 20 subjects each with a name, up to 20 distinct glossary
// codes shaped XX..XX, dates of birth real dates
// YYYY-MM-DD from 1900-01-01 to `now`'s date, submitted_at not after `now` plus kClockSkew.
// (A peer's package passes absl::InfiniteFuture(): the peer's clock may be ahead of ours, and the
// peer checked against its own.)
absl::Status CheckSar(absl::string_view field, const v1::Sar& sar, absl::Time now);

// A linkage hit as an INDIRECT referral carries it: hit_id "HIT-" + 16 hex digits, record_id 1 to
// 64 of [A-Za-z0-9._-], score 1 to 1000, matched fields from name, date_of_birth, address.
absl::Status CheckIndirectLink(absl::string_view field, const v1::IndirectLink& link);

// A referral id as issued by ukfiu ("REF-" + 16 hex digits).
absl::Status CheckReferralId(absl::string_view field, const std::string& id);

// Every element of `values` is non-empty text of at most `max_chars`, and there are at most
// `max_count` of them. INVALID_ARGUMENT naming the field (and index).
absl::Status CheckTextList(absl::string_view field,
                           const google::protobuf::RepeatedPtrField<std::string>& values,
                           int max_count, size_t max_chars);

// Data minimisation: the free text an event carries to ukfiu and the NCA (a THR rationale, a
// decline, withdrawal or redirection reason, an outcome's learning summary) must not name a subject
// of `sar`, or give their address, postcode or date of birth. Text is compared after Unicode
// compatibility normalisation and case folding with accents removed; name parts as whole words,
// also when spelt out letter by letter ("J a n e"); the whole name, the address lines that carry
// a number, the postcode and the date of birth also when run together ("JaneExample", "NR12AB",
// "12041985"). INVALID_ARGUMENT naming the field, not the name.
absl::Status CheckNoSubjectData(const v1::LifecycleEvent& event, const v1::Sar& sar);

// Decodes page_size (0 -> 100, 1..1000) and page_token (an opaque offset) into limit and offset.
struct Page {
  int64_t limit;
  int64_t offset;
};
absl::StatusOr<Page> CheckPage(int32_t page_size, const std::string& page_token);
// The token for the page after `page` when it came back full.
std::string NextPageToken(const Page& page, size_t returned);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_VALIDATION_H_
