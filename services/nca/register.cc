#include "services/nca/register.h"

#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/referral/rules.h"
#include "common/referral/validation.h"
#include "common/server/server.h"
#include "common/server/witness.h"

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
)sql",
                                  R"sql(
CREATE TABLE entries (
  referral_id TEXT PRIMARY KEY,
  organisation TEXT NOT NULL,
  state BIGINT NOT NULL,
  dispatched_at BIGINT NOT NULL,
  due_at BIGINT NOT NULL,
  outcome_type BIGINT NOT NULL,
  handed_over BIGINT NOT NULL,
  assistance_declines BIGINT NOT NULL,
  reminders BIGINT NOT NULL,
  escalated BIGINT NOT NULL,
  entry BYTEA NOT NULL
);
CREATE INDEX entries_by_org ON entries (organisation, state);
CREATE INDEX entries_by_due ON entries (due_at);
)sql"},
                                 // Every change to an entry takes the next seq, so the aggregate
                                 // index can catch up by reading only what changed.
                                 {"register entry change sequence", R"sql(
ALTER TABLE entries ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX entries_by_seq ON entries (seq);
)sql",
                                  R"sql(
ALTER TABLE entries ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX entries_by_seq ON entries (seq);
)sql"},
                                 // The lists page in dispatch order, and the overdue list reads
                                 // only open referrals, so neither scans the whole register.
                                 {"register list indexes", R"sql(
CREATE INDEX entries_by_org_dispatched ON entries (organisation, dispatched_at, referral_id);
CREATE INDEX entries_by_dispatched ON entries (dispatched_at, referral_id);
CREATE INDEX entries_open_by_due ON entries (due_at, referral_id)
  WHERE (state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8);
CREATE INDEX entries_open_by_org_due ON entries (organisation, due_at, referral_id)
  WHERE (state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8);
)sql",
                                  // The same in both dialects.
                                  R"sql(
CREATE INDEX entries_by_org_dispatched ON entries (organisation, dispatched_at, referral_id);
CREATE INDEX entries_by_dispatched ON entries (dispatched_at, referral_id);
CREATE INDEX entries_open_by_due ON entries (due_at, referral_id)
  WHERE (state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8);
CREATE INDEX entries_open_by_org_due ON entries (organisation, due_at, referral_id)
  WHERE (state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8);
)sql"},
                                 kHeldEventsMigration,
                                 kRequestDigestMigration,
                                 kWitnessMigration,
                                 // DISMISSED (5) is read as a misconduct hearing (4) that
                                 // dismissed; the outcome column the aggregates read follows.
                                 {"outcome tracks: DISMISSED read as a hearing",
                                  "UPDATE entries SET outcome_type = 4 WHERE outcome_type = 5;",
                                  "UPDATE entries SET outcome_type = 4 WHERE outcome_type = 5;"},
                                 // Events addressed to a person (LifecycleEvent.
                                 // addressee_identity), by addressee; the events stored before
                                 // it are indexed once, at the first catch-up (pending row).
                                 {"notices by addressee", R"sql(
CREATE TABLE notices (
  event_id TEXT PRIMARY KEY,
  addressee TEXT NOT NULL,
  occurred_at INTEGER NOT NULL
);
CREATE INDEX notices_by_addressee ON notices (addressee, occurred_at, event_id);
CREATE TABLE notices_backfill (pending INTEGER NOT NULL);
INSERT INTO notices_backfill VALUES (1);
)sql",
                                  R"sql(
CREATE TABLE notices (
  event_id TEXT PRIMARY KEY,
  addressee TEXT NOT NULL,
  occurred_at BIGINT NOT NULL
);
CREATE INDEX notices_by_addressee ON notices (addressee, occurred_at, event_id);
CREATE TABLE notices_backfill (pending INTEGER NOT NULL);
INSERT INTO notices_backfill VALUES (1);
)sql"},
                                 kFeedMigration,
                                 kMessagingIndexesMigration,
                                 // Entries changed before the change sequence all have seq 0:
                                 // the catch-up pages by (seq, referral_id), so a page boundary
                                 // among them skips none.
                                 {"register entries by seq and id",
                                  "CREATE INDEX entries_by_seq_id ON entries (seq, referral_id);"
                                  "DROP INDEX entries_by_seq;",
                                  "CREATE INDEX entries_by_seq_id ON entries (seq, referral_id);"
                                  "DROP INDEX entries_by_seq;"},
                                 kInboxBySenderMigration};

// Indexes an event addressed to a person (an escalation, a regulation 19 report, a declined
// assistance for review) under that person.
absl::Status SaveNotice(Txn& txn, const v1::LifecycleEvent& event) {
  if (event.addressee_identity().empty()) return absl::OkStatus();
  return txn.Exec(
      "INSERT INTO notices (event_id, addressee, occurred_at) VALUES (?,?,?) "
      "ON CONFLICT (event_id) DO NOTHING",
      {event.event_id(), event.addressee_identity(), ToMicros(FromProto(event.occurred_at()))});
}

