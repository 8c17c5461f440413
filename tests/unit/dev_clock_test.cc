// The development clock (common/base/clock.h NewOffsetFileClock): an offset written to a file moves
// every service's clock at once, and a read that starts after the write returns sees it.
#include <stdio.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/clock.h"
#include "common/base/clock.h"
#include "gtest/gtest.h"

namespace sarloop {
namespace {

namespace fs = std::filesystem;

class DevClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sarloop-devclock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void WriteInPlace(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  }
  // The offset the clock reads now, in whole seconds.
  static long long OffsetOf(Clock& clock) {
    return std::llround(absl::ToDoubleSeconds(clock.Now() - absl::Now()));
  }

  std::string dir_;
};

TEST_F(DevClockTest, FollowsEveryWriteAtOnce) {
  const std::string path = dir_ + "/clock-offset";
  auto clock = NewOffsetFileClock(path);
  EXPECT_EQ(OffsetOf(*clock), 0) << "no file: no offset";
  // Written over and over within the file system's timestamp granularity, as an exercise does:
  // each value is read by the first Now() after its write.
  for (int i = 1; i <= 200; ++i) {
    WriteInPlace(path, std::to_string(i * 3600));
    ASSERT_EQ(OffsetOf(*clock), i * 3600) << "after write " << i;
    ASSERT_EQ(OffsetOf(*clock), i * 3600) << "read again, unchanged";
  }
}

TEST_F(DevClockTest, FollowsAReplacementARemovalAndARecreation) {
  const std::string path = dir_ + "/clock-offset";
  WriteInPlace(path, "86400");
  auto clock = NewOffsetFileClock(path);
  EXPECT_EQ(OffsetOf(*clock), 86400) << "a file already there is read at the first Now()";

  WriteInPlace(path + ".tmp", "-7200");
  ASSERT_EQ(::rename((path + ".tmp").c_str(), path.c_str()), 0);
  EXPECT_EQ(OffsetOf(*clock), -7200) << "replaced by a rename";

  WriteInPlace(dir_ + "/another-file", "999");
  EXPECT_EQ(OffsetOf(*clock), -7200) << "another file in the directory changes nothing";

  ASSERT_EQ(::unlink(path.c_str()), 0);
  EXPECT_EQ(OffsetOf(*clock), 0) << "removed";

  WriteInPlace(path, "60");
  EXPECT_EQ(OffsetOf(*clock), 60) << "created again";

  WriteInPlace(path, "");
  EXPECT_EQ(OffsetOf(*clock), 60) << "an empty file (a write caught half way) keeps the offset";
  WriteInPlace(path, "120");
  EXPECT_EQ(OffsetOf(*clock), 120);
}

TEST_F(DevClockTest, ADirectoryThatGoesAwayOrIsNotThereYetIsReadEveryTime) {
  // No directory to watch when the clock starts: it reads the file at every Now().
  const std::string later = dir_ + "/later";
  auto unwatched = NewOffsetFileClock(later + "/clock-offset");
  EXPECT_EQ(OffsetOf(*unwatched), 0);
  fs::create_directory(later);
  WriteInPlace(later + "/clock-offset", "3600");
  EXPECT_EQ(OffsetOf(*unwatched), 3600);

  // The watched directory removed and made again: the watch is gone, the file still followed.
  auto watched = NewOffsetFileClock(later + "/clock-offset");
  EXPECT_EQ(OffsetOf(*watched), 3600);
  fs::remove_all(later);
  EXPECT_EQ(OffsetOf(*watched), 0);
  fs::create_directory(later);
  WriteInPlace(later + "/clock-offset", "7200");
  EXPECT_EQ(OffsetOf(*watched), 7200);
  WriteInPlace(later + "/clock-offset", "10800");
  EXPECT_EQ(OffsetOf(*watched), 10800);
}

}  // namespace
}  // namespace sarloop
