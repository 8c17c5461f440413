// How a program reaches a sarloop service as a client: the TLS files of an identity, a channel
// that presents its certificate, and the context of each call (a deadline and the person acting).
// sarloopctl, the synthetic-load tools, the benchmarks and the tests all call through these, so
// a call is made one way. The services call each other through the outbox (common/messaging).
#ifndef SARLOOP_COMMON_CLIENT_CLIENT_H_
#define SARLOOP_COMMON_CLIENT_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sarloop/v1/config.pb.h"

namespace sarloop::client {

// The TLS files of an identity directory as sarloop-pki lays it out: DIR/cert.pem, DIR/key.pem
// and DIR/ca.pem (the CA that issued the services' certificates). Nothing is read here.
v1::TlsConfig IdentityFiles(absl::string_view dir);

// A channel to `target` ("host:port") presenting the certificate in `tls` and checking the
// server's against its CA and the target's host name. INVALID_ARGUMENT naming the file when one
// cannot be read. The channel connects on its first call.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(
    const std::string& target, const v1::TlsConfig& tls,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

// What every call carries.
struct CallOptions {
  // Counted from the moment the context is prepared; absl::InfiniteDuration() for none (a watch,
  // which runs until it is stopped).
  absl::Duration deadline = absl::Seconds(10);
  // The person acting, sent as x-sarloop-user; nothing is sent when empty (an analyst's or a
  // service's certificate names who acts; a client system's calls are refused without it).
  std::string user;
  // Wait for the channel to connect instead of failing at once while the service is down.
  bool wait_for_ready = false;
};

// Sets the deadline, the user and wait-for-ready on a fresh context.
void Prepare(grpc::ClientContext* context, const CallOptions& options);

// Whether a failed call is worth making again with the same request: the service was away,
// slow, busy, or aborted the attempt. A mutation carries a request_id, so a repeat takes effect
// once.
bool Transient(grpc::StatusCode code);

// Runs `call` with a fresh context prepared from `options` and makes it again, after a backoff
// from 50 ms doubling to 1 s, while it fails transiently (or with `also_retry`, e.g. NOT_FOUND
// while a delivery is on its way) and `patience` has not passed since the first attempt. Returns
// the last attempt's status.
grpc::Status CallWithRetry(const CallOptions& options, absl::Duration patience,
                           const std::function<grpc::Status(grpc::ClientContext*)>& call,
                           grpc::StatusCode also_retry = grpc::StatusCode::OK);

}  // namespace sarloop::client

#endif  // SARLOOP_COMMON_CLIENT_CLIENT_H_
