// Error handling inside sarloop: absl::Status / absl::StatusOr everywhere, one conversion to
// grpc::Status at the RPC edge (ToGrpcStatus). Abseil 20220623 has no RETURN_IF_ERROR or
// ASSIGN_OR_RETURN, so they are defined here, once.
#ifndef SARLOOP_COMMON_BASE_STATUS_H_
#define SARLOOP_COMMON_BASE_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// The domain of every google.rpc.ErrorInfo sarloop sends.
inline constexpr char kErrorDomain[] = "sarloop.v1";

// Collects the field errors of one request, so its caller hears of every bad field at once.
class Violations {
 public:
  // Keeps `status` when it is an error; one that already lists several fields adds each.
  void Add(const absl::Status& status);
  bool ok() const { return first_.ok(); }
  // OK; the one error as it was; or INVALID_ARGUMENT naming every field (in order), its message
  // each "field: description" joined by "; ". An error that names no field is returned alone.
  absl::Status status() const;

 private:
  absl::Status first_;
  // Field and description of each violation; empty when the first error named no field.
  std::vector<std::pair<std::string, std::string>> fields_;
  bool fieldless_ = false;
};

// FAILED_PRECONDITION because a referral is in `state` (e.g. "RECEIVED"): the client gets a
// google.rpc.PreconditionFailure (type "STATE", the referral as subject) and ErrorInfo reason
// WRONG_STATE with the state in its metadata.
absl::Status WrongState(absl::string_view state, absl::string_view message);
// NOT_FOUND for the resource of `type` ("referral", "sar", "thread") named `name`: the client
// gets a google.rpc.ResourceInfo.
absl::Status ResourceNotFound(absl::string_view type, absl::string_view name,
                              absl::string_view message);
// Sets the ErrorInfo reason of an error, where the code and details do not say it.
absl::Status WithReason(absl::Status status, absl::string_view reason);

// The ErrorInfo reason of an error: the one set by WithReason, else INVALID_FIELD (a field
// error), WRONG_STATE (WrongState), OVERLOADED (RESOURCE_EXHAUSTED), else the code's name
// (NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE, FAILED_PRECONDITION, ...). The API reference lists
// them.
std::string ReasonOf(const absl::Status& status);

// The single conversion from an internal status to the status a client sees. Every error keeps
// its message and also carries, as error_details (the grpc-status-details-bin trailer), a
// serialized google.rpc.Status{code, message, details}, the googleapis error model generic gRPC
// clients understand: an ErrorInfo {reason, domain, metadata} always; a BadRequest with every
// field violation; a PreconditionFailure naming the state; a ResourceInfo for what was not found;
// a RetryInfo with the delay to wait. `referral_id`, the call's, is the subject of a state error,
// the resource of a referral not found and in the ErrorInfo's metadata.
grpc::Status ToGrpcStatus(const absl::Status& status, absl::string_view referral_id = "");

// The reverse, for clients of other sarloop services. A BadRequest in error_details becomes the
// field payload again, so FieldOf names the field of a peer's INVALID_ARGUMENT; the details as
// sent are kept (DetailsOf).
absl::Status FromGrpcStatus(const grpc::Status& status);
// The serialized google.rpc.Status a peer sent with `status` (FromGrpcStatus), or empty.
std::string DetailsOf(const absl::Status& status);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_STATUS_H_