// A referral is overdue when its due date has passed and it has neither feedback nor has ended
// by withdrawal or redirection (kOpenStatesSql, the partial indexes' WHERE above).
static_assert(std::string_view(kOpenStatesSql) ==
                  "(state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8)",
              "the register's partial indexes must list the open states");

// The due time the overdue list orders and filters by: the running clock's (clocks.h), or, for an
// entry folded before staged clocks, the dispatch's due date; 0 once nothing is due.
int64_t NextDueMicros(const v1::RegisterEntry& e) {
  if (e.has_next_due_at()) return ToMicros(FromProto(e.next_due_at()));
  if (e.has_decision_paused_since()) return 0;  // paused: nothing is due
  if (e.clock_stage() == v1::CLOCK_STAGE_NONE && e.has_received_at()) return 0;
  return e.has_due_at() ? ToMicros(FromProto(e.due_at())) : int64_t{0};
}

// A stored entry, read in today's outcome vocabulary (entries stored before tracks included).
absl::Status ParseEntry(const std::string& stored, v1::RegisterEntry& entry) {
  if (!entry.ParseFromString(stored)) {
    return absl::DataLossError("stored register entry does not parse");
  }
  UpgradeStoredOutcomes(*entry.mutable_outcome(), *entry.mutable_tracks());
  if (entry.outcome().type() == v1::OUTCOME_TYPE_UNSPECIFIED) entry.clear_outcome();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::RegisterEntry>> ParseEntries(const std::vector<Row>& rows) {
  std::vector<v1::RegisterEntry> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) RETURN_IF_ERROR(ParseEntry(rows[i].Text(0), out[i]));
  return out;
}

}  // namespace

std::span<const Migration> RegisterMigrations() { return kMigrations; }

std::vector<Migration> RegisterSchema() {
  return ServiceMigrations(RegisterMigrations().first(kRegisterMigrationsBeforeAudit),
                           RegisterMigrations().subspan(kRegisterMigrationsBeforeAudit));
}

Register::Register(Database& db, const ReferenceData& reference, Clock& clock)
    : db_(db),
      outbox_(db, nullptr),
      mirror_(
          referral::Receiver{kRegisterCode, false, true}, outbox_,
          [this](Txn& txn, const v1::RegisterEntry& folded, const referral::Change& change) {
            if (change.event != nullptr) RETURN_IF_ERROR(SaveNotice(txn, *change.event));
            return SaveEntry(txn, folded);
          },
          clock),
      index_(std::make_unique<AggregateIndex>(reference)) {}

absl::Status Register::Receive(Txn& txn, const Identity& peer, const v1::LifecycleEvent& event) {
  // Replicas sharing the register (PostgreSQL) apply events one transaction at a time, until
  // commit. Taken before the event is stored and the referral's events read back: otherwise two
  // replicas applying two events of one referral at once would each fold without the other's,
  // and the entry would miss one. It also makes seq order commit order, so a catch-up that has
  // read up to some seq never misses a lower one committed later.
  RETURN_IF_ERROR(txn.Serialize(kGlobalOrder));
  v1::Envelope envelope;
  envelope.set_message_id(event.event_id());
  *envelope.mutable_event() = event;
  return mirror_.Receive(txn, peer, envelope).status();
}

absl::Status Register::ApplyTrusted(Txn& txn, const v1::LifecycleEvent& event) {
  RETURN_IF_ERROR(txn.Serialize(kGlobalOrder));
  ASSIGN_OR_RETURN(bool is_new, AppendEvent(txn, event));
  if (!is_new) return absl::OkStatus();
  RETURN_IF_ERROR(SaveNotice(txn, event));
  ASSIGN_OR_RETURN(auto events, EventsOf(txn, event.referral_id()));
  return SaveEntry(txn, Fold(events));
}

absl::Status Register::SaveEntry(Txn& txn, const v1::RegisterEntry& e) {
  // Read apart from the insert: a subquery on the table being inserted into would make SQLite
  // copy its result through a temporary table on every event.
  ASSIGN_OR_RETURN(auto next, txn.Query("SELECT COALESCE(MAX(seq), 0) + 1 FROM entries"));
  return txn.Exec(
      "INSERT INTO entries (referral_id, organisation, state, dispatched_at, due_at, "
      "outcome_type, handed_over, assistance_declines, reminders, escalated, entry, seq) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (referral_id) DO UPDATE SET "
      "organisation = excluded.organisation, state = excluded.state, "
      "dispatched_at = excluded.dispatched_at, due_at = excluded.due_at, "
      "outcome_type = excluded.outcome_type, handed_over = excluded.handed_over, "
      "assistance_declines = excluded.assistance_declines, reminders = excluded.reminders, "
      "escalated = excluded.escalated, entry = excluded.entry, seq = excluded.seq",
      {e.referral_id(), e.organisation(), int64_t{e.state()},
       e.has_dispatched_at() ? ToMicros(FromProto(e.dispatched_at())) : int64_t{0},
       NextDueMicros(e), int64_t{e.outcome().type()}, int64_t{!e.unit().empty()},
       int64_t{e.assistance_declines()}, int64_t{e.reminders()}, int64_t{e.escalated()},
       Blob{e.SerializeAsString()}, next[0].Int(0)});
}

