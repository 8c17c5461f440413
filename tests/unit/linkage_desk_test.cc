// The linkage service's logic without a network: uploads, screening, re-screening, verdicts,
// the hits-only contract, restarts and the rate limit.
#include <google/protobuf/descriptor.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/base/fault.h"
#include "common/base/ids.h"
#include "common/linkage/linkage_encoding.h"
#include "common/messaging/messaging.h"
#include "common/server/server.h"
#include "gtest/gtest.h"
#include "sarloop/v1/linkage.grpc.pb.h"
#include "services/linkage/desk.h"
#include "tests/testutil/testutil.h"

namespace sarloop::linkage {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;

// The service's default threshold, as the desk reports it.
constexpr int32_t kThreshold = static_cast<int32_t>(kDefaultThresholdMilli);
using ::sarloop::testing::TestKeys;
using ::testing::_;
using ::testing::HasSubstr;

const std::string kKey(kKeyBytes, 'L');

Call CallAs(const std::string& uri, const std::string& kind, const std::string& org) {
  Call c;
  c.identity = Identity{uri, kind, org, "psd"};
  c.actor.set_identity(uri);
  c.scope = uri;
  return c;
}

class LinkageDeskTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(LinkageOptions options = {}) {
    desk_.reset();
    db_.reset();
    auto db = Database::Open(dir_.File("linkage.db"),
                             ServiceMigrations(LinkageMigrations(), LinkageMigrationsAfterAudit()),
                             TestKeys());
    ASSERT_THAT(db, IsOk());
    db_ = std::move(*db);
    auto desk = LinkageDesk::Load(*db_, clock_, options);
    ASSERT_THAT(desk, IsOk());
    desk_ = std::move(*desk);
  }

  std::string Encode(const PersonFields& p) { return ToBytes(*encoder_.Encode(p)); }

  // Uploads `people` (record ids P1, P2, ...) as `force`'s index in two parts.
  absl::StatusOr<v1::CommitIndexUploadResponse> Upload(const Call& force,
                                                       const std::vector<PersonFields>& people) {
    v1::BeginIndexUploadRequest begin;
    begin.set_request_id(NewId("r-"));
    ASSIGN_OR_RETURN(auto started, desk_->BeginUpload(force, begin));
    for (size_t first = 0; first < people.size(); first += 2) {
      v1::UploadIndexRecordsRequest part;
      part.set_request_id(NewId("r-"));
      part.set_upload_id(started.upload_id());
      for (size_t i = first; i < std::min(people.size(), first + 2); ++i) {
        auto* rec = part.add_records();
        rec->set_record_id(absl::StrCat("P", i + 1));
        rec->set_encoding(Encode(people[i]));
      }
      RETURN_IF_ERROR(desk_->UploadRecords(force, part).status());
    }
    v1::CommitIndexUploadRequest commit;
    commit.set_request_id(NewId("r-"));
    commit.set_upload_id(started.upload_id());
    commit.set_expected_records(static_cast<int64_t>(people.size()));
    return desk_->CommitUpload(force, commit);
  }

  // Stages an upload of one record for `force`, `record_id` for `person`: the request that
  // commits it.
  absl::StatusOr<v1::CommitIndexUploadRequest> StageOne(const Call& force,
                                                        const std::string& record_id,
                                                        const PersonFields& person) {
    v1::BeginIndexUploadRequest begin;
    begin.set_request_id(NewId("r-"));
    ASSIGN_OR_RETURN(auto started, desk_->BeginUpload(force, begin));
    v1::UploadIndexRecordsRequest part;
    part.set_request_id(NewId("r-"));
    part.set_upload_id(started.upload_id());
    auto* rec = part.add_records();
    rec->set_record_id(record_id);
    rec->set_encoding(Encode(person));
    RETURN_IF_ERROR(desk_->UploadRecords(force, part).status());
    v1::CommitIndexUploadRequest commit;
    commit.set_request_id(NewId("r-"));
    commit.set_upload_id(started.upload_id());
    commit.set_expected_records(1);
    return commit;
  }

  absl::StatusOr<v1::ScreenSubjectsResponse> Screen(const std::string& sar_id,
                                                    const std::vector<PersonFields>& subjects) {
    v1::ScreenSubjectsRequest req;
    req.set_request_id(NewId("r-"));
    req.set_sar_id(sar_id);
    for (size_t i = 0; i < subjects.size(); ++i) {
      auto* s = req.add_subjects();
      s->set_subject_ref(absl::StrCat("SUBJ-", i + 1));
      s->set_encoding(Encode(subjects[i]));
    }
    return desk_->Screen(ukfiu_, req);
  }

  static std::vector<PersonFields> Personnel() {
    return {{"Alice Mary", "O'Brien", "1984-03-12", "12 Church Road, Norwich", "NR3 1AB"},
            {"Robert", "Smith", "1961-07-30", "4 Mill Lane, Leeds", "LS6 2QT"},
            {"Priya", "Shah", "1990-11-02", "7 Station Road, Ipswich", "IP4 2BX"}};
  }
  // Alice, as a SAR would name her: a typo, the address abbreviated.
  static PersonFields AliceInASar() {
    return {"Alice", "OBrian", "1984-03-12", "12 Church Rd Norwich", "NR31AB"};
  }
  static PersonFields Stranger() {
    return {"Gareth", "Hollbridge", "1977-05-19", "30 Orchard Court, Exeter", "EX8 2GQ"};
  }

