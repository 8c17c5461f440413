// UKFIU: SAR intake, referral decisions with a THR assessment, withdrawal and redirection,
// deconfliction, its mirror of each referral's progress (from the events forces and units report),
// and the feedback clock (reminder at the due date, escalation after the grace period, the
// open-investigation flag at 12 months and every 6 after). Pure logic over a Database and a Clock.
#ifndef SARLOOP_SERVICES_UKFIU_DESK_H_
#define SARLOOP_SERVICES_UKFIU_DESK_H_

#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "common/call.h"
#include "common/clock.h"
#include "common/identity.h"
#include "common/linkage_encoding.h"
#include "common/reference.h"
#include "common/storage.h"
#include "sarloop/v1/config.pb.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/ukfiu.pb.h"

namespace sarloop::ukfiu {

std::span<const Migration> DeskMigrations();

struct DeskOptions {
  // Key for pseudonymous subject references (HMAC-SHA256); at least 32 bytes.
  std::string subject_key;
  v1::FeedbackClockConfig feedback;
  // Organisations with a sarloop endpoint (configured peers).
  std::vector<std::string> reachable;
  // Investigating units with an endpoint: told when a referral they hold is withdrawn or
  // redirected.
  std::vector<std::string> units;
  // The linkage key (32 bytes): when set, each SAR's subjects are encoded on arrival and sent to
  // the peer "LINKAGE" for screening, in SubmitSar's transaction.
  std::string linkage_key;
};

// The peer code of the linkage service.
inline constexpr char kLinkageCode[] = "LINKAGE";

// Pseudonymous reference for a subject: hex HMAC-SHA256 over the normalised name (lower case,
// single spaces) and date of birth. Stable for the same person and key.
std::string SubjectRef(const std::string& key, const v1::Subject& subject);

class Desk {
 public:
  Desk(Database& db, Clock& clock, const ReferenceData& reference, DeskOptions options);

  // `scope` keys request_id idempotency (method and caller).
  absl::StatusOr<v1::SubmitSarResponse> SubmitSar(const Call& call,
                                                  const v1::SubmitSarRequest& request);
  absl::StatusOr<v1::GetSarResponse> GetSar(const std::string& sar_id);
  absl::StatusOr<v1::ReferSarResponse> Refer(const Call& call, const v1::ReferSarRequest& request);
  absl::StatusOr<v1::WithdrawReferralResponse> Withdraw(const Call& call,
                                                        const v1::WithdrawReferralRequest& request);
  absl::StatusOr<v1::RedirectReferralResponse> Redirect(const Call& call,
                                                        const v1::RedirectReferralRequest& request);
  absl::StatusOr<v1::GetReferralResponse> GetReferral(const std::string& referral_id);
  absl::StatusOr<v1::ListReferralsResponse> List(const v1::ListReferralsRequest& request);

  // Sends every reminder, escalation and open-investigation flag due at the clock's now.
  absl::StatusOr<v1::RunFeedbackClockResponse> RunClock();

  // Applies one event reported by a force or unit.
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);

 private:
  absl::StatusOr<v1::Referral> Dispatch(Txn& txn, const v1::Sar& sar, const std::string& org,
                                        const v1::ThrAssessment& thr, int due_in_days,
                                        v1::ReferralRoute route, const std::string& linked,
                                        const v1::Actor& actor, absl::Time now,
                                        const v1::IndirectLink* link = nullptr);
  absl::Status CheckOrganisation(const std::string& field, const std::string& code) const;
  // The force and the NCA, plus the unit holding the referral, if any and reachable.
  std::vector<std::string> EndingDestinations(const v1::Referral& referral) const;

  Database& db_;
  Clock& clock_;
  const ReferenceData& reference_;
  const DeskOptions options_;
  // One encoder (it caches token positions); SubmitSar bodies may run on several threads.
  std::mutex encoder_mu_;
  std::optional<linkage::Encoder> encoder_;
};

}  // namespace sarloop::ukfiu

#endif  // SARLOOP_SERVICES_UKFIU_DESK_H_
