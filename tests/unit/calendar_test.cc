// Working days in England and Wales (common/referral/calendar.h), against the published lists.
#include "common/referral/calendar.h"

#include <vector>

#include "gtest/gtest.h"

namespace sarloop {
namespace {

using absl::CivilDay;

TEST(Calendar, EasterSundays) {
  EXPECT_EQ(EasterSunday(2000), CivilDay(2000, 4, 23));
  EXPECT_EQ(EasterSunday(2024), CivilDay(2024, 3, 31));
  EXPECT_EQ(EasterSunday(2025), CivilDay(2025, 4, 20));
  EXPECT_EQ(EasterSunday(2026), CivilDay(2026, 4, 5));
  EXPECT_EQ(EasterSunday(2027), CivilDay(2027, 3, 28));
  EXPECT_EQ(EasterSunday(2038), CivilDay(2038, 4, 25));
}

// Every bank holiday of each year as gov.uk lists them, and no other day.
TEST(Calendar, BankHolidaysAsPublished) {
  const std::vector<std::pair<int, std::vector<CivilDay>>> years = {
      {2020,
       {CivilDay(2020, 1, 1), CivilDay(2020, 4, 10), CivilDay(2020, 4, 13), CivilDay(2020, 5, 8),
        CivilDay(2020, 5, 25), CivilDay(2020, 8, 31), CivilDay(2020, 12, 25),
        CivilDay(2020, 12, 28)}},
      {2022,
       {CivilDay(2022, 1, 3), CivilDay(2022, 4, 15), CivilDay(2022, 4, 18), CivilDay(2022, 5, 2),
        CivilDay(2022, 6, 2), CivilDay(2022, 6, 3), CivilDay(2022, 8, 29), CivilDay(2022, 9, 19),
        CivilDay(2022, 12, 26), CivilDay(2022, 12, 27)}},
      {2023,
       {CivilDay(2023, 1, 2), CivilDay(2023, 4, 7), CivilDay(2023, 4, 10), CivilDay(2023, 5, 1),
        CivilDay(2023, 5, 8), CivilDay(2023, 5, 29), CivilDay(2023, 8, 28), CivilDay(2023, 12, 25),
        CivilDay(2023, 12, 26)}},
      {2026,
       {CivilDay(2026, 1, 1), CivilDay(2026, 4, 3), CivilDay(2026, 4, 6), CivilDay(2026, 5, 4),
        CivilDay(2026, 5, 25), CivilDay(2026, 8, 31), CivilDay(2026, 12, 25),
        CivilDay(2026, 12, 28)}},
      {2027,
       {CivilDay(2027, 1, 1), CivilDay(2027, 3, 26), CivilDay(2027, 3, 29), CivilDay(2027, 5, 3),
        CivilDay(2027, 5, 31), CivilDay(2027, 8, 30), CivilDay(2027, 12, 27),
        CivilDay(2027, 12, 28)}},
  };
  for (const auto& [year, holidays] : years) {
    std::vector<CivilDay> found;
    for (CivilDay d(year, 1, 1); d.year() == year; ++d) {
      if (IsBankHolidayEnglandWales(d)) found.push_back(d);
    }
    EXPECT_EQ(found, holidays) << year;
  }
}

TEST(Calendar, WeekendsAndHolidaysAreNotWorkingDays) {
  EXPECT_TRUE(IsWorkingDay(CivilDay(2026, 12, 3)));    // a Thursday
  EXPECT_FALSE(IsWorkingDay(CivilDay(2026, 12, 5)));   // a Saturday
  EXPECT_FALSE(IsWorkingDay(CivilDay(2026, 12, 28)));  // Boxing Day's substitute
}

// A DAML notice period of 7 working days starts with the first working day after the disclosure.
TEST(Calendar, TheNoticePeriodStepsOverEasterAndChristmas) {
  // Thursday 2 April 2026: Good Friday and Easter Monday do not count.
  EXPECT_EQ(EndOfWorkingDaysAfter(
                absl::FromCivil(absl::CivilSecond(2026, 4, 2, 15, 0, 0), absl::UTCTimeZone()),
                kDamlNoticeWorkingDays),
            absl::FromCivil(CivilDay(2026, 4, 16), absl::UTCTimeZone()));
  // Wednesday 23 December 2026: Christmas, its Monday substitute and New Year's Day do not count.
  EXPECT_EQ(EndOfWorkingDaysAfter(absl::FromCivil(CivilDay(2026, 12, 23), absl::UTCTimeZone()),
                                  kDamlNoticeWorkingDays),
            absl::FromCivil(CivilDay(2027, 1, 7), absl::UTCTimeZone()));
  // An ordinary week: Monday 7 December 2026 -> the end of Wednesday 16 December.
  EXPECT_EQ(EndOfWorkingDaysAfter(absl::FromCivil(CivilDay(2026, 12, 7), absl::UTCTimeZone()),
                                  kDamlNoticeWorkingDays),
            absl::FromCivil(CivilDay(2026, 12, 17), absl::UTCTimeZone()));
}

}  // namespace
}  // namespace sarloop
