#include "common/referral/threads.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/messaging/messaging.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/referral_store.h"
#include "common/referral/sealed_columns.h"
#include "common/referral/validation.h"
#include "common/rpc/field_checks.h"
#include "common/security/sealed.h"

namespace sarloop::referral {

// One row per message: the request (answer = 0) and its answer (answer = 1). The text is sealed;
// the columns are what lists filter and order on.
const Migration kThreadsMigration = {"requests for information (threads)", R"sql(
CREATE TABLE thread_messages (
  thread_id TEXT NOT NULL,
  answer INTEGER NOT NULL,
  referral_id TEXT NOT NULL,
  asked_by TEXT NOT NULL,
  asked_of TEXT NOT NULL,
  reply_due_at INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  message BLOB NOT NULL,
  PRIMARY KEY (thread_id, answer)
);
CREATE INDEX thread_messages_by_referral ON thread_messages (referral_id);
CREATE INDEX thread_messages_by_due ON thread_messages (answer, reply_due_at, thread_id);
)sql"};

namespace {

constexpr absl::string_view kColumn = kThreadMessageColumn;
constexpr size_t kMaxText = 4000;
constexpr int kMaxAttachments = 20;
constexpr int kDefaultReplyDays = 10;
constexpr int kMaxReplyDays = 90;

std::string RowKey(const std::string& thread_id, int answer) {
  return absl::StrCat(thread_id, "/", answer);
}

absl::Status CheckThreadId(absl::string_view field, const std::string& id) {
  if (id.empty()) return FieldError(field, "is required");
  bool ok = id.size() == 20 && id.rfind("RFI-", 0) == 0;
  for (size_t i = 4; ok && i < id.size(); ++i) {
    ok = absl::ascii_isxdigit(static_cast<unsigned char>(id[i]));
  }
  return ok ? absl::OkStatus()
            : FieldError(field, "is not a thread reference (RFI- and 16 hex digits)");
}

absl::Status CheckMessageText(absl::string_view prefix, absl::string_view text_field,
                              const std::string& text,
                              const google::protobuf::RepeatedPtrField<std::string>& attachments,
                              absl::string_view attachments_field) {
  RETURN_IF_ERROR(CheckText(absl::StrCat(prefix, text_field), text, kMaxText, true));
  return CheckTextList(absl::StrCat(prefix, attachments_field), attachments, kMaxAttachments, 200);
}

absl::Status Store(Txn& txn, const v1::ThreadMessage& m, int answer, const std::string& asked_by,
                   const std::string& asked_of, absl::Time reply_due) {
  ASSIGN_OR_RETURN(Blob sealed, SealProto(txn, kColumn, RowKey(m.thread_id(), answer), m));
  return txn.Exec(
      "INSERT INTO thread_messages (thread_id, answer, referral_id, asked_by, asked_of, "
      "reply_due_at, sent_at, message) VALUES (?,?,?,?,?,?,?,?)",
      {m.thread_id(), int64_t{answer}, m.referral_id(), asked_by, asked_of, ToMicros(reply_due),
       ToMicros(FromProto(m.sent_at())), std::move(sealed)});
}

// The request `thread_id` as stored here: who asked whom, when the answer is due, and whether it
// is answered.
struct Question {
  std::string referral_id;
  std::string asked_by;
  std::string asked_of;
  absl::Time reply_due;
  bool answered = false;
};

absl::StatusOr<std::optional<Question>> FindQuestion(Txn& txn, const std::string& thread_id) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT referral_id, asked_by, asked_of, reply_due_at, "
                                        "(SELECT COUNT(*) FROM thread_messages a WHERE "
                                        "a.thread_id = q.thread_id AND a.answer = 1) "
                                        "FROM thread_messages q WHERE thread_id = ? AND answer = 0",
                                        {thread_id}));
  if (rows.empty()) return std::optional<Question>();
  return Question{rows[0].Text(0), rows[0].Text(1), rows[0].Text(2), FromMicros(rows[0].Int(3)),
                  rows[0].Int(4) > 0};
}

