#include "common/referral/referral_store.h"

#include <set>

#include "absl/algorithm/container.h"
#include "absl/strings/strip.h"
#include "common/ids.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/sealed.h"
#include "common/status.h"

namespace sarloop {

const Migration kReferralStoreMigration = {"referrals", R"sql(
CREATE TABLE referrals (
  referral_id TEXT PRIMARY KEY,
  sar_id TEXT NOT NULL,
  organisation TEXT NOT NULL,
  state INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  referral BLOB NOT NULL
);
CREATE INDEX referrals_by_state ON referrals (state, created_at);
CREATE INDEX referrals_by_org ON referrals (organisation, state);
CREATE INDEX referrals_by_sar ON referrals (sar_id);
)sql"};

namespace {
// The referral with its package: sealed (see common/sealed.h).
constexpr absl::string_view kColumn = "referrals.referral";
}  // namespace

absl::StatusOr<v1::Referral> LoadReferral(Txn& txn, const std::string& referral_id) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT referral FROM referrals WHERE referral_id = ?", {referral_id}));
  if (rows.empty()) return absl::NotFoundError("referral_id: no such referral");
  v1::Referral r;
  RETURN_IF_ERROR(UnsealProto(txn, kColumn, referral_id, rows[0].Text(0), &r));
  UpgradeStoredOutcomes(*r.mutable_outcome(), *r.mutable_tracks());
  if (r.outcome().type() == v1::OUTCOME_TYPE_UNSPECIFIED) r.clear_outcome();
  return r;
}

referral::SaveCopy ReferralStoreSaver(Clock& clock) {
  return [&clock](Txn& txn, const v1::RegisterEntry& folded,
                  const referral::Change& change) -> absl::Status {
    v1::Referral r;
    std::vector<std::string> from_package;
    if (change.copy != nullptr) {
      r = *change.copy;
    } else if (change.delivered != nullptr && change.delivered->has_package()) {
      absl::StatusOr<v1::Referral> existing = LoadReferral(txn, folded.referral_id());
      if (existing.ok()) {
        r = *std::move(existing);
      } else if (!absl::IsNotFound(existing.status())) {
        return existing.status();
      }
      const v1::LifecycleEvent& ev = *change.event;
      const v1::ReferralPackage& p = change.delivered->package();
      r.set_referral_id(ev.referral_id());
      r.set_sar_id(p.sar().sar_id());
      r.set_organisation(ev.organisation());
      *r.mutable_dispatched_at() = p.has_dispatched_at() ? p.dispatched_at() : ev.occurred_at();
      *r.mutable_due_at() = p.has_due_at() ? p.due_at() : ev.due_at();
      *r.mutable_thr() = p.thr();
      if (ev.type() == v1::EVENT_TYPE_DISPATCHED) {
        r.set_linked_referral_id(ev.linked_referral_id());
        r.set_route(ev.route());
      }
      *r.mutable_package() = p;
      r.set_case_id(p.case_id());
      r.set_lead_organisation(p.lead_organisation());
      r.clear_supplementary_sar_ids();
      for (const v1::Sar& s : p.supplementary_sars()) r.add_supplementary_sar_ids(s.sar_id());
    } else {
      ASSIGN_OR_RETURN(r, LoadReferral(txn, folded.referral_id()));
    }
    r.set_state(folded.state());
    r.set_reminders(folded.reminders());
    r.set_escalated(folded.escalated());
    r.set_unit(folded.unit());
    r.set_reason(folded.reason());
    // The outcome is the fold's: none when the referral ended before an outcome counted.
    if (folded.has_outcome()) {
      *r.mutable_outcome() = folded.outcome();
    } else {
      r.clear_outcome();
    }
    *r.mutable_tracks() = folded.tracks();
    r.set_clock_stage(folded.clock_stage());
    if (folded.has_next_due_at()) {
      *r.mutable_next_due_at() = folded.next_due_at();
    } else {
      r.clear_next_due_at();
    }
    r.set_priority(folded.priority());
    r.set_handed_over_on_receipt(folded.handed_over_on_receipt());
    r.set_decline_reason(folded.decline_reason());
    r.set_named_organisation(folded.named_organisation());
    r.set_requests_open(folded.information_open());
    r.set_decision_clock_paused(folded.has_decision_paused_since());
    r.set_daml(folded.daml());
    r.set_recorded_on_behalf(folded.recorded_on_behalf());
    r.set_referred_to_iopc(folded.referred_to_iopc());
    // A unit never sees DISPATCHED: its copy has the case from the package.
    if (!folded.case_id().empty()) {
      r.set_case_id(folded.case_id());
      r.set_lead_organisation(folded.lead_organisation());
    }
    // A further SAR, delivered beside its event: the package grows.
    if (change.delivered != nullptr && change.delivered->has_supplementary_sar()) {
      const v1::Sar& sar = change.delivered->supplementary_sar();
      if (!absl::c_linear_search(r.supplementary_sar_ids(), sar.sar_id())) {
        r.add_supplementary_sar_ids(sar.sar_id());
        *r.mutable_package()->add_supplementary_sars() = sar;
      }
    }
    r.set_iopc_mode(folded.iopc_mode());
    if (!folded.linked_referral_id().empty()) r.set_linked_referral_id(folded.linked_referral_id());
    // The organisations it shares a subject with: those the package named when it came, and
    // those later flags named.
    std::set<std::string> with(r.package().deconfliction_with().begin(),
                               r.package().deconfliction_with().end());
    with.insert(folded.deconfliction_with().begin(), folded.deconfliction_with().end());
    r.clear_deconfliction_with();
    for (const std::string& org : with) r.add_deconfliction_with(org);
    RETURN_IF_ERROR(SaveReferral(txn, r, clock.Now()));
    if (change.copy != nullptr) *change.copy = r;
    return absl::OkStatus();
  };
}

