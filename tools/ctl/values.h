// Parsers for option values and the names sarloopctl shows for enum values. Every parser returns
// a usage error (args.h) naming the option when the text is not acceptable, so bad input never
// reaches the server or crashes the tool.
#ifndef SARLOOP_TOOLS_CTL_VALUES_H_
#define SARLOOP_TOOLS_CTL_VALUES_H_

#include <google/protobuf/generated_enum_reflection.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::ctl {

// An enum value named without the enum's prefix, case-insensitively and with `-` for `_`:
// "under_research" or "Under-Research" for REFERRAL_STATE_UNDER_RESEARCH; the full name works
// too. The prefix is taken from the enum's zero value (FOO_UNSPECIFIED), which is never
// accepted. Unknown text: usage error listing the allowed names, read from the descriptor so the
// list always matches the proto.
absl::StatusOr<int> ParseEnumValue(const google::protobuf::EnumDescriptor* type,
                                   absl::string_view option, absl::string_view text);

template <typename E>
absl::StatusOr<E> ParseEnum(absl::string_view option, absl::string_view text) {
  absl::StatusOr<int> value =
      ParseEnumValue(google::protobuf::GetEnumDescriptor<E>(), option, text);
  if (!value.ok()) return value.status();
  return static_cast<E>(*value);
}

// The names ParseEnumValue accepts, lower case: "low, medium, high".
std::string AllowedNames(const google::protobuf::EnumDescriptor* type);

// A value's name without the enum's prefix ("FINAL_WRITTEN_WARNING"); "-" for the zero value and
// the number for a value this build does not know.
std::string EnumLabel(const google::protobuf::EnumDescriptor* type, int value);

template <typename E>
std::string EnumLabel(E value) {
  return EnumLabel(google::protobuf::GetEnumDescriptor<E>(), static_cast<int>(value));
}

// A decimal integer in [min, max].
absl::StatusOr<int64_t> ParseInteger(absl::string_view option, absl::string_view text, int64_t min,
                                     int64_t max);

// A positive number of seconds (fractions allowed), at most one day.
absl::StatusOr<absl::Duration> ParseSeconds(absl::string_view option, absl::string_view text);

// "YYYY-MM-DD" (midnight UTC) or RFC 3339 ("2024-05-01T09:30:00Z"). Impossible dates such as
// 2024-02-30 are refused rather than rolled over.
absl::StatusOr<google::protobuf::Timestamp> ParseTimestamp(absl::string_view option,
                                                           absl::string_view text);

// A --subject value: "Full Name|YYYY-MM-DD|ROLE|EMPLOYER|address". Only the name is required and
// trailing fields may be left off; empty fields stay unset. The address is everything after the
// fourth `|`, so it may contain `|` itself. ROLE is a SubjectRole name as for ParseEnum.
absl::StatusOr<v1::Subject> ParseSubject(absl::string_view text);

// An organisation or unit code. Codes are upper case in organisations.csv, so any case is
// accepted and sent upper case.
std::string OrgCode(absl::string_view text);

}  // namespace sarloop::ctl

#endif  // SARLOOP_TOOLS_CTL_VALUES_H_
