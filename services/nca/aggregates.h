// Aggregates over the national register: counts, rates and day statistics grouped by any
// combination of dimensions, and the publication mode that suppresses small counts.
//
// Why an in-memory index: an analyst's question touches every referral in a period (10 years of
// history is a million referrals at 100 times today's volume), and a GROUP BY over that many rows
// in SQLite takes hundreds of milliseconds. The index keeps one compact Fact per referral, built
// from the register's entries (the source of truth) and brought up to date before each query from
// the entries changed since (see Register::Aggregates). Pure: no I/O, no clock.
#ifndef SARLOOP_SERVICES_NCA_AGGREGATES_H_
#define SARLOOP_SERVICES_NCA_AGGREGATES_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/reference.h"
#include "sarloop/v1/nca.pb.h"

namespace sarloop::nca {

// The financial year (by its starting year: 2025 for 2025-26) and quarter (0 for April-June) of
// a time, by its UTC date.
int FinancialYear(absl::Time t);
int FinancialQuarter(absl::Time t);
std::string FinancialYearName(int year);  // "2025-26"

class AggregateIndex {
 public:
  explicit AggregateIndex(const ReferenceData& reference) : reference_(reference) {}

  // Adds the referral or replaces what was known of it.
  void Upsert(const v1::RegisterEntry& entry);
  size_t size() const { return facts_.size(); }

  // Groups and measures the referrals that pass the request's filter. `min_count` is the
  // publication threshold (used only when request.publication()). INVALID_ARGUMENT names the field
  // for an unknown code, a repeated or unknown dimension or an oversized list.
  absl::StatusOr<v1::GetAggregatesResponse> Query(const v1::GetAggregatesRequest& request,
                                                  absl::Time as_of, int min_count) const;

 private:
  struct Fact {
    uint16_t org = 0;  // index into orgs_
    uint8_t state = 0;
    uint8_t outcome = 0;
    uint8_t category = 0;
    uint8_t role = 0;
    uint8_t route = 0;
    bool handed_over = false;
    bool assistance_declined = false;
    bool escalated = false;
    bool reminded = false;
    bool daml = false;
    bool recorded_on_behalf = false;
    bool referred_to_iopc = false;
    uint32_t case_index = 0;  // 0: a case of its own; else a joint case (case_index_)
    // Requests for information on it (either way) and those answered, and the mean whole days
    // an answer took.
    uint16_t information_requests = 0;
    uint16_t information_answered = 0;
    int32_t answer_days = 0;
    int16_t fy = 0;
    uint8_t quarter = 0;
    int64_t dispatched_s = 0;    // 0 until the DISPATCHED event arrives
    int64_t due_s = 0;           // the running clock's due time (clocks.h); 0 when nothing is due
    int64_t reg19_s = 0;         // when regulation 19's first report falls due (clocks.h)
    int64_t feedback_s = 0;      // 0 without feedback
    int64_t acknowledged_s = 0;  // 0 until acknowledged (any later step acknowledges too)
    int64_t decided_s = 0;       // 0 until the first decision
    int64_t decision_due_s = 0;  // when the first decision was due (RegisterEntry.due_at)
    // The latest outcome type on each track (OutcomeTrack 1-5 at [track - 1]), 0 for none; the
    // conduct track's finding and action; the priority; the unit (index into units_, 0 none).
    uint8_t track[5] = {0, 0, 0, 0, 0};
    uint8_t finding = 0;
    uint8_t action = 0;
    uint8_t priority = 0;
    uint8_t decline_reason = 0;  // DeclineReason, 0 when the force did not decline
    uint8_t thr = 0;             // the highest ThrLevel of UKFIU's THR at referral, 0 none
    uint16_t unit = 0;
    // The referral's distinct subjects: subject_pool_[subjects_at, subjects_at + subject_count).
    uint32_t subjects_at = 0;
    uint32_t subject_count = 0;
  };
  struct Org {
    std::string code;
    std::string region;
    v1::OrganisationKind kind;
  };
  uint16_t OrgIndex(const std::string& code);
  uint32_t SubjectIndex(const std::string& ref);
  uint16_t UnitIndex(const std::string& code);

  void CompactSubjects();

  const ReferenceData& reference_;
  std::vector<Fact> facts_;
  // Subjects of every fact, side by side in fact order, so a scan reads them sequentially. A
  // replaced fact's old run stays as garbage until CompactSubjects.
  std::vector<uint32_t> subject_pool_;
  size_t live_subjects_ = 0;
  int min_fy_ = 0;
  int max_fy_ = 0;
  std::unordered_map<std::string, uint32_t> by_referral_;
  std::vector<Org> orgs_;
  std::unordered_map<std::string, uint16_t> org_index_;
  std::vector<std::string> regions_;    // region index -> code
  std::vector<std::string> units_{""};  // unit index -> code; 0 is none
  std::unordered_map<std::string, uint16_t> unit_index_;
  std::unordered_map<std::string, uint32_t> subject_index_;
  // Joint referrals' cases: case id -> index from 1 (Fact.case_index; 0 is a case of its own).
  std::unordered_map<std::string, uint32_t> case_index_;
  // Referrals naming each subject.
  std::vector<int32_t> subject_referrals_;
};

// Publication mode on a computed response: counts from 1 to min_count - 1 are suppressed
// (primary), then further cells until no suppressed count can be worked out from a published total
// and the other published parts (secondary). The relations kept safe: within each group
// referred = feedback + withdrawn + redirected + open, feedback = declined + closed with outcome,
// closed with outcome = the sum of outcomes by type; and across groups, the total of every count
// is the sum of the groups'. Rates and day statistics that depend on a suppressed count go too.
void Suppress(v1::GetAggregatesResponse& response, int min_count);

}  // namespace sarloop::nca

#endif  // SARLOOP_SERVICES_NCA_AGGREGATES_H_