absl::StatusOr<bool> HasReferral(Txn& txn, const std::string& referral_id) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT 1 FROM referrals WHERE referral_id = ?", {referral_id}));
  return !rows.empty();
}

absl::Status SaveReferral(Txn& txn, v1::Referral& r, absl::Time now) {
  *r.mutable_updated_at() = ToProto(now);
  ASSIGN_OR_RETURN(Blob sealed, SealProto(txn, kColumn, r.referral_id(), r));
  return txn.Exec(
      "INSERT INTO referrals (referral_id, sar_id, organisation, state, due_at, created_at, "
      "updated_at, referral) VALUES (?,?,?,?,?,?,?,?) "
      "ON CONFLICT (referral_id) DO UPDATE SET state = excluded.state, due_at = excluded.due_at, "
      "organisation = excluded.organisation, updated_at = excluded.updated_at, "
      "referral = excluded.referral",
      {r.referral_id(), r.sar_id(), r.organisation(), int64_t{r.state()},
       r.has_due_at() ? ToMicros(FromProto(r.due_at())) : int64_t{0}, ToMicros(now), ToMicros(now),
       std::move(sealed)});
}

absl::StatusOr<std::vector<v1::Referral>> ListReferrals(Txn& txn, v1::ReferralState state,
                                                        const std::string& organisation,
                                                        const Page& page) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(
          "SELECT referral_id, referral FROM referrals WHERE (? = 0 OR state = ?) AND "
          "(? = '' OR organisation = ?) ORDER BY created_at, referral_id "
          "LIMIT ? OFFSET ?",
          {int64_t{state}, int64_t{state}, organisation, organisation, page.limit, page.offset}));
  std::vector<v1::Referral> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    RETURN_IF_ERROR(UnsealProto(txn, kColumn, rows[i].Text(0), rows[i].Text(1), &out[i]));
    out[i].clear_package();
  }
  return out;
}

absl::Status ReadReferralPage(Database& db, v1::ReferralState state,
                              const std::string& organisation, int32_t page_size,
                              const std::string& page_token,
                              google::protobuf::RepeatedPtrField<v1::Referral>* referrals,
                              std::string* next_page_token) {
  ASSIGN_OR_RETURN(Page page, CheckPage(page_size, page_token));
  if (!v1::ReferralState_IsValid(state)) return FieldError("state", "is not a state");
  RETURN_IF_ERROR(CheckText("organisation", organisation, 20, false));
  return db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto list, ListReferrals(txn, state, organisation, page));
    for (auto& r : list) *referrals->Add() = std::move(r);
    *next_page_token = NextPageToken(page, list.size());
    return absl::OkStatus();
  });
}

absl::Status ReadReferralWithEvents(
    Database& db, const std::string& referral_id, v1::Referral* referral,
    google::protobuf::RepeatedPtrField<v1::LifecycleEvent>* events) {
  RETURN_IF_ERROR(CheckReferralId("referral_id", referral_id));
  return db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(*referral, LoadReferral(txn, referral_id));
    ASSIGN_OR_RETURN(auto list, EventsOf(txn, referral_id));
    for (auto& e : list) *events->Add() = std::move(e);
    return absl::OkStatus();
  });
}

absl::Status WriteReferralGauges(Database& db, absl::Time now, MetricsText& out) {
  std::vector<Row> rows;
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(rows, txn.Query("SELECT state, COUNT(*), SUM(due_at < ?) FROM referrals "
                                     "GROUP BY state",
                                     {ToMicros(now)}));
    return absl::OkStatus();
  }));
  out.Family("sarloop_referrals", "gauge", "Referrals this service holds, by state.");
  int64_t overdue = 0;
  for (const Row& r : rows) {
    const auto state = static_cast<v1::ReferralState>(r.Int(0));
    // The same label values as the NCA register's (its aggregate keys): "CLOSED_BY_FORCE".
    out.Sample("sarloop_referrals",
               Label("state", absl::StripPrefix(v1::ReferralState_Name(state), "REFERRAL_STATE_")),
               static_cast<double>(r.Int(1)));
    if (!IsTerminal(state)) overdue += r.Int(2);
  }
  out.Family("sarloop_referrals_overdue", "gauge",
             "Referrals not ended whose feedback due date has passed.");
  out.Sample("sarloop_referrals_overdue", "", static_cast<double>(overdue));
  return absl::OkStatus();
}

}  // namespace sarloop
