#include "common/client/client.h"

#include <grpcpp/create_channel.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/security/identity.h"
#include "common/security/tls.h"

namespace sarloop::client {

v1::TlsConfig IdentityFiles(absl::string_view dir) {
  v1::TlsConfig tls;
  tls.set_cert_file(absl::StrCat(dir, "/cert.pem"));
  tls.set_key_file(absl::StrCat(dir, "/key.pem"));
  tls.set_ca_file(absl::StrCat(dir, "/ca.pem"));
  return tls;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& target,
                                                           const v1::TlsConfig& tls,
                                                           const grpc::ChannelArguments& args) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments with_keepalive = args;
  SetClientKeepalive(with_keepalive);
  return grpc::CreateCustomChannel(target, *credentials, with_keepalive);
}

void Prepare(grpc::ClientContext* context, const CallOptions& options) {
  if (options.deadline != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options.deadline));
  }
  if (!options.user.empty()) context->AddMetadata(kUserMetadataKey, options.user);
  if (options.wait_for_ready) context->set_wait_for_ready(true);
}

bool Transient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED || code == grpc::StatusCode::ABORTED;
}

grpc::Status CallWithRetry(const CallOptions& options, absl::Duration patience,
                           const std::function<grpc::Status(grpc::ClientContext*)>& call,
                           grpc::StatusCode also_retry) {
  auto backoff = std::chrono::milliseconds(50);
  const absl::Time give_up = absl::Now() + patience;
  for (;;) {
    grpc::ClientContext context;
    Prepare(&context, options);
    grpc::Status status = call(&context);
    const bool again = Transient(status.error_code()) ||
                       (also_retry != grpc::StatusCode::OK && status.error_code() == also_retry);
    if (status.ok() || !again || absl::Now() >= give_up) return status;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace sarloop::client
