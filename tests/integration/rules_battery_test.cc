// Forged and misplaced events against the real chain over mTLS, generated from the rules table
// (common/referral/rules.h): every event type x every sender (UKFIU; the force the referral is
// addressed to; another force; the unit it was handed to; another unit) x a referral the chain
// holds or one it never heard of, delivered to the NCA register (RegisterFeed.ReportEvents) and to
// each service that takes deliveries (Delivery.Deliver), each with its own service certificate.
// Every case the table forbids must be refused (or, for what may still be in flight, kept aside)
// and change nothing at the receiver, read back through its own API; every case it allows must be
// accepted.
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/referral/event_log.h"
#include "common/referral/lifecycle.h"
#include "common/referral/rules.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tests/testutil/chain.h"

namespace sarloop {
namespace {

using referral::EventRule;
using referral::Producer;
using ::sarloop::testing::Context;
using ::sarloop::testing::LocalChain;
using ::sarloop::testing::SampleOutcome;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::WaitFor;

// A sending service: its instance (certificate) and organisation code.
struct Sender {
  std::string instance;
  std::string code;
  bool force;
  bool unit;
};
const Sender kSenders[] = {{"ukfiu", "UKFIU", false, false},
                           {"force-NFK", "NFK", true, false},
                           {"force-SFK", "SFK", true, false},
                           {"racu-ERSOU", "ERSOU", false, true},
                           {"racu-NCAACU", "NCAACU", false, true}};

// A receiver: the instance and the party it is for a referral addressed to NFK and handed to
// ERSOU.
struct Target {
  std::string instance;
  uint8_t party;  // 0 for the register (takes everything)
};
const Target kTargets[] = {{"nca", 0},
                           {"ukfiu", referral::kToUkfiu},
                           {"force-NFK", referral::kToAddressee},
                           {"racu-ERSOU", referral::kToUnits}};

// Whether `sender` has the rule's producer role for a referral addressed to NFK and handed to
// ERSOU.
bool HasRole(const EventRule& rule, const Sender& sender) {
  switch (rule.producer) {
    case Producer::kUkfiu:
      return sender.code == "UKFIU";
    case Producer::kAddressee:
      return sender.code == "NFK";
    case Producer::kUnit:
      return sender.code == "ERSOU";
    case Producer::kHolder:
      return sender.code == "NFK" || sender.code == "ERSOU";
    case Producer::kParty:
      return sender.code == "UKFIU" || sender.code == "NFK" || sender.code == "ERSOU";
  }
  return false;
}

// The organisation code of a target instance.
std::string CodeOf(const Target& target) {
  return target.instance == "nca"         ? "NCA"
         : target.instance == "ukfiu"     ? "UKFIU"
         : target.instance == "force-NFK" ? "NFK"
                                          : "ERSOU";
}

bool IsThread(v1::EventType type) {
  return type == v1::EVENT_TYPE_INFORMATION_REQUESTED ||
         type == v1::EVENT_TYPE_INFORMATION_PROVIDED;
}

class RulesBatteryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto chain = LocalChain::Up();
    ASSERT_TRUE(chain.ok()) << chain.status();
    chain_ = std::move(*chain);
    ukfiu_ = v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
    nfk_ = v1::Force::NewStub(chain_->Channel("force-NFK", "force-NFK-psd"));
    ersou_ = v1::Racu::NewStub(chain_->Channel("racu-ERSOU", "racu-ERSOU-cases"));
    nca_ = v1::Nca::NewStub(chain_->Channel("nca", "analyst-alice"));
  }

