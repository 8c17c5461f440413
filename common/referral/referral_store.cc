#include "common/referral/referral_store.h"

#include <limits>
#include <set>

#include "absl/algorithm/container.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/referral/sealed_columns.h"
#include "common/security/sealed.h"
#include "common/security/token.h"

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

// The partial index's WHERE and the query's are the same text (kOpenStatesSql), which is how
// SQLite knows the index holds every row the query can want. Literals, not built from it at start:
// other files' migration lists copy them while static objects are constructed. The first index
// listed the ended states with NOT IN; the next migration replaces it (see kOpenStatesSql).
const Migration kOpenReferralsMigration = {"referrals: the open ones by due time", R"sql(
CREATE INDEX referrals_open_by_due ON referrals (due_at) WHERE state NOT IN (5, 6, 9, 10, 11);
)sql"};
static_assert(std::string_view(kOpenStatesSql) ==
                  "(state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8)",
              "the index below must list the open states");
const Migration kOpenReferralsByRangeMigration = {
    "referrals: the open ones by due time, chosen by ranges of states", R"sql(
DROP INDEX referrals_open_by_due;
CREATE INDEX referrals_open_by_due ON referrals (due_at)
  WHERE (state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8);
)sql"};

// The gauges are read at every metrics scrape: the counts by state from the state index alone,
// and the overdue ones from the open referrals' index, never the rows with their packages. That
// index is named: without statistics the planner prefers two range scans of the state index for
// the open states' ORs, which then read every open row; and a schema change that loses the index
// should fail these statements, not slow them.
const char kReferralsByStateSql[] = "SELECT state, COUNT(*) FROM referrals GROUP BY state";
std::string OverdueReferralsSql() {
  return absl::StrCat("SELECT COUNT(*) FROM referrals INDEXED BY referrals_open_by_due WHERE ",
                      kOpenStatesSql, " AND due_at > 0 AND due_at <= ?");
}

std::string OpenReferralIdsByDueSql() {
  return absl::StrCat("SELECT referral_id FROM referrals INDEXED BY referrals_open_by_due WHERE ",
                      kOpenStatesSql, " ORDER BY due_at");
}

absl::StatusOr<std::vector<std::string>> OpenReferralIdsByDue(Txn& txn) {
  ASSIGN_OR_RETURN(auto rows, txn.Query(OpenReferralIdsByDueSql()));
  std::vector<std::string> ids;
  ids.reserve(rows.size());
  for (const Row& r : rows) ids.push_back(r.Text(0));
  return ids;
}

namespace {
// The referral with its package: sealed (see common/security/sealed.h).
constexpr absl::string_view kColumn = kReferralColumn;
}  // namespace

absl::StatusOr<v1::Referral> LoadReferral(Txn& txn, const std::string& referral_id) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT referral FROM referrals WHERE referral_id = ?", {referral_id}));
  if (rows.empty()) {
    return ResourceNotFound("referral", referral_id, "referral_id: no such referral");
  }
  v1::Referral r;
  RETURN_IF_ERROR(UnsealProto(txn, kColumn, referral_id, rows[0].Text(0), &r));
  UpgradeStoredOutcomes(*r.mutable_outcome(), *r.mutable_tracks());
  if (r.outcome().type() == v1::OUTCOME_TYPE_UNSPECIFIED) r.clear_outcome();
  return r;
}

referral::SaveCopy ReferralStoreSaver(Clock& clock) {
  return [&clock](Txn& txn, const v1::RegisterEntry& folded,
                  const referral::Change& change) -> absl::Status {
    // A step's own working copy is changed in place, not copied and copied back.
    v1::Referral loaded;
    v1::Referral& r = change.copy != nullptr ? *change.copy : loaded;
    if (change.copy == nullptr && change.delivered != nullptr && change.delivered->has_package()) {
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
    } else if (change.copy == nullptr) {
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
    return SaveReferral(txn, r, clock.Now());
  };
}

absl::StatusOr<bool> HasReferral(Txn& txn, const std::string& referral_id) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT 1 FROM referrals WHERE referral_id = ?", {referral_id}));
  return !rows.empty();
}

namespace {
// What the open referrals' index orders and the overdue gauge counts by: what the referral's
// running clock has due next (clocks.h), not the dispatch's due date, which an investigation
// reporting progress on time is long past; never due while the decision clock is paused.
int64_t IndexedDueMicros(const v1::Referral& r) {
  if (r.decision_clock_paused()) return std::numeric_limits<int64_t>::max();
  if (r.has_next_due_at()) return ToMicros(FromProto(r.next_due_at()));
  return r.has_due_at() ? ToMicros(FromProto(r.due_at())) : int64_t{0};
}
}  // namespace

