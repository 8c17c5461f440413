// Text safe to store and show (common/base/text.h), CSV cells safe to open (common/base/csv.h)
// and files written to survive a crash (common/base/files.h).
#include "common/base/text.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/base/csv.h"
#include "common/base/files.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

TEST(Text, CleanTextIsUTF8WithoutControls) {
  EXPECT_TRUE(IsCleanText("Zoë O'Brien, 12 Rue de l'Église"));
  EXPECT_TRUE(IsCleanText("two\nlines\tand a tab", /*multiline=*/true));
  EXPECT_FALSE(IsCleanText("two\nlines"));
  for (const std::string& bad :
       {std::string("a\0b", 3), std::string("\x7f"), std::string("\xC2\x85"),
        std::string("\xE2\x80\xA8"), std::string("\xE2\x80\xAE"), std::string("\xE2\x81\xA6"),
        std::string("\xff"), std::string("\xC3"), std::string("\xC0\xAF"),
        std::string("\xED\xA0\x80")}) {
    EXPECT_FALSE(IsCleanText(bad, /*multiline=*/true)) << Printable(bad);
  }
}

TEST(Text, PrintableEscapesWhatCouldActAndKeepsTheRest) {
  EXPECT_EQ(Printable("Zoë"), "Zoë");
  EXPECT_EQ(Printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(Printable("line\n2024-01-01 forged"), "line\\x0A2024-01-01 forged");
  EXPECT_EQ(Printable("over\rwrite"), "over\\x0Dwrite");
  EXPECT_EQ(Printable("\x1b[2J"), "\\x1B[2J");
  EXPECT_EQ(Printable("left\xE2\x80\xAE"
                      "right"),
            "left\\xE2\\x80\\xAEright");
  EXPECT_EQ(Printable("\xff\xfeok"), "\\xFF\\xFEok");
  EXPECT_EQ(Printable("cut \xE2\x80"), "cut \\xE2\\x80");
  // Whatever it was given, what comes back is clean: one line that acts on nothing.
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  EXPECT_TRUE(IsCleanText(Printable(every_byte)));
}

TEST(Csv, CellsThatCouldSplitOrRunAreQuotedOrNeutralised) {
  EXPECT_EQ(CsvCell("plain"), "plain");
  EXPECT_EQ(CsvCell("-12.5"), "-12.5");
  EXPECT_EQ(CsvCell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
  EXPECT_EQ(CsvCell("@SUM(A1)"), "'@SUM(A1)");
  // A semicolon or a tab separates fields in some locales and imports: the formula after one
  // must stay inside this cell.
  EXPECT_EQ(CsvCell("see file;=cmd|' /C calc'!A0"), "\"see file;=cmd|' /C calc'!A0\"");
  EXPECT_EQ(CsvCell("a\t=1+1"), "\"a\t=1+1\"");
  EXPECT_EQ(CsvValue("'=1+1"), "=1+1");
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Files, AReplacedFileHoldsTheOldContentsOrTheNewAndNothingBeside) {
  testing::TempDir dir;
  const std::string path = dir.File("cursor");
  ASSERT_THAT(ReplaceFileSynced(path, "first\n", 0600), testing::IsOk());
  ASSERT_THAT(ReplaceFileSynced(path, "second\n", 0600), testing::IsOk());
  EXPECT_EQ(Contents(path), "second\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A write that cannot be made leaves the file as it was, and says why.
  std::filesystem::create_directory(path + ".tmp");
  std::filesystem::create_directory(path + ".tmp/in-the-way");
  EXPECT_THAT(ReplaceFileSynced(path, "third\n", 0600),
              testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr(".tmp")));
  EXPECT_EQ(Contents(path), "second\n");
  EXPECT_THAT(WriteFileSynced(dir.File("no/such/dir/file"), "x", O_CREAT | O_TRUNC, 0600),
              testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("no/such")));
  ASSERT_THAT(WriteFileSynced(dir.File("log"), "a\n", O_CREAT | O_APPEND, 0644), testing::IsOk());
  ASSERT_THAT(WriteFileSynced(dir.File("log"), "b\n", O_CREAT | O_APPEND, 0644), testing::IsOk());
  EXPECT_EQ(Contents(dir.File("log")), "a\nb\n");
}

}  // namespace
}  // namespace sarloop
