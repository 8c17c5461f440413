// Input that is not what it claims to be, sent to the real services over mTLS: text with control
// characters, bidi overrides or invalid UTF-8; bytes that are no protobuf message; times that
// cannot be. Table-driven: each case names the field the refusal must name. No case may be
// answered OK, INTERNAL, UNKNOWN or grpc::StatusCode::UNIMPLEMENTED, and the services keep working
// after all of it.
#include <grpcpp/generic/generic_stub.h>

#include <functional>
#include <future>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tests/testutil/chain.h"

namespace sarloop {
namespace {

using ::sarloop::testing::Context;
using ::sarloop::testing::LocalChain;
using ::sarloop::testing::SampleOutcome;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto chain = LocalChain::Up();
    ASSERT_TRUE(chain.ok()) << chain.status();
    chain_ = chain->release();
  }
  static void TearDownTestSuite() {
    delete chain_;
    chain_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(chain_, nullptr);
    ukfiu_ = v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
    force_ = v1::Force::NewStub(chain_->Channel("force-NFK", "force-NFK-psd"));
    unit_ = v1::Racu::NewStub(chain_->Channel("racu-ERSOU", "racu-ERSOU-cases"));
    nca_ = v1::Nca::NewStub(chain_->Channel("nca", "analyst-alice"));
  }

  static v1::SubmitSarRequest Submit() {
    v1::SubmitSarRequest r;
    r.set_request_id(NewId("req-"));
    *r.mutable_sar() = SampleSar();
    return r;
  }

  // The refusal must be INVALID_ARGUMENT naming `field` in its BadRequest detail.
  static void ExpectRefused(const grpc::Status& s, const std::string& field,
                            const std::string& what) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << what << ": " << s.error_code() << " " << s.error_message();
    EXPECT_EQ(FieldOf(FromGrpcStatus(s)), field) << what << ": " << s.error_message();
  }

  static LocalChain* chain_;
  std::unique_ptr<v1::Ukfiu::Stub> ukfiu_;
  std::unique_ptr<v1::Force::Stub> force_;
  std::unique_ptr<v1::Racu::Stub> unit_;
  std::unique_ptr<v1::Nca::Stub> nca_;
};
LocalChain* BadInputTest::chain_ = nullptr;

// Strings no field may hold, and the code point each one is refused for.
const std::pair<std::string, const char*> kNeverText[] = {
    {std::string("Jane\0Example", 12), "U+0000"},
    {"Jane\x1b[31mExample", "U+001B"},
    {"Jane\aExample", "U+0007"},
    {"Jane\bExample", "U+0008"},
    {"Jane\x7f"
     "Example",
     "U+007F"},
    {"Jane\xc2\x85"
     "Example",
     "U+0085"},  // NEL, a C1 control
    {"Jane\xe2\x80\xae"
     "elpmaxE",
     "U+202E"},  // right-to-left override
    {"Jane\xe2\x81\xa6"
     "Example",
     "U+2066"},  // left-to-right isolate
    {"Jane\xe2\x80\xa8"
     "Example",
     "U+2028"},  // line separator
};
// Allowed in free text, refused in a name or a code.
const std::pair<std::string, const char*> kLineBreaks[] = {
    {"Jane\nExample", "U+000A"}, {"Jane\rExample", "U+000D"}, {"Jane\tExample", "U+0009"}};

