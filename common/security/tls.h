// TLS credentials from a TlsConfig: mutual TLS on every connection, certificates watched on disk
// so a reissued certificate is used without restart. There is no plaintext option.
#ifndef SARLOOP_COMMON_SECURITY_TLS_H_
#define SARLOOP_COMMON_SECURITY_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
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

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SECURITY_TLS_H_
