// Writes the seed corpora: a handful of valid (and a few nearly valid) binary protobufs per fuzz
// target, so the fuzzers start from messages that reach deep into the validators and the
// lifecycle instead of having to discover the wire format first. Generated from the protos at
// run time rather than committed, so they follow the messages as they change.
//
//   fuzz_seeds OUT_DIR   -> OUT_DIR/fuzz_validation/, OUT_DIR/fuzz_register/,
//   OUT_DIR/fuzz_delivery/
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/base/ids.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/force.pb.h"
#include "sarloop/v1/nca.pb.h"
#include "sarloop/v1/racu.pb.h"
#include "sarloop/v1/ukfiu.pb.h"

namespace sarloop {
namespace {

namespace fs = std::filesystem;

constexpr char kRef1[] = "REF-00000000000000a1";
constexpr char kRef2[] = "REF-00000000000000b2";
const absl::Time kStart = absl::FromUnixSeconds(1700000000);

bool Write(const fs::path& dir, const std::string& name, const google::protobuf::Message& m) {
  std::ofstream out(dir / absl::StrCat(name, ".pb"), std::ios::binary);
  out << m.SerializeAsString();
  return static_cast<bool>(out);
}

v1::ThrAssessment Thr() {
  v1::ThrAssessment thr;
  thr.set_threat(v1::THR_LEVEL_HIGH);
  thr.set_risk(v1::THR_LEVEL_MEDIUM);
  thr.set_harm(v1::THR_LEVEL_LOW);
  thr.set_rationale("Cash deposits inconsistent with salary; subject has PNC access.");
  return thr;
}

v1::Outcome Outcome(v1::OutcomeType type) {
  v1::Outcome o;
  o.set_type(type);
  if (type == v1::OUTCOME_TYPE_MISCONDUCT_HEARING) {
    o.set_misconduct_result(v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE);
  }
  o.set_category(v1::CORRUPTION_CATEGORY_THEFT_AND_FRAUD);
  o.set_subject_role(v1::SUBJECT_ROLE_OFFICER);
  *o.mutable_opened_at() = ToProto(kStart);
  *o.mutable_closed_at() = ToProto(kStart + absl::Hours(24 * 100));
  o.set_learning_summary("Financial vulnerability not declared at vetting renewal.");
  return o;
}

v1::Sar Sar() {
  v1::Sar sar;
  sar.set_reporter_sector("bank");
  sar.set_reporter_reference("CASE-1");
  sar.set_narrative("Structured cash deposits below reporting thresholds.");
  sar.set_amount_pence(1250000);
  for (const char* name : {"Jane Example", "John Example"}) {
    v1::Subject* s = sar.add_subjects();
    s->set_full_name(name);
    s->set_date_of_birth("1985-04-12");
    s->set_address("1 High Street, Norwich");
    s->set_role(v1::SUBJECT_ROLE_OFFICER);
    s->set_employer_code("NFK");
  }
  return sar;
}

// An event `minutes` after the start, with a deterministic id.
v1::LifecycleEvent Event(const std::string& referral, v1::EventType type,
                         const std::string& producer, int minutes) {
  v1::LifecycleEvent e;
  e.set_event_id(
      absl::StrCat("EV-", referral.substr(4), "-", static_cast<int>(type), "-", minutes));
  e.set_referral_id(referral);
  e.set_type(type);
  e.set_producer(producer);
  e.set_organisation("NFK");
  // The producer's own service (a delivered event's actor is one of its producer's).
  const std::string service = producer == "UKFIU"                           ? "ukfiu"
                              : producer == "ERSOU" || producer == "NCAACU" ? "racu/" + producer
                                                                            : "force/" + producer;
  e.mutable_actor()->set_identity(absl::StrCat("spiffe://sarloop/", service));
  *e.mutable_occurred_at() = ToProto(kStart + absl::Minutes(minutes));
  switch (type) {
    case v1::EVENT_TYPE_DISPATCHED:
      *e.mutable_thr() = Thr();
      *e.mutable_due_at() = ToProto(kStart + absl::Hours(24 * 90));
      e.add_subject_refs("SUBJ-0123456789abcdef");
      break;
    case v1::EVENT_TYPE_DECLINED_BY_FORCE:
    case v1::EVENT_TYPE_WITHDRAWN:
    case v1::EVENT_TYPE_ASSISTANCE_DECLINED:
      e.set_reason("Subject left the force before the referral arrived.");
      break;
    case v1::EVENT_TYPE_REDIRECTED:
      e.set_reason("Subject is employed by another force.");
      e.set_linked_referral_id(kRef2);
      break;
    case v1::EVENT_TYPE_CLOSED_BY_FORCE:
      *e.mutable_outcome() = Outcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
      break;
    case v1::EVENT_TYPE_OUTCOME_RECORDED:
      *e.mutable_outcome() = Outcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
      e.set_unit("ERSOU");
      break;
    case v1::EVENT_TYPE_HANDED_OVER:
    case v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED:
      e.set_unit("ERSOU");
      break;
    case v1::EVENT_TYPE_REMINDER_SENT:
    case v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG:
      e.set_sequence(1);
      break;
    case v1::EVENT_TYPE_ESCALATED:
      e.set_sequence(1);
      e.set_addressee("Chief Constable, Norfolk Constabulary");
      break;
    case v1::EVENT_TYPE_DECONFLICTION_FLAG:
      e.add_other_organisations("SFK");
      break;
    default:
      break;
  }
  return e;
}

v1::Envelope Envelope(const v1::LifecycleEvent& e) {
  v1::Envelope env;
  env.set_message_id(e.event_id());
  *env.mutable_event() = e;
  if (e.type() == v1::EVENT_TYPE_DISPATCHED) {
    env.mutable_package()->set_referral_id(e.referral_id());
    *env.mutable_package()->mutable_sar() = Sar();
    *env.mutable_package()->mutable_thr() = e.thr();
    *env.mutable_package()->mutable_due_at() = e.due_at();
  }
  return env;
}

struct Step {
  v1::EventType type;
  const char* producer;
};

// One referral's events in lifecycle order, a few minutes apart.
std::vector<v1::LifecycleEvent> Life(const std::string& referral, std::initializer_list<Step> steps,
                                     int start_minute = 0) {
  std::vector<v1::LifecycleEvent> events;
  int minute = start_minute;
  for (const Step& s : steps) events.push_back(Event(referral, s.type, s.producer, minute += 7));
  return events;
}

v1::DeliverRequest Batch(const std::vector<v1::LifecycleEvent>& events, bool with_packages) {
  v1::DeliverRequest request;
  for (const v1::LifecycleEvent& e : events) {
    v1::Envelope env = Envelope(e);
    if (!with_packages) env.clear_package();
    *request.add_envelopes() = env;
  }
  return request;
}

bool WriteValidation(const fs::path& dir) {
  bool ok = true;
  v1::SubmitSarRequest submit;
  submit.set_request_id("req-submit-1");
  *submit.mutable_sar() = Sar();
  ok &= Write(dir, "submit_sar", submit);
  submit.mutable_sar()->mutable_subjects(1)->set_date_of_birth("1985-02-30");
  ok &= Write(dir, "submit_sar_bad_date", submit);

  v1::ReferSarRequest refer;
  refer.set_request_id("req-refer-1");
  refer.set_sar_id("SAR-0123456789abcdef");
  refer.set_organisation("NFK");
  *refer.mutable_thr() = Thr();
  refer.set_due_in_days(90);
  ok &= Write(dir, "refer_sar", refer);
  refer.mutable_thr()->clear_rationale();
  ok &= Write(dir, "refer_sar_no_rationale", refer);

  v1::RedirectReferralRequest redirect;
  redirect.set_request_id("req-redirect-1");
  redirect.set_referral_id(kRef1);
  redirect.set_organisation("SFK");
  *redirect.mutable_thr() = Thr();
  redirect.set_reason("Subject is employed by another force.");
  ok &= Write(dir, "redirect_referral", redirect);

  v1::CloseReferralRequest close;
  close.set_request_id("req-close-1");
  close.set_referral_id(kRef1);
  *close.mutable_outcome() = Outcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  ok &= Write(dir, "close_referral", close);

  v1::RecordOutcomeRequest record;
  record.set_request_id("req-outcome-1");
  record.set_referral_id(kRef1);
  *record.mutable_outcome() = Outcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  ok &= Write(dir, "record_outcome", record);

  v1::GetTimelineRequest timeline;
  timeline.set_referral_id(kRef1);
  ok &= Write(dir, "get_timeline", timeline);

  v1::ListRegisterRequest list;
  list.set_organisation("NFK");
  list.set_state(v1::REFERRAL_STATE_UNDER_RESEARCH);
  list.set_page_size(50);
  list.set_page_token("100");
  ok &= Write(dir, "list_register", list);

  ok &= Write(dir, "event_dispatched", Event(kRef1, v1::EVENT_TYPE_DISPATCHED, "UKFIU", 0));
  ok &= Write(
      dir, "deliver",
      Batch(Life(kRef1, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"}, {v1::EVENT_TYPE_RECEIVED, "NFK"}}),
            true));
  return ok;
}

bool WriteRegister(const fs::path& dir) {
  bool ok = true;
  ok &= Write(dir, "handover_outcome",
              Batch(Life(kRef1, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"},
                                 {v1::EVENT_TYPE_RECEIVED, "NFK"},
                                 {v1::EVENT_TYPE_ACKNOWLEDGED, "NFK"},
                                 {v1::EVENT_TYPE_RESEARCH_STARTED, "NFK"},
                                 {v1::EVENT_TYPE_HANDED_OVER, "NFK"},
                                 {v1::EVENT_TYPE_ASSISTANCE_DECLINED, "ERSOU"},
                                 {v1::EVENT_TYPE_HANDED_OVER, "NFK"},
                                 {v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, "ERSOU"},
                                 {v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG, "UKFIU"},
                                 {v1::EVENT_TYPE_OUTCOME_RECORDED, "ERSOU"}}),
                    false));
  ok &= Write(dir, "declined_after_reminder",
              Batch(Life(kRef1, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"},
                                 {v1::EVENT_TYPE_RECEIVED, "NFK"},
                                 {v1::EVENT_TYPE_REMINDER_SENT, "UKFIU"},
                                 {v1::EVENT_TYPE_ESCALATED, "UKFIU"},
                                 {v1::EVENT_TYPE_ACKNOWLEDGED, "NFK"},
                                 {v1::EVENT_TYPE_DECLINED_BY_FORCE, "NFK"}}),
                    false));
  // Two referrals interleaved: one redirected to the other, which is closed; arrival out of order.
  std::vector<v1::LifecycleEvent> events =
      Life(kRef1, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"},
                   {v1::EVENT_TYPE_DECONFLICTION_FLAG, "UKFIU"},
                   {v1::EVENT_TYPE_RECEIVED, "NFK"},
                   {v1::EVENT_TYPE_REDIRECTED, "UKFIU"}});
  std::vector<v1::LifecycleEvent> second = Life(kRef2,
                                                {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"},
                                                 {v1::EVENT_TYPE_RECEIVED, "NFK"},
                                                 {v1::EVENT_TYPE_RESEARCH_STARTED, "NFK"},
                                                 {v1::EVENT_TYPE_CLOSED_BY_FORCE, "NFK"}},
                                                30);
  second[0].set_linked_referral_id(kRef1);
  events.insert(events.begin() + 1, second.rbegin(), second.rend());
  ok &= Write(dir, "redirect_interleaved", Batch(events, false));
  // Same instant, different events: the lifecycle rank and then the event id decide the order.
  std::vector<v1::LifecycleEvent> same = Life(kRef1, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"},
                                                      {v1::EVENT_TYPE_RECEIVED, "NFK"},
                                                      {v1::EVENT_TYPE_WITHDRAWN, "UKFIU"}});
  for (v1::LifecycleEvent& e : same) *e.mutable_occurred_at() = ToProto(kStart);
  ok &= Write(dir, "same_instant_withdrawn", Batch(same, false));
  return ok;
}

