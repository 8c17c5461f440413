// Error handling inside sarloop: absl::Status / absl::StatusOr everywhere, one conversion to
// grpc::Status at the RPC edge (ToGrpcStatus). Abseil 20220623 has no RETURN_IF_ERROR or
// ASSIGN_OR_RETURN, so they are defined here, once.
#ifndef SARLOOP_COMMON_STATUS_H_
#define SARLOOP_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#define SARLOOP_CONCAT_INNER_(a, b) a##b
#define SARLOOP_CONCAT_(a, b) SARLOOP_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status sarloop_status_ = (expr);           \
    if (!sarloop_status_.ok()) return sarloop_status_; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr())`: declares/assigns x or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(SARLOOP_CONCAT_(sarloop_statusor_, __LINE__), lhs, expr)

namespace sarloop {

// INVALID_ARGUMENT naming the offending field, e.g. FieldError("sar.narrative", "is required").
// The field path is kept as a payload so the RPC edge can report it structurally.
absl::Status FieldError(absl::string_view field, absl::string_view description);

// A transient refusal (UNAVAILABLE, RESOURCE_EXHAUSTED) that tells the client when to retry: the
// client sees a google.rpc.RetryInfo with `retry_after`.
absl::Status RetryLater(absl::StatusCode code, absl::string_view message,
                        absl::Duration retry_after);

// The retry hint of a RetryLater status, or zero.
absl::Duration RetryAfterOf(const absl::Status& status);

// The field path of a FieldError, or empty.
std::string FieldOf(const absl::Status& status);

// The single conversion from an internal status to the status a client sees. A FieldError keeps
// its message and also carries, as error_details (the grpc-status-details-bin trailer), a
// serialized google.rpc.Status{code, message, details: [Any(google.rpc.BadRequest{field_violations:
// [{field, description}]})]}, the googleapis error model generic gRPC clients understand.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The reverse, for clients of other sarloop services. A BadRequest in error_details becomes the
// field payload again, so FieldOf names the field of a peer's INVALID_ARGUMENT.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_STATUS_H_
