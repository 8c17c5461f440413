#include "common/identity.h"

#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;

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