  TempDir dir_;
  ManualClock clock_{absl::FromUnixSeconds(1790000000)};
  std::unique_ptr<Database> db_;
  std::unique_ptr<LinkageDesk> desk_;
  Encoder encoder_ = *Encoder::Create(kKey);
  const Call nfk_ = CallAs("spiffe://sarloop/force/NFK/psd", "force", "NFK");
  const Call sfk_ = CallAs("spiffe://sarloop/force/SFK/psd", "force", "SFK");
  const Call ukfiu_ = CallAs("spiffe://sarloop/ukfiu/intake", "ukfiu", "UKFIU");
};

TEST_F(LinkageDeskTest, ScreeningFindsThePersonAndOnlyThePerson) {
  ASSERT_OK_AND_ASSIGN(auto committed, Upload(nfk_, Personnel()));
  EXPECT_EQ(committed.index_version(), 1);
  EXPECT_EQ(committed.records(), 3);

  ASSERT_OK_AND_ASSIGN(auto screened, Screen("SAR-0000000000000001", {AliceInASar(), Stranger()}));
  ASSERT_EQ(screened.hits_size(), 1);
  const v1::LinkageHit& hit = screened.hits(0);
  EXPECT_EQ(hit.subject_ref(), "SUBJ-1");
  EXPECT_EQ(hit.organisation(), "NFK");
  EXPECT_EQ(hit.record_id(), "P1");
  EXPECT_GE(hit.score_milli(), kThreshold);
  EXPECT_EQ(hit.status(), v1::LINK_STATUS_OPEN);
  EXPECT_THAT(std::set<std::string>(hit.matched_fields().begin(), hit.matched_fields().end()),
              ::testing::Contains("date_of_birth"));
  EXPECT_TRUE(absl::StartsWith(hit.hit_id(), "HIT-"));
}

TEST_F(LinkageDeskTest, NoResponseCarriesAnEncoding) {
  // The hits-only contract, by construction: no message any Linkage RPC returns has a bytes
  // field anywhere inside it, so no encoding (nor any table of them) can leave the service.
  const auto* service = v1::Linkage::service_full_name();
  const auto* desc = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  ASSERT_NE(desc, nullptr);
  ASSERT_EQ(desc->method_count(), 8);
  std::set<const google::protobuf::Descriptor*> seen;
  std::function<void(const google::protobuf::Descriptor*)> walk =
      [&](const google::protobuf::Descriptor* m) {
        if (!seen.insert(m).second) return;
        for (int i = 0; i < m->field_count(); ++i) {
          const auto* f = m->field(i);
          EXPECT_NE(f->type(), google::protobuf::FieldDescriptor::TYPE_BYTES)
              << m->full_name() << "." << f->name();
          if (f->message_type() != nullptr) walk(f->message_type());
        }
      };
  for (int i = 0; i < desc->method_count(); ++i) walk(desc->method(i)->output_type());
  EXPECT_GT(seen.size(), 8u);
}

TEST_F(LinkageDeskTest, HitsAreNeverBelowTheThreshold) {
  // Many near and far subjects: whatever comes back is at or above the threshold.
  ASSERT_THAT(Upload(nfk_, Personnel()).status(), IsOk());
  std::vector<PersonFields> subjects;
  for (const auto& p : Personnel()) {
    PersonFields moved = p;
    moved.address = "99 Elsewhere Street, Hull";
    moved.postcode = "HU1 1AA";
    PersonFields other_year = p;
    other_year.date_of_birth = "2001-01-01";
    subjects.insert(subjects.end(), {p, moved, other_year});
  }
  ASSERT_OK_AND_ASSIGN(auto screened, Screen("SAR-0000000000000002", subjects));
  EXPECT_GE(screened.hits_size(), 3);  // at least the exact copies
  for (const auto& h : screened.hits()) EXPECT_GE(h.score_milli(), kThreshold) << h.subject_ref();
}

TEST_F(LinkageDeskTest, ANewIndexRescreensStoredSubjects) {
  ASSERT_OK_AND_ASSIGN(auto before, Screen("SAR-0000000000000003", {AliceInASar()}));
  EXPECT_EQ(before.hits_size(), 0);  // no index yet
  ASSERT_OK_AND_ASSIGN(auto committed, Upload(sfk_, Personnel()));
  EXPECT_EQ(committed.subjects_rescreened(), 1);
  EXPECT_EQ(committed.new_hits(), 1);
  v1::ListHitsRequest list;
  list.set_organisation("SFK");
  ASSERT_OK_AND_ASSIGN(auto hits, desk_->ListHits(list));
  ASSERT_EQ(hits.hits_size(), 1);
  EXPECT_EQ(hits.hits(0).sar_id(), "SAR-0000000000000003");
  EXPECT_EQ(hits.hits(0).index_version(), 1);

  // A second upload replaces the first: version 2, the old hit stays, no duplicate.
  ASSERT_OK_AND_ASSIGN(auto again, Upload(sfk_, Personnel()));
  EXPECT_EQ(again.index_version(), 2);
  EXPECT_EQ(again.new_hits(), 0);
}

