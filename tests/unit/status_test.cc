// The RPC edge's conversion: a FieldError reaches clients as INVALID_ARGUMENT with its message and
// a google.rpc.Status carrying a google.rpc.BadRequest naming the field, and comes back through
// FromGrpcStatus with the field intact.
#include "common/base/status.h"

#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "sarloop/v1/errors.pb.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

// The details of a grpc::Status, decoded: fails the test when error_details is not a
// google.rpc.Status whose first detail is sarloop's ErrorInfo.
template <typename Detail>
std::vector<Detail> DetailsOfType(const grpc::Status& status, google::rpc::Status* rpc_status) {
  std::vector<Detail> out;
  EXPECT_TRUE(rpc_status->ParseFromString(status.error_details()));
  google::rpc::ErrorInfo info;
  EXPECT_TRUE(rpc_status->details_size() > 0 && rpc_status->details(0).UnpackTo(&info));
  EXPECT_EQ(info.domain(), "sarloop.v1");
  for (const google::protobuf::Any& any : rpc_status->details()) {
    Detail detail;
    if (any.UnpackTo(&detail)) out.push_back(detail);
  }
  return out;
}

std::vector<google::rpc::BadRequest::FieldViolation> FieldViolations(
    const grpc::Status& status, google::rpc::Status* rpc_status) {
  std::vector<google::rpc::BadRequest::FieldViolation> out;
  const auto bad = DetailsOfType<google::rpc::BadRequest>(status, rpc_status);
  EXPECT_EQ(bad.size(), 1u);
  for (const auto& b : bad) out.assign(b.field_violations().begin(), b.field_violations().end());
  return out;
}

std::string Reason(const grpc::Status& status) {
  google::rpc::Status rpc_status;
  const auto infos = DetailsOfType<google::rpc::ErrorInfo>(status, &rpc_status);
  return infos.empty() ? "" : infos[0].reason();
}

TEST(StatusTest, FieldErrorCarriesABadRequestNamingTheField) {
  const absl::Status error = FieldError("thr.rationale", "is required");
  const grpc::Status status = ToGrpcStatus(error);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "thr.rationale: is required");
  google::rpc::Status rpc_status;
  const auto violations = FieldViolations(status, &rpc_status);
  EXPECT_EQ(rpc_status.code(), static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(rpc_status.message(), "thr.rationale: is required");
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field(), "thr.rationale");
  EXPECT_EQ(violations[0].description(), "is required");
}

TEST(StatusTest, IndexedFieldPathsAreKeptVerbatim) {
  const grpc::Status status =
      ToGrpcStatus(FieldError("sar.subjects[0].full_name", "must be 1 to 200 characters"));
  google::rpc::Status rpc_status;
  const auto violations = FieldViolations(status, &rpc_status);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field(), "sar.subjects[0].full_name");
  EXPECT_EQ(violations[0].description(), "must be 1 to 200 characters");
}

