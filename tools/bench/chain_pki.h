// The benchmarks' TLS identities: those of a development PKI (tools/pki/sarloop-pki dev DIR, as
// deploy/local/sarloop-local makes in CHAIN/pki).
#ifndef SARLOOP_TOOLS_BENCH_CHAIN_PKI_H_
#define SARLOOP_TOOLS_BENCH_CHAIN_PKI_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "common/security/tls.h"

namespace sarloop {

// Identity `name` (a directory under `pki` with cert.pem and key.pem), trusting the PKI's CA.
inline v1::TlsConfig PkiIdentity(const std::string& pki, const std::string& name) {
  v1::TlsConfig tls;
  tls.set_cert_file(absl::StrCat(pki, "/", name, "/cert.pem"));
  tls.set_key_file(absl::StrCat(pki, "/", name, "/key.pem"));
  tls.set_ca_file(absl::StrCat(pki, "/ca/ca.pem"));
  return tls;
}

}  // namespace sarloop

#endif  // SARLOOP_TOOLS_BENCH_CHAIN_PKI_H_