  // A referral addressed to NFK, researched and handed to ERSOU, known as such everywhere.
  std::string HandedOverReferral() {
    v1::SubmitSarRequest submit;
    submit.set_request_id(NewId("sar-"));
    *submit.mutable_sar() = SampleSar();
    v1::SubmitSarResponse sar;
    EXPECT_TRUE(ukfiu_->SubmitSar(Context().get(), submit, &sar).ok());
    v1::ReferSarRequest refer;
    refer.set_request_id(NewId("refer-"));
    refer.set_sar_id(sar.sar().sar_id());
    refer.set_organisation("NFK");
    *refer.mutable_thr() = SampleThr();
    v1::ReferSarResponse referred;
    EXPECT_TRUE(ukfiu_->ReferSar(Context().get(), refer, &referred).ok());
    const std::string id = referred.referral().referral_id();
    auto step = [&](auto method, auto request) {
      return WaitFor([&] {
        v1::ForceStepResponse r;
        return ((*nfk_).*method)(Context().get(), request, &r).ok();
      });
    };
    v1::ForceStepRequest s;
    s.set_referral_id(id);
    s.set_request_id(NewId("ack-"));
    EXPECT_TRUE(step(&v1::Force::Stub::Acknowledge, s));
    s.set_request_id(NewId("res-"));
    EXPECT_TRUE(step(&v1::Force::Stub::StartResearch, s));
    v1::HandOverRequest h;
    h.set_referral_id(id);
    h.set_request_id(NewId("hand-"));
    h.set_notes("for the unit");
    *h.mutable_thr() = SampleThr();
    h.set_priority(v1::PRIORITY_P3);
    EXPECT_TRUE(step(&v1::Force::Stub::HandOver, h));
    // Everyone has heard of the handover: the unit, ukfiu and the register.
    EXPECT_TRUE(WaitFor([&] {
      return State("racu-ERSOU", id).first == v1::REFERRAL_STATE_HANDED_OVER &&
             State("ukfiu", id).first == v1::REFERRAL_STATE_HANDED_OVER &&
             State("nca", id).first == v1::REFERRAL_STATE_HANDED_OVER;
    }));
    return id;
  }

  // A receiver's copy of `id`, read through its own API: state and number of events; UNSPECIFIED
  // when it holds none.
  std::pair<v1::ReferralState, int> State(const std::string& instance, const std::string& id) {
    std::pair<v1::ReferralState, int> out{v1::REFERRAL_STATE_UNSPECIFIED, 0};
    if (instance == "nca") {
      v1::GetTimelineRequest req;
      req.set_referral_id(id);
      v1::GetTimelineResponse resp;
      if (nca_->GetTimeline(Context().get(), req, &resp).ok()) {
        out = {resp.entry().state(), resp.events_size()};
      }
    } else if (instance == "ukfiu") {
      v1::GetReferralRequest req;
      req.set_referral_id(id);
      v1::GetReferralResponse resp;
      if (ukfiu_->GetReferral(Context().get(), req, &resp).ok()) {
        out = {resp.referral().state(), resp.events_size()};
      }
    } else if (instance == "force-NFK") {
      v1::GetForceReferralRequest req;
      req.set_referral_id(id);
      v1::GetForceReferralResponse resp;
      if (nfk_->GetReferral(Context().get(), req, &resp).ok()) {
        out = {resp.referral().state(), resp.events_size()};
      }
    } else {
      v1::GetHandoverRequest req;
      req.set_referral_id(id);
      v1::GetHandoverResponse resp;
      if (ersou_->GetHandover(Context().get(), req, &resp).ok()) {
        out = {resp.referral().state(), resp.events_size()};
      }
    }
    return out;
  }