TEST(StatusTest, EveryErrorCarriesAnErrorInfoWithAReasonTheApiReferenceLists) {
  const std::vector<std::pair<absl::Status, std::string>> cases = {
      {FieldError("thr.rationale", "is required"), "INVALID_FIELD"},
      {absl::InvalidArgumentError("bad batch"), "INVALID_ARGUMENT"},
      {WrongState("RECEIVED", "CLOSED_BY_FORCE is not allowed in state RECEIVED"), "WRONG_STATE"},
      {absl::FailedPreconditionError("the CRIMINAL track is still open"), "FAILED_PRECONDITION"},
      {ResourceNotFound("referral", "REF-1", "no such referral"), "NOT_FOUND"},
      {absl::PermissionDeniedError("no"), "PERMISSION_DENIED"},
      {RetryLater(absl::StatusCode::kResourceExhausted, "busy", absl::Seconds(1)), "OVERLOADED"},
      {absl::UnavailableError("disk full"), "UNAVAILABLE"},
      {absl::InternalError("bug"), "INTERNAL"},
      {absl::DataLossError("torn"), "DATA_LOSS"},
      {absl::DeadlineExceededError("slow"), "DEADLINE_EXCEEDED"},
      {absl::AlreadyExistsError("twice"), "ALREADY_EXISTS"},
      {WithReason(absl::FailedPreconditionError("x"), "WRONG_STATE"), "WRONG_STATE"}};
  const google::protobuf::EnumDescriptor* reasons = v1::ErrorReason_descriptor();
  for (const auto& [error, reason] : cases) {
    const grpc::Status status = ToGrpcStatus(error);
    EXPECT_EQ(static_cast<int>(status.error_code()), static_cast<int>(error.code()));
    EXPECT_EQ(status.error_message(), error.message());
    EXPECT_EQ(Reason(status), reason) << error;
    EXPECT_NE(reasons->FindValueByName(reason), nullptr) << reason << " is not in ErrorReason";
  }
  // Every code's reason is listed.
  for (int code = 1; code <= 16; ++code) {
    const absl::Status error(static_cast<absl::StatusCode>(code), "x");
    EXPECT_NE(reasons->FindValueByName(ReasonOf(error)), nullptr) << ReasonOf(error);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(StatusTest, ViolationsNameEveryFieldInOneBadRequest) {
  Violations v;
  EXPECT_TRUE(v.status().ok());
  v.Add(absl::OkStatus());
  v.Add(FieldError("sar.narrative", "is required"));
  Violations inner;
  inner.Add(FieldError("sar.subjects[0].full_name", "is required"));
  inner.Add(FieldError("sar.subjects[0].date_of_birth", "must be a date YYYY-MM-DD"));
  v.Add(inner.status());
  const absl::Status all = v.status();
  EXPECT_EQ(all.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(all), "sar.narrative");
  EXPECT_EQ(all.message(),
            "sar.narrative: is required; sar.subjects[0].full_name: is required; "
            "sar.subjects[0].date_of_birth: must be a date YYYY-MM-DD");
  google::rpc::Status rpc_status;
  const auto violations = FieldViolations(ToGrpcStatus(all), &rpc_status);
  ASSERT_EQ(violations.size(), 3u);
  EXPECT_EQ(violations[2].field(), "sar.subjects[0].date_of_birth");
  EXPECT_EQ(violations[2].description(), "must be a date YYYY-MM-DD");
  // One error alone is returned as it was; an error that names no field stands alone.
  Violations one;
  one.Add(FieldError("a", "b"));
  EXPECT_EQ(one.status(), FieldError("a", "b"));
  Violations fieldless;
  fieldless.Add(absl::UnavailableError("disk"));
  fieldless.Add(FieldError("a", "b"));
  EXPECT_EQ(fieldless.status().code(), absl::StatusCode::kUnavailable);
}

TEST(StatusTest, StateAndResourceErrorsNameWhatTheyAreAbout) {
  google::rpc::Status rpc_status;
  const grpc::Status state =
      ToGrpcStatus(WrongState("RECEIVED", "not now"), "REF-00000000000000aa");
  const auto failures = DetailsOfType<google::rpc::PreconditionFailure>(state, &rpc_status);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].violations(0).type(), "STATE");
  EXPECT_EQ(failures[0].violations(0).subject(), "referral/REF-00000000000000aa");
  const auto infos = DetailsOfType<google::rpc::ErrorInfo>(state, &rpc_status);
  EXPECT_EQ(infos[0].metadata().at("state"), "RECEIVED");
  EXPECT_EQ(infos[0].metadata().at("referral_id"), "REF-00000000000000aa");

  const grpc::Status missing =
      ToGrpcStatus(ResourceNotFound("thread", "RFI-1", "thread_id: no such thread"));
  const auto resources = DetailsOfType<google::rpc::ResourceInfo>(missing, &rpc_status);
  ASSERT_EQ(resources.size(), 1u);
  EXPECT_EQ(resources[0].resource_type(), "thread");
  EXPECT_EQ(resources[0].resource_name(), "RFI-1");
  // A referral not found, named by the call when the error does not name it.
  const auto by_call = DetailsOfType<google::rpc::ResourceInfo>(
      ToGrpcStatus(absl::NotFoundError("no such referral"), "REF-00000000000000bb"), &rpc_status);
  ASSERT_EQ(by_call.size(), 1u);
  EXPECT_EQ(by_call[0].resource_name(), "REF-00000000000000bb");
  // What a peer sent is kept whole for a client to print.
  EXPECT_EQ(DetailsOf(FromGrpcStatus(missing)), missing.error_details());
}

TEST(StatusTest, ARewrappedFieldErrorKeepsItsFieldAndWholeMessage) {
  absl::Status error = FieldError("outcome.closed_at", "is before opened_at");
  absl::Status wrapped(error.code(), absl::StrCat("closing REF-1: ", error.message()));
  wrapped.SetPayload("type.sarloop/field", *error.GetPayload("type.sarloop/field"));
  google::rpc::Status rpc_status;
  const auto violations = FieldViolations(ToGrpcStatus(wrapped), &rpc_status);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field(), "outcome.closed_at");
  EXPECT_EQ(violations[0].description(), "closing REF-1: outcome.closed_at: is before opened_at");
}

TEST(StatusTest, FromGrpcStatusRestoresTheField) {
  const absl::Status back = FromGrpcStatus(ToGrpcStatus(FieldError("referral_id", "malformed")));
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), "referral_id: malformed");
  EXPECT_EQ(FieldOf(back), "referral_id");

  EXPECT_EQ(FieldOf(FromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "x"))), "");
  // Details that are not a google.rpc.Status are ignored, not an error.
  const absl::Status garbage = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "x", std::string("\xff\xff\xff", 3)));
  EXPECT_EQ(garbage.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(garbage), "");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

// A peer's RetryInfo is its number: a delay of INT64_MAX seconds (signed overflow when turned
// into milliseconds) or out-of-range nanoseconds comes back as at most a day.
TEST(StatusTest, APeersRetryDelayIsClampedToADay) {
  for (const auto& [seconds, nanos] :
       std::vector<std::pair<int64_t, int32_t>>{{std::numeric_limits<int64_t>::max(), 0},
                                                {86'400, 999'999'999},
                                                {std::numeric_limits<int64_t>::min(), -5},
                                                {3, 2'000'000'000}}) {
    google::rpc::Status details;
    details.set_code(static_cast<int>(grpc::StatusCode::UNAVAILABLE));
    google::rpc::RetryInfo retry;
    retry.mutable_retry_delay()->set_seconds(seconds);
    retry.mutable_retry_delay()->set_nanos(nanos);
    details.add_details()->PackFrom(retry);
    const absl::Status back = FromGrpcStatus(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "later", details.SerializeAsString()));
    const absl::Duration after = RetryAfterOf(back);
    EXPECT_GE(after, absl::ZeroDuration()) << seconds;
    EXPECT_LE(after, absl::Hours(24) + absl::Seconds(1)) << seconds;
  }
}

}  // namespace
}  // namespace sarloop
