// TLS credentials from a TlsConfig: mutual TLS on every connection, certificates watched on disk
// so a reissued certificate is used without restart. There is no plaintext option.
#ifndef SARLOOP_COMMON_SECURITY_TLS_H_
#define SARLOOP_COMMON_SECURITY_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

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

// The single URI SAN of `cert` (a sarloop identity is exactly one); empty when it has none or
// several.
std::string CertificateUri(X509* cert);

// The single URI SAN of the first certificate in the PEM file at `path`. INVALID_ARGUMENT naming
// tls.cert_file when it cannot be read or has no single URI SAN.
absl::StatusOr<std::string> CertificateFileUri(const std::string& path);

// Connection liveness. A connection whose packets are silently dropped (a partition, a firewall
// or NAT that forgot it) looks open until TCP gives up, some 15 minutes: deliveries would time
// out on it one by one and a watch would wait for ever. A client pings an idle connection every
// 20 s and drops it when no answer comes within 10 s; a server pings its clients every minute
// (a watch whose client vanished frees its place), and takes its clients' pings.
void SetClientKeepalive(grpc::ChannelArguments& args);
void SetServerKeepalive(grpc::ServerBuilder& builder);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SECURITY_TLS_H_
