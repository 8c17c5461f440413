#include "common/security/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>

#include <fstream>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

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

// gRPC 1.51 has no public setting for the minimum TLS version (it arrived in 1.60) and pins
// OpenSSL's minimum to 1.2 itself. TLS 1.3 only is had another way: the TLS 1.2 cipher list (which
// does not govern TLS 1.3's suites) is limited to one RSA-authenticated suite, and every sarloop
// certificate has an EC key (CheckEcKey), so no TLS 1.2 handshake can find a usable suite.
// Must run before gRPC first reads GRPC_SSL_CIPHER_SUITES, i.e. before any credentials exist.
void RestrictToTls13() {
  static std::once_flag once;
  std::call_once(once,
                 [] { ::setenv("GRPC_SSL_CIPHER_SUITES", "ECDHE-RSA-AES256-GCM-SHA384", 1); });
}

// The certificate's key must be EC for RestrictToTls13 to hold.
absl::Status CheckEcKey(const std::string& cert_file) {
  FILE* f = ::fopen(cert_file.c_str(), "r");
  if (f == nullptr)
    return FieldError("tls.cert_file", absl::StrCat("cannot read '", cert_file, "'"));
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  ::fclose(f);
  if (cert == nullptr) return FieldError("tls.cert_file", "is not a PEM certificate");
  EVP_PKEY* key = X509_get0_pubkey(cert);
  const bool ec = key != nullptr && EVP_PKEY_base_id(key) == EVP_PKEY_EC;
  X509_free(cert);
  if (!ec) {
    return FieldError("tls.cert_file", "must hold an EC (P-256) key; sarloop speaks TLS 1.3 only");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::experimental::CertificateProviderInterface>> Provider(
    const v1::TlsConfig& tls) {
  RestrictToTls13();
  RETURN_IF_ERROR(CheckReadable("tls.cert_file", tls.cert_file()));
  RETURN_IF_ERROR(CheckEcKey(tls.cert_file()));
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

std::string CertificateUri(X509* cert) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return "";
  std::vector<std::string> uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = n->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  return uris.size() == 1 ? uris[0] : "";
}

absl::StatusOr<std::string> CertificateFileUri(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return FieldError("tls.cert_file", absl::StrCat("cannot read '", path, "'"));
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (cert == nullptr) {
    return FieldError("tls.cert_file", absl::StrCat("'", path, "' holds no PEM certificate"));
  }
  std::string uri = CertificateUri(cert);
  X509_free(cert);
  if (uri.empty()) {
    return FieldError("tls.cert_file",
                      absl::StrCat("'", path, "' has no single URI SAN (a sarloop identity)"));
  }
  return uri;
}

void SetClientKeepalive(grpc::ChannelArguments& args) {
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
}

void SetServerKeepalive(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Clients ping every 20 s: anything down to 10 s is allowed, not answered with "too many pings".
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
}

}  // namespace sarloop
