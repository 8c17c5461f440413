#include "common/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace sarloop {
namespace {
constexpr char kFieldPayload[] = "type.sarloop/field";
constexpr char kRetryPayload[] = "type.sarloop/retry-after-ms";

// The description half of a FieldError's "field: description" message. A message that does not
// have that shape (a FieldError re-wrapped with more context) is the description as a whole.
std::string DescriptionOf(absl::string_view message, absl::string_view field) {
  const std::string prefix = absl::StrCat(field, ": ");
  if (absl::StartsWith(message, prefix)) message.remove_prefix(prefix.size());
  return std::string(message);
}
}  // namespace

absl::Status FieldError(absl::string_view field, absl::string_view description) {
  absl::Status status = absl::InvalidArgumentError(absl::StrCat(field, ": ", description));
  status.SetPayload(kFieldPayload, absl::Cord(field));
  return status;
}

absl::Status RetryLater(absl::StatusCode code, absl::string_view message,
                        absl::Duration retry_after) {
  absl::Status status(code, message);
  status.SetPayload(kRetryPayload,
                    absl::Cord(absl::StrCat(absl::ToInt64Milliseconds(retry_after))));
  return status;
}

absl::Duration RetryAfterOf(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryPayload);
  int64_t ms = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &ms)) return absl::ZeroDuration();
  return absl::Milliseconds(ms);
}

std::string FieldOf(const absl::Status& status) {
  auto payload = status.GetPayload(kFieldPayload);
  return payload ? std::string(*payload) : std::string();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  const std::string field = FieldOf(status);
  const absl::Duration retry_after = RetryAfterOf(status);
  if (field.empty() && retry_after == absl::ZeroDuration()) {
    return grpc::Status(code, std::move(message));
  }
  // The googleapis error model, so generic clients get the field or the retry delay without
  // parsing the message: gRPC sends error_details as the grpc-status-details-bin trailer.
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(status.code()));
  details.set_message(message);
  if (!field.empty()) {
    google::rpc::BadRequest bad_request;
    google::rpc::BadRequest::FieldViolation* violation = bad_request.add_field_violations();
    violation->set_field(field);
    violation->set_description(DescriptionOf(message, field));
    details.add_details()->PackFrom(bad_request);
  }
  if (retry_after > absl::ZeroDuration()) {
    google::rpc::RetryInfo retry;
    const int64_t ms = absl::ToInt64Milliseconds(retry_after);
    retry.mutable_retry_delay()->set_seconds(ms / 1000);
    retry.mutable_retry_delay()->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
    details.add_details()->PackFrom(retry);
  }
  return grpc::Status(code, std::move(message), details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  // Keep the field of a peer's BadRequest so FieldOf works on statuses from other services too.
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return out;
  }
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::BadRequest bad_request;
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&bad_request) && bad_request.field_violations_size() > 0) {
      out.SetPayload(kFieldPayload, absl::Cord(bad_request.field_violations(0).field()));
    } else if (any.UnpackTo(&retry)) {
      const int64_t ms =
          retry.retry_delay().seconds() * 1000 + retry.retry_delay().nanos() / 1000000;
      out.SetPayload(kRetryPayload, absl::Cord(absl::StrCat(ms)));
    }
  }
  return out;
}

}  // namespace sarloop
