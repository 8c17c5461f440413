// The referral's domain validation: what a SAR, a THR assessment, an indirect link, a referral id
// and an event's free text must be. Every error is a FieldError naming the field path the client
// sent, e.g. "thr.rationale" or "sar.subjects[2].full_name". The checks any request shares (text,
// request ids, times, pages) are common/rpc/field_checks.h's, included here for the handlers.
#ifndef SARLOOP_COMMON_REFERRAL_VALIDATION_H_
#define SARLOOP_COMMON_REFERRAL_VALIDATION_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/rpc/field_checks.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

// All three scores set and a rationale of 1 to 4,000 characters.
absl::Status CheckThr(absl::string_view field, const v1::ThrAssessment& thr);

// The most subjects one SAR may name.
inline constexpr int kMostSubjectsPerSar = 20;

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

// Data minimisation: the free text an event carries to ukfiu and the NCA (a THR rationale, a
// decline, withdrawal or redirection reason, an outcome's learning summary) must not name a subject
// of `sar`, or give their address, postcode or date of birth. Text is compared after Unicode
// compatibility normalisation and case folding with accents removed; name parts as whole words,
// also when spelt out letter by letter ("J a n e"); the whole name, the address lines that carry
// a number, the postcode and the date of birth also when run together ("JaneExample", "NR12AB",
// "12041985"). INVALID_ARGUMENT naming the field, not the name.
absl::Status CheckNoSubjectData(const v1::LifecycleEvent& event, const v1::Sar& sar);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_VALIDATION_H_
