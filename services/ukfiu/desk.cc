#include "services/ukfiu/desk.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>
#include <set>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/base/crypto.h"
#include "common/base/ids.h"
#include "common/base/mutex.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/calendar.h"
#include "common/referral/clocks.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "common/referral/referral_store.h"
#include "common/referral/rules.h"
#include "common/referral/sealed_columns.h"
#include "common/referral/step.h"
#include "common/referral/validation.h"
#include "common/security/sealed.h"
#include "common/server/witness.h"
#include "spdlog/spdlog.h"

namespace sarloop::ukfiu {
namespace {

const Migration kMigrations[] = {
    kEventLogMigration, kReferralStoreMigration, {"SARs and their subjects", R"sql(
CREATE TABLE sars (
  sar_id TEXT PRIMARY KEY,
  submitted_at INTEGER NOT NULL,
  sar BLOB NOT NULL
);
CREATE TABLE sar_subjects (
  subject_ref TEXT NOT NULL,
  sar_id TEXT NOT NULL,
  PRIMARY KEY (subject_ref, sar_id)
);
CREATE INDEX sar_subjects_by_sar ON sar_subjects (sar_id);
)sql"}};
// Deconfliction looks, for each SAR about a subject, for an open referral of it. A subject can
// have hundreds of SARs, nearly all with ended referrals: with this index each costs one probe of
// the open referrals, not a read of its referral row. The first version listed the ended states
// with NOT IN; the second chooses by ranges (kOpenStatesSql), as referrals_open_by_due does.
const Migration kOpenReferralsBySarMigration = {"referrals: the open ones by SAR", R"sql(
CREATE INDEX referrals_open_by_sar ON referrals (sar_id) WHERE state NOT IN (5, 6, 9, 10, 11);
)sql"};
static_assert(std::string_view(kOpenStatesSql) ==
                  "(state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8)",
              "the index below must list the open states");
const Migration kOpenReferralsBySarByRangeMigration = {
    "referrals: the open ones by SAR, chosen by ranges of states", R"sql(
DROP INDEX referrals_open_by_sar;
CREATE INDEX referrals_open_by_sar ON referrals (sar_id)
  WHERE (state BETWEEN 1 AND 4 OR state BETWEEN 7 AND 8);
)sql"};

const Migration kMigrationsAfterAudit[] = {kHeldEventsMigration,
                                           kRequestDigestMigration,
                                           kWitnessMigration,
                                           referral::kThreadsMigration,
                                           kFeedMigration,
                                           kMessagingIndexesMigration,
                                           kOpenReferralsMigration,
                                           kOpenReferralsBySarMigration,
                                           kOpenReferralsByRangeMigration,
                                           kOpenReferralsBySarByRangeMigration,
                                           kInboxBySenderMigration};

const absl::Duration kMonth = absl::Hours(24) * 365.25 / 12;

// The SAR, with subjects and narrative: sealed (see common/security/sealed.h).

v1::Actor ServiceActor() {
  v1::Actor a;
  a.set_identity("spiffe://sarloop/ukfiu");
  a.set_user("feedback-clock");
  return a;
}

absl::StatusOr<v1::Sar> LoadSar(Txn& txn, const std::string& sar_id) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT sar FROM sars WHERE sar_id = ?", {sar_id}));
  if (rows.empty()) return absl::NotFoundError("sar_id: no such SAR");
  v1::Sar sar;
  RETURN_IF_ERROR(UnsealProto(txn, kSarColumn, sar_id, rows[0].Text(0), &sar));
  return sar;
}

absl::StatusOr<std::string> NewSarId(Txn& txn, absl::Time now) {
  return DrawUnusedId(
      txn, [now] { return NewTimeOrderedShortId("SAR-", now); },
      "SELECT 1 FROM sars WHERE sar_id = ?");
}
absl::StatusOr<std::string> NewReferralId(Txn& txn, absl::Time now) {
  return DrawUnusedId(
      txn, [now] { return NewTimeOrderedShortId("REF-", now); },
      "SELECT 1 FROM referrals WHERE referral_id = ?");
}

}  // namespace

std::span<const Migration> DeskMigrations() { return kMigrations; }
std::span<const Migration> DeskMigrationsAfterAudit() { return kMigrationsAfterAudit; }

std::string DeconflictionSql() {
  return absl::StrCat(
      "SELECT DISTINCT r.referral_id, r.organisation FROM sar_subjects a "
      "JOIN sar_subjects b ON a.subject_ref = b.subject_ref "
      "JOIN referrals r ON r.sar_id = b.sar_id "
      "WHERE a.sar_id = ? AND r.organisation != ? AND ",
      kOpenStatesSql, " ORDER BY 2, 1");
}

absl::StatusOr<std::string> DrawUnusedId(Txn& txn, const std::function<std::string()>& draw,
                                         const std::string& unused_sql) {
  for (int i = 0; i < 16; ++i) {
    std::string id = draw();
    ASSIGN_OR_RETURN(auto rows, txn.Query(unused_sql, {id}));
    if (rows.empty()) return id;
  }
  return absl::InternalError("no unused id in 16 draws");
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> OpenReferralsSharingASubject(
    Txn& txn, const std::string& sar_id, const std::string& excluding) {
  ASSIGN_OR_RETURN(auto rows, txn.Query(DeconflictionSql(), {sar_id, excluding}));
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(rows.size());
  for (const Row& row : rows) out.emplace_back(row.Text(0), row.Text(1));
  return out;
}

std::string SubjectRef(const std::string& key, const v1::Subject& subject) {
  std::vector<std::string> words =
      absl::StrSplit(absl::AsciiStrToLower(subject.full_name()), ' ', absl::SkipWhitespace());
  const std::string input = absl::StrCat(absl::StrJoin(words, " "), "|", subject.date_of_birth());
  return absl::BytesToHexString(HmacSha256(key, input));
}

Desk::Desk(Database& db, Clock& clock, const ReferenceData& reference, DeskOptions options,
           DeliveryWorker* worker, std::vector<std::string> peers)
    : db_(db),
      clock_(clock),
      reference_(reference),
      options_(std::move(options)),
      chase_{absl::Hours(24) * options_.feedback.reminder_repeat_days(),
             absl::Hours(24) * options_.feedback.grace_days(), 3},
      outbox_(db, worker, std::move(peers)),
      mirror_(referral::Receiver{referral::kUkfiuCode, false, false}, outbox_,
              ReferralStoreSaver(clock), clock),
      threads_(db, clock, mirror_),
      encoder_(NewEncoder(options_.linkage_key)) {}

std::unique_ptr<linkage::Encoder> Desk::NewEncoder(const std::string& linkage_key) {
  if (linkage_key.empty()) return nullptr;
  // The key's size is checked where it is read (the service's configuration).
  absl::StatusOr<linkage::Encoder> e = linkage::Encoder::Create(linkage_key);
  return e.ok() ? std::make_unique<linkage::Encoder>(*std::move(e)) : nullptr;
}

absl::Status Desk::CheckOrganisation(const std::string& field, const std::string& code,
                                     bool off_system) const {
  RETURN_IF_ERROR(CheckText(field, code, 20, true));
  if (!reference_.FindOrganisation(code)) {
    return FieldError(field, absl::StrCat("unknown organisation code '", code, "'"));
  }
  if (code == kRegisterCode) {
    return FieldError(field,
                      "NCA is the national register: refer the NCA's own personnel to its "
                      "professional standards unit, NCAPSU");
  }
  const bool reachable = std::find(options_.reachable.begin(), options_.reachable.end(), code) !=
                         options_.reachable.end();
  if (off_system && reachable) {
    return FieldError("off_system",
                      absl::StrCat(code, " runs sarloop: refer to it there, not on its behalf"));
  }
  if (!off_system && !reachable) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": organisation ", code,
                     " has no sarloop endpoint configured (off_system records the referral and "
                     "its replies on its behalf)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SubmitSarResponse> Desk::SubmitSar(const Call& call,
                                                      const v1::SubmitSarRequest& request) {
  ASSIGN_OR_RETURN(PreparedSar prepared, PrepareSar(request));
  return SubmitPrepared(call, request, prepared);
}

absl::StatusOr<Desk::PreparedSar> Desk::PrepareSar(const v1::SubmitSarRequest& request) {
  // Every bad field at once, so an intake system can show them all.
  Violations violations;
  violations.Add(CheckRequestId(request.request_id()));
  if (!request.has_sar()) {
    violations.Add(FieldError("sar", "is required"));
  } else {
    violations.Add(CheckSar("sar", request.sar(), clock_.Now()));
  }
  // Only the subjects CheckSar looked at (it stops past the most a SAR may name), and only codes
  // of a length it took: a request naming a million subjects is refused once, not a million times.
  const int checked = std::min(request.sar().subjects_size(), kMostSubjectsPerSar);
  for (int i = 0; i < checked; ++i) {
    const std::string& employer = request.sar().subjects(i).employer_code();
    if (!employer.empty() && employer.size() <= 10 && !reference_.FindOrganisation(employer)) {
      violations.Add(FieldError(absl::StrCat("sar.subjects[", i, "].employer_code"),
                                absl::StrCat("unknown organisation code '", employer, "'")));
    }
  }
  RETURN_IF_ERROR(violations.status());
  PreparedSar prepared;
  prepared.sar = request.sar();
  for (v1::Subject& s : *prepared.sar.mutable_subjects()) {
    s.set_subject_ref(SubjectRef(options_.subject_key, s));
  }
  if (!encoder_) return prepared;
  MutexLock lock(&encoder_mu_);
  for (int i = 0; i < prepared.sar.subjects_size(); ++i) {
    const v1::Subject& s = prepared.sar.subjects(i);
    linkage::PersonFields p;
    p.given_names = s.full_name();  // name tokens are sorted: no need to split
    p.date_of_birth = s.date_of_birth();
    p.address = s.address();
    absl::StatusOr<std::vector<linkage::Filter>> f = encoder_->EncodeForScreening(p);
    if (!f.ok()) {
      // A subject the encoder cannot use (no letters in the name, a date outside its range) is
      // not screened; the SAR itself is still taken.
      const std::string field = FieldOf(f.status());
      prepared.not_screened.emplace_back(i, field.empty() ? "no usable fields" : field);
      continue;
    }
    v1::EncodedSubject& e = prepared.encoded.emplace_back();
    e.set_subject_ref(s.subject_ref());
    e.set_encoding(linkage::ToBytes(f->front()));
    for (size_t j = 1; j < f->size(); ++j) e.add_alternative_encodings(linkage::ToBytes((*f)[j]));
  }
  return prepared;
}

absl::StatusOr<v1::SubmitSarResponse> Desk::SubmitPrepared(const Call& call,
                                                           const v1::SubmitSarRequest& request,
                                                           const PreparedSar& prepared) {
  v1::SubmitSarResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request, request.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        v1::Sar sar = prepared.sar;
        ASSIGN_OR_RETURN(*sar.mutable_sar_id(), NewSarId(txn, now));
        if (!sar.has_submitted_at()) *sar.mutable_submitted_at() = ToProto(now);
        // One way to say DAML: the flag and the glossary code go together.
        const bool daml_code = absl::c_linear_search(sar.glossary_codes(), kDamlGlossaryCode);
        if (daml_code) sar.set_daml(true);
        if (sar.daml() && !daml_code) sar.add_glossary_codes(kDamlGlossaryCode);
        for (const v1::Subject& s : sar.subjects()) {
          RETURN_IF_ERROR(
              txn.Exec("INSERT OR IGNORE INTO sar_subjects (subject_ref, sar_id) VALUES (?, ?)",
                       {s.subject_ref(), sar.sar_id()}));
        }
        ASSIGN_OR_RETURN(Blob sealed, SealProto(txn, kSarColumn, sar.sar_id(), sar));
        RETURN_IF_ERROR(txn.Exec("INSERT INTO sars (sar_id, submitted_at, sar) VALUES (?, ?, ?)",
                                 {sar.sar_id(), ToMicros(now), std::move(sealed)}));
        if (encoder_) {
          // Screened on arrival: the encoded subjects leave with the SAR's commit, through the
          // outbox, so a SAR is never stored without its screening request.
          v1::Envelope envelope;
          envelope.set_message_id(absl::StrCat("SCREEN-", sar.sar_id()));
          v1::ScreenSubjectsRequest* screen = envelope.mutable_screen();
          screen->set_sar_id(sar.sar_id());
          for (const auto& [i, why] : prepared.not_screened) {
            spdlog::info("sar {}: subject {} not screened: {}", sar.sar_id(), i, why);
          }
          for (const v1::EncodedSubject& e : prepared.encoded) *screen->add_subjects() = e;
          if (screen->subjects_size() > 0) {
            RETURN_IF_ERROR(outbox_.Send(txn, kLinkageCode, envelope, now));
          }
        }
        *response.mutable_sar() = std::move(sar);
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::GetSarResponse> Desk::GetSar(const std::string& sar_id) {
  RETURN_IF_ERROR(CheckText("sar_id", sar_id, 40, true));
  v1::GetSarResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(*response.mutable_sar(), LoadSar(txn, sar_id));
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT referral_id FROM referrals WHERE sar_id = ? "
                                          "ORDER BY created_at",
                                          {sar_id}));
    for (const Row& row : rows) {
      ASSIGN_OR_RETURN(v1::Referral r, LoadReferral(txn, row.Text(0)));
      *response.add_referrals() = std::move(r);
    }
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<v1::Referral> Desk::Dispatch(Txn& txn, const Dispatching& d, const v1::Actor& actor,
                                            absl::Time now) {
  const v1::Sar& sar = *d.sar;
  const std::string& org = d.organisation;
  ASSIGN_OR_RETURN(auto open, txn.Query(absl::StrCat("SELECT referral_id FROM referrals WHERE "
                                                     "sar_id = ? AND organisation = ? AND ",
                                                     kOpenStatesSql),
                                        {sar.sar_id(), org}));
  if (!open.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("organisation: ", sar.sar_id(), " is already referred to ", org, " (",
                     open[0].Text(0), ") and that referral is open"));
  }
  // The THR assessment travels to the NCA with the DISPATCHED event.
  v1::LifecycleEvent thr_only;
  *thr_only.mutable_thr() = d.thr;
  RETURN_IF_ERROR(CheckNoSubjectData(thr_only, sar));
  // Deconfliction: another organisation already holds an open referral about a subject of this
  // SAR (by pseudonymous reference).
  ASSIGN_OR_RETURN(auto others, OpenReferralsSharingASubject(txn, sar.sar_id(), org));
  std::set<std::string> other_orgs;
  bool deconflicts = false;
  for (const auto& [referral_id, organisation] : others) {
    if (d.same_case.count(referral_id)) continue;  // the joint case's own referrals
    other_orgs.insert(organisation);
    deconflicts = true;
  }
  absl::Time due =
      now + absl::Hours(24) * (d.due_in_days > 0 ? d.due_in_days : options_.feedback.due_days());
  // A DAML request: the force's view is needed before the statutory notice period ends. Once it
  // has ended (a referral made late, or redirected after it) the view can no longer shape the
  // consent decision, and the referral is due as any other rather than overdue from its start.
  if (sar.daml()) {
    const absl::Time notice_ends =
        EndOfWorkingDaysAfter(FromProto(sar.submitted_at()), kDamlNoticeWorkingDays);
    // And at least a day, however near the period's end: a referral due minutes after it is
    // made is overdue before anyone could open it.
    if (notice_ends > now) due = std::min(due, std::max(notice_ends, now + absl::Hours(24)));
  }
  v1::Referral r;
  if (d.referral_id.empty()) {
    ASSIGN_OR_RETURN(*r.mutable_referral_id(), NewReferralId(txn, now));
  } else {
    r.set_referral_id(d.referral_id);
  }
  r.set_sar_id(sar.sar_id());
  r.set_organisation(org);
  r.set_state(v1::REFERRAL_STATE_DISPATCHED);
  *r.mutable_dispatched_at() = ToProto(now);
  *r.mutable_due_at() = ToProto(due);
  *r.mutable_thr() = d.thr;
  r.set_linked_referral_id(d.linked);
  r.set_route(d.route == v1::REFERRAL_ROUTE_UNSPECIFIED ? v1::REFERRAL_ROUTE_DIRECT : d.route);
  for (const std::string& o : other_orgs) r.add_deconfliction_with(o);

  v1::ReferralPackage package;
  package.set_referral_id(r.referral_id());
  *package.mutable_sar() = sar;
  *package.mutable_thr() = d.thr;
  *package.mutable_due_at() = r.due_at();
  *package.mutable_dispatched_at() = r.dispatched_at();
  package.mutable_deconfliction_with()->CopyFrom(r.deconfliction_with());
  if (d.link != nullptr) *package.mutable_indirect_link() = *d.link;
  package.set_case_id(d.case_id);
  package.set_lead_organisation(d.lead);
  for (const std::string& o : d.joint_with) {
    if (o != org) package.add_joint_with(o);
  }
  // A redirect: the new organisation sees what happened before (events carry nothing personal).
  if (!d.linked.empty()) {
    ASSIGN_OR_RETURN(auto history, EventsOf(txn, d.linked));
    for (auto& e : history) *package.add_history() = std::move(e);
  }

  v1::LifecycleEvent dispatched =
      NewEvent(v1::EVENT_TYPE_DISPATCHED, r.referral_id(), referral::kUkfiuCode, org, actor, now);
  *dispatched.mutable_thr() = d.thr;
  *dispatched.mutable_due_at() = r.due_at();
  *dispatched.mutable_ack_due_at() =
      ToProto(std::min(due, now + absl::Hours(24) * options_.feedback.ack_days()));
  dispatched.set_linked_referral_id(d.linked);
  dispatched.set_route(r.route());
  dispatched.set_daml(sar.daml());
  dispatched.mutable_glossary_codes()->CopyFrom(sar.glossary_codes());
  dispatched.set_recorded_on_behalf(d.off_system);
  dispatched.set_case_id(d.case_id);
  dispatched.set_lead_organisation(d.lead);
  for (const v1::Subject& s : sar.subjects()) {
    dispatched.add_subject_refs(s.subject_ref());
    dispatched.add_subject_roles(s.role());
  }
  // The copy exists before its first event is folded into it.
  RETURN_IF_ERROR(SaveReferral(txn, r, now));
  RETURN_IF_ERROR(mirror_.Produce(txn, dispatched, &package).status());
  if (deconflicts) {
    v1::LifecycleEvent flag = NewEvent(v1::EVENT_TYPE_DECONFLICTION_FLAG, r.referral_id(),
                                       referral::kUkfiuCode, org, actor, now);
    flag.mutable_other_organisations()->CopyFrom(r.deconfliction_with());
    RETURN_IF_ERROR(mirror_.Produce(txn, flag).status());
    // Both sides must know: each organisation already holding an open referral about the
    // subject is told, on its own referral, that this organisation now has one too.
    for (const auto& [referral_id, organisation] : others) {
      if (d.same_case.count(referral_id)) continue;
      v1::LifecycleEvent back = NewEvent(v1::EVENT_TYPE_DECONFLICTION_FLAG, referral_id,
                                         referral::kUkfiuCode, organisation, actor, now);
      back.add_other_organisations(org);
      RETURN_IF_ERROR(mirror_.Produce(txn, back).status());
    }
  }
  return LoadReferral(txn, r.referral_id());
}

absl::StatusOr<v1::ReferSarResponse> Desk::Refer(const Call& call,
                                                 const v1::ReferSarRequest& request) {
  RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  RETURN_IF_ERROR(CheckText("sar_id", request.sar_id(), 40, true));
  RETURN_IF_ERROR(CheckOrganisation("organisation", request.organisation(), request.off_system()));
  RETURN_IF_ERROR(CheckThr("thr", request.thr()));
  if (request.due_in_days() < 0 || request.due_in_days() > 730) {
    return FieldError("due_in_days", "must be 0 (default) to 730");
  }
  if (!v1::ReferralRoute_IsValid(request.route())) {
    return FieldError("route", "must be DIRECT or INDIRECT");
  }
  std::set<std::string> joint = {request.organisation()};
  for (int i = 0; i < request.joint_with_size(); ++i) {
    const std::string field = absl::StrCat("joint_with[", i, "]");
    RETURN_IF_ERROR(CheckOrganisation(field, request.joint_with(i)));
    if (!joint.insert(request.joint_with(i)).second) {
      return FieldError(field, "names an organisation already in the referral");
    }
  }
  if (!request.lead_organisation().empty() && !joint.count(request.lead_organisation())) {
    return FieldError("lead_organisation", "is the organisation or one of joint_with");
  }
  if (!request.lead_organisation().empty() && request.joint_with().empty()) {
    return FieldError("lead_organisation", "goes with joint_with");
  }
  v1::ReferralRoute route = request.route();
  const v1::IndirectLink* link = nullptr;
  if (request.has_indirect_link()) {
    RETURN_IF_ERROR(CheckIndirectLink("indirect_link", request.indirect_link()));
    if (route == v1::REFERRAL_ROUTE_DIRECT) {
      return FieldError("route", "must be INDIRECT (or unset) with an indirect_link");
    }
    route = v1::REFERRAL_ROUTE_INDIRECT;
    link = &request.indirect_link();
  }
  v1::ReferSarResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request, request.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Sar sar, LoadSar(txn, request.sar_id()));
        Dispatching d;
        d.sar = &sar;
        d.organisation = request.organisation();
        d.thr = request.thr();
        d.due_in_days = request.due_in_days();
        d.route = route;
        d.link = link;
        d.off_system = request.off_system();
        if (!request.joint_with().empty()) {
          // One case, a referral per organisation, the lead named on each.
          d.case_id = NewId("CASE-");
          d.lead = request.lead_organisation().empty() ? request.organisation()
                                                       : request.lead_organisation();
          d.joint_with.push_back(request.organisation());
          d.joint_with.insert(d.joint_with.end(), request.joint_with().begin(),
                              request.joint_with().end());
        }
        ASSIGN_OR_RETURN(*response.mutable_referral(), Dispatch(txn, d, call.actor, now));
        d.same_case.insert(response.referral().referral_id());
        for (const std::string& other : request.joint_with()) {
          d.organisation = other;
          d.off_system = false;
          ASSIGN_OR_RETURN(v1::Referral made, Dispatch(txn, d, call.actor, now));
          d.same_case.insert(made.referral_id());
          *response.add_joint() = std::move(made);
        }
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

template <typename Response>
absl::StatusOr<Response> Desk::Step(const Call& call, const google::protobuf::Message& request,
                                    const std::string& request_id, const std::string& referral_id,
                                    v1::EventType type, const StepFill& fill) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  RETURN_IF_ERROR(CheckReferralId("referral_id", referral_id));
  Response response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request, request_id, &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Referral r, LoadReferral(txn, referral_id));
        v1::LifecycleEvent e = NewEvent(type, r.referral_id(), referral::kUkfiuCode,
                                        r.organisation(), call.actor, now);
        std::optional<v1::Sar> beside;
        // What the step itself refuses first (a referral on sarloop recorded on its behalf, a SAR
        // attached twice), then what the state allows.
        RETURN_IF_ERROR(fill(txn, r, e, beside));
        RETURN_IF_ERROR(NextState(r.state(), type).status());
        ASSIGN_OR_RETURN(v1::Sar sar, LoadSar(txn, r.sar_id()));
        RETURN_IF_ERROR(CheckNoSubjectData(e, sar));
        RETURN_IF_ERROR(
            mirror_.Produce(txn, e, nullptr, nullptr, nullptr, beside ? &*beside : nullptr)
                .status());
        ASSIGN_OR_RETURN(*response.mutable_referral(), LoadReferral(txn, r.referral_id()));
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::WithdrawReferralResponse> Desk::Withdraw(
    const Call& call, const v1::WithdrawReferralRequest& request) {
  RETURN_IF_ERROR(CheckText("reason", request.reason(), 2000, true));
  return Step<v1::WithdrawReferralResponse>(
      call, request, request.request_id(), request.referral_id(), v1::EVENT_TYPE_WITHDRAWN,
      [&](Txn&, v1::Referral&, v1::LifecycleEvent& e, std::optional<v1::Sar>&) {
        e.set_reason(request.reason());
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::RedirectReferralResponse> Desk::Redirect(
    const Call& call, const v1::RedirectReferralRequest& request) {
  RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  RETURN_IF_ERROR(CheckReferralId("referral_id", request.referral_id()));
  // After a decline naming the employer, the organisation, THR and reason may be left to it.
  if (!request.organisation().empty()) {
    RETURN_IF_ERROR(
        CheckOrganisation("organisation", request.organisation(), request.off_system()));
  }
  if (request.has_thr()) RETURN_IF_ERROR(CheckThr("thr", request.thr()));
  RETURN_IF_ERROR(CheckText("reason", request.reason(), 2000, false));
  v1::RedirectReferralResponse response;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request, request.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Referral old, LoadReferral(txn, request.referral_id()));
        // The force declined it as another organisation's employee: that decline was its
        // feedback and stays; the named employer gets a new, linked referral.
        const bool named = old.state() == v1::REFERRAL_STATE_DECLINED_BY_FORCE &&
                           !old.named_organisation().empty();
        const std::string organisation = request.organisation().empty() && named
                                             ? old.named_organisation()
                                             : request.organisation();
        RETURN_IF_ERROR(CheckOrganisation("organisation", organisation, request.off_system()));
        if (old.organisation() == organisation) {
          return FieldError("organisation", "is the organisation the referral is addressed to");
        }
        const v1::ThrAssessment thr = request.has_thr() || !named ? request.thr() : old.thr();
        RETURN_IF_ERROR(CheckThr("thr", thr));
        const std::string reason =
            !request.reason().empty() || !named
                ? request.reason()
                : absl::StrCat(old.organisation(), " named ", organisation, " as the employer");
        RETURN_IF_ERROR(CheckText("reason", reason, 2000, true));
        if (!named) RETURN_IF_ERROR(NextState(old.state(), v1::EVENT_TYPE_REDIRECTED).status());
        ASSIGN_OR_RETURN(v1::Sar sar, LoadSar(txn, old.sar_id()));
        // The old referral ends first, so the new one is not flagged against it; the new one's
        // id is chosen first, so the REDIRECTED event names it.
        Dispatching d;
        d.sar = &sar;
        d.organisation = organisation;
        d.thr = thr;
        d.route = old.route();
        d.linked = old.referral_id();
        ASSIGN_OR_RETURN(d.referral_id, NewReferralId(txn, now));
        d.off_system = request.off_system();
        if (!named) {
          v1::LifecycleEvent e =
              NewEvent(v1::EVENT_TYPE_REDIRECTED, old.referral_id(), referral::kUkfiuCode,
                       old.organisation(), call.actor, now);
          e.set_reason(reason);
          e.set_linked_referral_id(d.referral_id);
          RETURN_IF_ERROR(CheckNoSubjectData(e, sar));
          RETURN_IF_ERROR(mirror_.Produce(txn, e).status());
        }
        ASSIGN_OR_RETURN(*response.mutable_referral(), Dispatch(txn, d, call.actor, now));
        ASSIGN_OR_RETURN(*response.mutable_redirected(), LoadReferral(txn, old.referral_id()));
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::RecordOnBehalfResponse> Desk::RecordOnBehalf(
    const Call& call, const v1::RecordOnBehalfRequest& request) {
  RETURN_IF_ERROR(CheckText("received_by", request.received_by(), 200, true));
  const v1::EventType step = request.step();
  const bool declines = step == v1::EVENT_TYPE_DECLINED_BY_FORCE;
  const bool closes = step == v1::EVENT_TYPE_CLOSED_BY_FORCE;
  if (step != v1::EVENT_TYPE_RECEIVED && step != v1::EVENT_TYPE_ACKNOWLEDGED &&
      step != v1::EVENT_TYPE_RESEARCH_STARTED && !declines && !closes) {
    return FieldError("step",
                      "is RECEIVED, ACKNOWLEDGED, RESEARCH_STARTED, DECLINED_BY_FORCE or "
                      "CLOSED_BY_FORCE");
  }
  if (!declines && (request.reason_code() != v1::DECLINE_REASON_UNSPECIFIED ||
                    !request.named_organisation().empty() || !request.reason().empty())) {
    return FieldError("reason_code", "and the reason go with DECLINED_BY_FORCE only");
  }
  if (closes) {
    RETURN_IF_ERROR(CheckOutcome("outcome", request.outcome(), clock_.Now()));
  } else if (request.has_outcome()) {
    return FieldError("outcome", "goes with CLOSED_BY_FORCE only");
  }
  return Step<v1::RecordOnBehalfResponse>(
      call, request, request.request_id(), request.referral_id(), step,
      [&](Txn&, v1::Referral& r, v1::LifecycleEvent& e, std::optional<v1::Sar>&) -> absl::Status {
        if (!r.recorded_on_behalf()) {
          return absl::FailedPreconditionError(
              absl::StrCat("referral_id: ", r.referral_id(), " is addressed to ", r.organisation(),
                           ", which runs sarloop and records its own steps"));
        }
        e.set_recorded_on_behalf(true);
        e.set_received_by(request.received_by());
        if (declines) {
          RETURN_IF_ERROR(referral::CheckDecline(request.reason_code(), request.reason(),
                                                 request.named_organisation(), r.organisation(),
                                                 reference_));
          return referral::DeclineFill(request.reason_code(), request.reason(),
                                       request.named_organisation())(e, r);
        }
        if (closes) {
          return referral::OutcomeFill(request.outcome(), r.organisation(), /*finishes=*/true)(e,
                                                                                               r);
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::AttachSarResponse> Desk::AttachSar(const Call& call,
                                                      const v1::AttachSarRequest& request) {
  RETURN_IF_ERROR(CheckText("sar_id", request.sar_id(), 40, true));
  const absl::Time now = clock_.Now();
  return Step<v1::AttachSarResponse>(
      call, request, request.request_id(), request.referral_id(), v1::EVENT_TYPE_SAR_ATTACHED,
      [&](Txn& txn, v1::Referral& r, v1::LifecycleEvent& e,
          std::optional<v1::Sar>& beside) -> absl::Status {
        if (r.sar_id() == request.sar_id() ||
            absl::c_linear_search(r.supplementary_sar_ids(), request.sar_id())) {
          return absl::FailedPreconditionError(
              absl::StrCat("sar_id: ", request.sar_id(), " is already part of ", r.referral_id()));
        }
        ASSIGN_OR_RETURN(beside, LoadSar(txn, request.sar_id()));
        for (const v1::Subject& s : beside->subjects()) {
          e.add_subject_refs(s.subject_ref());
          e.add_subject_roles(s.role());
        }
        // UKFIU's copy keeps which SARs it holds (its package is the dispatch's).
        r.add_supplementary_sar_ids(beside->sar_id());
        return SaveReferral(txn, r, now);
      });
}

absl::StatusOr<v1::GetReferralResponse> Desk::GetReferral(const std::string& referral_id) {
  v1::GetReferralResponse response;
  RETURN_IF_ERROR(ReadReferralWithEvents(db_, referral_id, response.mutable_referral(),
                                         response.mutable_events()));
  return response;
}

absl::StatusOr<v1::ListReferralsResponse> Desk::List(const v1::ListReferralsRequest& request) {
  v1::ListReferralsResponse response;
  ASSIGN_OR_RETURN(ReferralListQuery query,
                   StatesQuery(request.state(), request.states(), false, {}));
  query.organisation = request.organisation();
  query.overdue = request.overdue();
  query.escalated = request.escalated();
  query.newest_first = true;
  RETURN_IF_ERROR(ReadReferralPage(db_, query, clock_.Now(), request.page_size(),
                                   request.page_token(), response.mutable_referrals(),
                                   response.mutable_next_page_token()));
  return response;
}

namespace {
int CountOf(const std::vector<v1::LifecycleEvent>& events, v1::EventType type) {
  return static_cast<int>(
      std::count_if(events.begin(), events.end(), [&](const auto& e) { return e.type() == type; }));
}

// The status of the latest progress update, in the events' order.
v1::ProgressStatus LastProgress(const std::vector<v1::LifecycleEvent>& events) {
  v1::ProgressStatus last = v1::PROGRESS_STATUS_UNSPECIFIED;
  for (const auto& e : events) {
    if (e.type() == v1::EVENT_TYPE_PROGRESS_UPDATED) last = e.progress();
  }
  return last;
}
}  // namespace

std::string Desk::LadderAddressee(const std::string& org_code, int rung) const {
  const v1::Organisation* org = reference_.FindOrganisation(org_code);
  const std::string name = org ? org->name() : org_code;
  const bool police = org == nullptr || org->kind() != v1::ORGANISATION_KIND_LAW_ENFORCEMENT_AGENCY;
  switch (rung) {
    case 1:
      return absl::StrCat("Head of Professional Standards, ", name);
    case 2:
      return absl::StrCat(police ? "Deputy Chief Constable, " : "Deputy head of agency, ", name);
    default:
      return police ? absl::StrCat("Police and Crime Commissioner (local policing body), ", name)
                    : absl::StrCat("Oversight body (police and crime commissioner's equivalent), ",
                                   name);
  }
}

std::string Desk::LadderIdentity(const std::string& org_code, int rung) const {
  const auto& ladder = options_.feedback.escalation_ladder();
  if (ladder.empty()) return "";
  return absl::StrReplaceAll(ladder[std::clamp(rung, 1, ladder.size()) - 1], {{"{org}", org_code}});
}

namespace {

// What the feedback clock owes a referral at `now`, from its events alone.
struct ClockDue {
  Chase chase;
  int reg19 = 0;  // the sequence of the open-investigation flag due, 0 for none
  bool Any() const { return chase.reminder > 0 || chase.rung > 0 || reg19 > 0; }
};

ClockDue ClockDueNow(const v1::RegisterEntry& entry, const std::vector<v1::LifecycleEvent>& events,
                     absl::Time now, const ChasePolicy& policy) {
  ClockDue due;
  if (IsTerminal(entry.state())) return due;
  // The staged clock (clocks.h): silence past the running stage's due time is reminded, then
  // climbs the ladder; an investigation that reports progress on time is never chased.
  due.chase = ChaseNow(entry, events, now, policy);
  // Regulation 19: open 12 months after receipt, then every 6.
  const int flags = CountOf(events, v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG);
  if (now >= Reg19DueAt(entry, flags + 1)) due.reg19 = flags + 1;
  return due;
}

}  // namespace

absl::Status Desk::ChaseOne(Txn& txn, const std::string& id, absl::Time now,
                            v1::RunFeedbackClockResponse* sent) {
  ASSIGN_OR_RETURN(v1::Referral r, LoadReferral(txn, id));
  ASSIGN_OR_RETURN(auto events, EventsOf(txn, id));
  const ClockDue due = ClockDueNow(Fold(events), events, now, chase_);
  std::vector<v1::LifecycleEvent> out;
  if (due.chase.reminder > 0) {
    out.push_back(NewEvent(v1::EVENT_TYPE_REMINDER_SENT, id, referral::kUkfiuCode, r.organisation(),
                           ServiceActor(), now));
    out.back().set_sequence(due.chase.reminder);
    sent->set_reminders_sent(sent->reminders_sent() + 1);
  }
  if (due.chase.rung > 0) {
    out.push_back(NewEvent(v1::EVENT_TYPE_ESCALATED, id, referral::kUkfiuCode, r.organisation(),
                           ServiceActor(), now));
    out.back().set_sequence(due.chase.rung);
    out.back().set_addressee(LadderAddressee(r.organisation(), due.chase.rung));
    out.back().set_addressee_identity(LadderIdentity(r.organisation(), due.chase.rung));
    sent->set_escalations(sent->escalations() + 1);
  }
  // Regulation 19's report goes to the police and crime commissioner unless the force recorded
  // that it would prejudice the investigation.
  if (due.reg19 > 0) {
    out.push_back(NewEvent(v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG, id, referral::kUkfiuCode,
                           r.organisation(), ServiceActor(), now));
    out.back().set_sequence(due.reg19);
    if (LastProgress(events) == v1::PROGRESS_STATUS_REG19_NOT_REPORTED_PREJUDICE) {
      out.back().set_reason("not reported: would prejudice the investigation");
    } else {
      out.back().set_addressee(LadderAddressee(r.organisation(), 3));
      out.back().set_addressee_identity(LadderIdentity(r.organisation(), 3));
    }
    sent->set_open_investigation_flags(sent->open_investigation_flags() + 1);
  }
  for (const auto& e : out) RETURN_IF_ERROR(mirror_.Produce(txn, e).status());
  return absl::OkStatus();
}

absl::StatusOr<v1::RunFeedbackClockResponse> Desk::RunClock() {
  const absl::Time now = clock_.Now();
  v1::RunFeedbackClockResponse response;
  *response.mutable_as_of() = ToProto(now);
  // At any one scan most open referrals owe nothing. They are all judged in one read, beside the
  // writer; only those that owe something get a write, which judges again on what it reads.
  std::vector<std::string> candidates;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<std::string> open, OpenReferralIdsByDue(txn));
    for (const std::string& id : open) {
      ASSIGN_OR_RETURN(auto events, EventsOf(txn, id));
      if (ClockDueNow(Fold(events), events, now, chase_).Any()) candidates.push_back(id);
    }
    return absl::OkStatus();
  }));
  // Each referral that owes something gets a write of its own (a failure part-way loses nothing
  // already sent). Called as a write call (RunFeedbackClock), they are savepoints of its batch.
  if (db_.InWriteJob()) {
    for (const std::string& id : candidates) {
      RETURN_IF_ERROR(db_.Transact([&](Txn& txn) { return ChaseOne(txn, id, now, &response); }));
    }
    return response;
  }
  // From the periodic scan they are jobs, submitted kWindow at a time so that they share commits
  // and no batch holds the writer (a server's serving thread) for long.
  constexpr size_t kWindow = 32;
  for (size_t first = 0; first < candidates.size(); first += kWindow) {
    const size_t last = std::min(candidates.size(), first + kWindow);
    Mutex mu;
    CondVar cv;
    size_t finished = 0;
    absl::Status failure;
    for (size_t i = first; i < last; ++i) {
      db_.Submit([&, id = candidates[i]]() -> Database::Completion {
        auto sent = std::make_shared<v1::RunFeedbackClockResponse>();
        const absl::Status s =
            db_.Transact([&](Txn& txn) { return ChaseOne(txn, id, now, sent.get()); });
        return [&, s, sent](const absl::Status& commit) {
          MutexLock lock(&mu);
          const absl::Status outcome = s.ok() ? commit : s;
          if (outcome.ok()) {
            response.set_reminders_sent(response.reminders_sent() + sent->reminders_sent());
            response.set_escalations(response.escalations() + sent->escalations());
            response.set_open_investigation_flags(response.open_investigation_flags() +
                                                  sent->open_investigation_flags());
          } else if (failure.ok()) {
            failure = outcome;
          }
          ++finished;
          cv.Signal();
        };
      });
    }
    MutexLock lock(&mu);
    while (finished != last - first) cv.Wait(&mu);
    RETURN_IF_ERROR(failure);
  }
  return response;
}

absl::Status Desk::Receive(Txn& txn, const Identity& peer, const v1::Envelope& env) {
  return mirror_.Receive(txn, peer, env).status();
}

}  // namespace sarloop::ukfiu
