// UKFIU: SAR intake, referral decisions with a THR assessment, withdrawal and redirection,
// deconfliction, its mirror of each referral's progress (from the events forces and units report),
// and the feedback clock (reminder at the due date, escalation after the grace period, the
// open-investigation flag at 12 months and every 6 after). Pure logic over a Database and a Clock.
#ifndef SARLOOP_SERVICES_UKFIU_DESK_H_
#define SARLOOP_SERVICES_UKFIU_DESK_H_

#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/mutex.h"
#include "common/linkage/linkage_encoding.h"
#include "common/messaging/messaging.h"
#include "common/reference/reference.h"
#include "common/referral/clocks.h"
#include "common/referral/mirror.h"
#include "common/referral/threads.h"
#include "common/rpc/call.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"
#include "sarloop/v1/config.pb.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/ukfiu.pb.h"

namespace sarloop::ukfiu {

// The desk's schema: before the audit log, and after it (ServiceMigrations).
std::span<const Migration> DeskMigrations();
std::span<const Migration> DeskMigrationsAfterAudit();

struct DeskOptions {
  // Key for pseudonymous subject references (HMAC-SHA256); at least 32 bytes.
  std::string subject_key;
  v1::FeedbackClockConfig feedback;
  // Organisations with a sarloop endpoint (configured peers), the ones a SAR may be referred to.
  std::vector<std::string> reachable;
  // The linkage key (32 bytes): when set, each SAR's subjects are encoded on arrival and sent to
  // the peer "LINKAGE" for screening, in SubmitSar's transaction.
  std::string linkage_key;
};

// The glossary code that marks a DAML request (Sar.daml).
inline constexpr char kDamlGlossaryCode[] = "XXS99XX";

// The peer code of the linkage service.
inline constexpr char kLinkageCode[] = "LINKAGE";

// Deconfliction: the open referrals to organisations other than `excluding` of any SAR that shares
// a subject (by reference) with `sar_id`, as (referral id, organisation), by organisation then id.
// Its cost follows the subject's SARs and not their referrals' rows (referrals_open_by_sar).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> OpenReferralsSharingASubject(
    Txn& txn, const std::string& sar_id, const std::string& excluding);
// The statement it runs, for tests that look at its plan.
std::string DeconflictionSql();

// A new id from `draw` that `unused_sql` (one `?`, the id) finds in no row, drawing again while
// it does: SAR and referral ids are NewTimeOrderedShortId's, whose 32 random bits a second can
// repeat. The same transaction sees the ids its earlier jobs took. INTERNAL after 16 draws.
absl::StatusOr<std::string> DrawUnusedId(Txn& txn, const std::function<std::string()>& draw,
                                         const std::string& unused_sql);

// Pseudonymous reference for a subject: hex HMAC-SHA256 over the normalised name (lower case,
// single spaces) and date of birth. Stable for the same person and key.
std::string SubjectRef(const std::string& key, const v1::Subject& subject);

class Desk {
 public:
  // `worker` (may be null in tests) is woken for what a committed call sends; `peers` are the
  // destinations the service has a peer for (empty: any), units among them.
  Desk(Database& db, Clock& clock, const ReferenceData& reference, DeskOptions options,
       DeliveryWorker* worker = nullptr, std::vector<std::string> peers = {});

  // `call.scope` keys request_id idempotency (method and caller). INVALID_ARGUMENT names the
  // field; NOT_FOUND for an unknown SAR or referral; FAILED_PRECONDITION for an organisation
  // without an endpoint, a SAR already referred there and open, or a referral whose state does
  // not allow the step (naming it).
  absl::StatusOr<v1::SubmitSarResponse> SubmitSar(const Call& call,
                                                  const v1::SubmitSarRequest& request);
  // SubmitSar in two parts, so the first can run off the writer thread: PrepareSar checks the
  // request and works out what needs no database (the subjects' references and linkage
  // encodings); SubmitPrepared stores it.
  struct PreparedSar {
    v1::Sar sar;  // the request's, subject references set
    std::vector<v1::EncodedSubject> encoded;
    std::vector<std::pair<int, std::string>> not_screened;  // subject index, why
  };
  absl::StatusOr<PreparedSar> PrepareSar(const v1::SubmitSarRequest& request);
  absl::StatusOr<v1::SubmitSarResponse> SubmitPrepared(const Call& call,
                                                       const v1::SubmitSarRequest& request,
                                                       const PreparedSar& prepared);
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

