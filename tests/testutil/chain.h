// A whole sarloop chain of real processes on loopback with mTLS, for multi-process tests: the
// local launcher (deploy/local/sarloop-local) in a fresh directory on free ports.
#ifndef SARLOOP_TESTS_TESTUTIL_CHAIN_H_
#define SARLOOP_TESTS_TESTUTIL_CHAIN_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sarloop/v1/config.pb.h"
#include "tests/testutil/testutil.h"

// ASSERT_RPC_OK(stub->Method(...)): fails the test with the status code and message.
#define ASSERT_RPC_OK(expr)                                                \
  do {                                                                     \
    grpc::Status s_ = (expr);                                              \
    ASSERT_TRUE(s_.ok()) << s_.error_code() << ": " << s_.error_message(); \
  } while (0)
#define EXPECT_RPC_OK(expr)                                                \
  do {                                                                     \
    grpc::Status s_ = (expr);                                              \
    EXPECT_TRUE(s_.ok()) << s_.error_code() << ": " << s_.error_message(); \
  } while (0)

namespace sarloop::testing {

class LocalChain {
 public:
  // Starts every instance (ukfiu, nca, force-NFK/SFK/MPS/BF, racu-ERSOU/NCAACU) and waits until
  // each answers. Stops them all when destroyed.
  static absl::StatusOr<std::unique_ptr<LocalChain>> Up();
  ~LocalChain();

  // Stops or starts one instance by name (e.g. "force-NFK").
  absl::Status Stop(const std::string& instance);
  absl::Status Start(const std::string& instance);

  // A channel to `instance` authenticated as the dev PKI identity `identity` (e.g.
  // "force-NFK-psd", "ukfiu-intake", "analyst-alice").
  std::shared_ptr<grpc::Channel> Channel(const std::string& instance,
                                         const std::string& identity) const;

  // A channel to `instance` with explicit client TLS files and channel arguments, for callers
  // that are not a plain dev identity (a certificate from another CA, a target name override).
  // Each call makes a new channel, hence new connections and handshakes.
  std::shared_ptr<grpc::Channel> Channel(const std::string& instance, const v1::TlsConfig& tls,
                                         const grpc::ChannelArguments& args) const;

  // The TLS files of the dev PKI identity `identity` (DIR/pki/<identity>/{cert,key,ca}.pem).
  v1::TlsConfig Tls(const std::string& identity) const;

  // Runs tools/pki/sarloop-pki with `args` (passed through the shell, so DIR is explicit, e.g.
  // Pki(absl::StrCat("revoke ", chain->pki_dir(), " force-NFK-psd"))). INTERNAL with the
  // script's output when it fails.
  absl::Status Pki(const std::string& args) const;

  // "localhost:<port>" of `instance`, the address every service and client uses.
  std::string Target(const std::string& instance) const;

  // The log file of `instance` (stdout and stderr of the service, gRPC's own lines included).
  std::string LogFile(const std::string& instance) const;

  // Moves every service's clock: the offset from real time.
  void SetClockOffset(absl::Duration offset) const;

  const std::string& dir() const { return dir_; }
  // The dev PKI (sarloop-pki dev) the chain was started with.
  std::string pki_dir() const { return dir_ + "/pki"; }

 private:
  LocalChain(std::string dir, int base_port) : dir_(std::move(dir)), base_port_(base_port) {}
  int Port(const std::string& instance) const;
  absl::Status Launcher(const std::string& args) const;

  std::unique_ptr<TempDir> temp_;
  std::string dir_;
  int base_port_;
};

// Runs tools/pki/sarloop-pki with `args`, through the shell; INTERNAL with the script's output
// when it fails.
absl::Status RunPki(const std::string& args);

// A client context with a 30 s deadline (long enough for a loaded shared machine, short enough to
// end a hang) and the acting user named in metadata.
std::unique_ptr<grpc::ClientContext> Context(const std::string& user = "test-user");

// Polls `done` every 50 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(30));

}  // namespace sarloop::testing

#endif  // SARLOOP_TESTS_TESTUTIL_CHAIN_H_