absl::Status SaveReferral(Txn& txn, v1::Referral& r, absl::Time now) {
  *r.mutable_updated_at() = ToProto(now);
  ASSIGN_OR_RETURN(Blob sealed, SealProto(txn, kColumn, r.referral_id(), r));
  return txn.Exec(
      "INSERT INTO referrals (referral_id, sar_id, organisation, state, due_at, created_at, "
      "updated_at, referral) VALUES (?,?,?,?,?,?,?,?) "
      "ON CONFLICT (referral_id) DO UPDATE SET state = excluded.state, due_at = excluded.due_at, "
      "organisation = excluded.organisation, updated_at = excluded.updated_at, "
      "referral = excluded.referral",
      {r.referral_id(), r.sar_id(), r.organisation(), int64_t{r.state()}, IndexedDueMicros(r),
       ToMicros(now), ToMicros(now), std::move(sealed)});
}

bool IsOverdue(const v1::Referral& r, absl::Time now) {
  if (IsTerminal(r.state()) || r.decision_clock_paused()) return false;
  if (r.has_next_due_at()) return FromProto(r.next_due_at()) <= now;
  return r.has_due_at() && FromProto(r.due_at()) <= now;
}

namespace {

constexpr absl::string_view kPageKind = "referral-page";
// Rows a call examines at most: a sparse filter over a long list answers with a short page and a
// token rather than reading the whole table in one call.
constexpr int kMaxExamined = 5000;

// The query a token is bound to, canonically.
std::string QueryKey(const ReferralListQuery& q) {
  std::set<int> states(q.states.begin(), q.states.end());
  return absl::StrCat("states=", absl::StrJoin(states, ","), ";org=", q.organisation,
                      ";overdue=", q.overdue, ";escalated=", q.escalated,
                      ";order=", q.newest_first ? "desc" : "asc");
}

}  // namespace

absl::StatusOr<ReferralListQuery> StatesQuery(v1::ReferralState state,
                                              const google::protobuf::RepeatedField<int>& states,
                                              bool needs_action,
                                              const std::vector<v1::ReferralState>& action_states) {
  ReferralListQuery query;
  if (!v1::ReferralState_IsValid(state)) return FieldError("state", "is not a state");
  // Each state once: the list becomes one SQL parameter per entry, and a request may repeat one
  // a million times over.
  constexpr int kMostStates = 32;
  if (states.size() > kMostStates) {
    return FieldError("states", absl::StrCat("lists ", states.size(), " states; at most ",
                                             kMostStates, ", each state once"));
  }
  std::set<int> distinct;
  if (state != v1::REFERRAL_STATE_UNSPECIFIED) distinct.insert(state);
  for (int i = 0; i < states.size(); ++i) {
    if (!v1::ReferralState_IsValid(states[i]) || states[i] == v1::REFERRAL_STATE_UNSPECIFIED) {
      return FieldError(absl::StrCat("states[", i, "]"), "is not a state");
    }
    distinct.insert(states[i]);
  }
  for (int s : distinct) query.states.push_back(static_cast<v1::ReferralState>(s));
  if (needs_action) {
    if (query.states.empty()) {
      query.states = action_states;
    } else {
      std::vector<v1::ReferralState> both;
      for (v1::ReferralState s : query.states) {
        if (absl::c_linear_search(action_states, s)) both.push_back(s);
      }
      query.empty = both.empty();
      query.states = std::move(both);
    }
  }
  return query;
}

