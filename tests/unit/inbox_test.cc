// The inbox as a to-do list (Force.ListInbox through the desk, and the shared ReadReferralPage):
// each filter against an independent predicate, paged two at a time; cursor tokens that stay
// right while the list changes between pages; tokens refused when altered or reused for another
// query.
#include <functional>
#include <set>

#include "absl/strings/str_format.h"
#include "common/base/ids.h"
#include "common/referral/lifecycle.h"
#include "common/referral/referral_store.h"
#include "common/server/server.h"
#include "services/force/desk.h"
#include "tests/testutil/testutil.h"

namespace sarloop::force {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::sarloop::testing::TempDir;
using ::sarloop::testing::TestKeys;
using ::testing::AllOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr v1::ReferralState kStates[] = {
    v1::REFERRAL_STATE_RECEIVED,           v1::REFERRAL_STATE_ACKNOWLEDGED,
    v1::REFERRAL_STATE_UNDER_RESEARCH,     v1::REFERRAL_STATE_HANDED_OVER,
    v1::REFERRAL_STATE_CLOSED_BY_FORCE,    v1::REFERRAL_STATE_DECLINED_BY_FORCE,
    v1::REFERRAL_STATE_JOINT_INVESTIGATION};

class InboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db =
        Database::Open(dir_.File("force.db"),
                       ServiceMigrations(DeskMigrations(), DeskMigrationsAfterAudit()), TestKeys());
    ASSERT_THAT(db, IsOk());
    db_ = std::move(*db);
    desk_ = std::make_unique<Desk>(*db_, clock_, DeskOptions{"NFK", {"ERSOU"}});
    for (int i = 0; i < 21; ++i) Add(i);
  }

  // Referral i: its state cycles through kStates, every fourth escalated, every third past due.
  v1::Referral Make(int i) {
    v1::Referral r;
    r.set_referral_id(absl::StrFormat("REF-%016x", 0xa00 + i));
    r.set_sar_id(absl::StrFormat("SAR-%016x", 0xb00 + i));
    r.set_organisation("NFK");
    r.set_state(kStates[i % 7]);
    r.set_escalated(i % 4 == 0);
    *r.mutable_next_due_at() =
        ToProto(clock_.Now() + (i % 3 == 0 ? -absl::Hours(24) : absl::Hours(24 * 10)));
    return r;
  }

  void Add(int i) {
    v1::Referral r = Make(i);
    clock_.Advance(absl::Seconds(1));  // stored one after another: the inbox's order
    ASSERT_THAT(db_->Transact([&](Txn& t) { return SaveReferral(t, r, clock_.Now()); }), IsOk());
    all_.push_back(r);
  }

  void SetState(int i, v1::ReferralState state) {
    all_[i].set_state(state);
    ASSERT_THAT(db_->Transact([&](Txn& t) {
      v1::Referral r = all_[i];
      return SaveReferral(t, r, clock_.Now());
    }),
                IsOk());
  }

  // Every page of `request`, `size` at a time, between pages calling `between(page number)`.
  std::vector<std::string> Pages(v1::ListInboxRequest request, int size,
                                 const std::function<void(int)>& between = nullptr) {
    std::vector<std::string> ids;
    request.set_page_size(size);
    for (int page = 0; page < 100; ++page) {
      absl::StatusOr<v1::ListInboxResponse> r = desk_->Inbox(request);
      EXPECT_THAT(r, IsOk());
      if (!r.ok()) break;
      for (const v1::Referral& x : r->referrals()) {
        ids.push_back(x.referral_id());
        EXPECT_FALSE(x.has_package());
      }
      if (r->next_page_token().empty()) break;
      request.set_page_token(r->next_page_token());
      if (between) between(page);
    }
    return ids;
  }

  std::vector<std::string> Expected(const std::function<bool(const v1::Referral&)>& keep) {
    std::vector<std::string> ids;
    for (const v1::Referral& r : all_) {
      if (keep(r)) ids.push_back(r.referral_id());
    }
    return ids;
  }

  TempDir dir_;
  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<Database> db_;
  std::unique_ptr<Desk> desk_;
  std::vector<v1::Referral> all_;
};

bool Waits(const v1::Referral& r) {
  return r.state() == v1::REFERRAL_STATE_RECEIVED || r.state() == v1::REFERRAL_STATE_ACKNOWLEDGED ||
         r.state() == v1::REFERRAL_STATE_UNDER_RESEARCH;
}

