#include "common/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace sarloop {
namespace {

// How often the watcher re-reads the files; a rotated certificate is live within this time.
constexpr unsigned int kRefreshSeconds = 5;

absl::Status CheckReadable(absl::string_view field, const std::string& path) {
  if (path.empty()) return FieldError(field, "is required (no plaintext listener exists)");
  std::ifstream in(path);
  if (!in) return FieldError(field, absl::StrCat("cannot read '", path, "'"));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::experimental::CertificateProviderInterface>> Provider(
    const v1::TlsConfig& tls) {
  RETURN_IF_ERROR(CheckReadable("tls.cert_file", tls.cert_file()));
  RETURN_IF_ERROR(CheckReadable("tls.key_file", tls.key_file()));
  RETURN_IF_ERROR(CheckReadable("tls.ca_file", tls.ca_file()));
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file(), tls.cert_file(), tls.ca_file(), kRefreshSeconds);
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const v1::TlsConfig& tls) {
  ASSIGN_OR_RETURN(auto provider, Provider(tls));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!tls.crl_dir().empty()) options.set_crl_directory(tls.crl_dir());
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::TlsConfig& tls) {
  ASSIGN_OR_RETURN(auto provider, Provider(tls));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  if (!tls.crl_dir().empty()) options.set_crl_directory(tls.crl_dir());
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace sarloop
