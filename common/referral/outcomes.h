// The outcome vocabulary as rules (D1-D3 of the domain review): the track each outcome belongs
// to, which outcomes are open (a status on the way) and which final, who they can befall, which
// disciplinary actions a finding allows (reg 42 of the Police (Conduct) Regulations 2020), how an
// outcome recorded before tracks existed reads now, and when a referral may finish.
//
// Pure functions; no I/O. Thread-safe.
#ifndef SARLOOP_COMMON_REFERRAL_OUTCOMES_H_
#define SARLOOP_COMMON_REFERRAL_OUTCOMES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

using OutcomeTracks = google::protobuf::RepeatedPtrField<v1::Outcome>;

// The track of `type`; UNSPECIFIED for UNSPECIFIED and values outside the enum.
v1::OutcomeTrack TrackOf(v1::OutcomeType type);

// Charged and awaiting trial; a case to answer awaiting its meeting or hearing.
bool IsOpenOutcome(v1::OutcomeType type);

// "CRIMINAL", "CONDUCT", ... for messages and tables.
absl::string_view TrackName(v1::OutcomeTrack track);

// Reads an outcome recorded before tracks as today's vocabulary, in place: DISMISSED becomes a
// misconduct hearing finding gross misconduct with dismissal without notice; management advice
// (abolished in 2020) becomes a referral to reflective practice review; a meeting or hearing
// without a finding gets the one its action implies; the track is set. Idempotent. Applied
// wherever a stored outcome is read, so old databases need no rewrite of their immutable events.
void UpgradeOutcome(v1::Outcome& outcome);

// A new outcome as a force or unit gives it: the type (not DISMISSED, which is read only from
// old data), its track (a track given must agree), category and role (optional for
// NOT_OUR_PERSONNEL and INTELLIGENCE_ONLY), the type open to a person of that role
// (CheckOutcomeFitsRole), `finding` and `misconduct_result` as reg 42 allows for the forum,
// opened_at always and closed_at for a final outcome only, neither after `now` plus kClockSkew
// and closed not before opened, learning summary at most 1,000 characters. INVALID_ARGUMENT
// naming the field under `field`.
absl::Status CheckOutcome(absl::string_view field, const v1::Outcome& outcome, absl::Time now);

// Whether an outcome of `type` can befall a subject of `role`. The conduct track (the Police
// (Conduct) Regulations 2020) covers police officers and special constables only; police staff
// and PCSOs answer to their force's staff procedures, contractors and volunteers end by contract
// or vetting, a family member or associate is not personnel at all, and another body's personnel
// answer to that body. Dismissal after resignation and the barred and advisory lists reach
// officers, specials, staff and PCSOs. INVALID_ARGUMENT naming `field` and the role's own route
// otherwise.
// Corruption categories recorded at research: each a known category other than UNSPECIFIED, and
// each once. None is fine. INVALID_ARGUMENT naming "field[i]".
absl::Status CheckCategories(absl::string_view field,
                             const google::protobuf::RepeatedField<int>& categories);

absl::Status CheckOutcomeFitsRole(absl::string_view field, v1::OutcomeType type,
                                  v1::SubjectRole role);

// Puts `outcome` (upgraded, its track set) on its track in `tracks`, replacing what the track held
// and keeping track order.
void SetTrack(OutcomeTracks& tracks, const v1::Outcome& outcome);

// A referral or register entry stored before tracks, read as today's: its outcome and tracks
// upgraded, and the outcome it ended with as its one track when it has none.
void UpgradeStoredOutcomes(v1::Outcome& ending, OutcomeTracks& tracks);

// Whether a referral holding `tracks` may finish with `ending` (a force's Close, a unit's
// RecordOutcome): the ending must be final, and so must every other track.
// FAILED_PRECONDITION naming the open track otherwise.
absl::Status CheckCanFinish(const OutcomeTracks& tracks, const v1::Outcome& ending);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_OUTCOMES_H_
