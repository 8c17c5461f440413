#include "common/security/identity.h"

#include "absl/strings/escaping.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;

TEST(Identity, ParsesEveryRole) {
  auto id = ParseIdentity("spiffe://sarloop/force/NFK/psd");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->kind, "force");
  EXPECT_EQ(id->org, "NFK");
  EXPECT_EQ(id->system, "psd");
  EXPECT_FALSE(id->IsService());
  id = ParseIdentity("spiffe://sarloop/racu/ERSOU");
  ASSERT_THAT(id, IsOk());
  EXPECT_TRUE(id->IsService());
  id = ParseIdentity("spiffe://sarloop/ukfiu");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->org, "UKFIU");
  id = ParseIdentity("spiffe://sarloop/analyst/alice");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->system, "alice");
  EXPECT_TRUE(id->org.empty());
}

TEST(Identity, RefusesWhatIsNotARole) {
  EXPECT_FALSE(ParseIdentity("spiffe://other/force/NFK").ok());
  EXPECT_FALSE(ParseIdentity("spiffe://sarloop/police/NFK").ok());
  EXPECT_FALSE(ParseIdentity("spiffe://sarloop/force").ok());
  EXPECT_FALSE(ParseIdentity("spiffe://sarloop/force/NFK/psd/extra").ok());
  EXPECT_FALSE(ParseIdentity("spiffe://sarloop/force//psd").ok());
  EXPECT_FALSE(ParseIdentity("spiffe://sarloop/analyst").ok());
}

// Every way a URI can fail the SPIFFE ID spec's canonical form, each refused naming its rule:
// a certificate saying spiffe://sarloop/ukfiu/.. must not be taken for UKFIU's.
TEST(SpiffeId, RefusesEverythingNotCanonical) {
  const std::pair<std::string, std::string> bad[] = {
      {"spiffe://sarloop/ukfiu/..", "'.' or '..'"},
      {"spiffe://sarloop/ukfiu/.", "'.' or '..'"},
      {"spiffe://sarloop/../ukfiu", "'.' or '..'"},
      {"spiffe://sarloop/force/NFK/./psd", "'.' or '..'"},
      {"spiffe://sarloop/ukfiu/", "empty path segment"},
      {"spiffe://sarloop//ukfiu", "empty path segment"},
      {"spiffe://sarloop/force//NFK", "empty path segment"},
      {"spiffe://sarloop/", "empty path segment"},
      {"spiffe://sarloop", "no path"},
      {"spiffe:///ukfiu", "no trust domain"},
      {"spiffe://SARLOOP/ukfiu", "trust domain"},
      {"spiffe://sarloop:443/ukfiu", "trust domain"},
      {"spiffe://user@sarloop/ukfiu", "trust domain"},
      {"spiffe://sarloop/uk%66iu", "letters, digits"},
      {"spiffe://sarloop/ukfiu?x=1", "letters, digits"},
      {"spiffe://sarloop/ukfiu#frag", "letters, digits"},
      {"spiffe://sarloop/uk fiu", "letters, digits"},
      {std::string("spiffe://sarloop/ukfiu\0x", 24), "letters, digits"},
      {"spiffe://sarloop/ukfiu\n", "letters, digits"},
      {"spiffe://sarloop/\xc3\xa9", "letters, digits"},
      {"SPIFFE://sarloop/ukfiu", "scheme"},
      {"https://sarloop/ukfiu", "scheme"},
      {"spiffe://sarloop/" + std::string(256, 'a'), "longer than 255"},
      {"spiffe://sarloop/" + std::string(2040, 'a'), "longer than 2048"},
  };
  for (const auto& [uri, rule] : bad) {
    absl::StatusOr<SpiffeId> id = ParseSpiffeId(uri);
    EXPECT_THAT(id,
                testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr(rule)))
        << uri.substr(0, 60);
    EXPECT_FALSE(ParseIdentity(uri).ok()) << uri.substr(0, 60);
  }
  ASSERT_THAT(ParseSpiffeId("spiffe://sarloop/force/NFK/psd.v2-x_1"), IsOk());
  EXPECT_EQ(ParseSpiffeId("spiffe://sarloop/force/NFK/psd.v2-x_1")->path.size(), 3u);
  // Dots inside a segment are fine; a segment made only of dots beyond ".." is a name too.
  EXPECT_THAT(ParseIdentity("spiffe://sarloop/force/NFK/case.system"), IsOk());
  // A longer message is cut in what the error repeats of it.
  EXPECT_LT(ParseSpiffeId("spiffe://sarloop/" + std::string(3000, 'a')).status().message().size(),
            300u);
}

// The person named in x-sarloop-user goes into every event: held to what a request's text is,
// or a peer refuses the events and the chain never hears of them.
TEST(ActingUser, IsHeldToWhatEveryRequestsTextIsHeldTo) {
  EXPECT_THAT(CheckActingUser("psd-officer-7"), IsOk());
  EXPECT_THAT(CheckActingUser("Zoë O'Brien"), IsOk());
  for (const std::string& bad :
       {std::string(""), std::string(101, 'u'), std::string("a\tb"), std::string("a\x7f"),
        std::string("left\xE2\x80\xAEright"),
        std::string("a\xE2\x80\xA8"
                    "b"),
        std::string("\xC2\x85"), std::string("\xff\xfe"), std::string("a\0b", 3)}) {
    EXPECT_THAT(CheckActingUser(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                               ::testing::HasSubstr("x-sarloop-user")))
        << absl::CHexEscape(bad);
  }
}

TEST(IdentityPattern, StarIsOneSegment) {
  EXPECT_TRUE(MatchesPattern("spiffe://sarloop/force/NFK/*", "spiffe://sarloop/force/NFK/psd"));
  EXPECT_FALSE(MatchesPattern("spiffe://sarloop/force/NFK/*", "spiffe://sarloop/force/NFK"));
  EXPECT_FALSE(MatchesPattern("spiffe://sarloop/force/NFK/*", "spiffe://sarloop/force/SFK/psd"));
  EXPECT_TRUE(MatchesPattern("spiffe://sarloop/force/*", "spiffe://sarloop/force/SFK"));
  EXPECT_FALSE(MatchesPattern("spiffe://sarloop/force/*", "spiffe://sarloop/force/SFK/psd"));
  EXPECT_TRUE(MatchesPattern("spiffe://sarloop/ukfiu", "spiffe://sarloop/ukfiu"));
  EXPECT_FALSE(MatchesPattern("spiffe://sarloop/ukfiu", "spiffe://sarloop/ukfiu/intake"));
  EXPECT_TRUE(MatchesPattern("spiffe://sarloop/force/NFK/**", "spiffe://sarloop/force/NFK"));
}

}  // namespace
}  // namespace sarloop
