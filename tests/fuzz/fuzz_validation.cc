// Fuzz target: the request validators. The input is parsed as each request message the services
// validate and every validator that request meets is called, as the services call them (same field
// prefixes). Besides not crashing, hanging or leaking, every refusal must be what the API promises:
// INVALID_ARGUMENT whose message starts with the field it names, and whose gRPC form carries the
// same field back as a google.rpc.BadRequest (ToGrpcStatus, then FromGrpcStatus).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "common/base/status.h"
#include "common/referral/delivery_service.h"
#include "common/referral/outcomes.h"
#include "common/referral/validation.h"
#include "common/rpc/request_checks.h"
#include "sarloop/v1/delivery.pb.h"
#include "sarloop/v1/force.pb.h"
#include "sarloop/v1/nca.pb.h"
#include "sarloop/v1/racu.pb.h"
#include "sarloop/v1/ukfiu.pb.h"
#include "tests/fuzz/fuzz_support.h"

namespace sarloop {
namespace {

using fuzz::Fail;

void ExpectOkOrFieldError(absl::string_view what, const absl::Status& status) {
  if (status.ok()) return;
  const std::string field = FieldOf(status);
  if (status.code() != absl::StatusCode::kInvalidArgument || field.empty() ||
      !absl::StartsWith(status.message(), field)) {
    Fail(absl::StrCat(what, " refused without naming a field: ", status.ToString()));
  }
  const absl::Status back = FromGrpcStatus(ToGrpcStatus(status));
  if (FieldOf(back) != field || back.message() != status.message()) {
    Fail(absl::StrCat(what, ": the field '", field, "' does not survive the RPC edge"));
  }
}

// What ukfiu, a force, a unit and the register check of their requests.
void CheckRequests(const std::string& bytes) {
  // What the RPC edge does to every request first.
  if (v1::SubmitSarRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("SubmitSar (edge)", CleanRequest(r));
  }
  if (v1::DeliverRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("Deliver (edge)", CleanRequest(r));
  }
  if (v1::SubmitSarRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("SubmitSar.request_id", CheckRequestId(r.request_id()));
    ExpectOkOrFieldError("SubmitSar.sar", CheckSar("sar", r.sar(), absl::Now()));
  }
  if (v1::ReferSarRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("ReferSar.request_id", CheckRequestId(r.request_id()));
    ExpectOkOrFieldError("ReferSar.thr", CheckThr("thr", r.thr()));
  }
  if (v1::RedirectReferralRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("RedirectReferral.referral_id",
                         CheckReferralId("referral_id", r.referral_id()));
    ExpectOkOrFieldError("RedirectReferral.thr", CheckThr("thr", r.thr()));
  }
  if (v1::CloseReferralRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("CloseReferral.request_id", CheckRequestId(r.request_id()));
    ExpectOkOrFieldError("CloseReferral.referral_id",
                         CheckReferralId("referral_id", r.referral_id()));
    ExpectOkOrFieldError("CloseReferral.outcome",
                         CheckOutcome("outcome", r.outcome(), absl::Now()));
  }
  if (v1::RecordOutcomeRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("RecordOutcome.request_id", CheckRequestId(r.request_id()));
    ExpectOkOrFieldError("RecordOutcome.referral_id",
                         CheckReferralId("referral_id", r.referral_id()));
    ExpectOkOrFieldError("RecordOutcome.outcome",
                         CheckOutcome("outcome", r.outcome(), absl::Now()));
  }
  if (v1::GetTimelineRequest r; r.ParseFromString(bytes)) {
    ExpectOkOrFieldError("GetTimeline.referral_id",
                         CheckReferralId("referral_id", r.referral_id()));
  }
  if (v1::ListRegisterRequest r; r.ParseFromString(bytes)) {
    const absl::StatusOr<Page> page = CheckPage(r.page_size(), r.page_token());
    ExpectOkOrFieldError("ListRegister.page", page.status());
    if (page.ok()) {
      if (page->limit < 1 || page->limit > 1000 || page->offset < 0) {
        Fail(absl::StrCat("CheckPage accepted limit ", page->limit, " offset ", page->offset));
      }
      // The token after a full page must be one CheckPage accepts again. (An offset this close
      // to the int64 limit cannot have a full page behind it: there are not that many rows.)
      if (page->offset <= std::numeric_limits<int64_t>::max() - page->limit) {
        const std::string next = NextPageToken(*page, page->limit);
        const absl::StatusOr<Page> again = CheckPage(r.page_size(), next);
        if (!again.ok() || again->offset != page->offset + page->limit) {
          Fail(absl::StrCat("next page token '", next, "' does not lead to the next page"));
        }
      }
      if (!NextPageToken(*page, page->limit - 1).empty()) Fail("token after a short page");
    }
  }
  if (v1::LifecycleEvent e; e.ParseFromString(bytes)) {
    ExpectOkOrFieldError("LifecycleEvent", CheckEvent(e));
  }
  if (v1::DeliverRequest r; r.ParseFromString(bytes)) {
    for (const v1::Envelope& env : r.envelopes()) {
      ExpectOkOrFieldError("Envelope.message_id", CheckText("message_id", env.message_id(), 100,
                                                            /*required=*/true));
      ExpectOkOrFieldError("Envelope.event", CheckEvent(env.event()));
    }
  }
}

}  // namespace
}  // namespace sarloop

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sarloop::CheckRequests(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
