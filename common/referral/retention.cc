#include "common/referral/retention.h"

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/referral/lifecycle.h"
#include "common/security/audit.h"

namespace sarloop {
namespace {

constexpr const char* kEnded = kTerminalStatesSql;

absl::StatusOr<bool> HasTable(Txn& txn, const char* table) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                        "name = ?",
                                        {std::string(table)}));
  return !rows.empty();
}

}  // namespace

std::string PurgeReport::Summary() const {
  return absl::StrCat("ended before ", absl::FormatTime("%Y-%m-%d", cutoff, absl::UTCTimeZone()),
                      ": ", referrals, " referrals, ", events, " events, ", messages,
                      " thread messages, ", sars, " SARs, ", outbox, " outbox messages, ", replies,
                      " stored replies, ", received, " records of messages received, ", held,
                      " events held for what never came deleted");
}

absl::Time RetentionCutoff(absl::Time now, int years) {
  const absl::CivilSecond civil = absl::ToCivilSecond(now, absl::UTCTimeZone());
  return absl::FromCivil(absl::CivilSecond(civil.year() - years, civil.month(), civil.day(),
                                           civil.hour(), civil.minute(), civil.second()),
                         absl::UTCTimeZone());
}

absl::StatusOr<PurgeReport> PurgeEnded(Database& db, absl::Time now, int years,
                                       const std::string& actor) {
  if (years < 1) return FieldError("retention_years", "must be at least 1");
  PurgeReport report;
  report.cutoff = RetentionCutoff(now, years);
  const int64_t cutoff = ToMicros(report.cutoff);
  RETURN_IF_ERROR(db.Transact([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(bool referrals, HasTable(txn, "referrals"));
    ASSIGN_OR_RETURN(bool events, HasTable(txn, "events"));
    if (referrals) {
      const std::string ended = absl::StrCat("SELECT referral_id FROM referrals WHERE state IN ",
                                             kEnded, " AND updated_at < ?");
      ASSIGN_OR_RETURN(bool feed, HasTable(txn, "feed"));
      if (feed) {
        RETURN_IF_ERROR(txn.Exec(
            absl::StrCat("DELETE FROM feed WHERE referral_id IN (", ended, ")"), {cutoff}));
      }
      if (events) {
        RETURN_IF_ERROR(txn.Exec(
            absl::StrCat("DELETE FROM events WHERE referral_id IN (", ended, ")"), {cutoff}));
        report.events = txn.Changes();
      }
      // The requests for information and their answers hold what was asked and told about the
      // referral: they go with it.
      ASSIGN_OR_RETURN(bool threads, HasTable(txn, "thread_messages"));
      if (threads) {
        RETURN_IF_ERROR(
            txn.Exec(absl::StrCat("DELETE FROM thread_messages WHERE referral_id IN (", ended, ")"),
                     {cutoff}));
        report.messages = txn.Changes();
      }
      RETURN_IF_ERROR(txn.Exec(
          absl::StrCat("DELETE FROM referrals WHERE state IN ", kEnded, " AND updated_at < ?"),
          {cutoff}));
      report.referrals = txn.Changes();
    }
    ASSIGN_OR_RETURN(bool sars, HasTable(txn, "sars"));
    if (sars) {
      const char* orphan =
          "submitted_at < ? AND NOT EXISTS (SELECT 1 FROM referrals r WHERE r.sar_id = "
          "sars.sar_id)";
      RETURN_IF_ERROR(txn.Exec(absl::StrCat("DELETE FROM sar_subjects WHERE sar_id IN (SELECT "
                                            "sar_id FROM sars WHERE ",
                                            orphan, ")"),
                               {cutoff}));
      RETURN_IF_ERROR(txn.Exec(absl::StrCat("DELETE FROM sars WHERE ", orphan), {cutoff}));
      report.sars = txn.Changes();
    }
    RETURN_IF_ERROR(txn.Exec("DELETE FROM outbox WHERE status != 0 AND done_at < ?", {cutoff}));
    report.outbox = txn.Changes();
    RETURN_IF_ERROR(txn.Exec("DELETE FROM idempotency WHERE created_at < ?", {cutoff}));
    report.replies = txn.Changes();
    RETURN_IF_ERROR(txn.Exec("DELETE FROM inbox_seen WHERE received_at < ?", {cutoff}));
    report.received = txn.Changes();
    ASSIGN_OR_RETURN(bool held, HasTable(txn, "held_events"));
    if (held) {
      RETURN_IF_ERROR(txn.Exec("DELETE FROM held_events WHERE received_at < ?", {cutoff}));
      report.held = txn.Changes();
    }
    AuditEntry entry;
    entry.at = now;
    entry.identity = actor;
    entry.method = "retention.purge";
    entry.detail = report.Summary();
    return AppendAudit(txn, entry);
  }));
  return report;
}

std::function<absl::StatusOr<std::string>(absl::Time now, int years)> RetentionJob(Database& db) {
  return [&db](absl::Time now, int years) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(PurgeReport report, PurgeEnded(db, now, years, "sarloop/retention"));
    if (report.referrals + report.messages + report.sars + report.outbox + report.replies +
            report.received + report.held ==
        0) {
      return "";
    }
    return report.Summary();
  };
}

}  // namespace sarloop