TEST_F(LinkageDeskTest, UploadsAreTheForcesOwnAndChecked) {
  v1::BeginIndexUploadRequest begin;
  begin.set_request_id("b1");
  EXPECT_THAT(desk_->BeginUpload(ukfiu_, begin).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("force")));
  ASSERT_OK_AND_ASSIGN(auto started, desk_->BeginUpload(nfk_, begin));
  // The same request_id answers the same upload.
  ASSERT_OK_AND_ASSIGN(auto repeat, desk_->BeginUpload(nfk_, begin));
  EXPECT_EQ(repeat.upload_id(), started.upload_id());

  v1::UploadIndexRecordsRequest part;
  part.set_request_id("u1");
  part.set_upload_id(started.upload_id());
  auto* rec = part.add_records();
  rec->set_record_id("P1");
  rec->set_encoding("short");
  EXPECT_THAT(desk_->UploadRecords(nfk_, part).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("records[0].encoding")));
  rec->set_encoding(Encode(Personnel()[0]));
  rec->set_record_id("P/1");
  EXPECT_THAT(desk_->UploadRecords(nfk_, part).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("records[0].record_id")));
  rec->set_record_id("P1");
  EXPECT_THAT(desk_->UploadRecords(sfk_, part).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(started.upload_id())));
  ASSERT_THAT(desk_->UploadRecords(nfk_, part).status(), IsOk());
  part.set_request_id("u2");
  EXPECT_THAT(desk_->UploadRecords(nfk_, part).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("already in the upload")));

  v1::CommitIndexUploadRequest commit;
  commit.set_request_id("c1");
  commit.set_upload_id(started.upload_id());
  commit.set_expected_records(2);
  EXPECT_THAT(desk_->CommitUpload(nfk_, commit).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("holds 1 records")));
  commit.set_request_id("c2");
  commit.set_expected_records(1);
  ASSERT_THAT(desk_->CommitUpload(nfk_, commit).status(), IsOk());
  part.set_request_id("u3");
  EXPECT_THAT(desk_->UploadRecords(nfk_, part).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("committed")));
}