absl::Status Register::Changes(int64_t after, int limit,
                               std::vector<std::pair<int64_t, v1::RegisterChange>>& out) {
  return db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<FeedItem> items, ReadFeed(txn, after, limit));
    out.reserve(items.size());
    for (FeedItem& item : items) {
      v1::RegisterChange change;
      *change.mutable_recorded_at() = ToProto(item.recorded_at);
      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT entry FROM entries WHERE referral_id = ?",
                                            {item.event.referral_id()}));
      if (!rows.empty()) RETURN_IF_ERROR(ParseEntry(rows[0].Text(0), *change.mutable_entry()));
      *change.mutable_event() = std::move(item.event);
      out.emplace_back(item.seq, std::move(change));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> Register::FeedHead() {
  int64_t head = 0;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(head, sarloop::FeedHead(txn));
    return absl::OkStatus();
  }));
  return head;
}

absl::StatusOr<v1::GetTimelineResponse> Register::Timeline(const std::string& referral_id) {
  RETURN_IF_ERROR(CheckReferralId("referral_id", referral_id));
  v1::GetTimelineResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows,
                     txn.Query("SELECT entry FROM entries WHERE referral_id = ?", {referral_id}));
    if (rows.empty()) {
      return ResourceNotFound("referral", referral_id,
                              "referral_id: no such referral in the register");
    }
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
  // Only the conditions asked for, so SQLite can walk an index in dispatch order and stop at
  // the page's end.
  std::string where = "dispatched_at >= ? AND dispatched_at < ?";
  std::vector<SqlValue> params = {from, to};
  if (!request.organisation().empty()) {
    where += " AND organisation = ?";
    params.push_back(request.organisation());
  }
  if (request.state() != v1::REFERRAL_STATE_UNSPECIFIED) {
    where += " AND state = ?";
    params.push_back(int64_t{request.state()});
  }
  if (request.assistance_declined()) where += " AND assistance_declines > 0";
  params.push_back(page.limit);
  params.push_back(page.offset);
  v1::ListRegisterResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query(absl::StrCat("SELECT entry FROM entries WHERE ", where,
                                                       " ORDER BY dispatched_at DESC, "
                                                       "referral_id DESC LIMIT ? OFFSET ?"),
                                          std::move(params)));
    ASSIGN_OR_RETURN(auto entries, ParseEntries(rows));
    for (auto& e : entries) *response.add_entries() = std::move(e);
    response.set_next_page_token(NextPageToken(page, entries.size()));
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<v1::ListEscalationsResponse> Register::EscalationsFor(
    const std::string& identity, const v1::ListEscalationsRequest& request) {
  ASSIGN_OR_RETURN(Page page, CheckPage(request.page_size(), request.page_token()));
  v1::ListEscalationsResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows,
                     txn.Query("SELECT e.event, n.entry FROM notices o "
                               "JOIN events e ON e.event_id = o.event_id "
                               "JOIN entries n ON n.referral_id = e.referral_id "
                               "WHERE o.addressee = ? ORDER BY o.occurred_at, o.event_id "
                               "LIMIT ? OFFSET ?",
                               {identity, page.limit, page.offset}));
    for (const Row& row : rows) {
      v1::EscalationNotice* notice = response.add_notices();
      if (!notice->mutable_event()->ParseFromString(row.Text(0))) {
        return absl::DataLossError("stored event does not parse");
      }
      RETURN_IF_ERROR(ParseEntry(row.Text(1), *notice->mutable_entry()));
    }
    return absl::OkStatus();
  }));
  response.set_next_page_token(NextPageToken(page, response.notices_size()));
  return response;
}

absl::Status Register::IndexEarlierNotices() {
  return db_.Transact([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto pending, txn.Query("SELECT pending FROM notices_backfill"));
    if (pending.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT event FROM events"));
    v1::LifecycleEvent event;
    for (const Row& row : rows) {
      if (!event.ParseFromString(row.Text(0))) {
        return absl::DataLossError("stored event does not parse");
      }
      RETURN_IF_ERROR(SaveNotice(txn, event));
    }
    return txn.Exec("DELETE FROM notices_backfill");
  });
}