bool WriteDelivery(const fs::path& dir) {
  bool ok = true;
  ok &= Write(dir, "dispatch_then_unit",
              Batch(Life(kRef1, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"},
                                 {v1::EVENT_TYPE_REMINDER_SENT, "UKFIU"},
                                 {v1::EVENT_TYPE_DECONFLICTION_FLAG, "UKFIU"},
                                 {v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED, "ERSOU"},
                                 {v1::EVENT_TYPE_ASSISTANCE_DECLINED, "ERSOU"},
                                 {v1::EVENT_TYPE_OUTCOME_RECORDED, "ERSOU"},
                                 {v1::EVENT_TYPE_WITHDRAWN, "UKFIU"}}),
                    true));
  std::vector<v1::LifecycleEvent> other = Life(kRef2, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"},
                                                       {v1::EVENT_TYPE_ESCALATED, "UKFIU"},
                                                       {v1::EVENT_TYPE_REDIRECTED, "UKFIU"}});
  other[0].set_organisation("SFK");  // Addressed to another force: refused.
  v1::DeliverRequest request = Batch(other, true);
  *request.add_envelopes() = request.envelopes(0);  // A repeat in the same batch.
  ok &= Write(dir, "other_force_and_repeat", request);
  v1::DeliverRequest foreign = Batch(
      Life(kRef1, {{v1::EVENT_TYPE_DISPATCHED, "UKFIU"}, {v1::EVENT_TYPE_RECEIVED, "NFK"}}), true);
  ok &= Write(dir, "foreign_producer", foreign);
  return ok;
}

}  // namespace
}  // namespace sarloop

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path out = argv[1];
  bool ok = true;
  for (const char* target : {"fuzz_validation", "fuzz_register", "fuzz_delivery"}) {
    std::error_code ec;
    fs::create_directories(out / target, ec);
    if (ec) {
      std::fprintf(stderr, "cannot create %s: %s\n", (out / target).c_str(), ec.message().c_str());
      return 1;
    }
  }
  ok &= sarloop::WriteValidation(out / "fuzz_validation");
  ok &= sarloop::WriteRegister(out / "fuzz_register");
  ok &= sarloop::WriteDelivery(out / "fuzz_delivery");
  if (!ok) std::fprintf(stderr, "writing the seeds under %s failed\n", out.c_str());
  return ok ? 0 : 1;
}