absl::StatusOr<v1::ThreadMessage> LoadMessage(Txn& txn, const std::string& thread_id, int answer) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT message FROM thread_messages WHERE thread_id = ? AND answer = ?",
                           {thread_id, int64_t{answer}}));
  v1::ThreadMessage m;
  if (rows.empty()) return m;
  RETURN_IF_ERROR(UnsealProto(txn, kColumn, RowKey(thread_id, answer), rows[0].Text(0), &m));
  return m;
}

// The thread as the API shows it, at `now`.
absl::StatusOr<v1::InformationThread> LoadThread(Txn& txn, const std::string& thread_id,
                                                 absl::Time now) {
  ASSIGN_OR_RETURN(auto question, FindQuestion(txn, thread_id));
  if (!question) return absl::NotFoundError(absl::StrCat("thread_id: no such thread ", thread_id));
  v1::InformationThread t;
  t.set_thread_id(thread_id);
  t.set_referral_id(question->referral_id);
  t.set_asked_by(question->asked_by);
  t.set_asked_of(question->asked_of);
  *t.mutable_reply_due_at() = ToProto(question->reply_due);
  ASSIGN_OR_RETURN(*t.mutable_question(), LoadMessage(txn, thread_id, 0));
  if (question->answered) {
    ASSIGN_OR_RETURN(*t.mutable_answer(), LoadMessage(txn, thread_id, 1));
  }
  ASSIGN_OR_RETURN(v1::Referral referral, LoadReferral(txn, question->referral_id));
  t.set_open(!question->answered && !IsTerminal(referral.state()));
  t.set_overdue(t.open() && now >= question->reply_due);
  return t;
}

// A unit that declined assistance no longer works the referral: it neither asks nor answers about
// it (the force would refuse what it sent) until it is handed the referral again.
absl::Status CheckStillWorksIt(const Receiver& self, const std::vector<v1::LifecycleEvent>& events,
                               const std::string& referral_id) {
  if (!self.is_unit || !PartiesOf(events).declined.count(self.code)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      self.code, " declined assistance with ", referral_id,
      ": it no longer asks or answers about it, unless the force hands it over again"));
}

// The role this service plays for a referral, and whom it may ask.
std::vector<std::string> Askable(const Receiver& self, const v1::Referral& copy,
                                 const Parties& parties) {
  if (self.is_unit || self.code == kUkfiuCode) return {copy.organisation()};
  std::vector<std::string> out = {kUkfiuCode};
  for (const std::string& unit : parties.units) {
    if (!parties.declined.count(unit)) out.push_back(unit);
  }
  return out;
}

// Makes, stores and sends one message of thread `q.thread_id`: the event that carries it, and its
// text beside the event to the other party. The question when `answer` is 0, else the answer.
absl::Status SendMessage(Txn& txn, Mirror& mirror, const Call& call, absl::Time now,
                         const v1::Referral& copy, const Question& q, int answer,
                         const std::string& thread_id, const std::string& text,
                         const google::protobuf::RepeatedPtrField<std::string>& attachments) {
  const Receiver& self = mirror.self();
  const v1::EventType type =
      answer ? v1::EVENT_TYPE_INFORMATION_PROVIDED : v1::EVENT_TYPE_INFORMATION_REQUESTED;
  const std::string& to = answer ? q.asked_by : q.asked_of;
  v1::LifecycleEvent event =
      NewEvent(type, copy.referral_id(), self.code, copy.organisation(), call.actor, now);
  if (self.is_unit) event.set_unit(self.code);
  event.set_thread_id(thread_id);
  event.set_thread_with(to);
  event.set_attachment_count(attachments.size());
  if (!answer) *event.mutable_reply_due_at() = ToProto(q.reply_due);
  v1::ThreadMessage m;
  m.set_event_id(event.event_id());
  m.set_thread_id(thread_id);
  m.set_referral_id(copy.referral_id());
  m.set_from(self.code);
  m.set_to(to);
  *m.mutable_actor() = call.actor;
  *m.mutable_sent_at() = event.occurred_at();
  m.set_text(text);
  *m.mutable_attachments() = attachments;
  RETURN_IF_ERROR(Store(txn, m, answer, q.asked_by, q.asked_of, q.reply_due));
  return mirror.Produce(txn, event, nullptr, nullptr, &m).status();
}

}  // namespace

bool IsThreadEvent(v1::EventType type) {
  return type == v1::EVENT_TYPE_INFORMATION_REQUESTED ||
         type == v1::EVENT_TYPE_INFORMATION_PROVIDED;
}

