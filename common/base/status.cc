#include "common/base/status.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace sarloop {
namespace {
constexpr char kFieldPayload[] = "type.sarloop/field";
constexpr char kRetryPayload[] = "type.sarloop/retry-after-ms";
// A serialized google.rpc.BadRequest naming several fields (Violations).
constexpr char kViolationsPayload[] = "type.sarloop/violations";
constexpr char kStatePayload[] = "type.sarloop/state";
// "type/name" of a resource not found.
constexpr char kResourcePayload[] = "type.sarloop/resource";
constexpr char kReasonPayload[] = "type.sarloop/reason";
constexpr char kDetailsPayload[] = "type.sarloop/details";

std::string Payload(const absl::Status& status, absl::string_view url) {
  auto payload = status.GetPayload(url);
  return payload ? std::string(*payload) : std::string();
}

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

void Violations::Add(const absl::Status& status) {
  if (status.ok() || fieldless_) return;
  if (first_.ok()) first_ = status;
  google::rpc::BadRequest several;
  const std::string listed = Payload(status, kViolationsPayload);
  const std::string field = FieldOf(status);
  if (!listed.empty() && several.ParseFromString(listed)) {
    for (const auto& v : several.field_violations())
      fields_.emplace_back(v.field(), v.description());
  } else if (!field.empty()) {
    fields_.emplace_back(field, DescriptionOf(status.message(), field));
  } else if (fields_.empty()) {
    fieldless_ = true;  // not a field error: it stands alone
  }
}

absl::Status Violations::status() const {
  if (first_.ok() || fieldless_ || fields_.size() <= 1) return first_;
  google::rpc::BadRequest bad_request;
  std::vector<std::string> parts;
  for (const auto& [field, description] : fields_) {
    auto* v = bad_request.add_field_violations();
    v->set_field(field);
    v->set_description(description);
    parts.push_back(absl::StrCat(field, ": ", description));
  }
  absl::Status status = absl::InvalidArgumentError(absl::StrJoin(parts, "; "));
  status.SetPayload(kFieldPayload, absl::Cord(fields_[0].first));
  status.SetPayload(kViolationsPayload, absl::Cord(bad_request.SerializeAsString()));
  return status;
}

absl::Status WrongState(absl::string_view state, absl::string_view message) {
  absl::Status status = absl::FailedPreconditionError(message);
  status.SetPayload(kStatePayload, absl::Cord(state));
  return status;
}

absl::Status ResourceNotFound(absl::string_view type, absl::string_view name,
                              absl::string_view message) {
  absl::Status status = absl::NotFoundError(message);
  status.SetPayload(kResourcePayload, absl::Cord(absl::StrCat(type, "/", name)));
  return status;
}

absl::Status WithReason(absl::Status status, absl::string_view reason) {
  if (!status.ok()) status.SetPayload(kReasonPayload, absl::Cord(reason));
  return status;
}

std::string ReasonOf(const absl::Status& status) {
  if (status.ok()) return "";
  if (std::string reason = Payload(status, kReasonPayload); !reason.empty()) return reason;
  if (status.code() == absl::StatusCode::kInvalidArgument && !FieldOf(status).empty()) {
    return "INVALID_FIELD";
  }
  if (status.code() == absl::StatusCode::kFailedPrecondition &&
      !Payload(status, kStatePayload).empty()) {
    return "WRONG_STATE";
  }
  if (status.code() == absl::StatusCode::kResourceExhausted) return "OVERLOADED";
  std::string name = absl::StatusCodeToString(status.code());
  absl::AsciiStrToUpper(&name);
  return name;
}

grpc::Status ToGrpcStatus(const absl::Status& status, absl::string_view referral_id) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  const std::string field = FieldOf(status);
  const absl::Duration retry_after = RetryAfterOf(status);
  const std::string state = Payload(status, kStatePayload);
  const std::string resource = Payload(status, kResourcePayload);
  // The googleapis error model, so generic clients get the reason, the fields, the state, the
  // resource or the retry delay without parsing the message: gRPC sends error_details as the
  // grpc-status-details-bin trailer.
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(status.code()));
  details.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(ReasonOf(status));
  info.set_domain(kErrorDomain);
  auto& metadata = *info.mutable_metadata();
  if (!field.empty()) metadata["field"] = field;
  if (!state.empty()) metadata["state"] = state;
  if (!referral_id.empty()) metadata["referral_id"] = std::string(referral_id);
  if (!resource.empty()) metadata["resource"] = resource;
  if (retry_after > absl::ZeroDuration()) {
    metadata["retry_after_ms"] = absl::StrCat(absl::ToInt64Milliseconds(retry_after));
  }
  details.add_details()->PackFrom(info);
  if (!field.empty()) {
    google::rpc::BadRequest bad_request;
    const std::string listed = Payload(status, kViolationsPayload);
    if (listed.empty() || !bad_request.ParseFromString(listed)) {
      google::rpc::BadRequest::FieldViolation* violation = bad_request.add_field_violations();
      violation->set_field(field);
      violation->set_description(DescriptionOf(message, field));
    }
    details.add_details()->PackFrom(bad_request);
  }
  if (!state.empty()) {
    google::rpc::PreconditionFailure failure;
    auto* v = failure.add_violations();
    v->set_type("STATE");
    v->set_subject(referral_id.empty() ? "referral" : absl::StrCat("referral/", referral_id));
    v->set_description(absl::StrCat("the referral is ", state, ": ", message));
    details.add_details()->PackFrom(failure);
  }
  if (status.code() == absl::StatusCode::kNotFound) {
    google::rpc::ResourceInfo info;
    const size_t slash = resource.find('/');
    if (slash != std::string::npos) {
      info.set_resource_type(resource.substr(0, slash));
      info.set_resource_name(resource.substr(slash + 1));
    } else if (!referral_id.empty() && absl::StrContains(message, "referral")) {
      info.set_resource_type("referral");
      info.set_resource_name(std::string(referral_id));
    }
    info.set_description(message);
    if (!info.resource_type().empty()) details.add_details()->PackFrom(info);
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

std::string DetailsOf(const absl::Status& status) { return Payload(status, kDetailsPayload); }

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  // Keep the field of a peer's BadRequest so FieldOf works on statuses from other services too.
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return out;
  }
  out.SetPayload(kDetailsPayload, absl::Cord(status.error_details()));
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::BadRequest bad_request;
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&bad_request) && bad_request.field_violations_size() > 0) {
      out.SetPayload(kFieldPayload, absl::Cord(bad_request.field_violations(0).field()));
    } else if (any.UnpackTo(&retry)) {
      // A peer's number: clamped to a day before any arithmetic on it.
      const int64_t seconds = std::clamp<int64_t>(retry.retry_delay().seconds(), 0, 86400);
      const int64_t nanos = std::clamp<int64_t>(retry.retry_delay().nanos(), 0, 999'999'999);
      const int64_t ms = seconds * 1000 + nanos / 1000000;
      out.SetPayload(kRetryPayload, absl::Cord(absl::StrCat(ms)));
    }
  }
  return out;
}

}  // namespace sarloop
