// Multi-process tests: the real binaries over mTLS on loopback, driven through their gRPC APIs.
#include "tests/testutil/chain.h"

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/referral/lifecycle.h"
#include "common/referral/outcomes.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"

namespace sarloop {
namespace {

using ::sarloop::testing::Context;
using ::sarloop::testing::LocalChain;
using ::sarloop::testing::SampleOutcome;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::WaitFor;
using ::testing::HasSubstr;

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto chain = LocalChain::Up();
    ASSERT_TRUE(chain.ok()) << chain.status();
    chain_ = std::move(*chain);
    ukfiu_ = v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
    nca_ = v1::Nca::NewStub(chain_->Channel("nca", "analyst-alice"));
    for (const char* code : {"NFK", "SFK", "MPS", "BF"}) {
      forces_[code] = v1::Force::NewStub(
          chain_->Channel(absl::StrCat("force-", code), absl::StrCat("force-", code, "-psd")));
    }
    ersou_ = v1::Racu::NewStub(chain_->Channel("racu-ERSOU", "racu-ERSOU-cases"));
  }

  // Submits a SAR about `name`; returns its id.
  std::string SubmitSar(const std::string& name) {
    v1::SubmitSarRequest submit;
    submit.set_request_id(NewId("req-"));
    *submit.mutable_sar() = SampleSar(name);
    v1::SubmitSarResponse sar;
    grpc::Status s = ukfiu_->SubmitSar(Context().get(), submit, &sar);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return sar.sar().sar_id();
  }

  // A referral of SAR `sar_id` to `org` with a sample THR, to complete and send.
  static v1::ReferSarRequest ReferRequest(const std::string& sar_id, const std::string& org) {
    v1::ReferSarRequest refer;
    refer.set_request_id(NewId("req-"));
    refer.set_sar_id(sar_id);
    refer.set_organisation(org);
    *refer.mutable_thr() = SampleThr();
    return refer;
  }

  // Submits a SAR about `name` and refers it to `org`; returns the referral id.
  std::string Refer(const std::string& org, const std::string& name = "Jane Example") {
    v1::ReferSarRequest refer = ReferRequest(SubmitSar(name), org);
    v1::ReferSarResponse referral;
    grpc::Status s = ukfiu_->ReferSar(Context().get(), refer, &referral);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return referral.referral().referral_id();
  }

  // Waits until the force holds the referral in `state`.
  bool ForceHas(const std::string& org, const std::string& id, v1::ReferralState state) {
    return WaitFor([&] {
      v1::GetForceReferralRequest req;
      req.set_referral_id(id);
      v1::GetForceReferralResponse resp;
      return forces_[org]->GetReferral(Context().get(), req, &resp).ok() &&
             resp.referral().state() == state;
    });
  }

  grpc::Status ForceStep(const std::string& org, const std::string& id, v1::EventType step) {
    v1::ForceStepRequest req;
    req.set_request_id(NewId("req-"));
    req.set_referral_id(id);
    v1::ForceStepResponse resp;
    auto& f = forces_[org];
    switch (step) {
      case v1::EVENT_TYPE_ACKNOWLEDGED:
        return f->Acknowledge(Context().get(), req, &resp);
      default:
        return f->StartResearch(Context().get(), req, &resp);
    }
  }

  // Takes a received referral to UNDER_RESEARCH at `org`.
  void Research(const std::string& org, const std::string& id) {
    ASSERT_TRUE(ForceHas(org, id, v1::REFERRAL_STATE_RECEIVED)) << org << " never received " << id;
    ASSERT_RPC_OK(ForceStep(org, id, v1::EVENT_TYPE_ACKNOWLEDGED));
    ASSERT_RPC_OK(ForceStep(org, id, v1::EVENT_TYPE_RESEARCH_STARTED));
  }

  // NFK hands `id` (under research) to its default unit.
  grpc::Status HandOver(const std::string& id, v1::Priority priority, const std::string& notes,
                        v1::ForceStepResponse* resp) {
    v1::HandOverRequest h;
    h.set_request_id(NewId("req-"));
    h.set_referral_id(id);
    h.set_notes(notes);
    h.set_priority(priority);
    *h.mutable_thr() = SampleThr();
    return forces_["NFK"]->HandOver(Context().get(), h, resp);
  }

  // Waits until ERSOU holds `id`, into `held`.
  bool ErsouHolds(const std::string& id, v1::GetHandoverResponse* held) {
    v1::GetHandoverRequest get;
    get.set_referral_id(id);
    return WaitFor([&] { return ersou_->GetHandover(Context().get(), get, held).ok(); });
  }

  // ERSOU adopts `id` at `priority`.
  grpc::Status Accept(const std::string& id, v1::Priority priority, v1::UnitStepResponse* resp) {
    v1::AcceptHandoverRequest accept;
    accept.set_request_id(NewId("req-"));
    accept.set_referral_id(id);
    accept.set_priority(priority);
    *accept.mutable_thr() = SampleThr();
    return ersou_->Accept(Context().get(), accept, resp);
  }