TEST_F(LinkageDeskTest, VerdictsAreTheIndexOwnersAndCountTowardsPrecision) {
  ASSERT_THAT(Upload(nfk_, Personnel()).status(), IsOk());
  ASSERT_OK_AND_ASSIGN(auto screened, Screen("SAR-0000000000000004", {AliceInASar()}));
  ASSERT_EQ(screened.hits_size(), 1);
  const std::string hit_id = screened.hits(0).hit_id();

  v1::RecordLinkFeedbackRequest fb;
  fb.set_request_id("f1");
  fb.set_hit_id(hit_id);
  fb.set_confirmed(true);
  EXPECT_THAT(desk_->RecordFeedback(nfk_, fb).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
  fb.set_reason("HR record P1 is the same person: confirmed by the SPOC");
  EXPECT_THAT(desk_->RecordFeedback(sfk_, fb).status(), StatusIs(absl::StatusCode::kNotFound, _));
  EXPECT_THAT(desk_->RecordFeedback(ukfiu_, fb).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
  ASSERT_OK_AND_ASSIGN(auto done, desk_->RecordFeedback(nfk_, fb));
  EXPECT_EQ(done.hit().status(), v1::LINK_STATUS_CONFIRMED);
  EXPECT_TRUE(done.hit().has_feedback_at());
  fb.set_request_id("f2");
  fb.set_confirmed(false);
  EXPECT_THAT(desk_->RecordFeedback(nfk_, fb).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CONFIRMED")));

  v1::GetHitRequest get;
  get.set_hit_id(hit_id);
  EXPECT_THAT(desk_->GetHit(sfk_, get).status(), StatusIs(absl::StatusCode::kNotFound, _));
  ASSERT_THAT(desk_->GetHit(nfk_, get).status(), IsOk());

  ASSERT_OK_AND_ASSIGN(auto stats, desk_->Stats());
  ASSERT_EQ(stats.organisations_size(), 1);
  EXPECT_EQ(stats.organisations(0).organisation(), "NFK");
  EXPECT_EQ(stats.organisations(0).index_records(), 3);
  EXPECT_EQ(stats.organisations(0).confirmed(), 1);
  EXPECT_DOUBLE_EQ(stats.organisations(0).precision(), 1.0);
  EXPECT_EQ(stats.subjects_stored(), 1);
  EXPECT_EQ(stats.threshold_milli(), kThreshold);
}

TEST_F(LinkageDeskTest, ARestartKeepsIndexesAndSubjects) {
  ASSERT_THAT(Upload(nfk_, Personnel()).status(), IsOk());
  ASSERT_THAT(Screen("SAR-0000000000000005", {Stranger()}).status(), IsOk());
  Open();
  // The index came back: a new SAR finds Alice.
  ASSERT_OK_AND_ASSIGN(auto screened, Screen("SAR-0000000000000006", {AliceInASar()}));
  EXPECT_EQ(screened.hits_size(), 1);
  // The stored subjects came back: SFK's new index re-screens both.
  ASSERT_OK_AND_ASSIGN(auto committed, Upload(sfk_, Personnel()));
  EXPECT_EQ(committed.subjects_rescreened(), 2);
}

TEST_F(LinkageDeskTest, ScreeningIsRateLimitedPerCaller) {
  LinkageOptions options;
  options.subjects_per_minute = 3;
  Open(options);
  ASSERT_THAT(Screen("SAR-0000000000000007", {Stranger(), Stranger()}).status(), IsOk());
  const absl::Status refused = Screen("SAR-0000000000000008", {Stranger(), Stranger()}).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("a minute")));
  EXPECT_GT(RetryAfterOf(refused), absl::ZeroDuration());
  clock_.Advance(absl::Minutes(1));
  EXPECT_THAT(Screen("SAR-0000000000000008", {Stranger(), Stranger()}).status(), IsOk());

  // A subject counts once per encoding: one without a date of birth brings 11, each a comparison
  // and a guess. Past a minute's worth in one call, waiting would not help: no retry hint.
  options.subjects_per_minute = 15;
  Open(options);
  const PersonFields no_dob{"Gareth", "Hollbridge", "", "30 Orchard Court, Exeter", "EX8 2GQ"};
  const std::vector<Filter> encodings = *encoder_.EncodeForScreening(no_dob);
  const auto request = [&](const std::string& sar, int subjects) {
    v1::ScreenSubjectsRequest req;
    req.set_request_id(NewId("r-"));
    req.set_sar_id(sar);
    for (int i = 0; i < subjects; ++i) {
      auto* s = req.add_subjects();
      s->set_subject_ref(absl::StrCat("SUBJ-", i + 1));
      s->set_encoding(ToBytes(encodings[0]));
      for (size_t j = 1; j < encodings.size(); ++j) {
        s->add_alternative_encodings(ToBytes(encodings[j]));
      }
    }
    return req;
  };
  EXPECT_THAT(desk_->Screen(ukfiu_, request("SAR-0000000000000009", 1)), IsOk());  // 11 of 15
  const absl::Status second = desk_->Screen(ukfiu_, request("SAR-0000000000000010", 1)).status();
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("a minute")));
  EXPECT_GT(RetryAfterOf(second), absl::ZeroDuration());
  clock_.Advance(absl::Minutes(1));
  const absl::Status too_big = desk_->Screen(ukfiu_, request("SAR-0000000000000011", 2)).status();
  EXPECT_THAT(too_big, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("fewer")));
  EXPECT_EQ(RetryAfterOf(too_big), absl::ZeroDuration());
  EXPECT_THAT(desk_->Screen(ukfiu_, request("SAR-0000000000000011", 1)), IsOk());
}

