#include "services/nca/register.h"

#include <limits>
#include <map>

#include "common/event_log.h"
#include "common/ids.h"
#include "common/lifecycle.h"
#include "common/status.h"
#include "common/validation.h"

namespace sarloop::nca {
namespace {

const Migration kMigrations[] = {kEventLogMigration,
                                 {"register entries", R"sql(
CREATE TABLE entries (
  referral_id TEXT PRIMARY KEY,
  organisation TEXT NOT NULL,
  state INTEGER NOT NULL,
  dispatched_at INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  outcome_type INTEGER NOT NULL,
  handed_over INTEGER NOT NULL,
  assistance_declines INTEGER NOT NULL,
  reminders INTEGER NOT NULL,
  escalated INTEGER NOT NULL,
  entry BLOB NOT NULL
);
CREATE INDEX entries_by_org ON entries (organisation, state);
CREATE INDEX entries_by_due ON entries (due_at);
)sql"},
                                 // Every change to an entry takes the next seq, so the aggregate
                                 // index can catch up by reading only what changed.
                                 {"register entry change sequence", R"sql(
ALTER TABLE entries ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX entries_by_seq ON entries (seq);
)sql"}};

// A referral is overdue when its due date has passed and it has neither feedback nor has ended
// by withdrawal or redirection. States 5, 6, 9, 10, 11: see ReferralState.
constexpr char kOpen[] = "state NOT IN (0, 5, 6, 9, 10, 11)";

absl::StatusOr<std::vector<v1::RegisterEntry>> ParseEntries(const std::vector<Row>& rows) {
  std::vector<v1::RegisterEntry> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!out[i].ParseFromString(rows[i].Text(0))) {
      return absl::DataLossError("stored register entry does not parse");
    }
  }
  return out;
}

}  // namespace

std::span<const Migration> RegisterMigrations() { return kMigrations; }

absl::Status Register::Apply(Txn& txn, const v1::LifecycleEvent& event) {
  ASSIGN_OR_RETURN(bool is_new, AppendEvent(txn, event));
  if (!is_new) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto events, EventsOf(txn, event.referral_id()));
  const v1::RegisterEntry e = Fold(std::move(events));
  return txn.Exec(
      "INSERT OR REPLACE INTO entries (referral_id, organisation, state, dispatched_at, due_at, "
      "outcome_type, handed_over, assistance_declines, reminders, escalated, entry, seq) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,(SELECT COALESCE(MAX(seq), 0) + 1 FROM entries))",
      {e.referral_id(), e.organisation(), int64_t{e.state()},
       e.has_dispatched_at() ? ToMicros(FromProto(e.dispatched_at())) : int64_t{0},
       e.has_due_at() ? ToMicros(FromProto(e.due_at())) : int64_t{0}, int64_t{e.outcome().type()},
       int64_t{!e.unit().empty()}, int64_t{e.assistance_declines()}, int64_t{e.reminders()},
       int64_t{e.escalated()}, Blob{e.SerializeAsString()}});
}