  v1::GetSummaryResponse Summary() {
    v1::GetSummaryResponse resp;
    grpc::Status s = nca_->GetSummary(Context().get(), v1::GetSummaryRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  std::unique_ptr<LocalChain> chain_;
  std::unique_ptr<v1::Ukfiu::Stub> ukfiu_;
  std::unique_ptr<v1::Nca::Stub> nca_;
  std::map<std::string, std::unique_ptr<v1::Force::Stub>> forces_;
  std::unique_ptr<v1::Racu::Stub> ersou_;
};

// Every outcome a referral can end with: final, and not DISMISSED or NOT_OUR_PERSONNEL (read from
// old data only).
std::vector<v1::OutcomeType> FinalOutcomes() {
  std::vector<v1::OutcomeType> out;
  for (int t = v1::OutcomeType_MIN + 1; t <= v1::OutcomeType_MAX; ++t) {
    const auto type = static_cast<v1::OutcomeType>(t);
    if (v1::OutcomeType_IsValid(t) && type != v1::OUTCOME_TYPE_DISMISSED &&
        type != v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL && !IsOpenOutcome(type)) {
      out.push_back(type);
    }
  }
  return out;
}

// Every outcome type by both routes (a force closing itself, a unit after a joint
// investigation), plus a force decline and a declined request for assistance: each reaches the
// NCA register exactly once.
TEST_F(ChainTest, EveryOutcomeReachesTheNcaExactlyOnce) {
  std::vector<std::pair<std::string, v1::OutcomeType>> closed_by_mps, by_ersou;
  for (const v1::OutcomeType type : FinalOutcomes()) {
    const int t = type;
    // Distinct subjects, so no deconfliction flags join the timelines.
    closed_by_mps.emplace_back(Refer("MPS", absl::StrCat("Met Subject ", t)), type);
    by_ersou.emplace_back(Refer("NFK", absl::StrCat("Norfolk Subject ", t)), type);
  }
  const std::string declined = Refer("SFK", "Suffolk Subject");
  const std::string assistance_declined = Refer("NFK", "Declined Assistance Subject");

  for (auto& [id, type] : closed_by_mps) {
    Research("MPS", id);
    v1::CloseReferralRequest close;
    close.set_request_id(NewId("req-"));
    close.set_referral_id(id);
    *close.mutable_outcome() = SampleOutcome(type);
    v1::ForceStepResponse resp;
    ASSERT_RPC_OK(forces_["MPS"]->Close(Context().get(), close, &resp));
  }
  auto hand_over = [&](const std::string& id) {
    v1::ForceStepResponse resp;
    return HandOver(id, v1::PRIORITY_P3, "research found undeclared associations", &resp);
  };
  for (auto& [id, type] : by_ersou) {
    Research("NFK", id);
    ASSERT_RPC_OK(hand_over(id));
  }
  Research("NFK", assistance_declined);
  ASSERT_RPC_OK(hand_over(assistance_declined));
  Research("SFK", declined);
  v1::DeclineReferralRequest decline;
  decline.set_request_id(NewId("req-"));
  decline.set_referral_id(declined);
  decline.set_reason("a documented second job explains the payments");
  decline.set_reason_code(v1::DECLINE_REASON_ACTIVITY_EXPLAINED);
  v1::ForceStepResponse decline_resp;
  ASSERT_RPC_OK(forces_["SFK"]->Decline(Context().get(), decline, &decline_resp));

  auto unit_has = [&](const std::string& id) {
    return WaitFor([&] {
      v1::GetHandoverRequest req;
      req.set_referral_id(id);
      v1::GetHandoverResponse resp;
      return ersou_->GetHandover(Context().get(), req, &resp).ok();
    });
  };
  for (auto& [id, type] : by_ersou) {
    ASSERT_TRUE(unit_has(id));
    v1::UnitStepResponse resp;
    ASSERT_RPC_OK(Accept(id, v1::PRIORITY_P3, &resp));
    v1::RecordOutcomeRequest outcome;
    outcome.set_request_id(NewId("req-"));
    outcome.set_referral_id(id);
    *outcome.mutable_outcome() = SampleOutcome(type);
    ASSERT_RPC_OK(ersou_->RecordOutcome(Context().get(), outcome, &resp));
  }
  ASSERT_TRUE(unit_has(assistance_declined));
  v1::DeclineAssistanceRequest no;
  no.set_request_id(NewId("req-"));
  no.set_referral_id(assistance_declined);
  no.set_reason("no capacity this quarter");
  no.set_priority(v1::PRIORITY_P4);
  *no.mutable_thr() = SampleThr();
  v1::UnitStepResponse no_resp;
  ASSERT_RPC_OK(ersou_->DeclineAssistance(Context().get(), no, &no_resp));
  // Back with the force, which closes it itself.
  ASSERT_TRUE(ForceHas("NFK", assistance_declined, v1::REFERRAL_STATE_UNDER_RESEARCH));
  v1::CloseReferralRequest close;
  close.set_request_id(NewId("req-"));
  close.set_referral_id(assistance_declined);
  *close.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE);
  v1::ForceStepResponse close_resp;
  ASSERT_RPC_OK(forces_["NFK"]->Close(Context().get(), close, &close_resp));

  // The register converges: every referral has feedback.
  const int referrals = 2 * static_cast<int>(FinalOutcomes().size()) + 2;
  ASSERT_TRUE(WaitFor([&] { return Summary().total().feedback_received() == referrals; }))
      << Summary().DebugString();
  const v1::GetSummaryResponse summary = Summary();
  EXPECT_EQ(summary.total().referred(), referrals);
  EXPECT_EQ(summary.total().declined_by_force(), 1);
  EXPECT_EQ(summary.total().assistance_declined(), 1);
  EXPECT_EQ(summary.total().open(), 0);
  std::map<v1::OutcomeType, int> outcomes;
  for (const auto& oc : summary.total().outcomes()) outcomes[oc.type()] = oc.count();
  for (const v1::OutcomeType type : FinalOutcomes()) {
    EXPECT_EQ(outcomes[type], type == v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE ? 3 : 2)
        << OutcomeName(type);
  }
  // Exactly once: each timeline holds each step once, and nothing arrives later.
  auto timeline = [&](const std::string& id) {
    v1::GetTimelineRequest req;
    req.set_referral_id(id);
    v1::GetTimelineResponse resp;
    EXPECT_TRUE(nca_->GetTimeline(Context().get(), req, &resp).ok());
    std::vector<v1::EventType> types;
    for (const auto& e : resp.events()) types.push_back(e.type());
    return types;
  };
  using E = v1::EventType;
  // Waited for, then compared whole, so that a wrong timeline is shown as it is.
  WaitFor([&] { return timeline(by_ersou[0].first).size() == 7; });
  EXPECT_EQ(timeline(by_ersou[0].first),
            (std::vector<E>{v1::EVENT_TYPE_DISPATCHED, v1::EVENT_TYPE_RECEIVED,
                            v1::EVENT_TYPE_ACKNOWLEDGED, v1::EVENT_TYPE_RESEARCH_STARTED,
                            v1::EVENT_TYPE_HANDED_OVER, v1::EVENT_TYPE_JOINT_INVESTIGATION_OPENED,
                            v1::EVENT_TYPE_OUTCOME_RECORDED}));
  EXPECT_EQ(timeline(assistance_declined),
            (std::vector<E>{v1::EVENT_TYPE_DISPATCHED, v1::EVENT_TYPE_RECEIVED,
                            v1::EVENT_TYPE_ACKNOWLEDGED, v1::EVENT_TYPE_RESEARCH_STARTED,
                            v1::EVENT_TYPE_HANDED_OVER, v1::EVENT_TYPE_ASSISTANCE_DECLINED,
                            v1::EVENT_TYPE_CLOSED_BY_FORCE}));
  int events = 0;
  v1::ListRegisterRequest list;
  list.set_page_size(1000);
  v1::ListRegisterResponse entries;
  ASSERT_RPC_OK(nca_->ListRegister(Context().get(), list, &entries));
  ASSERT_EQ(entries.entries_size(), referrals);
  for (const auto& e : entries.entries()) events += e.event_count();
  // n x 5 (MPS closes: dispatched, received, acknowledged, research, closed) + n x 7 (unit
  // outcome) + 5 (decline) + 7 (assistance declined, then closed).
  const int n = static_cast<int>(FinalOutcomes().size());
  EXPECT_EQ(events, n * 5 + n * 7 + 5 + 7);
}

// A force's receipt, acknowledgement and research only tell UKFIU and the register: with a
// window of a minute (delivery.inform_within_ms) they wait in the force's outbox, and its
// handover, which goes at once, takes them along, in order, to both.
TEST_F(ChainTest, AForcesStepsWaitForItsHandoverAndLeaveWithIt) {
  const std::string config_file = chain_->dir() + "/config/force-NFK.textproto";
  std::stringstream config;
  config << std::ifstream(config_file).rdbuf();
  std::string text = config.str();
  const size_t at = text.find("delivery { ");
  ASSERT_NE(at, std::string::npos) << text;
  text.insert(at + 11, "inform_within_ms: 60000 ");
  std::ofstream(config_file) << text;
  ASSERT_TRUE(chain_->Stop("force-NFK").ok());
  ASSERT_TRUE(chain_->Start("force-NFK").ok());

  const std::string id = Refer("NFK", "Waiting Subject");
  Research("NFK", id);
  using E = v1::EventType;
  // The types of the events a service answers with; none when it does not answer.
  auto types = [](const grpc::Status& status, const auto& events) {
    std::vector<E> out;
    if (status.ok()) {
      for (const auto& e : events) out.push_back(e.type());
    }
    return out;
  };
  auto register_has = [&] {
    v1::GetTimelineRequest req;
    req.set_referral_id(id);
    v1::GetTimelineResponse resp;
    const grpc::Status status = nca_->GetTimeline(Context().get(), req, &resp);
    return types(status, resp.events());
  };
  auto ukfiu_has = [&] {
    v1::GetReferralRequest req;
    req.set_referral_id(id);
    v1::GetReferralResponse resp;
    const grpc::Status status = ukfiu_->GetReferral(Context().get(), req, &resp);
    return types(status, resp.events());
  };
  // The dispatch went at once; the force's three steps wait (a minute is longer than this test).
  ASSERT_TRUE(WaitFor([&] { return register_has().size() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(register_has(), std::vector<E>{v1::EVENT_TYPE_DISPATCHED});
  EXPECT_EQ(ukfiu_has(), std::vector<E>{v1::EVENT_TYPE_DISPATCHED});

  v1::ForceStepResponse resp;
  ASSERT_RPC_OK(HandOver(id, v1::PRIORITY_P3, "research found undeclared associations", &resp));
  const std::vector<E> all{v1::EVENT_TYPE_DISPATCHED, v1::EVENT_TYPE_RECEIVED,
                           v1::EVENT_TYPE_ACKNOWLEDGED, v1::EVENT_TYPE_RESEARCH_STARTED,
                           v1::EVENT_TYPE_HANDED_OVER};
  EXPECT_TRUE(WaitFor([&] { return register_has() == all; })) << register_has().size();
  EXPECT_TRUE(WaitFor([&] { return ukfiu_has() == all; })) << ukfiu_has().size();
}

TEST_F(ChainTest, DeliveryCompletesAfterTheForceRestarts) {
  ASSERT_TRUE(chain_->Stop("force-NFK").ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(Refer("NFK", absl::StrCat("Person ", i)));
  // Accepted and waiting in ukfiu's outbox while the force is down.
  auto ops = v1::Ops::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
  v1::GetBacklogResponse backlog;
  ASSERT_RPC_OK(ops->GetBacklog(Context().get(), v1::GetBacklogRequest(), &backlog));
  int64_t pending_nfk = -1;
  for (const auto& d : backlog.destinations()) {
    if (d.destination() == "NFK") pending_nfk = d.pending();
  }
  EXPECT_EQ(pending_nfk, 20);

  ASSERT_TRUE(chain_->Start("force-NFK").ok());
  for (const std::string& id : ids) {
    EXPECT_TRUE(ForceHas("NFK", id, v1::REFERRAL_STATE_RECEIVED)) << id;
  }
  ASSERT_TRUE(WaitFor([&] {
    v1::ListRegisterRequest req;
    req.set_state(v1::REFERRAL_STATE_RECEIVED);
    v1::ListRegisterResponse resp;
    return nca_->ListRegister(Context().get(), req, &resp).ok() && resp.entries_size() == 20;
  }));
}

TEST_F(ChainTest, AForceCannotReachAnotherForcesReferrals) {
  const std::string sfk_referral = Refer("SFK");
  ASSERT_TRUE(ForceHas("SFK", sfk_referral, v1::REFERRAL_STATE_RECEIVED));
  // NFK's system calling Suffolk's service is refused outright...
  auto nfk_at_sfk = v1::Force::NewStub(chain_->Channel("force-SFK", "force-NFK-psd"));
  v1::GetForceReferralRequest get;
  get.set_referral_id(sfk_referral);
  v1::GetForceReferralResponse resp;
  grpc::Status s = nfk_at_sfk->GetReferral(Context().get(), get, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  ForceStep("NFK", sfk_referral, v1::EVENT_TYPE_ACKNOWLEDGED);
  v1::ListInboxResponse inbox;
  s = nfk_at_sfk->ListInbox(Context().get(), v1::ListInboxRequest(), &inbox);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // ...and its own service has no such referral.
  s = forces_["NFK"]->GetReferral(Context().get(), get, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  // A force is not an analyst, nor UKFIU, nor a peer service.
  auto nfk_at_nca = v1::Nca::NewStub(chain_->Channel("nca", "force-NFK-psd"));
  v1::GetSummaryResponse summary;
  EXPECT_EQ(nfk_at_nca->GetSummary(Context().get(), v1::GetSummaryRequest(), &summary).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto nfk_at_ukfiu = v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "force-NFK-psd"));
  v1::SubmitSarRequest submit;
  submit.set_request_id("x");
  *submit.mutable_sar() = SampleSar();
  v1::SubmitSarResponse submitted;
  EXPECT_EQ(nfk_at_ukfiu->SubmitSar(Context().get(), submit, &submitted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto psd_delivering = v1::Delivery::NewStub(chain_->Channel("nca", "force-NFK-psd"));
  v1::DeliverRequest deliver;
  deliver.add_envelopes()->set_message_id("forged");
  v1::DeliverResponse delivered;
  EXPECT_EQ(psd_delivering->Deliver(Context().get(), deliver, &delivered).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ChainTest, BadInputIsRefusedNamingTheFieldOrState) {
  v1::SubmitSarRequest submit;
  submit.set_request_id(NewId("req-"));
  *submit.mutable_sar() = SampleSar();
  submit.mutable_sar()->set_narrative(std::string(20001, 'n'));
  v1::SubmitSarResponse sar;
  grpc::Status s = ukfiu_->SubmitSar(Context().get(), submit, &sar);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("sar.narrative"));
  submit.mutable_sar()->mutable_subjects(0)->clear_full_name();
  submit.mutable_sar()->set_narrative("ok");
  s = ukfiu_->SubmitSar(Context().get(), submit, &sar);
  EXPECT_THAT(s.error_message(), HasSubstr("sar.subjects[0].full_name"));

  *submit.mutable_sar() = SampleSar();
  ASSERT_RPC_OK(ukfiu_->SubmitSar(Context().get(), submit, &sar));
  v1::ReferSarRequest refer;
  refer.set_request_id(NewId("req-"));
  refer.set_sar_id(sar.sar().sar_id());
  refer.set_organisation("XYZ");
  *refer.mutable_thr() = SampleThr();
  v1::ReferSarResponse referral;
  s = ukfiu_->ReferSar(Context().get(), refer, &referral);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("organisation"));
  refer.set_organisation("NFK");
  refer.mutable_thr()->clear_rationale();
  s = ukfiu_->ReferSar(Context().get(), refer, &referral);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("thr.rationale"));
  // The field also arrives structurally: a google.rpc.Status with a BadRequest, sent by the
  // server in the grpc-status-details-bin trailer.
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(s.error_details())) << "no google.rpc.Status details";
  EXPECT_EQ(details.code(), static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(details.message(), s.error_message());
  // An ErrorInfo (reason INVALID_FIELD), then the BadRequest.
  ASSERT_EQ(details.details_size(), 2);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info)) << details.details(0).type_url();
  EXPECT_EQ(info.reason(), "INVALID_FIELD");
  EXPECT_EQ(info.domain(), "sarloop.v1");
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(details.details(1).UnpackTo(&bad_request)) << details.details(1).type_url();
  ASSERT_EQ(bad_request.field_violations_size(), 1);
  EXPECT_EQ(bad_request.field_violations(0).field(), "thr.rationale");
  EXPECT_FALSE(bad_request.field_violations(0).description().empty());
  refer.clear_request_id();
  *refer.mutable_thr() = SampleThr();
  s = ukfiu_->ReferSar(Context().get(), refer, &referral);
  EXPECT_THAT(s.error_message(), HasSubstr("request_id"));

  // A repeated request_id returns the first answer and refers once.
  refer.set_request_id("same-request");
  ASSERT_RPC_OK(ukfiu_->ReferSar(Context().get(), refer, &referral));
  v1::ReferSarResponse again;
  ASSERT_RPC_OK(ukfiu_->ReferSar(Context().get(), refer, &again));
  EXPECT_EQ(again.referral().referral_id(), referral.referral().referral_id());

  const std::string id = referral.referral().referral_id();
  ASSERT_TRUE(ForceHas("NFK", id, v1::REFERRAL_STATE_RECEIVED));
  v1::CloseReferralRequest close;
  close.set_request_id(NewId("req-"));
  close.set_referral_id(id);
  *close.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  v1::ForceStepResponse closed;
  s = forces_["NFK"]->Close(Context().get(), close, &closed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("RECEIVED"));
  close.set_referral_id("not-a-referral");
  s = forces_["NFK"]->Close(Context().get(), close, &closed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("referral_id"));
  // Nothing was changed by the refused step.
  ASSERT_TRUE(ForceHas("NFK", id, v1::REFERRAL_STATE_RECEIVED));
}

TEST_F(ChainTest, SilenceIsRemindedThenEscalated) {
  const std::string silent_a = Refer("NFK", "Silent A");
  const std::string silent_b = Refer("SFK", "Silent B");
  const std::string answered = Refer("MPS", "Answered C");
  // "Not ours" needs no acknowledgement or research first.
  ASSERT_TRUE(ForceHas("MPS", answered, v1::REFERRAL_STATE_RECEIVED));
  v1::DeclineReferralRequest decline;
  decline.set_request_id(NewId("req-"));
  decline.set_referral_id(answered);
  decline.set_reason_code(v1::DECLINE_REASON_NOT_OUR_EMPLOYEE);
  v1::ForceStepResponse resp;
  ASSERT_RPC_OK(forces_["MPS"]->Decline(Context().get(), decline, &resp));
  ASSERT_TRUE(WaitFor([&] { return Summary().total().feedback_received() == 1; }));

  // Acknowledgement was due after 5 days; the ladder's first rung is 28 days later.
  chain_->SetClockOffset(absl::Hours(24 * 20));
  v1::RunFeedbackClockResponse clock;
  ASSERT_TRUE(WaitFor([&] {
    return ukfiu_->RunFeedbackClock(Context().get(), v1::RunFeedbackClockRequest(), &clock).ok() &&
           Summary().total().reminded() == 2;
  }));
  v1::ListOverdueResponse overdue;
  ASSERT_RPC_OK(nca_->ListOverdue(Context().get(), v1::ListOverdueRequest(), &overdue));
  std::set<std::string> overdue_ids;
  for (const auto& e : overdue.entries()) overdue_ids.insert(e.referral_id());
  EXPECT_EQ(overdue_ids, (std::set<std::string>{silent_a, silent_b}));
  EXPECT_EQ(Summary().total().escalated(), 0);

  chain_->SetClockOffset(absl::Hours(24 * 40));
  ASSERT_TRUE(WaitFor([&] {
    ukfiu_->RunFeedbackClock(Context().get(), v1::RunFeedbackClockRequest(), &clock);
    return Summary().total().escalated() == 2;
  }));
  EXPECT_EQ(Summary().total().overdue(), 2);
  EXPECT_EQ(Summary().total().reminded(), 2);
}

// Outcomes as tracks (issue 20, item 1): the unit's criminal track and the force's own conduct and
// listing tracks run side by side; the referral finishes only when every track is final, and the
// register shows each track's latest.
TEST_F(ChainTest, OutcomesAreTracksAndTheReferralFinishesWhenEveryTrackIsFinal) {
  const std::string id = Refer("NFK", "Tracked Subject");
  Research("NFK", id);
  v1::ForceStepResponse force_step;
  ASSERT_RPC_OK(HandOver(id, v1::PRIORITY_P3, "lifestyle inconsistent with salary", &force_step));
  v1::GetHandoverResponse held;
  ASSERT_TRUE(ErsouHolds(id, &held));
  v1::GetHandoverRequest get;
  get.set_referral_id(id);
  v1::UnitStepResponse unit_step;
  auto unit_update = [&](v1::OutcomeType type) {
    v1::UpdateUnitOutcomeRequest u;
    u.set_request_id(NewId("req-"));
    u.set_referral_id(id);
    *u.mutable_outcome() = SampleOutcome(type);
    return ersou_->UpdateOutcome(Context().get(), u, &unit_step);
  };
  auto force_update = [&](v1::OutcomeType type) {
    v1::UpdateOutcomeRequest u;
    u.set_request_id(NewId("req-"));
    u.set_referral_id(id);
    *u.mutable_outcome() = SampleOutcome(type);
    return forces_["NFK"]->UpdateOutcome(Context().get(), u, &force_step);
  };
  auto record = [&](v1::OutcomeType type) {
    v1::RecordOutcomeRequest r;
    r.set_request_id(NewId("req-"));
    r.set_referral_id(id);
    *r.mutable_outcome() = SampleOutcome(type);
    return ersou_->RecordOutcome(Context().get(), r, &unit_step);
  };
  // Not the unit's to update before it accepts.
  EXPECT_EQ(unit_update(v1::OUTCOME_TYPE_CRIMINAL_CHARGED).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_RPC_OK(Accept(id, v1::PRIORITY_P3, &unit_step));

  ASSERT_RPC_OK(unit_update(v1::OUTCOME_TYPE_CRIMINAL_CHARGED));
  EXPECT_EQ(unit_step.referral().state(), v1::REFERRAL_STATE_JOINT_INVESTIGATION);
  // The force adds its conduct track while the unit holds the criminal one, once the unit's track
  // has reached it (its state was joint investigation already when the unit accepted).
  ASSERT_TRUE(WaitFor([&] {
    v1::GetForceReferralRequest req;
    req.set_referral_id(id);
    v1::GetForceReferralResponse resp;
    return forces_["NFK"]->GetReferral(Context().get(), req, &resp).ok() &&
           resp.referral().tracks_size() == 1 &&
           resp.referral().tracks(0).track() == v1::OUTCOME_TRACK_CRIMINAL;
  }));
  ASSERT_RPC_OK(force_update(v1::OUTCOME_TYPE_CASE_TO_ANSWER));
  ASSERT_EQ(force_step.referral().tracks_size(), 2) << force_step.referral().DebugString();
  // A charge is not an end, and the open conduct track holds the ending back.
  grpc::Status s = record(v1::OUTCOME_TYPE_CRIMINAL_CHARGED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  ASSERT_TRUE(WaitFor([&] {
    v1::GetHandoverResponse r;
    return ersou_->GetHandover(Context().get(), get, &r).ok() && r.referral().tracks_size() == 2;
  }));
  ASSERT_RPC_OK(unit_update(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED));
  s = record(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("CONDUCT"));
  // Gross misconduct at a hearing: dismissal without notice, then the barred list.
  v1::UpdateOutcomeRequest hearing;
  hearing.set_request_id(NewId("req-"));
  hearing.set_referral_id(id);
  *hearing.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  hearing.mutable_outcome()->set_finding(v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
  hearing.mutable_outcome()->set_misconduct_result(v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE);
  ASSERT_RPC_OK(forces_["NFK"]->UpdateOutcome(Context().get(), hearing, &force_step));
  ASSERT_RPC_OK(force_update(v1::OUTCOME_TYPE_BARRED_LIST_ENTRY));
  ASSERT_TRUE(WaitFor([&] {
    v1::GetHandoverResponse r;
    return ersou_->GetHandover(Context().get(), get, &r).ok() && r.referral().tracks_size() == 3 &&
           r.referral().tracks(1).type() == v1::OUTCOME_TYPE_MISCONDUCT_HEARING;
  }));
  ASSERT_RPC_OK(record(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED));
  EXPECT_EQ(unit_step.referral().state(), v1::REFERRAL_STATE_OUTCOME_RECORDED);

  // The register: the final state and the latest of every track, in track order.
  v1::GetTimelineRequest tl;
  tl.set_referral_id(id);
  v1::GetTimelineResponse timeline;
  ASSERT_TRUE(WaitFor([&] {
    return nca_->GetTimeline(Context().get(), tl, &timeline).ok() &&
           timeline.entry().state() == v1::REFERRAL_STATE_OUTCOME_RECORDED;
  }));
  std::vector<v1::OutcomeType> tracks;
  for (const auto& t : timeline.entry().tracks()) tracks.push_back(t.type());
  EXPECT_EQ(tracks, (std::vector<v1::OutcomeType>{v1::OUTCOME_TYPE_CRIMINAL_CONVICTED,
                                                  v1::OUTCOME_TYPE_MISCONDUCT_HEARING,
                                                  v1::OUTCOME_TYPE_BARRED_LIST_ENTRY}));
  EXPECT_EQ(timeline.entry().tracks(0).investigating_org(), "ERSOU");
  EXPECT_EQ(timeline.entry().tracks(1).investigating_org(), "NFK");
  EXPECT_EQ(timeline.entry().tracks(1).finding(), v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
  int updates = 0;
  for (const auto& e : timeline.events()) updates += e.type() == v1::EVENT_TYPE_OUTCOME_UPDATED;
  EXPECT_EQ(updates, 5);
  // Finished: nothing more is added.
  ASSERT_TRUE(ForceHas("NFK", id, v1::REFERRAL_STATE_OUTCOME_RECORDED));
  EXPECT_EQ(force_update(v1::OUTCOME_TYPE_ADVISORY_LIST_ENTRY).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// Issue 20's walk: one referral through charge, conviction, a gross misconduct hearing ending in
// dismissal and a barred list entry, over 20 months of moved clock with progress reported on time:
// never reminded or escalated, reported under regulation 19 at 12 and 18 months, all three tracks
// in the register. Beside it a silent referral climbs the ladder to the PCC.
TEST_F(ChainTest, ATwentyMonthInvestigationReportingOnTimeIsNeverChased) {
  const std::string id = Refer("NFK", "Long Case Subject");
  const std::string silent = Refer("NFK", "Silent Case Subject");
  Research("NFK", id);
  v1::ForceStepResponse force_step;
  ASSERT_RPC_OK(
      HandOver(id, v1::PRIORITY_P2, "covert financial investigation needed", &force_step));
  EXPECT_EQ(force_step.referral().clock_stage(), v1::CLOCK_STAGE_PROGRESS);
  v1::GetHandoverResponse held;
  ASSERT_TRUE(ErsouHolds(id, &held));
  v1::GetHandoverRequest get;
  get.set_referral_id(id);
  v1::UnitStepResponse unit_step;
  ASSERT_RPC_OK(Accept(id, v1::PRIORITY_P2, &unit_step));

  // What UKFIU holds of a referral: its events' types.
  auto ukfiu_events = [&](const std::string& ref) {
    v1::GetReferralRequest req;
    req.set_referral_id(ref);
    v1::GetReferralResponse resp;
    std::multiset<v1::EventType> types;
    if (ukfiu_->GetReferral(Context().get(), req, &resp).ok()) {
      for (const auto& e : resp.events()) types.insert(e.type());
    }
    return types;
  };
  auto outcome = [&](v1::OutcomeType type) {
    v1::Outcome o = SampleOutcome(type);
    if (type == v1::OUTCOME_TYPE_MISCONDUCT_HEARING) {
      o.set_finding(v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
      o.set_misconduct_result(v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE);
    }
    return o;
  };
  int contacts = 0;  // progress and outcome updates UKFIU must have before the clock moves
  const absl::Time start = absl::Now();
  for (int step = 1; step <= 11; ++step) {
    // 55 days a step: inside P2's 60-day progress interval. UKFIU's clock runs at every step (its
    // own runs, every second, may miss a step the test takes faster).
    const absl::Duration offset = absl::Hours(24 * 55 * step);
    chain_->SetClockOffset(offset);
    v1::RunFeedbackClockResponse run;
    ASSERT_TRUE(WaitFor([&] {
      return ukfiu_->RunFeedbackClock(Context().get(), v1::RunFeedbackClockRequest(), &run).ok() &&
             FromProto(run.as_of()) >= start + offset;
    })) << "step "
        << step;
    if (step == 11) break;
    v1::ReportUnitProgressRequest progress;
    progress.set_request_id(NewId("req-"));
    progress.set_referral_id(id);
    progress.set_status(step < 5 ? v1::PROGRESS_STATUS_AWAITING_CHARGING_DECISION
                                 : v1::PROGRESS_STATUS_AWAITING_CONDUCT_PROCEEDINGS);
    ASSERT_RPC_OK(ersou_->ReportProgress(Context().get(), progress, &unit_step));
    ++contacts;
    v1::UpdateUnitOutcomeRequest unit_update;
    unit_update.set_request_id(NewId("req-"));
    unit_update.set_referral_id(id);
    v1::UpdateOutcomeRequest force_update;
    force_update.set_request_id(NewId("req-"));
    force_update.set_referral_id(id);
    if (step == 2 || step == 5) {
      *unit_update.mutable_outcome() = outcome(step == 2 ? v1::OUTCOME_TYPE_CRIMINAL_CHARGED
                                                         : v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
      ASSERT_RPC_OK(ersou_->UpdateOutcome(Context().get(), unit_update, &unit_step));
      ++contacts;
    }
    if (step == 6 || step == 8 || step == 10) {
      ASSERT_TRUE(ForceHas("NFK", id, v1::REFERRAL_STATE_JOINT_INVESTIGATION));
      *force_update.mutable_outcome() = outcome(step == 6   ? v1::OUTCOME_TYPE_CASE_TO_ANSWER
                                                : step == 8 ? v1::OUTCOME_TYPE_MISCONDUCT_HEARING
                                                            : v1::OUTCOME_TYPE_BARRED_LIST_ENTRY);
      ASSERT_RPC_OK(forces_["NFK"]->UpdateOutcome(Context().get(), force_update, &force_step));
      ++contacts;
    }
    ASSERT_TRUE(WaitFor([&] {
      const auto types = ukfiu_events(id);
      return static_cast<int>(types.count(v1::EVENT_TYPE_PROGRESS_UPDATED) +
                              types.count(v1::EVENT_TYPE_OUTCOME_UPDATED)) == contacts;
    })) << "step "
        << step;
  }
  // The unit's conduct tracks are the force's: the unit finishes once it has them all.
  ASSERT_TRUE(WaitFor([&] {
    v1::GetHandoverResponse r;
    return ersou_->GetHandover(Context().get(), get, &r).ok() && r.referral().tracks_size() == 3 &&
           r.referral().tracks(2).type() == v1::OUTCOME_TYPE_BARRED_LIST_ENTRY;
  }));
  v1::RecordOutcomeRequest record;
  record.set_request_id(NewId("req-"));
  record.set_referral_id(id);
  *record.mutable_outcome() = outcome(v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  ASSERT_RPC_OK(ersou_->RecordOutcome(Context().get(), record, &unit_step));

  v1::GetTimelineRequest tl;
  tl.set_referral_id(id);
  v1::GetTimelineResponse timeline;
  ASSERT_TRUE(WaitFor([&] {
    return nca_->GetTimeline(Context().get(), tl, &timeline).ok() &&
           timeline.entry().state() == v1::REFERRAL_STATE_OUTCOME_RECORDED;
  }));
  const v1::RegisterEntry& e = timeline.entry();
  EXPECT_EQ(e.reminders(), 0);
  EXPECT_FALSE(e.escalated());
  EXPECT_EQ(e.open_investigation_flags(), 2) << "regulation 19: 12 and 18 months after receipt";
  ASSERT_EQ(e.tracks_size(), 3);
  EXPECT_EQ(e.tracks(0).type(), v1::OUTCOME_TYPE_CRIMINAL_CONVICTED);
  EXPECT_EQ(e.tracks(1).type(), v1::OUTCOME_TYPE_MISCONDUCT_HEARING);
  EXPECT_EQ(e.tracks(2).type(), v1::OUTCOME_TYPE_BARRED_LIST_ENTRY);
  for (const auto& ev : timeline.events()) {
    if (ev.type() == v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG) {
      EXPECT_THAT(ev.addressee(), ::testing::HasSubstr("Police and Crime Commissioner"));
    }
  }

  // The silent one climbed the ladder, one rung per grace period, to the PCC.
  tl.set_referral_id(silent);
  std::vector<std::string> ladder;
  ASSERT_TRUE(WaitFor([&] {
    ladder.clear();
    if (!nca_->GetTimeline(Context().get(), tl, &timeline).ok()) return false;
    for (const auto& ev : timeline.events()) {
      if (ev.type() == v1::EVENT_TYPE_ESCALATED) ladder.push_back(ev.addressee());
    }
    return ladder.size() == 3;
  }));
  EXPECT_THAT(ladder[0], ::testing::HasSubstr("Head of Professional Standards"));
  EXPECT_THAT(ladder[1], ::testing::HasSubstr("Deputy Chief Constable"));
  EXPECT_THAT(ladder[2], ::testing::HasSubstr("Police and Crime Commissioner"));
  EXPECT_GE(timeline.entry().reminders(), 2) << "reminders repeat while the silence lasts";

  // The police and crime commissioner, whom the last rung names, reads what is addressed to them
  // and their force's overdue list, and nothing else.
  auto pcc = v1::Oversight::NewStub(chain_->Channel("nca", "oversight-NFK-pcc"));
  v1::ListEscalationsResponse notices;
  ASSERT_RPC_OK(pcc->ListEscalations(Context().get(), v1::ListEscalationsRequest(), &notices));
  int rung3 = 0, reg19 = 0;
  for (const auto& n : notices.notices()) {
    EXPECT_EQ(n.event().addressee_identity(), "spiffe://sarloop/oversight/NFK/pcc");
    if (n.event().type() == v1::EVENT_TYPE_ESCALATED) {
      EXPECT_EQ(n.event().referral_id(), silent);
      EXPECT_EQ(n.event().sequence(), 3);
      EXPECT_EQ(n.entry().state(), v1::REFERRAL_STATE_RECEIVED) << "still silent";
      ++rung3;
    } else {
      EXPECT_EQ(n.event().type(), v1::EVENT_TYPE_OPEN_INVESTIGATION_FLAG);
      ++reg19;
    }
  }
  EXPECT_EQ(rung3, 1);
  EXPECT_EQ(reg19, 4) << "both referrals, at 12 and 18 months after receipt";
  v1::ListOverdueResponse overdue;
  ASSERT_RPC_OK(pcc->ListOverdue(Context().get(), v1::ListOverdueRequest(), &overdue));
  std::set<std::string> overdue_ids;
  for (const auto& o : overdue.entries()) overdue_ids.insert(o.referral_id());
  EXPECT_EQ(overdue_ids, std::set<std::string>{silent});
  v1::ListOverdueRequest other;
  other.set_organisation("SFK");
  EXPECT_EQ(pcc->ListOverdue(Context().get(), other, &overdue).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::GetSummaryResponse summary;
  EXPECT_EQ(v1::Nca::NewStub(chain_->Channel("nca", "oversight-NFK-pcc"))
                ->GetSummary(Context().get(), v1::GetSummaryRequest(), &summary)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The head of professional standards has the first rung only.
  auto head = v1::Oversight::NewStub(chain_->Channel("nca", "oversight-NFK-head-of-psd"));
  ASSERT_RPC_OK(head->ListEscalations(Context().get(), v1::ListEscalationsRequest(), &notices));
  ASSERT_EQ(notices.notices_size(), 1);
  EXPECT_EQ(notices.notices(0).event().sequence(), 1);
}

// Who investigates (issue 20, item 6). Norfolk chooses the NCA's ACU for one referral and its
// regional unit for another, and keeps its own conduct track while the ACU holds the criminal
// one. Border Force has no anti-corruption department: its referral reaches the ACU on receipt,
// and the ACU's decline needs a THR and is addressed to an NCA senior manager, who reads it.
TEST_F(ChainTest, TheUnitIsChosenPerReferralAndBorderForceGoesToTheAcuFromTheStart) {
  auto acu = v1::Racu::NewStub(chain_->Channel("racu-NCAACU", "racu-NCAACU-cases"));
  auto unit_has = [&](v1::Racu::Stub& unit, const std::string& id, v1::ReferralState state) {
    return WaitFor([&] {
      v1::GetHandoverRequest req;
      req.set_referral_id(id);
      v1::GetHandoverResponse resp;
      return unit.GetHandover(Context().get(), req, &resp).ok() && resp.referral().state() == state;
    });
  };
  const std::string to_acu = Refer("NFK", "Dana Quill");
  const std::string to_ersou = Refer("NFK", "Evan Thorne");
  Research("NFK", to_acu);
  Research("NFK", to_ersou);
  v1::HandOverRequest h;
  h.set_request_id(NewId("req-"));
  h.set_referral_id(to_acu);
  h.set_notes("Links to an organised crime group under NCA investigation.");
  h.set_priority(v1::PRIORITY_P1);
  *h.mutable_thr() = SampleThr();
  h.set_unit("SEROCU");
  v1::ForceStepResponse stepped;
  grpc::Status s = forces_["NFK"]->HandOver(Context().get(), h, &stepped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::AllOf(HasSubstr("unit"), HasSubstr("SEROCU")));
  h.set_unit("NCAACU");
  ASSERT_RPC_OK(forces_["NFK"]->HandOver(Context().get(), h, &stepped));
  // The other goes to the default unit.
  h.set_request_id(NewId("req-"));
  h.set_referral_id(to_ersou);
  h.clear_unit();
  ASSERT_RPC_OK(forces_["NFK"]->HandOver(Context().get(), h, &stepped));
  ASSERT_TRUE(unit_has(*acu, to_acu, v1::REFERRAL_STATE_HANDED_OVER));
  ASSERT_TRUE(unit_has(*ersou_, to_ersou, v1::REFERRAL_STATE_HANDED_OVER));
  v1::GetHandoverRequest get;
  get.set_referral_id(to_ersou);
  v1::GetHandoverResponse elsewhere;
  EXPECT_EQ(acu->GetHandover(Context().get(), get, &elsewhere).error_code(),
            grpc::StatusCode::NOT_FOUND)
      << "the ACU holds only what was handed to it";

  // A joint investigation: the ACU holds the criminal track, Norfolk adds its conduct track.
  v1::AcceptHandoverRequest accept;
  accept.set_request_id(NewId("req-"));
  accept.set_referral_id(to_acu);
  accept.set_priority(v1::PRIORITY_P1);
  *accept.mutable_thr() = SampleThr();
  v1::UnitStepResponse unit_stepped;
  ASSERT_RPC_OK(acu->Accept(Context().get(), accept, &unit_stepped));
  ASSERT_TRUE(ForceHas("NFK", to_acu, v1::REFERRAL_STATE_JOINT_INVESTIGATION));
  v1::UpdateUnitOutcomeRequest charged;
  charged.set_request_id(NewId("req-"));
  charged.set_referral_id(to_acu);
  *charged.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED);
  ASSERT_RPC_OK(acu->UpdateOutcome(Context().get(), charged, &unit_stepped));
  v1::UpdateOutcomeRequest conduct;
  conduct.set_request_id(NewId("req-"));
  conduct.set_referral_id(to_acu);
  *conduct.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_CASE_TO_ANSWER);
  ASSERT_RPC_OK(forces_["NFK"]->UpdateOutcome(Context().get(), conduct, &stepped));
  v1::GetTimelineRequest timeline_req;
  timeline_req.set_referral_id(to_acu);
  v1::GetTimelineResponse timeline;
  ASSERT_TRUE(WaitFor([&] {
    return nca_->GetTimeline(Context().get(), timeline_req, &timeline).ok() &&
           timeline.entry().tracks_size() == 2;
  }));
  EXPECT_EQ(timeline.entry().unit(), "NCAACU");
  EXPECT_EQ(timeline.entry().state(), v1::REFERRAL_STATE_JOINT_INVESTIGATION);

  // Border Force: at the ACU on receipt, with the package, and nothing for BF's desk to decide.
  const std::string bf = Refer("BF", "Bryn Holt");
  ASSERT_TRUE(unit_has(*acu, bf, v1::REFERRAL_STATE_HANDED_OVER));
  get.set_referral_id(bf);
  v1::GetHandoverResponse at_acu;
  ASSERT_RPC_OK(acu->GetHandover(Context().get(), get, &at_acu));
  EXPECT_TRUE(at_acu.referral().handed_over_on_receipt());
  EXPECT_EQ(at_acu.referral().package().sar().subjects(0).full_name(), "Bryn Holt");
  ASSERT_TRUE(ForceHas("BF", bf, v1::REFERRAL_STATE_HANDED_OVER));
  EXPECT_EQ(ForceStep("BF", bf, v1::EVENT_TYPE_ACKNOWLEDGED).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::DeclineAssistanceRequest decline;
  decline.set_request_id(NewId("req-"));
  decline.set_referral_id(bf);
  decline.set_reason("Below the ACU's adoption threshold; no criminality indicated.");
  s = acu->DeclineAssistance(Context().get(), decline, &unit_stepped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("thr"));
  decline.set_request_id(NewId("req-"));
  decline.set_priority(v1::PRIORITY_P4);
  *decline.mutable_thr() = SampleThr();
  ASSERT_RPC_OK(acu->DeclineAssistance(Context().get(), decline, &unit_stepped));

  auto senior = v1::Oversight::NewStub(chain_->Channel("nca", "oversight-NCA-senior-manager"));
  v1::ListEscalationsResponse notices;
  ASSERT_TRUE(WaitFor([&] {
    return senior->ListEscalations(Context().get(), v1::ListEscalationsRequest(), &notices).ok() &&
           notices.notices_size() == 1;
  }));
  EXPECT_EQ(notices.notices(0).event().type(), v1::EVENT_TYPE_ASSISTANCE_DECLINED);
  EXPECT_EQ(notices.notices(0).event().referral_id(), bf);
  EXPECT_TRUE(notices.notices(0).event().has_thr());
  EXPECT_TRUE(notices.notices(0).entry().handed_over_on_receipt());
  EXPECT_EQ(notices.notices(0).entry().organisation(), "BF");
  // Norfolk's regional unit declining is Norfolk's to act on: nobody else is addressed.
  decline.set_request_id(NewId("req-"));
  decline.set_referral_id(to_ersou);
  ASSERT_RPC_OK(ersou_->DeclineAssistance(Context().get(), decline, &unit_stepped));
  ASSERT_TRUE(ForceHas("NFK", to_ersou, v1::REFERRAL_STATE_UNDER_RESEARCH));
  ASSERT_RPC_OK(senior->ListEscalations(Context().get(), v1::ListEscalationsRequest(), &notices));
  EXPECT_EQ(notices.notices_size(), 1);
  auto pcc = v1::Oversight::NewStub(chain_->Channel("nca", "oversight-NFK-pcc"));
  ASSERT_RPC_OK(pcc->ListEscalations(Context().get(), v1::ListEscalationsRequest(), &notices));
  EXPECT_EQ(notices.notices_size(), 0);
}

// Structured replies (issue 21, item 1): a force that finds the subject is another
// organisation's employee says so from RECEIVED, naming it; UKFIU redirects in one step, the new
// referral linked to the declined one; the employer closes it; the register counts the decline
// by its code.
// Requests for information: the force asks UKFIU for the account details (its decision clock
// pauses), UKFIU answers, the force replies "employee of SFK" straight from receipt, UKFIU
// redirects in one step and SFK closes it. Then a unit and the force talk over a handover. The
// text reaches only the party asked; the NCA counts threads and never sees their words.
TEST_F(ChainTest, AForceAsksUkfiuThenNamesTheEmployerAndTheTextNeverReachesTheNca) {
  const std::string id = Refer("NFK", "Morgan Vale");
  ASSERT_TRUE(ForceHas("NFK", id, v1::REFERRAL_STATE_RECEIVED));
  v1::RequestInformationRequest ask;
  ask.set_request_id(NewId("req-"));
  ask.set_referral_id(id);
  ask.set_to("ERSOU");
  ask.set_question("Please send the account statements behind this report.");
  v1::InformationThreadResponse asked;
  grpc::Status s = forces_["NFK"]->RequestInformation(Context().get(), ask, &asked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "not handed to ERSOU";
  EXPECT_THAT(s.error_message(), HasSubstr("to"));
  ask.clear_to();
  ask.add_attachments("goAML DOC-000123");
  ASSERT_RPC_OK(forces_["NFK"]->RequestInformation(Context().get(), ask, &asked));
  const v1::InformationThread& thread = asked.thread();
  EXPECT_THAT(thread.thread_id(), ::testing::StartsWith("RFI-"));
  EXPECT_EQ(thread.asked_by(), "NFK");
  EXPECT_EQ(thread.asked_of(), "UKFIU");
  EXPECT_TRUE(thread.open());
  // The same request_id again is the same request: one thread.
  v1::InformationThreadResponse again;
  ASSERT_RPC_OK(forces_["NFK"]->RequestInformation(Context().get(), ask, &again));
  EXPECT_EQ(again.thread().thread_id(), thread.thread_id());

  // UKFIU sees what waits for its answer, with the text, and answers.
  v1::ListThreadsRequest awaiting;
  awaiting.set_awaiting_our_answer(true);
  v1::ListThreadsResponse waiting;
  ASSERT_TRUE(WaitFor([&] {
    return ukfiu_->ListThreads(Context().get(), awaiting, &waiting).ok() &&
           waiting.threads_size() == 1;
  }));
  EXPECT_EQ(waiting.threads(0).question().text(), ask.question());
  EXPECT_EQ(waiting.threads(0).question().attachments(0), "goAML DOC-000123");
  EXPECT_EQ(waiting.threads(0).question().actor().user(), "test-user");
  v1::GetReferralRequest get;
  get.set_referral_id(id);
  v1::GetReferralResponse at_ukfiu;
  ASSERT_RPC_OK(ukfiu_->GetReferral(Context().get(), get, &at_ukfiu));
  EXPECT_TRUE(at_ukfiu.referral().decision_clock_paused());
  EXPECT_EQ(at_ukfiu.referral().requests_open(), 1);
  v1::AnswerInformationRequest answer;
  answer.set_request_id(NewId("req-"));
  answer.set_thread_id(thread.thread_id());
  answer.set_answer("Salary credits come from Suffolk Constabulary every month.");
  v1::InformationThreadResponse answered;
  s = forces_["NFK"]->AnswerInformation(Context().get(), answer, &answered);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "NFK was not asked";
  ASSERT_RPC_OK(ukfiu_->AnswerInformation(Context().get(), answer, &answered));
  EXPECT_FALSE(answered.thread().open());
  answer.set_request_id(NewId("req-"));
  s = ukfiu_->AnswerInformation(Context().get(), answer, &answered);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "answered already";

  // The force reads the answer; its clock runs again.
  v1::ListThreadsRequest of_referral;
  of_referral.set_referral_id(id);
  v1::ListThreadsResponse at_nfk;
  ASSERT_TRUE(WaitFor([&] {
    return forces_["NFK"]->ListThreads(Context().get(), of_referral, &at_nfk).ok() &&
           at_nfk.threads_size() == 1 && at_nfk.threads(0).has_answer();
  }));
  EXPECT_EQ(at_nfk.threads(0).answer().text(), answer.answer());
  v1::GetForceReferralRequest get_nfk;
  get_nfk.set_referral_id(id);
  v1::GetForceReferralResponse nfk_copy;
  ASSERT_RPC_OK(forces_["NFK"]->GetReferral(Context().get(), get_nfk, &nfk_copy));
  EXPECT_FALSE(nfk_copy.referral().decision_clock_paused());
  EXPECT_EQ(nfk_copy.referral().state(), v1::REFERRAL_STATE_RECEIVED) << "asking changes no state";

  // Not ours: straight from receipt, naming the employer; UKFIU redirects in one step.
  v1::DeclineReferralRequest decline;
  decline.set_request_id(NewId("req-"));
  decline.set_referral_id(id);
  decline.set_reason_code(v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION);
  decline.set_named_organisation("SFK");
  v1::ForceStepResponse stepped;
  ASSERT_RPC_OK(forces_["NFK"]->Decline(Context().get(), decline, &stepped));
  ASSERT_TRUE(WaitFor([&] {
    return ukfiu_->GetReferral(Context().get(), get, &at_ukfiu).ok() &&
           at_ukfiu.referral().named_organisation() == "SFK";
  }));
  v1::RedirectReferralRequest redirect;
  redirect.set_request_id(NewId("req-"));
  redirect.set_referral_id(id);
  v1::RedirectReferralResponse redirected;
  ASSERT_RPC_OK(ukfiu_->RedirectReferral(Context().get(), redirect, &redirected));
  const std::string moved = redirected.referral().referral_id();
  EXPECT_EQ(redirected.referral().organisation(), "SFK");
  Research("SFK", moved);
  v1::CloseReferralRequest close;
  close.set_request_id(NewId("req-"));
  close.set_referral_id(moved);
  *close.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE);
  ASSERT_RPC_OK(forces_["SFK"]->Close(Context().get(), close, &stepped));

  // A unit and the force: ERSOU asks NFK about a handover, NFK answers; UKFIU is not a party.
  const std::string handed = Refer("NFK");
  Research("NFK", handed);
  v1::ForceStepResponse handed_over;
  ASSERT_RPC_OK(HandOver(handed, v1::PRIORITY_P2, "notes", &handed_over));
  v1::GetHandoverResponse held;
  ASSERT_TRUE(ErsouHolds(handed, &held));
  v1::RequestInformationRequest unit_ask;
  unit_ask.set_request_id(NewId("req-"));
  unit_ask.set_referral_id(handed);
  unit_ask.set_question("Which systems did the officer have access to?");
  unit_ask.set_reply_due_days(5);
  v1::InformationThreadResponse unit_thread;
  ASSERT_RPC_OK(ersou_->RequestInformation(Context().get(), unit_ask, &unit_thread));
  EXPECT_EQ(unit_thread.thread().asked_of(), "NFK");
  v1::ListThreadsResponse nfk_waiting;
  ASSERT_TRUE(WaitFor([&] {
    return forces_["NFK"]->ListThreads(Context().get(), awaiting, &nfk_waiting).ok() &&
           nfk_waiting.threads_size() == 1;
  }));
  v1::AnswerInformationRequest nfk_answer;
  nfk_answer.set_request_id(NewId("req-"));
  nfk_answer.set_thread_id(unit_thread.thread().thread_id());
  nfk_answer.set_answer("Custody and intelligence systems.");
  ASSERT_RPC_OK(forces_["NFK"]->AnswerInformation(Context().get(), nfk_answer, &answered));
  v1::ListThreadsRequest of_handed;
  of_handed.set_referral_id(handed);
  v1::ListThreadsResponse at_ersou;
  ASSERT_TRUE(WaitFor([&] {
    return ersou_->ListThreads(Context().get(), of_handed, &at_ersou).ok() &&
           at_ersou.threads_size() == 1 && at_ersou.threads(0).has_answer();
  }));
  v1::ListThreadsResponse at_ukfiu_threads;
  ASSERT_RPC_OK(ukfiu_->ListThreads(Context().get(), of_handed, &at_ukfiu_threads));
  EXPECT_EQ(at_ukfiu_threads.threads_size(), 0) << "UKFIU is not a party to that thread";

  // The NCA: counts and times, no words.
  for (const std::string& ref : {id, handed}) {
    v1::GetTimelineRequest timeline_req;
    timeline_req.set_referral_id(ref);
    v1::GetTimelineResponse timeline;
    ASSERT_TRUE(WaitFor([&] {
      return nca_->GetTimeline(Context().get(), timeline_req, &timeline).ok() &&
             timeline.entry().information_answered() == 1;
    })) << ref;
    EXPECT_EQ(timeline.entry().information_requests(), 1);
    const std::string everything = timeline.SerializeAsString();
    for (const std::string& words : {ask.question(), answer.answer(), unit_ask.question(),
                                     nfk_answer.answer(), std::string("goAML DOC-000123")}) {
      EXPECT_EQ(everything.find(words), std::string::npos) << words;
    }
  }
}

// Coverage: Cleveland does not run sarloop. UKFIU refers to it off-system and records its replies
// on its behalf; the register marks and counts them, and the clock chases the silence as for any.
TEST_F(ChainTest, AnOffSystemReferralIsRecordedOnBehalfAndCountedInTheRegister) {
  v1::ReferSarRequest refer = ReferRequest(SubmitSar("Cora Offsystem"), "CLE");
  v1::ReferSarResponse referred;
  grpc::Status s = ukfiu_->ReferSar(Context().get(), refer, &referred);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("off_system"));
  refer.set_off_system(true);
  ASSERT_RPC_OK(ukfiu_->ReferSar(Context().get(), refer, &referred));
  const std::string id = referred.referral().referral_id();
  for (v1::EventType step :
       {v1::EVENT_TYPE_RECEIVED, v1::EVENT_TYPE_ACKNOWLEDGED, v1::EVENT_TYPE_DECLINED_BY_FORCE}) {
    v1::RecordOnBehalfRequest on_behalf;
    on_behalf.set_request_id(NewId("req-"));
    on_behalf.set_referral_id(id);
    on_behalf.set_step(step);
    on_behalf.set_received_by("secure email from Cleveland PSD");
    if (step == v1::EVENT_TYPE_DECLINED_BY_FORCE) {
      on_behalf.set_reason_code(v1::DECLINE_REASON_NOT_OUR_EMPLOYEE);
    }
    v1::RecordOnBehalfResponse recorded;
    ASSERT_RPC_OK(ukfiu_->RecordOnBehalf(Context().get(), on_behalf, &recorded));
  }
  v1::GetTimelineRequest timeline_req;
  timeline_req.set_referral_id(id);
  v1::GetTimelineResponse timeline;
  ASSERT_TRUE(WaitFor([&] {
    return nca_->GetTimeline(Context().get(), timeline_req, &timeline).ok() &&
           timeline.entry().state() == v1::REFERRAL_STATE_DECLINED_BY_FORCE;
  }));
  EXPECT_TRUE(timeline.entry().recorded_on_behalf());
  EXPECT_EQ(timeline.entry().decline_reason(), v1::DECLINE_REASON_NOT_OUR_EMPLOYEE);
  ASSERT_EQ(timeline.events_size(), 4);
  for (const auto& e : timeline.events()) {
    EXPECT_TRUE(e.recorded_on_behalf());
    EXPECT_EQ(e.actor().user(), "test-user") << "audited as the UKFIU analyst who recorded it";
  }
  EXPECT_EQ(timeline.events(3).received_by(), "secure email from Cleveland PSD");
  v1::GetAggregatesRequest by_org;
  by_org.add_group_by(v1::DIMENSION_ORGANISATION);
  v1::GetAggregatesResponse orgs;
  ASSERT_RPC_OK(nca_->GetAggregates(Context().get(), by_org, &orgs));
  bool counted = false;
  for (const auto& g : orgs.groups()) {
    if (g.key(0) != "CLE") continue;
    counted = true;
    EXPECT_EQ(g.measures().referred(), 1);
    EXPECT_EQ(g.measures().recorded_on_behalf(), 1);
    EXPECT_EQ(g.measures().declined_by_force(), 1);
  }
  EXPECT_TRUE(counted);
  EXPECT_EQ(orgs.total().recorded_on_behalf(), 1);
}

// Linked cases: a SAR about people in two forces is one joint case with a lead; a further SAR
// joins NFK's referral after the handover and reaches the force and its unit; the register counts
// two referrals, one case and both SARs' subjects.
TEST_F(ChainTest, AJointCaseAndAFurtherSarAreCountedAsOneCase) {
  v1::ReferSarRequest refer = ReferRequest(SubmitSar("Pat Joint"), "NFK");
  refer.add_joint_with("SFK");
  v1::ReferSarResponse referred;
  ASSERT_RPC_OK(ukfiu_->ReferSar(Context().get(), refer, &referred));
  ASSERT_EQ(referred.joint_size(), 1);
  const std::string id = referred.referral().referral_id();
  Research("NFK", id);
  v1::ForceStepResponse handed;
  ASSERT_RPC_OK(HandOver(id, v1::PRIORITY_P2, "joint case notes", &handed));
  v1::GetHandoverResponse held;
  ASSERT_TRUE(ErsouHolds(id, &held));
  EXPECT_EQ(held.referral().case_id(), referred.referral().case_id());

  v1::AttachSarRequest attach;
  attach.set_request_id(NewId("req-"));
  attach.set_referral_id(id);
  attach.set_sar_id(SubmitSar("Kit Further"));
  v1::AttachSarResponse attached;
  ASSERT_RPC_OK(ukfiu_->AttachSar(Context().get(), attach, &attached));
  v1::GetForceReferralRequest get;
  get.set_referral_id(id);
  v1::GetForceReferralResponse at_nfk;
  ASSERT_TRUE(WaitFor([&] {
    return forces_["NFK"]->GetReferral(Context().get(), get, &at_nfk).ok() &&
           at_nfk.referral().package().supplementary_sars_size() == 1;
  }));
  EXPECT_EQ(at_nfk.referral().package().supplementary_sars(0).subjects(0).full_name(),
            "Kit Further");
  ASSERT_TRUE(WaitFor([&] {
    v1::GetHandoverRequest req;
    req.set_referral_id(id);
    return ersou_->GetHandover(Context().get(), req, &held).ok() &&
           held.referral().package().supplementary_sars_size() == 1;
  })) << "the unit holding it receives the further SAR too";

  v1::GetTimelineRequest timeline_req;
  timeline_req.set_referral_id(id);
  v1::GetTimelineResponse timeline;
  ASSERT_TRUE(WaitFor([&] {
    return nca_->GetTimeline(Context().get(), timeline_req, &timeline).ok() &&
           timeline.entry().supplementary_sars() == 1;
  }));
  EXPECT_EQ(timeline.entry().subject_refs_size(), 2);
  EXPECT_EQ(timeline.SerializeAsString().find("Kit Further"), std::string::npos);
  v1::GetAggregatesRequest by_org;
  by_org.add_group_by(v1::DIMENSION_ORGANISATION);
  by_org.set_count_distinct(true);
  v1::GetAggregatesResponse orgs;
  ASSERT_TRUE(WaitFor([&] {
    return nca_->GetAggregates(Context().get(), by_org, &orgs).ok() &&
           orgs.total().referred() == 2 && orgs.total().distinct_subjects() == 2;
  }));
  EXPECT_EQ(orgs.total().cases(), 1) << "the joint referral's two referrals are one case";
}

TEST_F(ChainTest, AForceNamesTheEmployerAndUkfiuRedirectsInOneStep) {
  const std::string id = Refer("NFK", "Morgan Vale");
  ASSERT_TRUE(ForceHas("NFK", id, v1::REFERRAL_STATE_RECEIVED));
  v1::DeclineReferralRequest decline;
  decline.set_request_id(NewId("req-"));
  decline.set_referral_id(id);
  decline.set_reason_code(v1::DECLINE_REASON_ACTIVITY_EXPLAINED);
  v1::ForceStepResponse stepped;
  grpc::Status s = forces_["NFK"]->Decline(Context().get(), decline, &stepped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "needs research first";
  decline.set_reason_code(v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION);
  s = forces_["NFK"]->Decline(Context().get(), decline, &stepped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("named_organisation"));
  decline.set_named_organisation("QQQ");
  EXPECT_EQ(forces_["NFK"]->Decline(Context().get(), decline, &stepped).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  decline.set_request_id(NewId("req-"));
  decline.set_named_organisation("SFK");
  decline.set_reason("HR records show a secondment from Suffolk");
  ASSERT_RPC_OK(forces_["NFK"]->Decline(Context().get(), decline, &stepped));
  EXPECT_EQ(stepped.referral().state(), v1::REFERRAL_STATE_DECLINED_BY_FORCE);

  // UKFIU: one step, nothing to fill in.
  v1::GetReferralRequest get;
  get.set_referral_id(id);
  v1::GetReferralResponse at_ukfiu;
  ASSERT_TRUE(WaitFor([&] {
    return ukfiu_->GetReferral(Context().get(), get, &at_ukfiu).ok() &&
           at_ukfiu.referral().named_organisation() == "SFK";
  }));
  v1::RedirectReferralRequest redirect;
  redirect.set_request_id(NewId("req-"));
  redirect.set_referral_id(id);
  v1::RedirectReferralResponse redirected;
  ASSERT_RPC_OK(ukfiu_->RedirectReferral(Context().get(), redirect, &redirected));
  EXPECT_EQ(redirected.referral().organisation(), "SFK");
  EXPECT_EQ(redirected.referral().linked_referral_id(), id);
  EXPECT_EQ(redirected.redirected().state(), v1::REFERRAL_STATE_DECLINED_BY_FORCE)
      << "the decline was the force's feedback and stays";
  const std::string moved = redirected.referral().referral_id();
  Research("SFK", moved);
  v1::CloseReferralRequest close;
  close.set_request_id(NewId("req-"));
  close.set_referral_id(moved);
  *close.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_NOT_OUR_PERSONNEL);
  s = forces_["SFK"]->Close(Context().get(), close, &stepped);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "one way to say not ours";
  EXPECT_THAT(s.error_message(), HasSubstr("NOT_OUR_EMPLOYEE"));
  *close.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE);
  ASSERT_RPC_OK(forces_["SFK"]->Close(Context().get(), close, &stepped));

  v1::GetAggregatesRequest by_reason;
  by_reason.add_group_by(v1::DIMENSION_DECLINE_REASON);
  v1::GetAggregatesResponse reasons;
  ASSERT_TRUE(WaitFor([&] {
    if (!nca_->GetAggregates(Context().get(), by_reason, &reasons).ok()) return false;
    for (const auto& g : reasons.groups()) {
      if (g.key(0) == "EMPLOYEE_OF_ANOTHER_ORGANISATION") return g.measures().referred() == 1;
    }
    return false;
  }));
  v1::GetTimelineRequest timeline_req;
  timeline_req.set_referral_id(id);
  v1::GetTimelineResponse timeline;
  ASSERT_RPC_OK(nca_->GetTimeline(Context().get(), timeline_req, &timeline));
  EXPECT_EQ(timeline.entry().decline_reason(), v1::DECLINE_REASON_EMPLOYEE_OF_ANOTHER_ORGANISATION);
  EXPECT_EQ(timeline.entry().named_organisation(), "SFK");
  timeline_req.set_referral_id(moved);
  ASSERT_TRUE(WaitFor([&] {
    return nca_->GetTimeline(Context().get(), timeline_req, &timeline).ok() &&
           timeline.entry().state() == v1::REFERRAL_STATE_CLOSED_BY_FORCE;
  }));
  EXPECT_EQ(timeline.entry().linked_referral_id(), id);
}

TEST_F(ChainTest, WithdrawalAndRedirectionReachEveryHolder) {
  const std::string investigated = Refer("NFK", "Joint Subject");
  const std::string moved = Refer("NFK", "Moved Subject");
  Research("NFK", investigated);
  v1::ForceStepResponse step;
  ASSERT_RPC_OK(HandOver(investigated, v1::PRIORITY_P3, "notes", &step));
  v1::GetHandoverResponse held;
  ASSERT_TRUE(ErsouHolds(investigated, &held));
  v1::GetHandoverRequest get;
  get.set_referral_id(investigated);
  EXPECT_TRUE(held.referral().has_dispatched_at());
  EXPECT_EQ(held.referral().package().handover_notes(), "notes");
  v1::UnitStepResponse accepted;
  ASSERT_RPC_OK(Accept(investigated, v1::PRIORITY_P3, &accepted));
  // UKFIU's mirror learns of the joint investigation, then withdraws.
  v1::GetReferralRequest mirror_req;
  mirror_req.set_referral_id(investigated);
  v1::GetReferralResponse mirror;
  ASSERT_TRUE(WaitFor([&] {
    return ukfiu_->GetReferral(Context().get(), mirror_req, &mirror).ok() &&
           mirror.referral().state() == v1::REFERRAL_STATE_JOINT_INVESTIGATION;
  }));
  v1::WithdrawReferralRequest withdraw;
  withdraw.set_request_id(NewId("req-"));
  withdraw.set_referral_id(investigated);
  withdraw.set_reason("the reporter retracted the SAR");
  v1::WithdrawReferralResponse withdrawn;
  ASSERT_RPC_OK(ukfiu_->WithdrawReferral(Context().get(), withdraw, &withdrawn));
  EXPECT_TRUE(ForceHas("NFK", investigated, v1::REFERRAL_STATE_WITHDRAWN));
  EXPECT_TRUE(WaitFor([&] {
    return ersou_->GetHandover(Context().get(), get, &held).ok() &&
           held.referral().state() == v1::REFERRAL_STATE_WITHDRAWN;
  }));
  // The unit can no longer record an outcome on it.
  v1::RecordOutcomeRequest outcome;
  outcome.set_request_id(NewId("req-"));
  outcome.set_referral_id(investigated);
  *outcome.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_CRIMINAL_CHARGED);
  EXPECT_EQ(ersou_->RecordOutcome(Context().get(), outcome, &accepted).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  v1::RedirectReferralRequest redirect;
  redirect.set_request_id(NewId("req-"));
  redirect.set_referral_id(moved);
  redirect.set_organisation("SFK");
  *redirect.mutable_thr() = SampleThr();
  redirect.set_reason("transferred to Suffolk in 2025");
  v1::RedirectReferralResponse redirected;
  ASSERT_RPC_OK(ukfiu_->RedirectReferral(Context().get(), redirect, &redirected));
  const std::string fresh = redirected.referral().referral_id();
  EXPECT_TRUE(ForceHas("NFK", moved, v1::REFERRAL_STATE_REDIRECTED));
  EXPECT_TRUE(ForceHas("SFK", fresh, v1::REFERRAL_STATE_RECEIVED));
  ASSERT_TRUE(WaitFor([&] {
    const auto summary = Summary();
    return summary.total().withdrawn() == 1 && summary.total().redirected() == 1 &&
           summary.total().referred() == 3;
  })) << Summary().DebugString();
  v1::GetTimelineRequest t;
  t.set_referral_id(fresh);
  v1::GetTimelineResponse timeline;
  ASSERT_RPC_OK(nca_->GetTimeline(Context().get(), t, &timeline));
  EXPECT_EQ(timeline.entry().linked_referral_id(), moved);
}

}  // namespace
}  // namespace sarloop