  // Records a reply of an organisation not running sarloop on its behalf. INVALID_ARGUMENT
  // naming the field; NOT_FOUND for an unknown referral; FAILED_PRECONDITION for a referral to
  // an organisation on sarloop, or a step its state does not allow (naming it).
  absl::StatusOr<v1::RecordOnBehalfResponse> RecordOnBehalf(
      const Call& call, const v1::RecordOnBehalfRequest& request);

  // Attaches a further SAR to an open referral. INVALID_ARGUMENT naming the field; NOT_FOUND for
  // an unknown referral or SAR; FAILED_PRECONDITION for a referral that has ended, or a SAR that
  // is its own or attached already.
  absl::StatusOr<v1::AttachSarResponse> AttachSar(const Call& call,
                                                  const v1::AttachSarRequest& request);

  // Applies one event reported by a force or unit, as the rules table allows
  // (referral::Mirror::Receive).
  absl::Status Receive(Txn& txn, const Identity& peer, const v1::Envelope& envelope);

  // Requests for information with the forces (threads.h).
  referral::Threads& threads() { return threads_; }

 private:
  // One referral's reminder, escalation and Regulation 19 flag owed at `now`, produced in `txn`
  // and counted in `sent`.
  absl::Status ChaseOne(Txn& txn, const std::string& id, absl::Time now,
                        v1::RunFeedbackClockResponse* sent);
  // A new referral of `sar` to `organisation`.
  struct Dispatching {
    const v1::Sar* sar = nullptr;
    std::string organisation;
    v1::ThrAssessment thr;
    int due_in_days = 0;  // 0: the configured default
    v1::ReferralRoute route = v1::REFERRAL_ROUTE_DIRECT;
    // The referral it replaces (a redirection), and the id to give it; empty: a fresh one.
    std::string linked;
    std::string referral_id;
    const v1::IndirectLink* link = nullptr;
    // The organisation does not run sarloop: recorded on its behalf.
    bool off_system = false;
    // A joint referral: its case, lead organisation and the other organisations in it; the
    // case's referrals made before this one are no deconfliction for it.
    std::string case_id;
    std::string lead;
    std::vector<std::string> joint_with;
    std::set<std::string> same_case;
  };
  absl::StatusOr<v1::Referral> Dispatch(Txn& txn, const Dispatching& d, const v1::Actor& actor,
                                        absl::Time now);
  // A known organisation that runs sarloop, or, `off_system`, one that does not (UKFIU then
  // records its replies on its behalf).
  // What a UKFIU step adds to its event (and, in `beside`, a SAR that travels with it to the
  // force and its units), given the copy; an error stops the step.
  using StepFill = std::function<absl::Status(Txn& txn, v1::Referral& copy, v1::LifecycleEvent& e,
                                              std::optional<v1::Sar>& beside)>;
  // One UKFIU step on a referral it made, written once for Withdraw, RecordOnBehalf and
  // AttachSar: request_id and referral_id checked, then in one idempotent transaction the copy
  // loaded, the event made and filled, the transition checked, the free text checked against the
  // SAR's subjects, the event recorded and sent, and the copy answered.
  template <typename Response>
  absl::StatusOr<Response> Step(const Call& call, const google::protobuf::Message& request,
                                const std::string& request_id, const std::string& referral_id,
                                v1::EventType type, const StepFill& fill);
  absl::Status CheckOrganisation(const std::string& field, const std::string& code,
                                 bool off_system = false) const;
  // Who rung `rung` of the escalation ladder is for `org_code`.
  std::string LadderAddressee(const std::string& org_code, int rung) const;
  // The encoder for SAR subjects under `linkage_key`; null without one.
  static std::unique_ptr<linkage::Encoder> NewEncoder(const std::string& linkage_key);
  // The identity rung `rung` is addressed to (feedback.escalation_ladder).
  std::string LadderIdentity(const std::string& org_code, int rung) const;

  Database& db_;
  Clock& clock_;
  const ReferenceData& reference_;
  const DeskOptions options_;
  const ChasePolicy chase_;
  Outbox outbox_;
  referral::Mirror mirror_;
  referral::Threads threads_;
  // One encoder (it caches token positions), or none without a linkage key; SubmitSar encodes on
  // the serving thread.
  Mutex encoder_mu_;
  const std::unique_ptr<linkage::Encoder> encoder_ ABSL_PT_GUARDED_BY(encoder_mu_);
};

}  // namespace sarloop::ukfiu

#endif  // SARLOOP_SERVICES_UKFIU_DESK_H_