  // The event a sender would make of `type` about referral `id`.
  static v1::LifecycleEvent Make(v1::EventType type, const Sender& sender, const std::string& id) {
    v1::Actor actor;
    // A system of the sender's own (a delivered event's actor is one of its producer's).
    const std::string service = sender.unit    ? absl::StrCat("racu/", sender.code)
                                : sender.force ? absl::StrCat("force/", sender.code)
                                               : "ukfiu";
    actor.set_identity(absl::StrCat("spiffe://sarloop/", service, "/battery"));
    v1::LifecycleEvent e =
        NewEvent(type, id, sender.code, sender.force ? sender.code : "NFK", actor, absl::Now());
    if (sender.unit) e.set_unit(sender.code);
    if (type == v1::EVENT_TYPE_HANDED_OVER && !sender.unit) e.set_unit("ERSOU");
    if (type == v1::EVENT_TYPE_CLOSED_BY_FORCE || type == v1::EVENT_TYPE_OUTCOME_RECORDED) {
      *e.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
    }
    if (type == v1::EVENT_TYPE_OUTCOME_UPDATED) {
      *e.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED);
    }
    // A thread's natural other party: UKFIU and the force talk, and the force and its unit.
    if (IsThread(type)) {
      e.set_thread_id(NewId("RFI-"));
      e.set_thread_with(sender.code == "NFK" || sender.code == "SFK" ? "UKFIU" : "NFK");
      // A question says when its answer is due, as a service's RequestInformation sets it.
      if (type == v1::EVENT_TYPE_INFORMATION_REQUESTED) {
        *e.mutable_reply_due_at() = ToProto(FromProto(e.occurred_at()) + absl::Hours(24 * 10));
      }
    }
    if (type == v1::EVENT_TYPE_DECLINED_BY_FORCE || type == v1::EVENT_TYPE_ASSISTANCE_DECLINED ||
        type == v1::EVENT_TYPE_WITHDRAWN || type == v1::EVENT_TYPE_REDIRECTED) {
      e.set_reason("battery");
    }
    return e;
  }

  // Delivers `event` from `sender` to `target`; returns whether it was accepted (a refusal of
  // the whole call, or of the envelope, is not).
  bool Deliver(const Sender& sender, const Target& target, const v1::LifecycleEvent& event,
               std::string* detail) {
    auto channel =
        chain_->Channel(target.instance, chain_->Tls(sender.instance), grpc::ChannelArguments());
    v1::DeliverResponse response;
    grpc::Status s;
    if (target.instance == "nca") {
      v1::ReportEventsRequest req;
      v1::EventEnvelope* env = req.add_envelopes();
      env->set_message_id(NewId("MSG-"));
      *env->mutable_event() = event;
      s = v1::RegisterFeed::NewStub(channel)->ReportEvents(Context().get(), req, &response);
    } else {
      v1::DeliverRequest req;
      v1::Envelope* env = req.add_envelopes();
      env->set_message_id(NewId("MSG-"));
      *env->mutable_event() = event;
      // The package goes with the events that give the receiver its copy.
      if (referral::CarriesPackageTo(event, target.instance == "ukfiu"       ? "UKFIU"
                                            : target.instance == "force-NFK" ? "NFK"
                                                                             : "ERSOU")) {
        env->mutable_package()->set_referral_id(event.referral_id());
        *env->mutable_package()->mutable_sar() = SampleSar();
      }
      // What travels beside the event: a thread's text to its other party, a further SAR to
      // whoever works the referral.
      if (IsThread(event.type()) && event.thread_with() == CodeOf(target)) {
        v1::ThreadMessage* m = env->mutable_thread_message();
        m->set_event_id(event.event_id());
        m->set_thread_id(event.thread_id());
        m->set_referral_id(event.referral_id());
        m->set_from(event.producer());
        m->set_to(event.thread_with());
        m->set_text("battery question");
      }
      if (event.type() == v1::EVENT_TYPE_SAR_ATTACHED && target.instance != "ukfiu") {
        *env->mutable_supplementary_sar() = SampleSar("Further Battery");
        env->mutable_supplementary_sar()->set_sar_id(NewId("SAR-"));
      }
      s = v1::Delivery::NewStub(channel)->Deliver(Context().get(), req, &response);
    }
    if (!s.ok()) {
      *detail = absl::StrCat("call refused: ", s.error_code(), " ", s.error_message());
      return false;
    }
    // No result: not taken now, to be sent again (a further SAR waiting for its handover).
    if (response.results_size() == 0) {
      *detail = "not taken yet";
      return false;
    }
    *detail = response.results(0).detail();
    return response.results(0).status() == v1::DELIVERY_STATUS_ACCEPTED;
  }

  std::unique_ptr<LocalChain> chain_;
  std::unique_ptr<v1::Ukfiu::Stub> ukfiu_;
  std::unique_ptr<v1::Force::Stub> nfk_;
  std::unique_ptr<v1::Racu::Stub> ersou_;
  std::unique_ptr<v1::Nca::Stub> nca_;
};

