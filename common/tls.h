// TLS credentials from a TlsConfig: mutual TLS on every connection, certificates watched on disk
// so a reissued certificate is used without restart. There is no plaintext option.
#ifndef SARLOOP_COMMON_TLS_H_
#define SARLOOP_COMMON_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "sarloop/v1/config.pb.h"

namespace sarloop {

// Server side: requires and verifies a client certificate from the configured CA.
// INVALID_ARGUMENT when a file is missing or unreadable.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const v1::TlsConfig& tls);

// Client side: presents this instance's certificate and verifies the server's against the CA
// and the target host name.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::TlsConfig& tls);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_TLS_H_