TEST_F(BadInputTest, ControlCharactersAreRefusedInEveryKindOfField) {
  // Each field is set by `set`, on a request sent by `send`.
  struct Field {
    std::string path;
    bool multiline;
    std::function<grpc::Status(const std::string&)> send;
  };
  const std::vector<Field> fields = {
      {"sar.subjects[0].full_name", false,
       [&](const std::string& v) {
         auto r = Submit();
         r.mutable_sar()->mutable_subjects(0)->set_full_name(v);
         v1::SubmitSarResponse resp;
         return ukfiu_->SubmitSar(Context().get(), r, &resp);
       }},
      {"sar.subjects[0].address", true,
       [&](const std::string& v) {
         auto r = Submit();
         r.mutable_sar()->mutable_subjects(0)->set_address(v);
         v1::SubmitSarResponse resp;
         return ukfiu_->SubmitSar(Context().get(), r, &resp);
       }},
      {"sar.narrative", true,
       [&](const std::string& v) {
         auto r = Submit();
         r.mutable_sar()->set_narrative(v);
         v1::SubmitSarResponse resp;
         return ukfiu_->SubmitSar(Context().get(), r, &resp);
       }},
      {"sar.reporter_sector", false,
       [&](const std::string& v) {
         auto r = Submit();
         r.mutable_sar()->set_reporter_sector(v);
         v1::SubmitSarResponse resp;
         return ukfiu_->SubmitSar(Context().get(), r, &resp);
       }},
      {"request_id", false,
       [&](const std::string& v) {
         auto r = Submit();
         r.set_request_id(v);
         v1::SubmitSarResponse resp;
         return ukfiu_->SubmitSar(Context().get(), r, &resp);
       }},
      {"thr.rationale", true,
       [&](const std::string& v) {
         v1::ReferSarRequest r;
         r.set_request_id(NewId("req-"));
         r.set_sar_id("SAR-0000000000000000");
         r.set_organisation("NFK");
         *r.mutable_thr() = SampleThr();
         r.mutable_thr()->set_rationale(v);
         v1::ReferSarResponse resp;
         return ukfiu_->ReferSar(Context().get(), r, &resp);
       }},
      {"organisation", false,
       [&](const std::string& v) {
         v1::ReferSarRequest r;
         r.set_request_id(NewId("req-"));
         r.set_sar_id("SAR-0000000000000000");
         r.set_organisation(v);
         *r.mutable_thr() = SampleThr();
         v1::ReferSarResponse resp;
         return ukfiu_->ReferSar(Context().get(), r, &resp);
       }},
      {"reason", true,
       [&](const std::string& v) {
         v1::DeclineReferralRequest r;
         r.set_request_id(NewId("req-"));
         r.set_referral_id("REF-0000000000000000");
         r.set_reason_code(v1::DECLINE_REASON_OTHER);  // the free text is required then
         r.set_reason(v);
         v1::ForceStepResponse resp;
         return force_->Decline(Context().get(), r, &resp);
       }},
      {"outcome.learning_summary", true,
       [&](const std::string& v) {
         v1::RecordOutcomeRequest r;
         r.set_request_id(NewId("req-"));
         r.set_referral_id("REF-0000000000000000");
         *r.mutable_outcome() = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
         r.mutable_outcome()->set_learning_summary(v);
         v1::UnitStepResponse resp;
         return unit_->RecordOutcome(Context().get(), r, &resp);
       }},
      {"filter.organisations[0]", false,
       [&](const std::string& v) {
         v1::GetAggregatesRequest r;
         r.mutable_filter()->add_organisations(v);
         v1::GetAggregatesResponse resp;
         return nca_->GetAggregates(Context().get(), r, &resp);
       }},
  };
  int refused = 0;
  for (const Field& f : fields) {
    for (const auto& [text, code] : kNeverText) {
      const grpc::Status s = f.send(text);
      ExpectRefused(s, f.path, absl::StrCat(f.path, " with ", code));
      EXPECT_NE(s.error_message().find(code), std::string::npos) << s.error_message();
      ++refused;
    }
    for (const auto& [text, code] : kLineBreaks) {
      const grpc::Status s = f.send(text);
      if (f.multiline) {
        // Past the text checks: whatever else it meets, it is not refused for its text.
        EXPECT_NE(FieldOf(FromGrpcStatus(s)), f.path) << f.path << " with " << code;
      } else {
        ExpectRefused(s, f.path, absl::StrCat(f.path, " with ", code));
        ++refused;
      }
    }
  }
  EXPECT_GE(refused, 100);
}

TEST_F(BadInputTest, TextIsStoredInNormalFormC) {
  auto r = Submit();
  // "Amélie" written as "e" and a combining acute accent.
  r.mutable_sar()->mutable_subjects(0)->set_full_name("Ame\xcc\x81lie Example");
  v1::SubmitSarResponse submitted;
  ASSERT_RPC_OK(ukfiu_->SubmitSar(Context().get(), r, &submitted));
  v1::GetSarRequest get;
  get.set_sar_id(submitted.sar().sar_id());
  v1::GetSarResponse got;
  ASSERT_RPC_OK(ukfiu_->GetSar(Context().get(), get, &got));
  EXPECT_EQ(got.sar().subjects(0).full_name(), "Am\xc3\xa9lie Example");
}