TEST_F(LinkageDeskTest, ScreeningRequestsFromUkfiusOutboxAreApplied) {
  ASSERT_THAT(Upload(nfk_, Personnel()).status(), IsOk());
  v1::Envelope env;
  env.set_message_id("SCREEN-SAR-00000000000000b1");
  env.mutable_screen()->set_sar_id("SAR-00000000000000b1");
  auto* s = env.mutable_screen()->add_subjects();
  s->set_subject_ref("SUBJ-9");
  s->set_encoding(Encode(AliceInASar()));
  const Identity ukfiu_service{"spiffe://sarloop/ukfiu", "ukfiu", "UKFIU", ""};
  EXPECT_THAT(db_->Transact([&](Txn& t) { return desk_->Receive(t, nfk_.identity, env); }),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
  ASSERT_THAT(db_->Transact([&](Txn& t) { return desk_->Receive(t, ukfiu_service, env); }), IsOk());
  desk_->RefreshSubjects();
  v1::ListHitsRequest list;
  list.set_sar_id("SAR-00000000000000b1");
  ASSERT_OK_AND_ASSIGN(auto hits, desk_->ListHits(list));
  ASSERT_EQ(hits.hits_size(), 1);
  EXPECT_EQ(hits.hits(0).record_id(), "P1");
  // The stored subject is in memory: SFK's upload re-screens it.
  ASSERT_OK_AND_ASSIGN(auto committed, Upload(sfk_, Personnel()));
  EXPECT_EQ(committed.subjects_rescreened(), 1);
}

// A screen and an index commit in one group-commit batch: memory changes only after the COMMIT,
// so each must see the other's effect through the transaction, in either order.
TEST_F(LinkageDeskTest, AScreenAndACommitInOneBatchSeeEachOther) {
  for (bool screen_first : {true, false}) {
    SCOPED_TRACE(screen_first ? "screen first" : "commit first");
    Open();
    const Call& force = screen_first ? nfk_ : sfk_;
    ASSERT_OK_AND_ASSIGN(const v1::CommitIndexUploadRequest commit,
                         StageOne(force, "P1", Personnel()[0]));
    const std::string sar = screen_first ? "SAR-00000000000000c1" : "SAR-00000000000000c2";

    std::promise<absl::Status> done;
    db_->Submit([&]() -> Database::Completion {
      absl::Status s;
      if (screen_first) {
        s = Screen(sar, {AliceInASar()}).status();
        if (s.ok()) s = desk_->CommitUpload(force, commit).status();
      } else {
        s = desk_->CommitUpload(force, commit).status();
        if (s.ok()) s = Screen(sar, {AliceInASar()}).status();
      }
      return [&done, s](const absl::Status& committed) { done.set_value(s.ok() ? committed : s); };
    });
    ASSERT_THAT(done.get_future().get(), IsOk());
    v1::ListHitsRequest list;
    list.set_sar_id(sar);
    list.set_organisation(force.identity.org);  // the database keeps the first round's index
    ASSERT_OK_AND_ASSIGN(auto hits, desk_->ListHits(list));
    EXPECT_EQ(hits.hits_size(), 1);
  }
}

// Two uploads of one force committed at the same moment, from two threads as the service's
// pool runs them: memory must end with the index the database ended with (the later commit),
// whichever caller's thread runs first afterwards, and screening must work against it.
TEST_F(LinkageDeskTest, TwoUploadsCommittedAtOnceLeaveTheLaterOneInForce) {
  // The first caller back from its commit in each round is held up there for a while, as a
  // descheduled thread would be, so the other caller's thread runs first afterwards.
  struct HoldFirst : fault::Injector {
    void Reached(const char* point) override {
      if (std::string_view(point) == "linkage.upload_committed" && !held.exchange(true)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
      }
    }
    bool Unsafe(const char*) override { return false; }
    int DuplicatePercent() override { return 0; }
    std::atomic<bool> held{false};
  } hold;
  fault::Install(&hold);
  struct Uninstall {
    ~Uninstall() { fault::Install(nullptr); }
  } uninstall;
  const std::vector<PersonFields> people = Personnel();
  const PersonFields priya_in_a_sar = {"Priya", "Shah", "1990-11-02", "7 Station Rd Ipswich",
                                       "IP42BX"};
  for (int round = 0; round < 40; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    // Upload 0 holds Alice, upload 1 Priya; both staged, then committed at once.
    std::vector<v1::CommitIndexUploadRequest> commits(2);
    for (int u = 0; u < 2; ++u) {
      ASSERT_OK_AND_ASSIGN(commits[u],
                           StageOne(nfk_, u == 0 ? "P1" : "P3", people[u == 0 ? 0 : 2]));
    }
    hold.held = false;
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    std::vector<absl::StatusOr<v1::CommitIndexUploadResponse>> results(
        2, absl::UnknownError("not run"));
    std::vector<std::thread> threads;
    for (int u = 0; u < 2; ++u) {
      threads.emplace_back([&, u] {
        start.wait();
        results[u] = desk_->CommitUpload(nfk_, commits[u]);
      });
    }
    go.set_value();
    for (std::thread& t : threads) t.join();
    ASSERT_THAT(results[0], IsOk());
    ASSERT_THAT(results[1], IsOk());
    const int later = results[0]->index_version() > results[1]->index_version() ? 0 : 1;
    ASSERT_OK_AND_ASSIGN(auto screened,
                         Screen(absl::StrCat("SAR-", absl::StrFormat("%016x", 0x900 + round)),
                                {AliceInASar(), priya_in_a_sar}));
    ASSERT_EQ(screened.hits_size(), 1);
    EXPECT_EQ(screened.hits(0).record_id(), later == 0 ? "P1" : "P3");
  }
}

// What a force may leave staged is bounded: a few uploads open at once, records per upload, and
// an upload never committed lapses and its records go.
TEST_F(LinkageDeskTest, StagedUploadsAreBoundedAndLapse) {
  LinkageOptions options;
  options.max_open_uploads = 2;
  options.max_records_per_upload = 3;
  Open(options);
  auto begin = [&](const Call& force) {
    v1::BeginIndexUploadRequest r;
    r.set_request_id(NewId("r-"));
    return desk_->BeginUpload(force, r);
  };
  auto add = [&](const Call& force, const std::string& upload, int from, int n) {
    v1::UploadIndexRecordsRequest part;
    part.set_request_id(NewId("r-"));
    part.set_upload_id(upload);
    for (int i = from; i < from + n; ++i) {
      auto* rec = part.add_records();
      rec->set_record_id(absl::StrCat("P", i));
      rec->set_encoding(Encode(Personnel()[i % 3]));
    }
    return desk_->UploadRecords(force, part).status();
  };
  auto records_held = [&] {
    int64_t n = 0;
    EXPECT_THAT(db_->Read([&](Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COUNT(*) FROM linkage_records"));
      n = rows[0].Int(0);
      return absl::OkStatus();
    }),
                IsOk());
    return n;
  };
  ASSERT_OK_AND_ASSIGN(auto first, begin(nfk_));
  ASSERT_OK_AND_ASSIGN(auto second, begin(nfk_));
  EXPECT_THAT(begin(nfk_).status(), StatusIs(absl::StatusCode::kResourceExhausted, _));
  ASSERT_OK_AND_ASSIGN(auto other_force, begin(sfk_));  // another force's are its own
  ASSERT_THAT(add(nfk_, first.upload_id(), 1, 2), IsOk());
  EXPECT_THAT(add(nfk_, first.upload_id(), 3, 2),
              StatusIs(absl::StatusCode::kResourceExhausted, _));
  ASSERT_THAT(add(nfk_, first.upload_id(), 3, 1), IsOk());
  ASSERT_THAT(add(nfk_, second.upload_id(), 1, 1), IsOk());
  EXPECT_EQ(records_held(), 4);

  // A day later both are abandoned: a new upload may begin, and theirs are gone.
  clock_.Advance(absl::Hours(24) + absl::Seconds(1));
  ASSERT_OK_AND_ASSIGN(auto third, begin(nfk_));
  EXPECT_EQ(records_held(), 0);
  EXPECT_THAT(add(nfk_, first.upload_id(), 5, 1), StatusIs(absl::StatusCode::kNotFound, _));
  ASSERT_THAT(add(nfk_, third.upload_id(), 1, 1), IsOk());
  v1::CommitIndexUploadRequest commit;
  commit.set_request_id(NewId("r-"));
  commit.set_upload_id(third.upload_id());
  commit.set_expected_records(1);
  ASSERT_OK_AND_ASSIGN(auto committed, desk_->CommitUpload(nfk_, commit));
  EXPECT_EQ(committed.records(), 1);
  // A committed index never lapses, however old.
  clock_.Advance(absl::Hours(24 * 30));
  ASSERT_OK_AND_ASSIGN(auto fourth, begin(nfk_));
  EXPECT_EQ(records_held(), 1);
  // Lapsed before anything purged it: neither added to nor committed, since a purge may delete
  // its records meanwhile and the index would be what was left of it.
  ASSERT_THAT(add(nfk_, fourth.upload_id(), 1, 1), IsOk());
  clock_.Advance(absl::Hours(24) + absl::Seconds(1));
  EXPECT_THAT(add(nfk_, fourth.upload_id(), 2, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("lapsed")));
  commit.set_request_id(NewId("r-"));
  commit.set_upload_id(fourth.upload_id());
  EXPECT_THAT(desk_->CommitUpload(nfk_, commit),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("lapsed")));
}

