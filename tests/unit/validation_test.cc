#include "common/referral/validation.h"

#include "common/base/status.h"
#include "common/referral/outcomes.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::SampleOutcome;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::StatusIs;
using ::testing::_;
using ::testing::HasSubstr;

// 2026-12-03: after the sample outcome's dates (2023-07, 2023-11).
const absl::Time kNow = absl::FromUnixSeconds(1796300000);

TEST(Validation, ThrNeedsEveryScoreAndARationale) {
  EXPECT_THAT(CheckThr("thr", SampleThr()), IsOk());
  v1::ThrAssessment thr = SampleThr();
  thr.set_risk(v1::THR_LEVEL_UNSPECIFIED);
  absl::Status s = CheckThr("thr", thr);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("thr.risk")));
  EXPECT_EQ(FieldOf(s), "thr.risk");
  thr = SampleThr();
  thr.set_rationale("   ");
  EXPECT_THAT(CheckThr("thr", thr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("thr.rationale")));
}

TEST(Validation, OversizedTextIsRefusedWithItsField) {
  v1::Sar sar = SampleSar();
  sar.set_narrative(std::string(20001, 'x'));
  EXPECT_THAT(CheckSar("sar", sar, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sar.narrative")));
  sar = SampleSar();
  sar.mutable_subjects(0)->set_full_name(std::string(201, 'x'));
  EXPECT_THAT(CheckSar("sar", sar, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sar.subjects[0].full_name")));
}

TEST(Validation, SarNeedsSubjectsAndValidDates) {
  EXPECT_THAT(CheckSar("sar", SampleSar(), kNow), IsOk());
  v1::Sar sar = SampleSar();
  sar.clear_subjects();
  EXPECT_THAT(CheckSar("sar", sar, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sar.subjects")));
  sar = SampleSar();
  sar.mutable_subjects(0)->set_date_of_birth("12/04/1985");
  EXPECT_THAT(CheckSar("sar", sar, kNow), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("sar.subjects[0].date_of_birth")));
}

TEST(Validation, OutcomeCannotCloseBeforeItOpened) {
  v1::Outcome o = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  std::swap(*o.mutable_opened_at(), *o.mutable_closed_at());
  EXPECT_THAT(CheckOutcome("outcome", o, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outcome.closed_at")));
}

TEST(Validation, TimesThatCannotBeAreRefusedWithTheirField) {
  struct Case {
    const char* dob;
    const char* why;
  };
  for (const Case& c : {Case{"0000-01-01", "YYYY-MM-DD"}, Case{"1899-12-31", "before 1900"},
                        Case{"9999-12-31", "in the future"}, Case{"2026-12-04", "in the future"},
                        Case{"1985-02-30", "YYYY-MM-DD"}, Case{"1985-4-12", "YYYY-MM-DD"},
                        Case{"1985-04-12T00", "YYYY-MM-DD"}, Case{"+985-04-12", "YYYY-MM-DD"}}) {
    v1::Sar sar = SampleSar();
    sar.mutable_subjects(0)->set_date_of_birth(c.dob);
    absl::Status s = CheckSar("sar", sar, kNow);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.why))) << c.dob;
    EXPECT_EQ(FieldOf(s), "sar.subjects[0].date_of_birth") << c.dob;
  }
  v1::Sar sar = SampleSar();
  sar.mutable_subjects(0)->set_date_of_birth("2026-12-03");  // born today: a real date
  EXPECT_THAT(CheckSar("sar", sar, kNow), IsOk());
  sar.mutable_submitted_at()->set_seconds(absl::ToUnixSeconds(kNow + absl::Minutes(6)));
  EXPECT_EQ(FieldOf(CheckSar("sar", sar, kNow)), "sar.submitted_at");
  sar.mutable_submitted_at()->set_seconds(absl::ToUnixSeconds(kNow + absl::Minutes(4)));
  EXPECT_THAT(CheckSar("sar", sar, kNow), IsOk()) << "within the stated clock skew";
  // A peer's package is not held to our clock.
  sar.mutable_submitted_at()->set_seconds(absl::ToUnixSeconds(kNow + absl::Hours(1)));
  EXPECT_THAT(CheckSar("sar", sar, absl::InfiniteFuture()), IsOk());

  v1::Outcome o = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  o.mutable_closed_at()->set_seconds(absl::ToUnixSeconds(kNow + absl::Hours(1)));
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.closed_at");
  o = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  o.mutable_opened_at()->set_seconds(absl::ToUnixSeconds(kNow + absl::Hours(1)));
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.opened_at");
  // Closed a nanosecond before it opened: refused, not rounded away.
  o = SampleOutcome(v1::OUTCOME_TYPE_NO_CASE_TO_ANSWER);
  *o.mutable_closed_at() = o.opened_at();
  o.mutable_opened_at()->set_nanos(1);
  EXPECT_EQ(FieldOf(CheckOutcome("outcome", o, kNow)), "outcome.closed_at");
}

TEST(Validation, ReferralIdsHaveOneShape) {
  EXPECT_THAT(CheckReferralId("referral_id", "REF-0123456789abcdef"), IsOk());
  EXPECT_FALSE(CheckReferralId("referral_id", "REF-0123").ok());
  EXPECT_FALSE(CheckReferralId("referral_id", "REF-0123456789abcdeg").ok());
  EXPECT_FALSE(CheckReferralId("referral_id", "").ok());
}

TEST(Validation, PagesDecodeAndRefuseForgedTokens) {
  auto page = CheckPage(0, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->limit, 100);
  EXPECT_EQ(NextPageToken(*page, 100), "100");
  EXPECT_EQ(NextPageToken(*page, 99), "");
  EXPECT_THAT(CheckPage(1001, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_size")));
  EXPECT_THAT(CheckPage(10, "abc"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
}

TEST(Validation, RepeatedFieldsAreBoundedAndNameTheEntry) {
  google::protobuf::RepeatedPtrField<std::string> refs;
  for (int i = 0; i < 20; ++i) *refs.Add() = "ref";
  EXPECT_THAT(CheckTextList("event.subject_refs", refs, 20, 100), IsOk());
  *refs.Add() = "ref";
  EXPECT_THAT(CheckTextList("event.subject_refs", refs, 20, 100),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 20")));
  refs.RemoveLast();
  refs[3] = std::string(101, 'x');
  EXPECT_THAT(CheckTextList("event.subject_refs", refs, 20, 100),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("event.subject_refs[3]")));
}

TEST(Validation, FreeTextForTheNcaNamesNoSubject) {
  v1::Sar sar = SampleSar("Alexandra O'Brien-Smith");
  sar.mutable_subjects(0)->set_date_of_birth("1984-02-29");
  v1::LifecycleEvent e;
  e.set_reason("Insufficient grounds; no link to force systems found.");
  EXPECT_THAT(CheckNoSubjectData(e, sar), IsOk());
  for (const char* leak : {"Spoke to alexandra about it", "O'BRIEN account closed",
                           "smith, see notes", "born 1984-02-29"}) {
    e.set_reason(leak);
    EXPECT_THAT(CheckNoSubjectData(e, sar),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")))
        << leak;
  }
  // Other spellings of the same: non-ASCII capitals, brackets, day-first dates.
  v1::Sar zoe = SampleSar("Zoë Ångström");
  zoe.mutable_subjects(0)->set_date_of_birth("1990-07-14");
  for (const char* leak : {"ZOË was interviewed", "(ångström) resigned", "dob 14/07/1990"}) {
    e.set_reason(leak);
    EXPECT_THAT(CheckNoSubjectData(e, zoe), StatusIs(absl::StatusCode::kInvalidArgument, _))
        << leak;
  }
  // Whole words only: "Smithfield" is not "Smith".
  e.set_reason("Met at Smithfield market");
  EXPECT_THAT(CheckNoSubjectData(e, sar), IsOk());
  // Spelt out, run together, in another script's compatibility forms, with invisible characters,
  // or by address and postcode.
  v1::Sar jane = SampleSar("Jane Example");
  jane.mutable_subjects(0)->set_address("Flat 3, 27 Acacia Avenue\nNorwich NR2 4QT");
  for (const char* leak :
       {"J a n e was seen", "E.x.a.m.p.l.e resigned", "see JaneExample on the board", "ExampleJane",
        "jane_example@mail", "\xef\xbc\xaa\xef\xbc\xa1\xef\xbc\xae\xef\xbc\xa5 was seen",
        "Ja\xe2\x80\x8bne was seen", "EXAMPLE\xc2\xadJANE", "lives at 27 Acacia Avenue",
        "27acaciaavenue", "postcode NR2 4QT", "nr24qt", "born 12 April 1985", "dob 12041985"}) {
    e.set_reason(leak);
    EXPECT_THAT(CheckNoSubjectData(e, jane), StatusIs(absl::StatusCode::kInvalidArgument, _))
        << leak;
  }
  // A real case fold: the German sharp s is "ss", the Greek final sigma is sigma.
  v1::Sar strauss = SampleSar("Johann Strauss");
  e.set_reason("Herr STRAUß was interviewed");
  EXPECT_THAT(CheckNoSubjectData(e, strauss), StatusIs(absl::StatusCode::kInvalidArgument, _));
  v1::Sar greek = SampleSar("Νικόλαος Παπαδόπουλος");
  e.set_reason("ΠΑΠΑΔΟΠΟΥΛΟΣ resigned");
  EXPECT_THAT(CheckNoSubjectData(e, greek), StatusIs(absl::StatusCode::kInvalidArgument, _));
  // What is not theirs stays allowed: the town alone, ordinary words that contain the name's
  // letters, a short name's letters across words.
  for (const char* fine : {"Activity in Norwich branches", "an instance of structuring",
                           "the flat was searched", "Research found no link"}) {
    e.set_reason(fine);
    EXPECT_THAT(CheckNoSubjectData(e, jane), IsOk()) << fine;
  }
  v1::Sar short_name = SampleSar("Al Len");
  e.set_reason("We call enforcement colleagues");
  EXPECT_THAT(CheckNoSubjectData(e, short_name), IsOk());
  e.clear_reason();
  e.mutable_outcome()->set_learning_summary("Brien was warned");
  EXPECT_THAT(CheckNoSubjectData(e, sar),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outcome.learning_summary")));

  // Every field of one event against every subject: a leak of the second subject in the last
  // field checked is found, and an event with all four fields clean passes.
  v1::Sar two = SampleSar("Jane Example");
  *two.add_subjects() = SampleSar("Omar Farouk").subjects(0);
  v1::LifecycleEvent all;
  all.mutable_thr()->set_rationale("Low risk after research");
  all.set_reason("No link to force systems found");
  all.set_received_by("PSD intake desk");
  all.mutable_outcome()->set_learning_summary("Vetting renewed on time");
  EXPECT_THAT(CheckNoSubjectData(all, two), IsOk());
  all.mutable_outcome()->set_learning_summary("Farouk was given advice");
  EXPECT_THAT(CheckNoSubjectData(all, two),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outcome.learning_summary")));
  all.set_received_by("jane at the front desk");
  EXPECT_THAT(CheckNoSubjectData(all, two),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("received_by")));
}

}  // namespace
}  // namespace sarloop
