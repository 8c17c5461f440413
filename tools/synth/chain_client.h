// A running local chain as its client tools see it (sarloop-local's DIR): which instances it has
// (DIR/topology), how to call them over mTLS with retries, and the clock offset file every service
// of the chain follows. Shared by sarloop-synth and sarloop-exercise.
#ifndef SARLOOP_TOOLS_SYNTH_CHAIN_CLIENT_H_
#define SARLOOP_TOOLS_SYNTH_CHAIN_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sarloop::synth {

// One instance of the chain (a line of DIR/topology, which sarloop-local writes at 'up').
struct Instance {
  std::string name;  // "force-NFK"
  std::string kind;  // ukfiu, nca, force, racu, linkage
  std::string code;  // "NFK"
  int port = 0;
  std::string identity;  // the client identity directory under DIR/pki its users call with
  std::string unit;      // force: the unit it hands over to ("" none)
  bool hands_over_on_receipt = false;
};

// Reads DIR/topology. NOT_FOUND when the chain has none (started by an older sarloop-local).
absl::StatusOr<std::map<std::string, Instance>> ReadTopology(const std::string& chain_dir);

// A channel to `port` on localhost with the client identity in `identity_dir` (cert.pem,
// key.pem, ca.pem).
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& identity_dir,
                                                           int port);

// "UNAVAILABLE: message".
std::string Describe(const grpc::Status& s);

// How long Call retries a transient failure (default 15 s).
void SetCallPatience(absl::Duration patience);

// Runs `call` as `user` with a 10 s deadline, waiting for the connection, and retries transient
// failures with the same request while the patience lasts (client::CallWithRetry), so a retried
// mutation takes effect once. `also_retry` names one more code to retry (e.g. NOT_FOUND while a
// delivery is on its way).
grpc::Status Call(const std::string& user,
                  const std::function<grpc::Status(grpc::ClientContext*)>& call,
                  grpc::StatusCode also_retry = grpc::StatusCode::OK);

// Why a file cannot be written at `path` (its directory is missing, not a directory, or not
// writable by us), or "" when it can: checked with the flags, so a run does not do all its work
// and then fail to leave its result.
std::string UnwritableFile(const std::string& path);

// A tool's command line: each "--name value" or "--name=value" goes to on_flag(name, value), and
// each switch named in `switches` to on_flag(name, ""). "-h", "--help" and a flag missing its
// value go to `usage` with the reason (it does not return).
void ParseCommandLine(int argc, char** argv, const std::vector<std::string>& switches,
                      const std::function<void(const std::string&)>& usage,
                      const std::function<void(const std::string&, const std::string&)>& on_flag);

// Reads `value` of `flag` into *out, or calls `usage` naming both.
template <typename T>
void ReadNumber(const std::string& flag, const std::string& value, T* out,
                const std::function<void(const std::string&)>& usage);

// Runs fn(i) for i in [0, n) on `threads` threads.
void ParallelFor(int n, int threads, const std::function<void(int)>& fn);

// The clock offset file every service of the chain reads (seconds added to the system clock).
class OffsetClock {
 public:
  explicit OffsetClock(std::string path);
  int64_t base() const { return base_; }
  int64_t current() const { return current_; }
  // The chain's time now.
  absl::Time Now() const;
  // Sets the offset to base + `seconds` (write then rename, so readers never see half a file).
  // Exits on failure: a chain whose clock cannot move cannot run a scenario.
  void Set(int64_t seconds);
  // Moves the chain's clock so that it reads `t` now.
  void SetNow(absl::Time t);

 private:
  const std::string path_;
  int64_t base_ = 0;
  int64_t current_ = 0;
};

template <typename T>
void ReadNumber(const std::string& flag, const std::string& value, T* out,
                const std::function<void(const std::string&)>& usage) {
  if (!absl::SimpleAtoi(value, out)) usage(flag + ": not a number: " + value);
}

}  // namespace sarloop::synth

#endif  // SARLOOP_TOOLS_SYNTH_CHAIN_CLIENT_H_