// Bytes sent as they are, past any generated client's checks.
grpc::Status SendRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::promise<grpc::Status> done;
  auto ctx = Context();
  stub.UnaryCall(ctx.get(), method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

TEST_F(BadInputTest, BytesThatAreNotTheMessageAreInvalidArgument) {
  auto with_name = [](const std::string& name) {
    auto r = Submit();
    r.mutable_sar()->mutable_subjects(0)->set_full_name(name);
    return r.SerializeAsString();
  };
  const std::string good = with_name("Jane Example");
  struct Case {
    std::string what;
    std::string bytes;
    std::string field;  // "" when no field can be named
  };
  const std::vector<Case> cases = {
      {"a name that is not UTF-8", with_name("Jane \xff\xfe"), "sar.subjects.full_name"},
      {"an overlong encoding of '/'", with_name("Jane \xc0\xaf"), "sar.subjects.full_name"},
      {"a lone surrogate", with_name("Jane \xed\xa0\x80"), "sar.subjects.full_name"},
      {"garbage", "\xff\xff\xff\xff\xff\xff", ""},
      {"a truncated message", good.substr(0, good.size() / 2), ""},
      {"a length past the end", std::string("\x12\x7f", 2) + "abc", ""},
      {"a wrong wire type for a message field", std::string("\x15\x01\x02\x03\x04", 5), ""},
  };
  auto channel = chain_->Channel("ukfiu", "ukfiu-intake");
  for (const Case& c : cases) {
    const grpc::Status s = SendRaw(channel, "/sarloop.v1.Ukfiu/SubmitSar", c.bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.what << ": " << s.error_code() << " " << s.error_message();
    EXPECT_FALSE(s.error_message().empty()) << c.what;
    if (!c.field.empty()) {
      EXPECT_EQ(FieldOf(FromGrpcStatus(s)), c.field) << c.what << ": " << s.error_message();
    }
  }
  // Each service's methods, not only ukfiu's.
  for (const auto& [instance, identity, method] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"force-NFK", "force-NFK-psd", "/sarloop.v1.Force/Decline"},
           {"racu-ERSOU", "racu-ERSOU-cases", "/sarloop.v1.Racu/RecordOutcome"},
           {"nca", "analyst-alice", "/sarloop.v1.Nca/GetAggregates"}}) {
    const grpc::Status s = SendRaw(chain_->Channel(instance, identity), method, "\xff\xff\xff");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method << ": " << s.error_message();
  }
  // The same bytes, well formed, still work.
  EXPECT_RPC_OK(SendRaw(channel, "/sarloop.v1.Ukfiu/SubmitSar", good));
}

