// The authorisation gate every call passes: an AuthMetadataProcessor installed on each server's
// credentials, so gRPC consults it before any handler runs, for every method including health,
// reflection and delivery. It admits a call only when the caller's certificate carries exactly one
// sarloop identity and the policy (AuthzPolicy, proto/sarloop/v1/policy.proto) allows that
// identity the method. Resource checks (which referral, which producer) stay in the services.
//
// Thread-safety: Process may run on many threads at once; the policy is swapped atomically when
// its file changes.
#ifndef SARLOOP_COMMON_SECURITY_AUTHZ_H_
#define SARLOOP_COMMON_SECURITY_AUTHZ_H_

#include <grpcpp/security/auth_metadata_processor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/base/mutex.h"
#include "sarloop/v1/config.pb.h"
#include "sarloop/v1/policy.pb.h"

namespace sarloop {

// Who the policy is being compiled for.
struct PolicyScope {
  v1::ServiceKind kind = v1::SERVICE_KIND_UNSPECIFIED;
  std::string code;
  // The units a force may hand over to (none: it closes referrals itself).
  std::vector<std::string> units;
  // A unit's served forces.
  std::vector<std::string> served;
};

// A policy compiled for one instance: placeholders expanded, other kinds' rules dropped.
class Policy {
 public:
  // INVALID_ARGUMENT naming the rule when a method or identity pattern is malformed.
  static absl::StatusOr<Policy> Compile(const v1::AuthzPolicy& policy, const PolicyScope& scope);
  // Parses text proto, then compiles.
  static absl::StatusOr<Policy> Parse(const std::string& text, const PolicyScope& scope);
  // The policy built into the binary (deploy/policy/sarloop-policy.textproto).
  static const std::string& BuiltInText();

  // Whether `identity` (a URI) may call `method` ("/package.Service/Method").
  bool Allows(const std::string& identity, const std::string& method) const;

 private:
  struct Rule {
    std::string description;
    std::vector<std::string> methods;
    std::vector<std::string> identities;
  };
  std::vector<Rule> rules_;
};

// Called for each refusal (identity, or empty when unauthenticated; method; the refusal).
using RefusalSink = std::function<void(const std::string& identity, const std::string& method,
                                       const grpc::Status&)>;

class AuthzGate final : public grpc::AuthMetadataProcessor {
 public:
  // `policy_file` empty: the built-in policy, never reloaded. INVALID_ARGUMENT if the policy does
  // not load at start.
  static absl::StatusOr<std::shared_ptr<AuthzGate>> Create(std::string policy_file,
                                                           PolicyScope scope,
                                                           RefusalSink on_refusal);

  // Cheap and non-blocking: run on gRPC's thread.
  bool IsBlocking() const override { return false; }

  // Whether the current policy lets `identity` call `method`: for what is served beside gRPC
  // (the dashboard), which the gate itself never sees.
  bool Allows(const std::string& identity, const std::string& method);

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* response) override;

 private:
  AuthzGate(std::string policy_file, PolicyScope scope, RefusalSink on_refusal)
      : policy_file_(std::move(policy_file)),
        scope_(std::move(scope)),
        on_refusal_(std::move(on_refusal)) {}
  // The current policy, re-read when the file's modification time or size changed (checked at
  // most once a second).
  std::shared_ptr<const Policy> Current();
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string policy_file_;
  const PolicyScope scope_;
  const RefusalSink on_refusal_;
  Mutex mu_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mu_);
  int64_t last_check_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t file_stamp_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SECURITY_AUTHZ_H_