absl::StatusOr<v1::ListOverdueResponse> Register::Overdue(const v1::ListOverdueRequest& request,
                                                          absl::Time now) {
  ASSIGN_OR_RETURN(Page page, CheckPage(request.page_size(), request.page_token()));
  const int64_t as_of = ToMicros(request.has_as_of() ? FromProto(request.as_of()) : now);
  std::string sql = absl::StrCat("SELECT entry FROM entries WHERE due_at > 0 AND due_at <= ? AND ",
                                 kOpenStatesSql);
  std::vector<SqlValue> params = {as_of};
  if (!request.organisation().empty()) {
    sql += " AND organisation = ?";
    params.push_back(request.organisation());
  }
  sql += " ORDER BY due_at, referral_id LIMIT ? OFFSET ?";
  params.push_back(page.limit);
  params.push_back(page.offset);
  v1::ListOverdueResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query(sql, std::move(params)));
    ASSIGN_OR_RETURN(auto entries, ParseEntries(rows));
    for (auto& e : entries) *response.add_entries() = std::move(e);
    response.set_next_page_token(NextPageToken(page, entries.size()));
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<v1::GetSummaryResponse> Register::Summary(absl::Time as_of) {
  // The per-organisation summary is one aggregate query (organisation), read off the index.
  v1::GetAggregatesRequest request;
  request.add_group_by(v1::DIMENSION_ORGANISATION);
  *request.mutable_as_of() = ToProto(as_of);
  ASSIGN_OR_RETURN(v1::GetAggregatesResponse aggregates, Aggregates(request, as_of, 1));
  v1::GetSummaryResponse response;
  *response.mutable_as_of() = ToProto(as_of);
  auto fill = [](const std::string& org, const v1::Measures& m, v1::OrganisationSummary* s) {
    auto n = [](int64_t v) { return static_cast<int32_t>(v); };
    s->set_organisation(org);
    s->set_referred(n(m.referred()));
    s->set_feedback_received(n(m.feedback_received()));
    s->set_declined_by_force(n(m.declined_by_force()));
    s->set_withdrawn(n(m.withdrawn()));
    s->set_redirected(n(m.redirected()));
    s->set_open(n(m.open()));
    s->set_handed_over(n(m.handed_over()));
    s->set_assistance_declined(n(m.assistance_declined()));
    s->set_overdue(n(m.overdue()));
    s->set_escalated(n(m.escalated()));
    s->set_reminded(n(m.reminded()));
    for (const v1::OutcomeTally& t : m.outcomes()) {
      if (t.type() == v1::OUTCOME_TYPE_UNSPECIFIED) continue;
      auto* oc = s->add_outcomes();
      oc->set_type(t.type());
      oc->set_count(n(t.count()));
    }
  };
  for (const v1::AggregateGroup& g : aggregates.groups()) {
    fill(g.key(0), g.measures(), response.add_organisations());
  }
  fill("ALL", aggregates.total(), response.mutable_total());
  return response;
}

absl::Status Register::CatchUp() {
  WriterMutexLock lock(&index_mu_);
  if (!notices_indexed_) {
    RETURN_IF_ERROR(IndexEarlierNotices());
    notices_indexed_ = true;
  }
  // In pages, so a first catch-up over millions of entries does not hold them all at once.
  for (;;) {
    size_t read = 0;
    RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
      index_mu_.AssertHeld();  // Read runs it on this thread, which holds it
      ASSIGN_OR_RETURN(auto rows,
                       txn.Query("SELECT entry, seq, referral_id FROM entries WHERE "
                                 "(seq, referral_id) > (?, ?) ORDER BY seq, referral_id LIMIT ?",
                                 {indexed_seq_, indexed_id_, int64_t{kCatchUpPage}}));
      v1::RegisterEntry entry;
      for (const Row& r : rows) {
        RETURN_IF_ERROR(ParseEntry(r.Text(0), entry));
        index_->Upsert(entry);
        indexed_seq_ = r.Int(1);
        indexed_id_ = r.Text(2);
      }
      read = rows.size();
      return absl::OkStatus();
    }));
    if (read < kCatchUpPage) break;
  }
  index_->Cluster();
  return absl::OkStatus();
}

absl::StatusOr<v1::GetAggregatesResponse> Register::Aggregates(
    const v1::GetAggregatesRequest& request, absl::Time now, int min_count) {
  if (request.min_count() < 0 || request.min_count() > 1000) {
    return FieldError("min_count", "must be 0 (the configured minimum) to 1000");
  }
  RETURN_IF_ERROR(CatchUp());
  ReaderMutexLock lock(&index_mu_);
  return index_->Query(request, request.has_as_of() ? FromProto(request.as_of()) : now,
                       std::max(min_count, request.min_count()));
}

}  // namespace sarloop::nca