absl::StatusOr<v1::GetTimelineResponse> Register::Timeline(const std::string& referral_id) {
  RETURN_IF_ERROR(CheckReferralId("referral_id", referral_id));
  v1::GetTimelineResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows,
                     txn.Query("SELECT entry FROM entries WHERE referral_id = ?", {referral_id}));
    if (rows.empty()) return absl::NotFoundError("referral_id: no such referral in the register");
    ASSIGN_OR_RETURN(auto entries, ParseEntries(rows));
    *response.mutable_entry() = entries[0];
    ASSIGN_OR_RETURN(auto events, EventsOf(txn, referral_id));
    for (auto& e : events) *response.add_events() = std::move(e);
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<v1::ListRegisterResponse> Register::List(const v1::ListRegisterRequest& request) {
  ASSIGN_OR_RETURN(Page page, CheckPage(request.page_size(), request.page_token()));
  RETURN_IF_ERROR(CheckText("organisation", request.organisation(), 20, false));
  const int year = request.financial_year();
  if (year != 0 && (year < 1990 || year > 2200)) {
    return FieldError("financial_year", "must be a starting year from 1990 to 2200");
  }
  // [from, to) in micros; the whole range when no year is asked for.
  auto april = [](int y) {
    return ToMicros(absl::FromCivil(absl::CivilDay(y, 4, 1), absl::UTCTimeZone()));
  };
  const int64_t from = year == 0 ? std::numeric_limits<int64_t>::min() : april(year);
  const int64_t to = year == 0 ? std::numeric_limits<int64_t>::max() : april(year + 1);
  v1::ListRegisterResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query("SELECT entry FROM entries WHERE (? = '' OR organisation = ?) "
                  "AND (? = 0 OR state = ?) AND dispatched_at >= ? AND dispatched_at < ? "
                  "AND (? = 0 OR assistance_declines > 0) "
                  "ORDER BY dispatched_at DESC, referral_id LIMIT ? OFFSET ?",
                  {request.organisation(), request.organisation(), int64_t{request.state()},
                   int64_t{request.state()}, from, to, int64_t{request.assistance_declined()},
                   page.limit, page.offset}));
    ASSIGN_OR_RETURN(auto entries, ParseEntries(rows));
    for (auto& e : entries) *response.add_entries() = std::move(e);
    response.set_next_page_token(NextPageToken(page, entries.size()));
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<v1::ListOverdueResponse> Register::Overdue(const v1::ListOverdueRequest& request,
                                                          absl::Time now) {
  ASSIGN_OR_RETURN(Page page, CheckPage(request.page_size(), request.page_token()));
  const int64_t as_of = ToMicros(request.has_as_of() ? FromProto(request.as_of()) : now);
  v1::ListOverdueResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query(
            std::string("SELECT entry FROM entries WHERE due_at > 0 AND due_at < ? AND ") + kOpen +
                " AND (? = '' OR organisation = ?) ORDER BY due_at, referral_id "
                "LIMIT ? OFFSET ?",
            {as_of, request.organisation(), request.organisation(), page.limit, page.offset}));
    ASSIGN_OR_RETURN(auto entries, ParseEntries(rows));
    for (auto& e : entries) *response.add_entries() = std::move(e);
    response.set_next_page_token(NextPageToken(page, entries.size()));
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<v1::GetSummaryResponse> Register::Summary(absl::Time as_of) {
  v1::GetSummaryResponse response;
  *response.mutable_as_of() = ToProto(as_of);
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        auto rows, txn.Query(std::string("SELECT organisation, COUNT(*), SUM(state IN (5, 6, 9)), "
                                         "SUM(state = 5), SUM(state = 10), SUM(state = 11), SUM(") +
                                 kOpen +
                                 "), SUM(handed_over), SUM(assistance_declines > 0), "
                                 "SUM(due_at > 0 AND due_at < ? AND " +
                                 kOpen +
                                 "), SUM(escalated), SUM(reminders > 0) "
                                 "FROM entries GROUP BY organisation ORDER BY organisation",
                             {ToMicros(as_of)}));
    std::map<std::string, v1::OrganisationSummary*> by_org;
    v1::OrganisationSummary* total = response.mutable_total();
    total->set_organisation("ALL");
    for (const Row& r : rows) {
      v1::OrganisationSummary* s = response.add_organisations();
      s->set_organisation(r.Text(0));
      s->set_referred(r.Int(1));
      s->set_feedback_received(r.Int(2));
      s->set_declined_by_force(r.Int(3));
      s->set_withdrawn(r.Int(4));
      s->set_redirected(r.Int(5));
      s->set_open(r.Int(6));
      s->set_handed_over(r.Int(7));
      s->set_assistance_declined(r.Int(8));
      s->set_overdue(r.Int(9));
      s->set_escalated(r.Int(10));
      s->set_reminded(r.Int(11));
      by_org[s->organisation()] = s;
      total->set_referred(total->referred() + s->referred());
      total->set_feedback_received(total->feedback_received() + s->feedback_received());
      total->set_declined_by_force(total->declined_by_force() + s->declined_by_force());
      total->set_withdrawn(total->withdrawn() + s->withdrawn());
      total->set_redirected(total->redirected() + s->redirected());
      total->set_open(total->open() + s->open());
      total->set_handed_over(total->handed_over() + s->handed_over());
      total->set_assistance_declined(total->assistance_declined() + s->assistance_declined());
      total->set_overdue(total->overdue() + s->overdue());
      total->set_escalated(total->escalated() + s->escalated());
      total->set_reminded(total->reminded() + s->reminded());
    }
    ASSIGN_OR_RETURN(auto outcomes,
                     txn.Query("SELECT organisation, outcome_type, COUNT(*) FROM entries "
                               "WHERE outcome_type != 0 AND state IN (6, 9) "
                               "GROUP BY organisation, outcome_type ORDER BY 1, 2"));
    std::map<int64_t, int64_t> totals;
    for (const Row& r : outcomes) {
      auto it = by_org.find(r.Text(0));
      if (it == by_org.end()) continue;
      auto* oc = it->second->add_outcomes();
      oc->set_type(static_cast<v1::OutcomeType>(r.Int(1)));
      oc->set_count(r.Int(2));
      totals[r.Int(1)] += r.Int(2);
    }
    for (const auto& [type, count] : totals) {
      auto* oc = total->add_outcomes();
      oc->set_type(static_cast<v1::OutcomeType>(type));
      oc->set_count(count);
    }
    return absl::OkStatus();
  }));
  return response;
}

absl::Status Register::CatchUp() {
  std::unique_lock lock(index_mu_);
  // In pages, so a first catch-up over millions of entries does not hold them all at once.
  for (;;) {
    size_t read = 0;
    RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT entry, seq FROM entries WHERE seq > ? "
                                            "ORDER BY seq LIMIT 20000",
                                            {indexed_seq_}));
      v1::RegisterEntry entry;
      for (const Row& r : rows) {
        if (!entry.ParseFromString(r.Text(0))) {
          return absl::DataLossError("stored register entry does not parse");
        }
        index_->Upsert(entry);
        indexed_seq_ = r.Int(1);
      }
      read = rows.size();
      return absl::OkStatus();
    }));
    if (read < 20000) return absl::OkStatus();
  }
}

absl::StatusOr<v1::GetAggregatesResponse> Register::Aggregates(
    const v1::GetAggregatesRequest& request, absl::Time now, int min_count) {
  if (request.min_count() < 0 || request.min_count() > 1000) {
    return FieldError("min_count", "must be 0 (the configured minimum) to 1000");
  }
  RETURN_IF_ERROR(CatchUp());
  std::shared_lock lock(index_mu_);
  return index_->Query(request, request.has_as_of() ? FromProto(request.as_of()) : now,
                       std::max(min_count, request.min_count()));
}

}  // namespace sarloop::nca
