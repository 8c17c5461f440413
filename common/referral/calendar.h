// Working days in England and Wales, for the statutory clocks that count them: the notice period
// of a defence against money laundering (DAML) request is 7 working days starting with the first
// working day after the disclosure (Proceeds of Crime Act 2002, s.335(5); a working day is not a
// weekend day, Christmas Day, Good Friday or a bank holiday in the part of the UK where the
// disclosure was made: s.339A and the Banking and Financial Dealings Act 1971).
//
// Bank holidays are computed by the Act's rules with their substitute days, and the one-off
// changes proclaimed since 2000 are listed (kProclaimed in calendar.cc), so any year works without
// a table to renew. Days are civil days in UTC: the project counts a disclosure made on a UK
// evening after midnight UTC on the same day it would in London only outside British Summer Time
// (stated in the README).
//
// Pure; no I/O. Thread-safe.
#ifndef SARLOOP_COMMON_REFERRAL_CALENDAR_H_
#define SARLOOP_COMMON_REFERRAL_CALENDAR_H_

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace sarloop {

// Easter Sunday of `year` (Gregorian).
absl::CivilDay EasterSunday(int year);

// Whether `day` is a bank holiday in England and Wales (Christmas Day and Good Friday included).
bool IsBankHolidayEnglandWales(absl::CivilDay day);

// Neither a Saturday, a Sunday nor a bank holiday in England and Wales.
bool IsWorkingDay(absl::CivilDay day);

// The end of the `n`th working day after the day `from` falls on (counting starts with the first
// working day after it): the start of the next day, UTC.
absl::Time EndOfWorkingDaysAfter(absl::Time from, int n);

// A DAML request's notice period: 7 working days.
inline constexpr int kDamlNoticeWorkingDays = 7;

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERRAL_CALENDAR_H_
