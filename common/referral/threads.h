// Requests for information about a referral (goAML's message board): threads between UKFIU and
// the force the referral is addressed to, and between that force and a unit it handed the
// referral to. A question and its answer are each a lifecycle event (INFORMATION_REQUESTED,
// INFORMATION_PROVIDED) that the rules table sends to the thread's other party and the register;
// the text rides beside the event (Envelope.thread_message) to the other party only, and each
// side keeps it sealed in `thread_messages`. The register counts and times threads; it never
// sees their text.
//
// Written once for ukfiu, force and racu: each offers RequestInformation, AnswerInformation and
// ListThreads over one Threads.
#ifndef SARLOOP_COMMON_REFERRAL_THREADS_H_
#define SARLOOP_COMMON_REFERRAL_THREADS_H_

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/referral/mirror.h"
#include "common/rpc/call.h"
#include "common/storage/storage.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::referral {

// The `thread_messages` table. A service that keeps referrals lists it after the audit log.
extern const Migration kThreadsMigration;

// Whether `type` is a thread's message.
bool IsThreadEvent(v1::EventType type);

// A delivered thread message, at the party the thread is with (Mirror::Receive, inside the
// delivery transaction, before the event is applied): the envelope must carry the message, for
// the event's thread and referral, and an answer must answer an open request this service asked
// of its producer. Stores it. INVALID_ARGUMENT naming the field; FAILED_PRECONDITION for an
// answer to no open request of ours.
absl::Status ReceiveThreadMessage(Txn& txn, const Receiver& self, const v1::Envelope& envelope);

class Threads {
 public:
  // `mirror` records and sends the events; `db` holds `thread_messages` and `referrals`.
  Threads(Database& db, Clock& clock, Mirror& mirror);

  // Asks the other party (request.to, or the default for this service's role). INVALID_ARGUMENT
  // naming the field (to: naming who may be asked); NOT_FOUND for an unknown referral;
  // FAILED_PRECONDITION when it has ended.
  absl::StatusOr<v1::InformationThreadResponse> Ask(const Call& call,
                                                    const v1::RequestInformationRequest& request);
  // Answers a request asked of this service. NOT_FOUND ("thread_id") for a thread not asked of
  // it; FAILED_PRECONDITION when answered already or the referral has ended.
  absl::StatusOr<v1::InformationThreadResponse> Answer(const Call& call,
                                                       const v1::AnswerInformationRequest& request);
  // The threads this service takes part in, soonest reply due first.
  absl::StatusOr<v1::ListThreadsResponse> List(const v1::ListThreadsRequest& request);

 private:
  Database& db_;
  Clock& clock_;
  Mirror& mirror_;
};

}  // namespace sarloop::referral

#endif  // SARLOOP_COMMON_REFERRAL_THREADS_H_