TEST_F(RulesBatteryTest, EveryForbiddenEventIsRefusedAndEveryAllowedOneAccepted) {
  const std::string held = HandedOverReferral();
  std::map<std::string, std::pair<v1::ReferralState, int>> before;
  for (const Target& t : kTargets) before[t.instance] = State(t.instance, held);
  int refused = 0, accepted = 0, kept_aside = 0;
  std::vector<std::pair<const EventRule*, const Target*>> allowed;

  for (const EventRule& rule : referral::AllRules()) {
    for (const Sender& sender : kSenders) {
      for (const Target& target : kTargets) {
        if (target.instance == sender.instance) continue;
        const bool to_thread_peer = (rule.to & referral::kToThreadPeer) &&
                                    Make(rule.type, sender, held).thread_with() == CodeOf(target);
        const bool to_target = target.party == 0 || (rule.to & target.party) || to_thread_peer;
        const bool allowed_here = HasRole(rule, sender) && to_target;
        const std::string what =
            absl::StrCat(EventName(rule.type), " from ", sender.code, " to ", target.instance);
        // A referral the chain holds: a forbidden event is refused and changes nothing.
        if (!allowed_here || rule.type == v1::EVENT_TYPE_DISPATCHED) {
          // A unit's step from a unit the register or ukfiu has not seen the referral handed
          // to may be ahead of that handover: it is kept aside, not applied. The force, which
          // made every handover itself, refuses it outright.
          const bool may_hold =
              (rule.producer == Producer::kUnit || rule.producer == Producer::kHolder ||
               rule.producer == Producer::kParty) &&
              sender.unit && (target.instance == "nca" || target.instance == "ukfiu");
          std::string detail;
          const bool took = Deliver(sender, target, Make(rule.type, sender, held), &detail);
          EXPECT_TRUE(!took || may_hold) << what << " about a referral it holds was accepted";
          EXPECT_EQ(State(target.instance, held), before[target.instance])
              << what << " changed the receiver's copy (" << detail << ")";
          kept_aside += took ? 1 : 0;
          refused += took ? 0 : 1;
        } else {
          allowed.emplace_back(&rule, &target);
        }
        // A referral nobody dispatched: only UKFIU's DISPATCHED makes one; anything else is
        // refused, or kept aside where its dispatch may still be on the way, and makes none.
        const std::string unknown = NewId("REF-");
        std::string detail;
        const bool took = Deliver(sender, target, Make(rule.type, sender, unknown), &detail);
        // UKFIU's dispatch makes the referral at the register and the addressee; a unit, which
        // never sees a dispatch, learns of one from a handover by a force it serves.
        const bool creates = (rule.type == v1::EVENT_TYPE_DISPATCHED && allowed_here) ||
                             (rule.type == v1::EVENT_TYPE_HANDED_OVER && sender.force &&
                              target.instance == "racu-ERSOU");
        if (creates) {
          EXPECT_TRUE(took) << what << " about a new referral was refused: " << detail;
          EXPECT_NE(State(target.instance, unknown).first, v1::REFERRAL_STATE_UNSPECIFIED) << what;
          ++accepted;
        } else {
          EXPECT_EQ(State(target.instance, unknown).first, v1::REFERRAL_STATE_UNSPECIFIED)
              << what << " about an unknown referral made a copy of it (" << detail << ")";
          kept_aside += took ? 1 : 0;
          refused += took ? 0 : 1;
        }
      }
    }
  }

  // Every allowed case, each type on a referral of its own so that one case does not move the
  // state another is sent in.
  std::map<v1::EventType, std::string> fresh;
  for (const auto& [rule, target] : allowed) {
    if (!fresh.count(rule->type)) fresh[rule->type] = HandedOverReferral();
    const Sender* sender = nullptr;
    for (const Sender& s : kSenders) {
      if (HasRole(*rule, s) && s.instance != target->instance) sender = &s;
    }
    ASSERT_NE(sender, nullptr);
    v1::LifecycleEvent e = Make(rule->type, *sender, fresh[rule->type]);
    if (rule->type == v1::EVENT_TYPE_INFORMATION_REQUESTED && target->party != 0) {
      // The party the question is for: this target.
      for (const Sender& s : kSenders) {
        if (Make(rule->type, s, "").thread_with() == CodeOf(*target) && HasRole(*rule, s) &&
            s.instance != target->instance) {
          sender = &s;
        }
      }
      e = Make(rule->type, *sender, fresh[rule->type]);
    }
    if (rule->type == v1::EVENT_TYPE_INFORMATION_PROVIDED && target->party != 0) {
      // An answer comes to the party that asked: the target asks first, through its own API.
      v1::RequestInformationRequest ask;
      ask.set_request_id(NewId("ask-"));
      ask.set_referral_id(fresh[rule->type]);
      ask.set_question("battery: which accounts?");
      v1::InformationThreadResponse asked;
      grpc::Status s = target->instance == "ukfiu"
                           ? ukfiu_->RequestInformation(Context().get(), ask, &asked)
                       : target->instance == "force-NFK"
                           ? nfk_->RequestInformation(Context().get(), ask, &asked)
                           : ersou_->RequestInformation(Context().get(), ask, &asked);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const Sender& candidate : kSenders) {
        if (candidate.code == asked.thread().asked_of()) sender = &candidate;
      }
      e = Make(rule->type, *sender, fresh[rule->type]);
      e.set_thread_id(asked.thread().thread_id());
      e.set_thread_with(CodeOf(*target));
    }
    std::string detail;
    EXPECT_TRUE(Deliver(*sender, *target, e, &detail))
        << EventName(rule->type) << " from " << sender->code << " to " << target->instance
        << " was refused: " << detail;
    ++accepted;
  }
  std::cout << "rules battery: " << refused << " refused, " << kept_aside
            << " kept aside (their referral, or its handover to that unit, not yet known there), "
            << accepted << " accepted\n";
  EXPECT_GT(refused, 200);
  EXPECT_GT(accepted, 20);
}

}  // namespace
}  // namespace sarloop