// A commit rolled back after its index was built (here: what the call stores after its work is
// refused, as a full disk or a failed COMMIT would) keeps nothing of it in memory, and the same
// upload commits afterwards.
TEST_F(LinkageDeskTest, ACommitRolledBackKeepsNoIndexInMemory) {
  ASSERT_OK_AND_ASSIGN(v1::CommitIndexUploadRequest commit, StageOne(nfk_, "P1", Personnel()[0]));
  ASSERT_THAT(db_->Transact([&](Txn& txn) {
    return txn.Exec(
        absl::StrCat("CREATE TRIGGER refuse AFTER INSERT ON idempotency WHEN "
                     "NEW.request_id = '",
                     commit.request_id(), "' BEGIN SELECT RAISE(ABORT, 'no room'); END"));
  }),
              IsOk());
  for (int attempt = 0; attempt < 3; ++attempt) {
    const absl::Status refused = desk_->CommitUpload(nfk_, commit).status();
    EXPECT_THAT(refused.message(), HasSubstr("no room")) << refused;
    EXPECT_EQ(desk_->IndexesAwaitingCommit(), 0);
  }
  ASSERT_THAT(db_->Transact([](Txn& txn) { return txn.Exec("DROP TRIGGER refuse"); }), IsOk());
  commit.set_request_id(NewId("r-"));
  ASSERT_THAT(desk_->CommitUpload(nfk_, commit), IsOk());
  EXPECT_EQ(desk_->IndexesAwaitingCommit(), 0);
  ASSERT_OK_AND_ASSIGN(auto screened, Screen("SAR-00000000000000d1", {AliceInASar()}));
  EXPECT_EQ(screened.hits_size(), 1);
}

