// What every request must be before a handler sees it, checked once at the RPC edge for every
// field of every message, so no handler can forget a field: text that is text, times that can be.
#ifndef SARLOOP_COMMON_RPC_REQUEST_CHECKS_H_
#define SARLOOP_COMMON_RPC_REQUEST_CHECKS_H_

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <memory>
#include <string_view>

#include "absl/status/status.h"

namespace sarloop {

// Walks every string and google.protobuf.Timestamp in `request`, however deeply nested, and
//  - refuses text that is not well-formed UTF-8;
//  - refuses control characters (C0, DEL, C1), the line and paragraph separators and the bidi
//    embedding, override and isolate controls that make text display as something else; line
//    breaks and tabs are allowed only in fields marked [(sarloop.v1.multiline) = true];
//  - rewrites text to Unicode NFC, so one name has one spelling at rest and in every comparison;
//  - refuses a timestamp whose nanos are outside 0..999,999,999 or whose time is outside
//    2000-01-01 .. 2100-01-01 (no sarloop record can be older or that far ahead).
// Each refusal is a FieldError naming the field path as the client sent it, e.g.
// "sar.subjects[1].full_name".
absl::Status CleanRequest(google::protobuf::Message& request);

// The same checks without the rewrite, for what a peer service sends: refuses what CleanRequest
// refuses, and takes text not in NFC as it is (the sender normalised it, or stored it before
// sarloop normalised text).
absl::Status CheckRequestText(const google::protobuf::Message& request);

// A request that arrived as bytes for `method` ("/sarloop.v1.Force/Close"), parsed into `request`
// (consuming `bytes`). INVALID_ARGUMENT when it is not a well-formed message of its type, naming
// the string field that is not UTF-8 when protobuf names it.
absl::Status ParseRequest(grpc::ByteBuffer& bytes, std::string_view method,
                          google::protobuf::Message* request);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_RPC_REQUEST_CHECKS_H_
