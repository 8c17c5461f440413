#include "common/security/authz.h"

#include <google/protobuf/text_format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/base/status.h"
#include "common/base/text.h"
#include "common/security/identity.h"

namespace sarloop {
namespace internal {
extern const char kPolicyText[];
}  // namespace internal

namespace {

bool MethodMatches(const std::string& pattern, const std::string& method) {
  if (absl::EndsWith(pattern, "/*")) {
    return absl::StartsWith(method, pattern.substr(0, pattern.size() - 1));
  }
  return pattern == method;
}

// Expands {code}, {unit} (to each of a force's units) and {served}; returns nothing when the
// rule names a {unit} and the instance has none.
std::vector<std::string> Expand(const std::string& pattern, const PolicyScope& scope) {
  std::string p = absl::StrReplaceAll(pattern, {{"{code}", scope.code}});
  if (absl::StrContains(p, "{unit}")) {
    std::vector<std::string> out;
    for (const std::string& u : scope.units) out.push_back(absl::StrReplaceAll(p, {{"{unit}", u}}));
    return out;
  }
  if (absl::StrContains(p, "{served}")) {
    std::vector<std::string> out;
    for (const std::string& f : scope.served)
      out.push_back(absl::StrReplaceAll(p, {{"{served}", f}}));
    return out;
  }
  return {p};
}

int64_t FileStamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec + st.st_size;
}

}  // namespace

const std::string& Policy::BuiltInText() {
  static const std::string* text = new std::string(internal::kPolicyText);
  return *text;
}

absl::StatusOr<Policy> Policy::Compile(const v1::AuthzPolicy& policy, const PolicyScope& scope) {
  Policy compiled;
  for (int i = 0; i < policy.rules_size(); ++i) {
    const v1::AuthzRule& rule = policy.rules(i);
    const std::string where = absl::StrCat("rules[", i, "]");
    if (rule.methods().empty() || rule.identities().empty()) {
      return FieldError(where, "needs at least one method and one identity");
    }
    if (!rule.kinds().empty() &&
        std::find(rule.kinds().begin(), rule.kinds().end(), scope.kind) == rule.kinds().end()) {
      continue;
    }
    Rule r;
    r.description = rule.description();
    for (const std::string& m : rule.methods()) {
      if (!absl::StartsWith(m, "/") || std::count(m.begin(), m.end(), '/') != 2) {
        return FieldError(
            absl::StrCat(where, ".methods"),
            absl::StrCat("'", m, "' is not /package.Service/Method or /package.Service/*"));
      }
      r.methods.push_back(m);
    }
    for (const std::string& id : rule.identities()) {
      if (!absl::StartsWith(id, "spiffe://sarloop/")) {
        return FieldError(absl::StrCat(where, ".identities"),
                          absl::StrCat("'", id, "' is not a spiffe://sarloop/ pattern"));
      }
      for (std::string& e : Expand(id, scope)) r.identities.push_back(std::move(e));
    }
    compiled.rules_.push_back(std::move(r));
  }
  return compiled;
}

absl::StatusOr<Policy> Policy::Parse(const std::string& text, const PolicyScope& scope) {
  v1::AuthzPolicy policy;
  if (!google::protobuf::TextFormat::ParseFromString(text, &policy)) {
    return absl::InvalidArgumentError("authz policy: not a valid text proto AuthzPolicy");
  }
  return Compile(policy, scope);
}

bool Policy::Allows(const std::string& identity, const std::string& method) const {
  for (const Rule& r : rules_) {
    bool method_ok = false;
    for (const std::string& m : r.methods) method_ok = method_ok || MethodMatches(m, method);
    if (!method_ok) continue;
    for (const std::string& id : r.identities) {
      if (MatchesPattern(id, identity)) return true;
    }
  }
  return false;
}

absl::StatusOr<std::shared_ptr<AuthzGate>> AuthzGate::Create(std::string policy_file,
                                                             PolicyScope scope,
                                                             RefusalSink on_refusal) {
  std::shared_ptr<AuthzGate> gate(
      new AuthzGate(std::move(policy_file), std::move(scope), std::move(on_refusal)));
  MutexLock lock(&gate->mu_);
  RETURN_IF_ERROR(gate->Load());
  return gate;
}

absl::Status AuthzGate::Load() {
  std::string text = Policy::BuiltInText();
  if (!policy_file_.empty()) {
    file_stamp_ = FileStamp(policy_file_);
    std::ifstream in(policy_file_);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read policy ", policy_file_));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  ASSIGN_OR_RETURN(Policy policy, Policy::Parse(text, scope_));
  policy_ = std::make_shared<const Policy>(std::move(policy));
  return absl::OkStatus();
}

bool AuthzGate::Allows(const std::string& identity, const std::string& method) {
  return Current()->Allows(identity, method);
}

std::shared_ptr<const Policy> AuthzGate::Current() {
  MutexLock lock(&mu_);
  if (policy_file_.empty()) return policy_;
  const int64_t now = absl::GetCurrentTimeNanos();
  if (now - last_check_ns_ >= 1000000000) {
    last_check_ns_ = now;
    if (FileStamp(policy_file_) != file_stamp_) {
      absl::Status s = Load();
      if (s.ok()) {
        spdlog::info("authz policy {} reloaded", policy_file_);
      } else {
        spdlog::error("authz policy {} not reloaded, keeping the previous one: {}", policy_file_,
                      s.ToString());
      }
    }
  }
  return policy_;
}

grpc::Status AuthzGate::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                OutputMetadata*, OutputMetadata*) {
  std::string method;
  auto path = auth_metadata.find(":path");
  if (path != auth_metadata.end()) method.assign(path->second.data(), path->second.size());
  // What a refusal names, logs and audits: the caller chooses the path, up to gRPC's header
  // limit, and every method served is far shorter.
  constexpr size_t kShown = 200;
  const std::string shown =
      method.size() <= kShown ? method : absl::StrCat(method.substr(0, kShown), "...");
  std::vector<grpc::string_ref> uris = context->FindPropertyValues("peer_uri");
  std::string identity;
  grpc::Status refusal;
  if (uris.size() != 1) {
    refusal = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                           absl::StrCat("the client certificate must carry exactly one URI SAN; it "
                                        "has ",
                                        uris.size()));
  } else {
    identity.assign(uris[0].data(), uris[0].size());
    if (absl::StatusOr<Identity> parsed = ParseIdentity(identity); !parsed.ok()) {
      // The parser's message says which rule the URI breaks (and quotes at most 100 bytes).
      refusal = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                             absl::StrCat("not a sarloop identity: ", parsed.status().message()));
    } else if (method.empty() || !Current()->Allows(identity, method)) {
      // Names the caller and method only: nothing about whether a resource exists.
      refusal = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                             absl::StrCat(identity, " may not call ", shown));
    } else {
      return grpc::Status::OK;
    }
  }
  // The path is the client's: one printable line, so it cannot forge another.
  spdlog::warn("refused {} to {}: {}", Printable(shown),
               identity.empty() ? "(no identity)" : Printable(identity),
               Printable(refusal.error_message()));
  if (on_refusal_) on_refusal_(identity, shown, refusal);
  return refusal;
}

}  // namespace sarloop