// Retention takes the SAR subjects stored, and the hits found, before the cutoff, and nothing
// after it; a new index no longer compares the subjects gone, and a commit that compared one
// before it went stores no hit for it.
TEST_F(LinkageDeskTest, RetentionDeletesWhatWasScreenedBeforeTheCutoff) {
  ASSERT_OK_AND_ASSIGN(auto early, Screen("SAR-00000000000000e1", {AliceInASar()}));
  EXPECT_EQ(early.hits_size(), 0);  // no index yet
  ASSERT_OK_AND_ASSIGN(auto first, Upload(nfk_, Personnel()));
  EXPECT_EQ(first.new_hits(), 1);
  clock_.Advance(absl::Hours(24 * 365 * 7));
  ASSERT_OK_AND_ASSIGN(auto late, Screen("SAR-00000000000000e2", {AliceInASar()}));
  EXPECT_EQ(late.hits_size(), 1);

  // The audit log refusing the purge's entry (a full disk): nothing is deleted unrecorded.
  auto refuse_audit = [&](bool on) {
    ASSERT_THAT(db_->Transact([&](Txn& txn) {
      return txn.Exec(on ? "CREATE TRIGGER full BEFORE INSERT ON audit BEGIN "
                           "SELECT RAISE(ABORT, 'disk full'); END"
                         : "DROP TRIGGER full");
    }),
                IsOk());
  };
  refuse_audit(true);
  const absl::StatusOr<LinkageDesk::Purged> refused =
      desk_->PurgeScreenedBefore(clock_.Now() - absl::Hours(24 * 365 * 6), "sarloop/retention");
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("disk full"));
  refuse_audit(false);
  ASSERT_OK_AND_ASSIGN(auto kept, desk_->Stats());
  EXPECT_EQ(kept.subjects_stored(), 2) << "subjects deleted with no audit entry";

  ASSERT_OK_AND_ASSIGN(
      LinkageDesk::Purged purged,
      desk_->PurgeScreenedBefore(clock_.Now() - absl::Hours(24 * 365 * 6), "sarloop/retention"));
  EXPECT_EQ(purged.subjects, 1);
  EXPECT_EQ(purged.hits, 1);
  v1::ListHitsRequest list;
  list.set_organisation("NFK");
  ASSERT_OK_AND_ASSIGN(auto hits, desk_->ListHits(list));
  ASSERT_EQ(hits.hits_size(), 1);
  EXPECT_EQ(hits.hits(0).sar_id(), "SAR-00000000000000e2");
  ASSERT_OK_AND_ASSIGN(auto stats, desk_->Stats());
  EXPECT_EQ(stats.subjects_stored(), 1);
  ASSERT_THAT(db_->Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT detail FROM audit WHERE method = ? ORDER BY seq",
                                          {std::string("retention.purge")}));
    EXPECT_EQ(rows.size(), 2u);
    if (rows.size() == 2) {
      EXPECT_THAT(rows[0].Text(0), HasSubstr(": 1 SAR subjects deleted"));
      EXPECT_THAT(rows[1].Text(0), HasSubstr(": 1 hits deleted"));
    }
    return absl::OkStatus();
  }),
              IsOk());
  ASSERT_OK_AND_ASSIGN(auto second, Upload(nfk_, Personnel()));
  EXPECT_EQ(second.subjects_rescreened(), 1);

  // The last subject goes while a commit that compared it is between its preparation and its
  // transaction.
  struct PurgeOnce : fault::Injector {
    void Reached(const char* point) override {
      if (std::string_view(point) == "linkage.commit_prepared" && !done.exchange(true)) {
        purged = desk->PurgeScreenedBefore(clock->Now() + absl::Seconds(1), "sarloop/retention");
      }
    }
    bool Unsafe(const char*) override { return false; }
    int DuplicatePercent() override { return 0; }
    LinkageDesk* desk = nullptr;
    Clock* clock = nullptr;
    std::atomic<bool> done{false};
    absl::StatusOr<LinkageDesk::Purged> purged = absl::UnknownError("not run");
  } purge_once;
  purge_once.desk = desk_.get();
  purge_once.clock = &clock_;
  fault::Install(&purge_once);
  struct Uninstall {
    ~Uninstall() { fault::Install(nullptr); }
  } uninstall;
  ASSERT_OK_AND_ASSIGN(v1::CommitIndexUploadRequest commit, StageOne(nfk_, "P1", Personnel()[0]));
  ASSERT_OK_AND_ASSIGN(auto third, desk_->CommitUpload(nfk_, commit));
  ASSERT_THAT(purge_once.purged, IsOk());
  EXPECT_EQ(purge_once.purged->subjects, 1);
  EXPECT_EQ(third.new_hits(), 0);
  ASSERT_OK_AND_ASSIGN(auto left, desk_->ListHits(list));
  EXPECT_EQ(left.hits_size(), 0);
  // Every subject gone: the next one stored reuses a row number memory had read past, and is
  // compared with the next index all the same.
  ASSERT_OK_AND_ASSIGN(auto fresh, Screen("SAR-00000000000000e3", {AliceInASar()}));
  EXPECT_EQ(fresh.hits_size(), 1);
  ASSERT_OK_AND_ASSIGN(auto fourth, Upload(nfk_, Personnel()));
  EXPECT_EQ(fourth.subjects_rescreened(), 1);
}