TEST_F(BadInputTest, TimesThatCannotBeAreRefusedWithTheirField) {
  const int64_t kYear1 = -62135596800, kYear9999 = 253402300799;
  struct Case {
    std::string what;
    std::function<void(v1::SubmitSarRequest&)> edit;
    std::string field;
  };
  const auto submitted = [](int64_t seconds, int32_t nanos) {
    return [=](v1::SubmitSarRequest& r) {
      r.mutable_sar()->mutable_submitted_at()->set_seconds(seconds);
      r.mutable_sar()->mutable_submitted_at()->set_nanos(nanos);
    };
  };
  const auto born = [](const std::string& dob) {
    return [=](v1::SubmitSarRequest& r) {
      r.mutable_sar()->mutable_subjects(0)->set_date_of_birth(dob);
    };
  };
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const std::vector<Case> cases = {
      {"submitted in year 1", submitted(kYear1, 0), "sar.submitted_at"},
      {"submitted in 9999", submitted(kYear9999, 0), "sar.submitted_at"},
      {"submitted at INT64_MAX", submitted(std::numeric_limits<int64_t>::max(), 0),
       "sar.submitted_at"},
      {"nanos -1", submitted(now, -1), "sar.submitted_at.nanos"},
      {"nanos 1e9", submitted(now, 1'000'000'000), "sar.submitted_at.nanos"},
      {"submitted tomorrow", submitted(now + 86400, 0), "sar.submitted_at"},
      {"born 0000-01-01", born("0000-01-01"), "sar.subjects[0].date_of_birth"},
      {"born 9999-12-31", born("9999-12-31"), "sar.subjects[0].date_of_birth"},
      {"born next year",
       born(absl::FormatTime("%Y-%m-%d", absl::Now() + absl::Hours(24 * 366), absl::UTCTimeZone())),
       "sar.subjects[0].date_of_birth"},
      {"born 31 February", born("1985-02-31"), "sar.subjects[0].date_of_birth"},
  };
  for (const Case& c : cases) {
    auto r = Submit();
    c.edit(r);
    v1::SubmitSarResponse resp;
    ExpectRefused(ukfiu_->SubmitSar(Context().get(), r, &resp), c.field, c.what);
  }
  // Outcomes, at the force and at the unit: opened in year 1, closed in the future, closed
  // before opened.
  struct OutcomeCase {
    std::string what;
    std::function<void(v1::Outcome&)> edit;
    std::string field;
  };
  const std::vector<OutcomeCase> outcomes = {
      {"opened in year 1", [&](v1::Outcome& o) { o.mutable_opened_at()->set_seconds(kYear1); },
       "outcome.opened_at"},
      {"closed tomorrow", [&](v1::Outcome& o) { o.mutable_closed_at()->set_seconds(now + 86400); },
       "outcome.closed_at"},
      {"closed before opened",
       [&](v1::Outcome& o) { std::swap(*o.mutable_opened_at(), *o.mutable_closed_at()); },
       "outcome.closed_at"},
  };
  for (const OutcomeCase& c : outcomes) {
    v1::Outcome o = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
    c.edit(o);
    v1::CloseReferralRequest close;
    close.set_request_id(NewId("req-"));
    close.set_referral_id("REF-0000000000000000");
    *close.mutable_outcome() = o;
    v1::ForceStepResponse fresp;
    ExpectRefused(force_->Close(Context().get(), close, &fresp), c.field, "force: " + c.what);
    v1::RecordOutcomeRequest record;
    record.set_request_id(NewId("req-"));
    record.set_referral_id("REF-0000000000000000");
    *record.mutable_outcome() = o;
    v1::UnitStepResponse uresp;
    ExpectRefused(unit_->RecordOutcome(Context().get(), record, &uresp), c.field,
                  "unit: " + c.what);
  }
  // A real time in range is accepted.
  auto r = Submit();
  r.mutable_sar()->mutable_submitted_at()->set_seconds(now - 3600);
  v1::SubmitSarResponse resp;
  EXPECT_RPC_OK(ukfiu_->SubmitSar(Context().get(), r, &resp));
}

TEST_F(BadInputTest, AClientSystemMustNameThePersonItActsFor) {
  // No x-sarloop-user, an empty one, one of spaces, one too long: refused before anything is done.
  for (const std::string& user :
       {std::string("-"), std::string(""), std::string("   "), std::string(101, 'u')}) {
    grpc::ClientContext ctx;
    if (user != "-") ctx.AddMetadata("x-sarloop-user", user);
    v1::SubmitSarResponse resp;
    ExpectRefused(ukfiu_->SubmitSar(&ctx, Submit(), &resp), "x-sarloop-user",
                  absl::StrCat("user '", user.substr(0, 10), "'"));
    grpc::ClientContext read;
    if (user != "-") read.AddMetadata("x-sarloop-user", user);
    v1::ListInboxResponse inbox;
    ExpectRefused(force_->ListInbox(&read, v1::ListInboxRequest(), &inbox), "x-sarloop-user",
                  "a read of the inbox");
  }
  // An analyst's certificate names the analyst.
  grpc::ClientContext analyst;
  v1::GetSummaryResponse summary;
  EXPECT_RPC_OK(nca_->GetSummary(&analyst, v1::GetSummaryRequest(), &summary));
}

TEST_F(BadInputTest, AnOutcomeMustFitThePerson) {
  // The Conduct Regulations' outcomes for someone they do not cover, and dismissal for someone who
  // is not employed: refused at the force and at the unit, naming outcome.type.
  const std::pair<v1::OutcomeType, v1::SubjectRole> kMisfits[] = {
      {v1::OUTCOME_TYPE_MISCONDUCT_HEARING, v1::SUBJECT_ROLE_CONTRACTOR},
      {v1::OUTCOME_TYPE_REFLECTIVE_PRACTICE, v1::SUBJECT_ROLE_STAFF},
      {v1::OUTCOME_TYPE_MISCONDUCT_MEETING, v1::SUBJECT_ROLE_VOLUNTEER},
      {v1::OUTCOME_TYPE_DISMISSED_AFTER_RESIGNATION, v1::SUBJECT_ROLE_FAMILY_OR_ASSOCIATE},
      {v1::OUTCOME_TYPE_STAFF_MISCONDUCT_PROCEDURE, v1::SUBJECT_ROLE_OFFICER},
      {v1::OUTCOME_TYPE_CONTRACT_ENDED, v1::SUBJECT_ROLE_STAFF},
      {v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER, v1::SUBJECT_ROLE_OTHER_LAW_ENFORCEMENT}};
  for (const auto& [type, role] : kMisfits) {
    v1::Outcome o = SampleOutcome(type);
    o.set_subject_role(role);
    const std::string what =
        absl::StrCat(v1::OutcomeType_Name(type), " for ", v1::SubjectRole_Name(role));
    v1::CloseReferralRequest close;
    close.set_request_id(NewId("req-"));
    close.set_referral_id("REF-0000000000000000");
    *close.mutable_outcome() = o;
    v1::ForceStepResponse fresp;
    ExpectRefused(force_->Close(Context().get(), close, &fresp), "outcome.type", "force: " + what);
    v1::RecordOutcomeRequest record;
    record.set_request_id(NewId("req-"));
    record.set_referral_id("REF-0000000000000000");
    *record.mutable_outcome() = o;
    v1::UnitStepResponse uresp;
    ExpectRefused(unit_->RecordOutcome(Context().get(), record, &uresp), "outcome.type",
                  "unit: " + what);
  }
}

}  // namespace
}  // namespace sarloop