absl::Status ReceiveThreadMessage(Txn& txn, const Receiver& self, const v1::Envelope& envelope) {
  const v1::LifecycleEvent& event = envelope.event();
  if (!envelope.has_thread_message()) {
    return FieldError("thread_message", absl::StrCat("is required with ", EventName(event.type())));
  }
  v1::ThreadMessage m = envelope.thread_message();
  RETURN_IF_ERROR(CheckThreadId("event.thread_id", event.thread_id()));
  if (m.event_id() != event.event_id() || m.thread_id() != event.thread_id() ||
      m.referral_id() != event.referral_id() || m.from() != event.producer() ||
      m.to() != self.code) {
    return FieldError("thread_message", "is not the message of the event it travels with");
  }
  RETURN_IF_ERROR(
      CheckMessageText("thread_message.", "text", m.text(), m.attachments(), "attachments"));
  *m.mutable_sent_at() = event.occurred_at();
  *m.mutable_actor() = event.actor();
  ASSIGN_OR_RETURN(auto question, FindQuestion(txn, event.thread_id()));
  if (event.type() == v1::EVENT_TYPE_INFORMATION_REQUESTED) {
    if (question) return FieldError("event.thread_id", "names a thread that exists already");
    // The asker set it 1 to kMaxReplyDays days on; anything else would leave the question overdue
    // from the start (unset: 1970) or never.
    const absl::Time asked = FromProto(event.occurred_at());
    if (!event.has_reply_due_at() || FromProto(event.reply_due_at()) <= asked ||
        FromProto(event.reply_due_at()) > asked + absl::Hours(24 * kMaxReplyDays) + kClockSkew) {
      return FieldError("event.reply_due_at",
                        absl::StrCat("is required, after the question and at most ", kMaxReplyDays,
                                     " days after it"));
    }
    return Store(txn, m, 0, event.producer(), self.code, FromProto(event.reply_due_at()));
  }
  if (!question || question->asked_by != self.code || question->asked_of != event.producer() ||
      question->referral_id != event.referral_id()) {
    return absl::FailedPreconditionError(absl::StrCat("thread_id: ", event.thread_id(),
                                                      " is no request ", self.code, " asked of ",
                                                      event.producer()));
  }
  if (question->answered) {
    return absl::FailedPreconditionError(
        absl::StrCat("thread_id: ", event.thread_id(), " was answered already"));
  }
  return Store(txn, m, 1, question->asked_by, question->asked_of, question->reply_due);
}

Threads::Threads(Database& db, Clock& clock, Mirror& mirror)
    : db_(db), clock_(clock), mirror_(mirror) {}

