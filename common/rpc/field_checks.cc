#include "common/rpc/field_checks.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace sarloop {

absl::Status CheckText(absl::string_view field, const std::string& value, size_t max_chars,
                       bool required) {
  if (required && absl::StripAsciiWhitespace(value).empty()) {
    return FieldError(field, "is required");
  }
  if (value.size() > max_chars) {
    return FieldError(field,
                      absl::StrCat("is ", value.size(), " bytes; at most ", max_chars, " allowed"));
  }
  return absl::OkStatus();
}

absl::Status CheckRequestId(const std::string& request_id) {
  return CheckText("request_id", request_id, 100, /*required=*/true);
}

namespace {
absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}
}  // namespace

absl::Status CheckNotInFuture(absl::string_view field, const google::protobuf::Timestamp& t,
                              absl::Time now) {
  if (now != absl::InfiniteFuture() && TimeOf(t) > now + kClockSkew) {
    return FieldError(field, absl::StrCat("is in the future (after ",
                                          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now + kClockSkew,
                                                           absl::UTCTimeZone()),
                                          ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckTextList(absl::string_view field,
                           const google::protobuf::RepeatedPtrField<std::string>& values,
                           int max_count, size_t max_chars) {
  if (values.size() > max_count) {
    return FieldError(
        field, absl::StrCat("has ", values.size(), " entries; at most ", max_count, " allowed"));
  }
  for (int i = 0; i < values.size(); ++i) {
    RETURN_IF_ERROR(CheckText(absl::StrCat(field, "[", i, "]"), values[i], max_chars, true));
  }
  return absl::OkStatus();
}

absl::StatusOr<Page> CheckPage(int32_t page_size, const std::string& page_token) {
  if (page_size < 0 || page_size > 1000) return FieldError("page_size", "must be 0 to 1000");
  Page page{page_size == 0 ? 100 : page_size, 0};
  if (!page_token.empty()) {
    // Tokens are offsets this service issued; anything past a trillion rows is forged (and would
    // overflow offset + limit).
    if (!absl::SimpleAtoi(page_token, &page.offset) || page.offset < 0 ||
        page.offset > 1'000'000'000'000) {
      return FieldError("page_token", "is not a token this service issued");
    }
  }
  return page;
}

std::string NextPageToken(const Page& page, size_t returned) {
  if (static_cast<int64_t>(returned) < page.limit) return "";
  return absl::StrCat(page.offset + page.limit);
}

}  // namespace sarloop
