#include "common/referral/calendar.h"

#include <algorithm>
#include <array>

namespace sarloop {
namespace {

using absl::CivilDay;

// One-off changes to the bank holidays of England and Wales since 2000, by royal proclamation:
// a usual day moved to another, or a day added.
struct Proclaimed {
  bool moved;
  CivilDay from;  // the usual day that did not apply (moved only)
  CivilDay to;
};
constexpr Proclaimed kProclaimed[] = {
    {true, CivilDay(2002, 5, 27), CivilDay(2002, 6, 4)},  // spring bank holiday (Golden Jubilee)
    {false, CivilDay(), CivilDay(2002, 6, 3)},            // Golden Jubilee
    {false, CivilDay(), CivilDay(2011, 4, 29)},           // royal wedding
    {true, CivilDay(2012, 5, 28), CivilDay(2012, 6, 4)},  // spring bank holiday (Diamond Jubilee)
    {false, CivilDay(), CivilDay(2012, 6, 5)},            // Diamond Jubilee
    {true, CivilDay(2020, 5, 4), CivilDay(2020, 5, 8)},   // early May bank holiday (VE Day)
    {true, CivilDay(2022, 5, 30), CivilDay(2022, 6, 2)},  // spring bank holiday (Platinum Jubilee)
    {false, CivilDay(), CivilDay(2022, 6, 3)},            // Platinum Jubilee
    {false, CivilDay(), CivilDay(2022, 9, 19)},           // state funeral of Queen Elizabeth II
    {false, CivilDay(), CivilDay(2023, 5, 8)},            // coronation of King Charles III
};

bool IsWeekend(CivilDay d) {
  const absl::Weekday w = absl::GetWeekday(d);
  return w == absl::Weekday::saturday || w == absl::Weekday::sunday;
}

CivilDay FirstMonday(int year, int month) {
  CivilDay d(year, month, 1);
  while (absl::GetWeekday(d) != absl::Weekday::monday) ++d;
  return d;
}

CivilDay LastMonday(int year, int month) {
  CivilDay d = CivilDay(year, month + 1, 1) - 1;
  while (absl::GetWeekday(d) != absl::Weekday::monday) --d;
  return d;
}

// The days the rules give `year`, before proclamations.
std::array<CivilDay, 8> RuleDays(int year) {
  // New Year's Day, or the Monday after when it falls at a weekend.
  CivilDay new_year(year, 1, 1);
  while (IsWeekend(new_year)) ++new_year;
  // Christmas Day and Boxing Day, each moved to the next weekday not already taken.
  CivilDay christmas(year, 12, 25);
  CivilDay boxing(year, 12, 26);
  if (IsWeekend(christmas)) christmas = CivilDay(year, 12, 27);
  while (IsWeekend(christmas)) ++christmas;
  while (IsWeekend(boxing) || boxing == christmas) ++boxing;
  const CivilDay easter = EasterSunday(year);
  return {new_year,
          easter - 2,
          easter + 1,
          FirstMonday(year, 5),
          LastMonday(year, 5),
          LastMonday(year, 8),
          christmas,
          boxing};
}

}  // namespace

CivilDay EasterSunday(int year) {
  // The anonymous Gregorian algorithm (Meeus/Jones/Butcher).
  const int a = year % 19;
  const int b = year / 100;
  const int c = year % 100;
  const int d = b / 4;
  const int e = b % 4;
  const int f = (b + 8) / 25;
  const int g = (b - f + 1) / 3;
  const int h = (19 * a + b - d - g + 15) % 30;
  const int i = c / 4;
  const int k = c % 4;
  const int l = (32 + 2 * e + 2 * i - h - k) % 7;
  const int m = (a + 11 * h + 22 * l) / 451;
  const int month = (h + l - 7 * m + 114) / 31;
  const int day = (h + l - 7 * m + 114) % 31 + 1;
  return CivilDay(year, month, day);
}

bool IsBankHolidayEnglandWales(CivilDay day) {
  for (const Proclaimed& p : kProclaimed) {
    if (day == p.to) return true;
    if (p.moved && day == p.from) return false;
  }
  const std::array<CivilDay, 8> rules = RuleDays(static_cast<int>(day.year()));
  return std::find(rules.begin(), rules.end(), day) != rules.end();
}

bool IsWorkingDay(CivilDay day) { return !IsWeekend(day) && !IsBankHolidayEnglandWales(day); }

absl::Time EndOfWorkingDaysAfter(absl::Time from, int n) {
  CivilDay d = absl::ToCivilDay(from, absl::UTCTimeZone());
  for (int counted = 0; counted < n;) {
    ++d;
    if (IsWorkingDay(d)) ++counted;
  }
  return absl::FromCivil(d + 1, absl::UTCTimeZone());
}

}  // namespace sarloop