absl::Status ReadReferralPage(Database& db, const ReferralListQuery& query, absl::Time now,
                              int32_t page_size, const std::string& page_token,
                              google::protobuf::RepeatedPtrField<v1::Referral>* referrals,
                              std::string* next_page_token) {
  if (page_size < 0 || page_size > 1000) return FieldError("page_size", "must be 0 to 1000");
  const int limit = page_size == 0 ? 100 : page_size;
  for (v1::ReferralState state : query.states) {
    if (!v1::ReferralState_IsValid(state) || state == v1::REFERRAL_STATE_UNSPECIFIED) {
      return FieldError("states", "is not a state");
    }
  }
  RETURN_IF_ERROR(CheckText("organisation", query.organisation, 20, false));
  if (query.empty) {
    next_page_token->clear();
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const TokenSigner> signer, TokenSigner::ForDatabase(db));
  const std::string key = QueryKey(query);
  // The cursor: the (created_at, referral_id) of the last referral examined.
  bool resume = false;
  int64_t after_created = 0;
  std::string after_id;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(std::string payload, signer->Open("page_token", kPageKind, key, page_token));
    const size_t colon = payload.find(':');
    if (colon == std::string::npos || !absl::SimpleAtoi(payload.substr(0, colon), &after_created)) {
      return FieldError("page_token", "is not a token this service issued");
    }
    after_id = payload.substr(colon + 1);
    resume = true;
  }
  std::string sql = "SELECT referral_id, referral, created_at FROM referrals WHERE 1 = 1";
  std::vector<SqlValue> params;
  if (!query.states.empty()) {
    absl::StrAppend(&sql, " AND state IN (");
    for (size_t i = 0; i < query.states.size(); ++i) {
      absl::StrAppend(&sql, i == 0 ? "?" : ",?");
      params.push_back(int64_t{query.states[i]});
    }
    absl::StrAppend(&sql, ")");
  }
  if (!query.organisation.empty()) {
    absl::StrAppend(&sql, " AND organisation = ?");
    params.push_back(query.organisation);
  }
  const char* cmp = query.newest_first ? "<" : ">";
  const char* dir = query.newest_first ? "DESC" : "ASC";
  const size_t fixed = params.size();
  const std::string after_clause =
      absl::StrCat(" AND (created_at ", cmp, " ? OR (created_at = ? AND referral_id ", cmp, " ?))");
  const std::string order =
      absl::StrCat(" ORDER BY created_at ", dir, ", referral_id ", dir, " LIMIT ?");
  return db.Read([&](Txn& txn) -> absl::Status {
    int examined = 0;
    bool more = true;
    // Read in chunks until the page is full, the list ends, or the examination budget is spent.
    while (referrals->size() < limit && more && examined < kMaxExamined) {
      std::vector<SqlValue> p(params.begin(), params.begin() + fixed);
      std::string chunk_sql = sql;
      if (resume) {
        absl::StrAppend(&chunk_sql, after_clause);
        p.push_back(after_created);
        p.push_back(after_created);
        p.push_back(after_id);
      }
      const int64_t chunk = std::max(limit * 2, 64);
      absl::StrAppend(&chunk_sql, order);
      p.push_back(chunk);
      ASSIGN_OR_RETURN(auto rows, txn.Query(chunk_sql, std::move(p)));
      more = static_cast<int64_t>(rows.size()) == chunk;
      size_t i = 0;
      for (; i < rows.size() && referrals->size() < limit; ++i) {
        ++examined;
        after_created = rows[i].Int(2);
        after_id = rows[i].Text(0);
        resume = true;
        v1::Referral r;
        RETURN_IF_ERROR(UnsealProto(txn, kColumn, rows[i].Text(0), rows[i].Text(1), &r));
        r.clear_package();
        r.set_overdue(IsOverdue(r, now));
        if ((query.overdue && !r.overdue()) || (query.escalated && !r.escalated())) continue;
        *referrals->Add() = std::move(r);
      }
      // Rows of this chunk left unexamined mean there is more after the cursor.
      if (i < rows.size()) more = true;
    }
    next_page_token->clear();
    if (more && resume) {
      *next_page_token = signer->Sign(kPageKind, key, absl::StrCat(after_created, ":", after_id));
    }
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
  std::vector<Row> rows, overdue_rows;
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(rows, txn.Query(kReferralsByStateSql));
    ASSIGN_OR_RETURN(overdue_rows, txn.Query(OverdueReferralsSql(), {ToMicros(now)}));
    return absl::OkStatus();
  }));
  out.Family("sarloop_referrals", "gauge", "Referrals this service holds, by state.");
  for (const Row& r : rows) {
    const auto state = static_cast<v1::ReferralState>(r.Int(0));
    // The same label values as the NCA register's (its aggregate keys): "CLOSED_BY_FORCE".
    out.Sample("sarloop_referrals",
               Label("state", absl::StripPrefix(v1::ReferralState_Name(state), "REFERRAL_STATE_")),
               static_cast<double>(r.Int(1)));
  }
  const int64_t overdue = overdue_rows.empty() ? 0 : overdue_rows[0].Int(0);
  out.Family(
      "sarloop_referrals_overdue", "gauge",
      "Referrals not ended whose running clock (acknowledgement, decision or progress) is due.");
  out.Sample("sarloop_referrals_overdue", "", static_cast<double>(overdue));
  return absl::OkStatus();
}

}  // namespace sarloop
