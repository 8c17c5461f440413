#include "tools/ctl/values.h"

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/base/ids.h"
#include "tools/ctl/args.h"

namespace sarloop::ctl {
namespace {

using google::protobuf::EnumDescriptor;

// google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

// The prefix shared by the enum's values, from its FOO_UNSPECIFIED zero value; empty when the
// enum does not follow that convention.
std::string Prefix(const EnumDescriptor* type) {
  const auto* zero = type->FindValueByNumber(0);
  if (zero == nullptr || !absl::EndsWith(zero->name(), "UNSPECIFIED")) return "";
  return zero->name().substr(0, zero->name().size() - std::string("UNSPECIFIED").size());
}

std::string Normalise(absl::string_view text) {
  return absl::StrReplaceAll(absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text)), {{"-", "_"}});
}

}  // namespace

absl::StatusOr<int> ParseEnumValue(const EnumDescriptor* type, absl::string_view option,
                                   absl::string_view text) {
  const std::string prefix = Prefix(type);
  const std::string wanted = Normalise(text);
  for (int i = 0; i < type->value_count(); ++i) {
    const auto* value = type->value(i);
    if (value->number() == 0) continue;
    if (wanted == value->name() || prefix + wanted == value->name()) return value->number();
  }
  return UsageError(
      absl::StrCat("unknown --", option, " '", text, "'; one of: ", AllowedNames(type)));
}

std::string AllowedNames(const EnumDescriptor* type) {
  const std::string prefix = Prefix(type);
  std::vector<std::string> names;
  for (int i = 0; i < type->value_count(); ++i) {
    const auto* value = type->value(i);
    if (value->number() == 0) continue;
    names.push_back(absl::AsciiStrToLower(absl::StripPrefix(value->name(), prefix)));
  }
  return absl::StrJoin(names, ", ");
}

std::string EnumLabel(const EnumDescriptor* type, int value) {
  if (value == 0) return "-";
  const auto* known = type->FindValueByNumber(value);
  if (known == nullptr) return absl::StrCat(value);
  return std::string(absl::StripPrefix(known->name(), Prefix(type)));
}

absl::StatusOr<int64_t> ParseInteger(absl::string_view option, absl::string_view text, int64_t min,
                                     int64_t max) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    // A limit set only by the field's type is noise to a reader; then name the lower bound alone.
    const std::string range = max >= std::numeric_limits<int32_t>::max()
                                  ? absl::StrCat("of at least ", min)
                                  : absl::StrCat("from ", min, " to ", max);
    return UsageError(
        absl::StrCat("--", option, " must be a whole number ", range, ", not '", text, "'"));
  }
  return value;
}

absl::StatusOr<absl::Duration> ParseSeconds(absl::string_view option, absl::string_view text) {
  double seconds = 0;
  if (!absl::SimpleAtod(text, &seconds) || !std::isfinite(seconds) || seconds <= 0 ||
      seconds > 86400) {
    return UsageError(absl::StrCat(
        "--", option, " must be a number of seconds above 0 and at most 86400, not '", text, "'"));
  }
  return absl::Seconds(seconds);
}

absl::StatusOr<google::protobuf::Timestamp> ParseTimestamp(absl::string_view option,
                                                           absl::string_view text) {
  const std::string input(absl::StripAsciiWhitespace(text));
  const bool date_only = input.size() == 10;
  const std::string format = date_only ? "%Y-%m-%d" : absl::RFC3339_full;
  absl::Time time;
  std::string error;
  bool ok = absl::ParseTime(format, input, absl::UTCTimeZone(), &time, &error);
  // absl normalises out-of-range fields (Feb 30 becomes Mar 1); a date must read back unchanged.
  if (ok && date_only) ok = absl::FormatTime(format, time, absl::UTCTimeZone()) == input;
  const int64_t seconds = ok ? absl::ToUnixSeconds(time) : 0;
  if (!ok || seconds < kMinTimestampSeconds || seconds > kMaxTimestampSeconds) {
    return UsageError(absl::StrCat("--", option, " must be a date YYYY-MM-DD or a time ",
                                   "YYYY-MM-DDTHH:MM:SSZ, not '", text, "'"));
  }
  return ToProto(time);
}

absl::StatusOr<v1::Subject> ParseSubject(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('|', 4));
  for (std::string& part : parts) part = std::string(absl::StripAsciiWhitespace(part));
  parts.resize(5);
  v1::Subject subject;
  if (parts[0].empty()) {
    return UsageError(absl::StrCat("--subject '", text,
                                   "' has no name; use \"Full Name|YYYY-MM-DD|ROLE|EMPLOYER|"
                                   "address\" (only the name is required)"));
  }
  subject.set_full_name(parts[0]);
  subject.set_date_of_birth(parts[1]);
  if (!parts[2].empty()) {
    absl::StatusOr<v1::SubjectRole> role = ParseEnum<v1::SubjectRole>("subject ROLE", parts[2]);
    if (!role.ok()) return role.status();
    subject.set_role(*role);
  }
  subject.set_employer_code(OrgCode(parts[3]));
  subject.set_address(parts[4]);
  return subject;
}

std::string OrgCode(absl::string_view text) {
  return absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
}

}  // namespace sarloop::ctl