absl::StatusOr<v1::InformationThreadResponse> Threads::Ask(
    const Call& call, const v1::RequestInformationRequest& request) {
  RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  RETURN_IF_ERROR(CheckReferralId("referral_id", request.referral_id()));
  RETURN_IF_ERROR(CheckText("to", request.to(), 20, false));
  RETURN_IF_ERROR(
      CheckMessageText("", "question", request.question(), request.attachments(), "attachments"));
  if (request.reply_due_days() < 0 || request.reply_due_days() > kMaxReplyDays) {
    return FieldError("reply_due_days", absl::StrCat("is 1 to ", kMaxReplyDays, " (0 means ",
                                                     kDefaultReplyDays, ")"));
  }
  const Receiver& self = mirror_.self();
  const absl::Time now = clock_.Now();
  v1::InformationThreadResponse response;
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request, request.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(v1::Referral copy, LoadReferral(txn, request.referral_id()));
        ASSIGN_OR_RETURN(auto events, EventsOf(txn, request.referral_id()));
        RETURN_IF_ERROR(CheckStillWorksIt(self, events, copy.referral_id()));
        const std::vector<std::string> askable = Askable(self, copy, PartiesOf(events));
        const std::string to = request.to().empty() ? askable.front() : request.to();
        if (std::find(askable.begin(), askable.end(), to) == askable.end()) {
          return FieldError("to", absl::StrCat("may be ", absl::StrJoin(askable, " or "),
                                               " for this referral, not ", to));
        }
        RETURN_IF_ERROR(NextState(copy.state(), v1::EVENT_TYPE_INFORMATION_REQUESTED).status());
        const int days =
            request.reply_due_days() == 0 ? kDefaultReplyDays : request.reply_due_days();
        const Question q{copy.referral_id(), self.code, to, now + absl::Hours(24 * days), false};
        const std::string thread_id = NewId("RFI-", 16);
        RETURN_IF_ERROR(SendMessage(txn, mirror_, call, now, copy, q, 0, thread_id,
                                    request.question(), request.attachments()));
        ASSIGN_OR_RETURN(*response.mutable_thread(), LoadThread(txn, thread_id, now));
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::InformationThreadResponse> Threads::Answer(
    const Call& call, const v1::AnswerInformationRequest& request) {
  RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  RETURN_IF_ERROR(CheckThreadId("thread_id", request.thread_id()));
  RETURN_IF_ERROR(
      CheckMessageText("", "answer", request.answer(), request.attachments(), "attachments"));
  const Receiver& self = mirror_.self();
  const absl::Time now = clock_.Now();
  v1::InformationThreadResponse response;
  RETURN_IF_ERROR(RunIdempotent(
      db_, call.scope, request, request.request_id(), &response,
      [&](Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(auto question, FindQuestion(txn, request.thread_id()));
        if (!question || question->asked_of != self.code) {
          return absl::NotFoundError(absl::StrCat("thread_id: no request was asked of ", self.code,
                                                  " under ", request.thread_id()));
        }
        if (question->answered) {
          return absl::FailedPreconditionError(
              absl::StrCat("thread_id: ", request.thread_id(), " was answered already"));
        }
        ASSIGN_OR_RETURN(v1::Referral copy, LoadReferral(txn, question->referral_id));
        ASSIGN_OR_RETURN(auto events, EventsOf(txn, question->referral_id));
        RETURN_IF_ERROR(CheckStillWorksIt(self, events, copy.referral_id()));
        RETURN_IF_ERROR(NextState(copy.state(), v1::EVENT_TYPE_INFORMATION_PROVIDED).status());
        RETURN_IF_ERROR(SendMessage(txn, mirror_, call, now, copy, *question, 1,
                                    request.thread_id(), request.answer(), request.attachments()));
        ASSIGN_OR_RETURN(*response.mutable_thread(), LoadThread(txn, request.thread_id(), now));
        return absl::OkStatus();
      },
      now, call.audit));
  return response;
}

absl::StatusOr<v1::ListThreadsResponse> Threads::List(const v1::ListThreadsRequest& request) {
  if (!request.referral_id().empty()) {
    RETURN_IF_ERROR(CheckReferralId("referral_id", request.referral_id()));
  }
  ASSIGN_OR_RETURN(Page page, CheckPage(request.page_size(), request.page_token()));
  const absl::Time now = clock_.Now();
  const std::string& self = mirror_.self().code;
  v1::ListThreadsResponse response;
  RETURN_IF_ERROR(db_.Read([&](Txn& txn) -> absl::Status {
    std::string sql =
        "SELECT q.thread_id FROM thread_messages q WHERE q.answer = 0 "
        "AND (? = '' OR q.referral_id = ?)";
    if (request.awaiting_our_answer()) {
      sql +=
          " AND q.asked_of = ? AND NOT EXISTS (SELECT 1 FROM thread_messages a "
          "WHERE a.thread_id = q.thread_id AND a.answer = 1)";
    } else {
      sql += " AND ? <> ''";
    }
    sql += " ORDER BY q.reply_due_at, q.thread_id LIMIT ? OFFSET ?";
    ASSIGN_OR_RETURN(auto rows, txn.Query(sql, {request.referral_id(), request.referral_id(), self,
                                                page.limit, page.offset}));
    for (const Row& row : rows) {
      ASSIGN_OR_RETURN(v1::InformationThread t, LoadThread(txn, row.Text(0), now));
      // Awaiting an answer means one can still be given: not on a referral that has ended.
      if (request.awaiting_our_answer() && !t.open()) continue;
      *response.add_threads() = std::move(t);
    }
    response.set_next_page_token(NextPageToken(page, rows.size()));
    return absl::OkStatus();
  }));
  return response;
}

}  // namespace sarloop::referral