TEST_F(InboxTest, EachFilterKeepsWhatItSaysOldestFirst) {
  const absl::Time now = clock_.Now();
  auto overdue = [&](const v1::Referral& r) {
    return !IsTerminal(r.state()) && FromProto(r.next_due_at()) < now;
  };
  struct Case {
    const char* name;
    std::function<void(v1::ListInboxRequest&)> set;
    std::function<bool(const v1::Referral&)> keep;
  };
  const std::vector<Case> cases = {
      {"everything", [](auto&) {}, [](auto&) { return true; }},
      {"one state", [](auto& q) { q.set_state(v1::REFERRAL_STATE_RECEIVED); },
       [](auto& r) { return r.state() == v1::REFERRAL_STATE_RECEIVED; }},
      {"several states",
       [](auto& q) {
         q.add_states(v1::REFERRAL_STATE_HANDED_OVER);
         q.add_states(v1::REFERRAL_STATE_CLOSED_BY_FORCE);
       },
       [](auto& r) {
         return r.state() == v1::REFERRAL_STATE_HANDED_OVER ||
                r.state() == v1::REFERRAL_STATE_CLOSED_BY_FORCE;
       }},
      {"needs action", [](auto& q) { q.set_needs_action(true); }, Waits},
      {"overdue", [](auto& q) { q.set_overdue(true); }, overdue},
      {"escalated", [](auto& q) { q.set_escalated(true); }, [](auto& r) { return r.escalated(); }},
      {"needs action, overdue and escalated",
       [](auto& q) {
         q.set_needs_action(true);
         q.set_overdue(true);
         q.set_escalated(true);
       },
       [&](auto& r) { return Waits(r) && overdue(r) && r.escalated(); }},
      {"needs action within states",
       [](auto& q) {
         q.set_needs_action(true);
         q.add_states(v1::REFERRAL_STATE_RECEIVED);
         q.add_states(v1::REFERRAL_STATE_HANDED_OVER);
       },
       [](auto& r) { return r.state() == v1::REFERRAL_STATE_RECEIVED; }},
      {"needs action with none of its states",
       [](auto& q) {
         q.set_needs_action(true);
         q.add_states(v1::REFERRAL_STATE_HANDED_OVER);
       },
       [](auto&) { return false; }},
  };
  for (const Case& c : cases) {
    v1::ListInboxRequest request;
    c.set(request);
    const std::vector<std::string> want = Expected(c.keep);
    EXPECT_THAT(Pages(request, 2), ElementsAreArray(want)) << c.name;
    EXPECT_THAT(Pages(request, 1000), ElementsAreArray(want)) << c.name;
  }
  // The overdue column is set whatever the filter.
  ASSERT_OK_AND_ASSIGN(v1::ListInboxResponse page, desk_->Inbox(v1::ListInboxRequest()));
  for (int i = 0; i < page.referrals_size(); ++i) {
    EXPECT_EQ(page.referrals(i).overdue(), overdue(all_[i])) << i;
  }
}

TEST_F(InboxTest, PagesStayRightWhileTheInboxChangesUnderneath) {
  // Three at a time; after the first page, referrals already listed and not yet listed change
  // state, two new ones arrive, and (needs action) some leave the filter.
  std::vector<std::string> got = Pages(v1::ListInboxRequest(), 3, [&](int page) {
    if (page != 0) return;
    SetState(1, v1::REFERRAL_STATE_UNDER_RESEARCH);    // already listed
    SetState(10, v1::REFERRAL_STATE_CLOSED_BY_FORCE);  // not yet listed
    Add(21);
    Add(22);
  });
  std::vector<std::string> want = Expected([](auto&) { return true; });
  EXPECT_THAT(got, ElementsAreArray(want));  // every one once, in order, new ones at the end

  v1::ListInboxRequest waiting;
  waiting.set_needs_action(true);
  got = Pages(waiting, 2, [&](int page) {
    if (page != 0) return;
    SetState(all_.size() - 1, v1::REFERRAL_STATE_RECEIVED);  // joins the filter, at the end
    SetState(14, v1::REFERRAL_STATE_HANDED_OVER);            // leaves it before it is reached
  });
  EXPECT_THAT(got, ElementsAreArray(Expected(Waits)));
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), got.size());
}

TEST_F(InboxTest, RefusesATokenAlteredOrFromAnotherQuery) {
  v1::ListInboxRequest request;
  request.set_page_size(2);
  request.set_needs_action(true);
  ASSERT_OK_AND_ASSIGN(v1::ListInboxResponse first, desk_->Inbox(request));
  ASSERT_FALSE(first.next_page_token().empty());
  v1::ListInboxRequest other = request;
  other.set_needs_action(false);
  other.set_page_token(first.next_page_token());
  EXPECT_THAT(desk_->Inbox(other),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  v1::ListInboxRequest forged = request;
  forged.set_page_token("MTcwMDAwMDAwMDAwMDAwMDpSRUYt.AAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_THAT(desk_->Inbox(forged),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  v1::ListInboxRequest old_style = request;
  old_style.set_page_token("100");  // an offset, as tokens used to be
  EXPECT_THAT(desk_->Inbox(old_style),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  v1::ListInboxRequest bad_state;
  bad_state.add_states(static_cast<v1::ReferralState>(99));
  EXPECT_THAT(desk_->Inbox(bad_state),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("states[0]")));
  // A state may be named more than once, within reason: each becomes one SQL parameter, so a
  // million of them are refused before any is.
  v1::ListInboxRequest repeated;
  for (int i = 0; i < 32; ++i) repeated.add_states(v1::REFERRAL_STATE_RECEIVED);
  ASSERT_OK_AND_ASSIGN(auto received, desk_->Inbox(repeated));
  EXPECT_GT(received.referrals_size(), 0);
  for (const v1::Referral& r : received.referrals()) {
    EXPECT_EQ(r.state(), v1::REFERRAL_STATE_RECEIVED);
  }
  v1::ListInboxRequest flood;
  for (int i = 0; i < 1'000'000; ++i) flood.add_states(v1::REFERRAL_STATE_RECEIVED);
  EXPECT_THAT(desk_->Inbox(flood), StatusIs(absl::StatusCode::kInvalidArgument,
                                            AllOf(HasSubstr("states"), HasSubstr("at most 32"))));
}

TEST_F(InboxTest, NewestFirstWhenAskedAsUkfiusListIs) {
  ReferralListQuery query;
  query.newest_first = true;
  std::vector<std::string> got;
  std::string token;
  do {
    google::protobuf::RepeatedPtrField<v1::Referral> page;
    std::string next;
    ASSERT_THAT(ReadReferralPage(*db_, query, clock_.Now(), 4, token, &page, &next), IsOk());
    for (const v1::Referral& r : page) got.push_back(r.referral_id());
    token = next;
  } while (!token.empty() && got.size() < 100);
  std::vector<std::string> want = Expected([](auto&) { return true; });
  std::reverse(want.begin(), want.end());
  EXPECT_THAT(got, ElementsAreArray(want));
}

}  // namespace
}  // namespace sarloop::force