TEST_F(LinkageDeskTest, ScreeningChecksItsInput) {
  v1::ScreenSubjectsRequest req;
  req.set_request_id("s1");
  req.set_sar_id("SAR-0000000000000009");
  EXPECT_THAT(desk_->Screen(ukfiu_, req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subjects")));
  auto* s = req.add_subjects();
  s->set_subject_ref("SUBJ-1");
  s->set_encoding(std::string(127, 'x'));
  EXPECT_THAT(desk_->Screen(ukfiu_, req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subjects[0].encoding")));
  EXPECT_THAT(desk_->Screen(nfk_, req).status(), StatusIs(absl::StatusCode::kPermissionDenied, _));
  s->set_encoding(Encode(Stranger()));
  *req.add_subjects() = *s;
  EXPECT_THAT(desk_->Screen(ukfiu_, req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subjects[1].subject_ref")));
}

// A subject without a date of birth comes with an encoding under every decade an index record
// can have (Encoder::EncodeForScreening): the screen finds the person through the one that
// matches, on arrival and when a later index re-screens the stored subject (all its encodings
// kept), once per record. Without the alternatives the same subject is not found.
TEST_F(LinkageDeskTest, ASubjectWithoutADateOfBirthIsFoundThroughItsAlternatives) {
  // Alice's name as HR has it, her address abbreviated, no date of birth.
  const PersonFields no_dob{"Alice Mary", "O'Brien", "", "12 Church Rd Norwich", "NR31AB"};
  const std::vector<Filter> encodings = *encoder_.EncodeForScreening(no_dob);
  ASSERT_EQ(encodings.size(), static_cast<size_t>(kMaxSubjectEncodings));
  const auto request = [&](const std::string& sar, bool alternatives) {
    v1::ScreenSubjectsRequest req;
    req.set_request_id(NewId("r-"));
    req.set_sar_id(sar);
    auto* s = req.add_subjects();
    s->set_subject_ref("SUBJ-1");
    s->set_encoding(ToBytes(encodings[0]));
    for (size_t i = 1; alternatives && i < encodings.size(); ++i) {
      s->add_alternative_encodings(ToBytes(encodings[i]));
    }
    return req;
  };
  ASSERT_THAT(Upload(nfk_, Personnel()), IsOk());
  ASSERT_OK_AND_ASSIGN(auto without, desk_->Screen(ukfiu_, request("SAR-0000000000000010", false)));
  EXPECT_EQ(without.hits_size(), 0);
  ASSERT_OK_AND_ASSIGN(auto with, desk_->Screen(ukfiu_, request("SAR-0000000000000011", true)));
  ASSERT_EQ(with.hits_size(), 1);
  EXPECT_EQ(with.hits(0).record_id(), "P1");
  EXPECT_GE(with.hits(0).score_milli(), kThreshold);

  // Stored with all its encodings: a restart, then another force's upload, re-screens it.
  Open();
  ASSERT_OK_AND_ASSIGN(auto committed, Upload(sfk_, Personnel()));
  EXPECT_EQ(committed.new_hits(), 1);
  v1::ListHitsRequest list;
  list.set_sar_id("SAR-0000000000000011");
  ASSERT_OK_AND_ASSIGN(auto hits, desk_->ListHits(list));
  EXPECT_EQ(hits.hits_size(), 2);  // one per force, not one per encoding

  v1::ScreenSubjectsRequest bad = request("SAR-0000000000000012", true);
  bad.mutable_subjects(0)->set_alternative_encodings(1, "short");
  EXPECT_THAT(desk_->Screen(ukfiu_, bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("subjects[0].alternative_encodings[1]")));
  v1::ScreenSubjectsRequest many = request("SAR-0000000000000013", true);
  many.mutable_subjects(0)->add_alternative_encodings(ToBytes(encodings[1]));
  EXPECT_THAT(
      desk_->Screen(ukfiu_, many),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subjects[0].alternative_encodings")));
}

// Replacing an index leaves only the new upload's records: the old ones are deleted after the
// commit in bounded transactions, and an upload replaced just before a stop is purged when the
// desk loads again.
TEST_F(LinkageDeskTest, ReplacedUploadsArePurgedAfterTheCommit) {
  const auto count = [&](const std::string& sql) {
    int64_t n = -1;
    EXPECT_THAT(db_->Read([&](Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(std::vector<Row> rows, txn.Query(sql));
      n = rows[0].Int(0);
      return absl::OkStatus();
    }),
                IsOk());
    return n;
  };
  ASSERT_THAT(Upload(nfk_, Personnel()), IsOk());
  ASSERT_OK_AND_ASSIGN(auto second, Upload(nfk_, Personnel()));
  EXPECT_EQ(second.index_version(), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM linkage_records"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM linkage_uploads"), 1);

  ASSERT_THAT(db_->Transact([](Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(
        txn.Exec("INSERT INTO linkage_uploads (upload_id, org, started_at, records, committed) "
                 "VALUES ('UPL-left', 'NFK', 0, 1, 1)"));
    return txn.Exec(
        "INSERT INTO linkage_records (upload_id, record_id, encoding) VALUES ('UPL-left', 'P9', "
        "'x')");
  }),
              IsOk());
  Open();
  EXPECT_EQ(count("SELECT COUNT(*) FROM linkage_records WHERE upload_id = 'UPL-left'"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM linkage_uploads WHERE upload_id = 'UPL-left'"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM linkage_records"), 3);  // the index in use stays
  ASSERT_OK_AND_ASSIGN(auto screened, Screen("SAR-0000000000000020", {AliceInASar()}));
  EXPECT_EQ(screened.hits_size(), 1);
}

}  // namespace
}  // namespace sarloop::linkage
