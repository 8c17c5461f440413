// The RPC edge's conversion: a FieldError reaches clients as INVALID_ARGUMENT with its message and
// a google.rpc.Status carrying a google.rpc.BadRequest naming the field, and comes back through
// FromGrpcStatus with the field intact.
#include "common/status.h"

#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

// The field violations a grpc::Status carries in error_details; fails the test when they do not
// decode as a google.rpc.Status with one BadRequest.
std::vector<google::rpc::BadRequest::FieldViolation> Violations(const grpc::Status& status,
                                                                google::rpc::Status* rpc_status) {
  std::vector<google::rpc::BadRequest::FieldViolation> out;
  EXPECT_TRUE(rpc_status->ParseFromString(status.error_details()));
  EXPECT_EQ(rpc_status->details_size(), 1);
  for (const google::protobuf::Any& any : rpc_status->details()) {
    EXPECT_EQ(any.type_url(), "type.googleapis.com/google.rpc.BadRequest");
    google::rpc::BadRequest bad_request;
    EXPECT_TRUE(any.UnpackTo(&bad_request));
    out.assign(bad_request.field_violations().begin(), bad_request.field_violations().end());
  }
  return out;
}

TEST(StatusTest, FieldErrorCarriesABadRequestNamingTheField) {
  const absl::Status error = FieldError("thr.rationale", "is required");
  const grpc::Status status = ToGrpcStatus(error);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "thr.rationale: is required");
  google::rpc::Status rpc_status;
  const auto violations = Violations(status, &rpc_status);
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
  const auto violations = Violations(status, &rpc_status);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field(), "sar.subjects[0].full_name");
  EXPECT_EQ(violations[0].description(), "must be 1 to 200 characters");
}

TEST(StatusTest, OtherErrorsCarryNoDetails) {
  for (const absl::Status& error :
       {absl::InvalidArgumentError("bad batch"), absl::FailedPreconditionError("state RECEIVED"),
        absl::PermissionDeniedError("no"), absl::UnavailableError("disk full")}) {
    const grpc::Status status = ToGrpcStatus(error);
    EXPECT_EQ(static_cast<int>(status.error_code()), static_cast<int>(error.code()));
    EXPECT_EQ(status.error_message(), error.message());
    EXPECT_TRUE(status.error_details().empty()) << error;
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(StatusTest, ARewrappedFieldErrorKeepsItsFieldAndWholeMessage) {
  absl::Status error = FieldError("outcome.closed_at", "is before opened_at");
  absl::Status wrapped(error.code(), absl::StrCat("closing REF-1: ", error.message()));
  wrapped.SetPayload("type.sarloop/field", *error.GetPayload("type.sarloop/field"));
  google::rpc::Status rpc_status;
  const auto violations = Violations(ToGrpcStatus(wrapped), &rpc_status);
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

}  // namespace
}  // namespace sarloop
