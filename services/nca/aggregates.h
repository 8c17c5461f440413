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
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/mutex.h"
#include "common/reference/reference.h"
#include "sarloop/v1/nca.pb.h"

namespace sarloop::nca {

// The financial year (by its starting year: 2025 for 2025-26) and quarter (0 for April-June) of
// a time, by its UTC date.
int FinancialYear(absl::Time t);
int FinancialQuarter(absl::Time t);
std::string FinancialYearName(int year);  // "2025-26"

class AggregateIndex {
 public:
  explicit AggregateIndex(const ReferenceData& reference);
  ~AggregateIndex();

  // Adds the referral or replaces what was known of it.
  void Upsert(const v1::RegisterEntry& entry);
  size_t size() const { return facts_.size(); }

  // Orders the facts by organisation and year when many have arrived since the last time: a
  // grouped scan then meets one organisation's groups at a time, their histograms still in cache
  // (a scan in arrival order touched every group's for each referral). Called after a catch-up.
  void Cluster();

  // Groups and measures the referrals that pass the request's filter. `min_count` is the
  // publication threshold (used only when request.publication()). INVALID_ARGUMENT names the field
  // for an unknown code, a repeated or unknown dimension or an oversized list.
  absl::StatusOr<v1::GetAggregatesResponse> Query(const v1::GetAggregatesRequest& request,
                                                  absl::Time as_of, int min_count) const;

 private:
  // One query: the request compiled against the index (Plan), then its scan, the halves merged,
  // the measures and the answer (Run).
  struct Plan;
  class Run;
  struct ScanBuffers;
  // One query's lease of a set of buffers from the pool.
  class Buffers {
   public:
    explicit Buffers(const AggregateIndex& index);
    ~Buffers();
    ScanBuffers* operator->() { return buffers_.get(); }

   private:
    const AggregateIndex& index_;
    std::unique_ptr<ScanBuffers> buffers_;
  };

  // One referral as the scan reads it, 76 bytes (112 before): a scan of a million is bound by
  // memory, so the steps' times are kept as whole days from dispatch, worked out once here, and the
  // instants compared with the query's clock as unsigned seconds (1970 to 2106; 0 for none).
  struct Fact {
    static constexpr uint32_t kNoDays = UINT32_MAX;
    enum Flag : uint8_t {
      kHandedOver = 1,
      kAssistanceDeclined = 2,
      kEscalated = 4,
      kReminded = 8,
      kDaml = 16,
      kRecordedOnBehalf = 32,
      kReferredToIopc = 64,
      kDecided = 128,  // a first decision is recorded
    };
    uint16_t org = 0;   // index into orgs_
    uint16_t unit = 0;  // index into units_, 0 none
    int16_t fy = 0;
    uint8_t quarter = 0;
    uint8_t state = 0;
    uint8_t outcome = 0;
    uint8_t category = 0;
    uint8_t role = 0;
    uint8_t route = 0;
    // The latest outcome type on each track (OutcomeTrack 1-5 at [track - 1]), 0 for none; the
    // conduct track's finding and action; the priority.
    uint8_t track[5] = {0, 0, 0, 0, 0};
    uint8_t finding = 0;
    uint8_t action = 0;
    uint8_t priority = 0;
    uint8_t decline_reason = 0;  // DeclineReason, 0 when the force did not decline
    uint8_t thr = 0;             // the highest ThrLevel of UKFIU's THR at referral, 0 none
    uint8_t flags = 0;
    uint16_t profile = 0;  // index into profiles_
    // Requests for information on it (either way) and those answered.
    uint16_t information_requests = 0;
    uint16_t information_answered = 0;
    // Whole days from dispatch to feedback, acknowledgement and first decision, and the mean an
    // answer took; kNoDays when not (yet) known.
    uint32_t feedback_days = kNoDays;
    uint32_t acknowledge_days = kNoDays;
    uint32_t decision_days = kNoDays;
    uint32_t answer_days = kNoDays;
    uint32_t dispatched_s = 0;
    uint32_t due_s = 0;           // the running clock's due time (clocks.h)
    uint32_t reg19_s = 0;         // when regulation 19's first report falls due (clocks.h)
    uint32_t decision_due_s = 0;  // when the first decision was due (RegisterEntry.due_at)
    uint32_t case_index = 0;      // 0: a case of its own; else a joint case (case_index_)
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
  void CountSubject(uint32_t s, int delta);
  uint16_t ProfileOf(const Fact& f);
  // Upsert's steps: the entry's dimensions and times as a fact; the year range and the days'
  // histogram widths the scans size by; the fact's subjects; its place in facts_.
  static void ReadDimensions(const v1::RegisterEntry& e, Fact& f);
  static void ReadTimes(const v1::RegisterEntry& e, Fact& f);
  void Widen(const Fact& f);
  void AttachSubjects(const v1::RegisterEntry& e, Fact& f);
  void Place(const std::string& referral_id, const Fact& f);
  bool IsRepeat(uint32_t s) const { return (repeat_bits_[s / 64] >> (s % 64)) & 1; }

  void CompactSubjects();

  const ReferenceData& reference_;
  std::vector<Fact> facts_;
  // Subjects of every fact, side by side in fact order, so a scan reads them sequentially. A
  // replaced fact's old run stays as garbage until CompactSubjects.
  std::vector<uint32_t> subject_pool_;
  size_t live_subjects_ = 0;
  int min_fy_ = 0;
  int max_fy_ = 0;
  // Referral -> its fact's stable number; the number's place in facts_, and back.
  std::unordered_map<std::string, uint32_t> by_referral_;
  std::vector<uint32_t> position_;
  std::vector<uint32_t> id_of_;
  size_t clustered_ = 0;  // facts_ up to here are in Cluster's order
  std::vector<Org> orgs_;
  std::unordered_map<std::string, uint16_t> org_index_;
  std::vector<std::string> regions_;    // region index -> code
  std::vector<std::string> units_{""};  // unit index -> code; 0 is none
  std::unordered_map<std::string, uint16_t> unit_index_;
  std::unordered_map<std::string, uint32_t> subject_index_;
  // Joint referrals' cases: case id -> index from 1 (Fact.case_index; 0 is a case of its own).
  std::unordered_map<std::string, uint32_t> case_index_;
  // Referrals naming each subject, and a bit per subject named by two or more: a scan tests the
  // bit, and a million subjects' bits stay in cache where their counts did not.
  std::vector<int32_t> subject_referrals_;
  std::vector<uint64_t> repeat_bits_;
  // The most days any referral took to feedback (also to an outcome), to an answer, to
  // acknowledgement and to a first decision (the query's Column order): the width of a group's
  // day histograms.
  uint32_t max_days_[5] = {0, 0, 0, 0, 0};
  // Profiles: the counts a referral adds whatever the query's clock (a bit per count measure) and
  // its outcome, (bits << 8 | outcome + 1). A few thousand at most (the state fixes six bits and
  // the outcome only two states have), so a group counts referrals per profile, one increment
  // each, instead of fourteen counts.
  std::vector<uint64_t> profiles_;
  std::unordered_map<uint64_t, uint16_t> profile_index_;
  mutable Mutex pool_mu_;
  mutable std::vector<std::unique_ptr<ScanBuffers>> pool_ ABSL_GUARDED_BY(pool_mu_);
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
