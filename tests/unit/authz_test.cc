#include "common/security/authz.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"
#include "common/security/identity.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/linkage.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "sarloop/v1/witness.grpc.pb.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::sarloop::testing::IsOk;
using ::sarloop::testing::StatusIs;
using ::testing::HasSubstr;

// What the issue and DESIGN §5 ask, stated independently of the policy file: the policy must
// agree with this for every identity kind and every RPC of every service.
bool Expected(const PolicyScope& scope, const Identity& id, const std::string& service,
              const std::string& method) {
  const bool client = !id.IsService() && id.kind != "analyst";
  auto own_client = [&](const char* kind) {
    return id.kind == kind && client && (id.kind == std::string("ukfiu") || id.org == scope.code);
  };
  if (service == "grpc.health.v1.Health" || service == "grpc.reflection.v1.ServerReflection" ||
      service == "grpc.reflection.v1alpha.ServerReflection") {
    return true;
  }
  // Audit heads: the NCA witnesses every other service, UKFIU the NCA; analysts read heads at the
  // NCA. (Which head a caller may read is the service's check: its own.)
  if (service == "sarloop.v1.AuditWitness") {
    if (scope.kind == v1::SERVICE_KIND_NCA) {
      if (method == "GetAuditHead" && id.kind == "analyst") return true;
      return id.IsService() && id.kind != "nca";
    }
    if (scope.kind == v1::SERVICE_KIND_UKFIU) return id.IsService() && id.kind == "nca";
    return false;
  }
  switch (scope.kind) {
    case v1::SERVICE_KIND_UKFIU:
      if (service == "sarloop.v1.Ukfiu" || service == "sarloop.v1.Ops") return own_client("ukfiu");
      if (service == "sarloop.v1.Delivery") {
        return id.IsService() && (id.kind == "force" || id.kind == "racu");
      }
      return false;
    case v1::SERVICE_KIND_FORCE:
      if (service == "sarloop.v1.Force" || service == "sarloop.v1.Ops") return own_client("force");
      if (service == "sarloop.v1.Delivery") {
        return id.IsService() &&
               (id.kind == "ukfiu" ||
                (id.kind == "racu" &&
                 std::find(scope.units.begin(), scope.units.end(), id.org) != scope.units.end()));
      }
      return false;
    case v1::SERVICE_KIND_RACU:
      if (service == "sarloop.v1.Racu" || service == "sarloop.v1.Ops") return own_client("racu");
      if (service == "sarloop.v1.Delivery") {
        return id.IsService() &&
               (id.kind == "ukfiu" ||
                (id.kind == "force" && std::find(scope.served.begin(), scope.served.end(),
                                                 id.org) != scope.served.end()));
      }
      return false;
    case v1::SERVICE_KIND_LINKAGE: {
      // Forces' systems upload and judge (the service checks the hit is their own); UKFIU's
      // screen and read; analysts read the statistics and, since the NCA runs the service, its
      // Ops counters, as they do the register's; ukfiu's outbox delivers screens.
      const bool force_client = id.kind == "force" && client;
      const bool ukfiu_client = id.kind == "ukfiu" && client;
      if (service == "sarloop.v1.Delivery") return id.IsService() && id.kind == "ukfiu";
      if (service == "sarloop.v1.Ops") return id.kind == "analyst";
      if (service != "sarloop.v1.Linkage") return false;
      if (method == "BeginIndexUpload" || method == "UploadIndexRecords" ||
          method == "CommitIndexUpload" || method == "RecordLinkFeedback") {
        return force_client;
      }
      if (method == "GetHit") return force_client || ukfiu_client;
      if (method == "ScreenSubjects" || method == "ListHits") return ukfiu_client;
      if (method == "GetLinkageStats") return ukfiu_client || id.kind == "analyst";
      ADD_FAILURE() << "no expectation for " << service << "/" << method;
      return false;
    }
    case v1::SERVICE_KIND_NCA:
      // A force's client systems and its police and crime commissioner sign in to their own
      // organisation's dashboard view.
      if (service == "sarloop.v1.Nca" && method == "CreateDashboardSession") {
        return id.kind == "analyst" || (id.kind == "force" && client) ||
               (id.kind == "oversight" && id.system == "pcc");
      }
      if (service == "sarloop.v1.Nca" || service == "sarloop.v1.Ops") return id.kind == "analyst";
      if (service == "sarloop.v1.Oversight") return id.kind == "oversight";
      if (service == "sarloop.v1.RegisterFeed") {
        return id.IsService() && (id.kind == "ukfiu" || id.kind == "force" || id.kind == "racu");
      }
      return false;
    default:
      ADD_FAILURE() << "no expectation for service " << service;
      return false;
  }
}

// Every RPC of every sarloop service, from the descriptors: a new RPC cannot escape the matrix.
std::vector<std::pair<std::string, std::string>> AllMethods() {
  std::vector<std::pair<std::string, std::string>> out;
  // One message from each service file: naming it links the file's descriptors in.
  for (const google::protobuf::FileDescriptor* fd :
       {v1::SubmitSarRequest::descriptor()->file(), v1::ListInboxRequest::descriptor()->file(),
        v1::ListHandoversRequest::descriptor()->file(), v1::GetSummaryRequest::descriptor()->file(),
        v1::DeliverRequest::descriptor()->file(), v1::ScreenSubjectsRequest::descriptor()->file(),
        v1::RecordAuditHeadRequest::descriptor()->file()}) {
    for (int s = 0; s < fd->service_count(); ++s) {
      for (int m = 0; m < fd->service(s)->method_count(); ++m) {
        out.emplace_back(fd->service(s)->full_name(), fd->service(s)->method(m)->name());
      }
    }
  }
  out.emplace_back("grpc.health.v1.Health", "Check");
  out.emplace_back("grpc.health.v1.Health", "Watch");
  out.emplace_back("grpc.reflection.v1.ServerReflection", "ServerReflectionInfo");
  out.emplace_back("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo");
  return out;
}

const char* kIdentities[] = {
    "spiffe://sarloop/ukfiu",
    "spiffe://sarloop/ukfiu/intake",
    "spiffe://sarloop/nca",
    "spiffe://sarloop/nca/dashboard",
    "spiffe://sarloop/force/NFK",
    "spiffe://sarloop/force/NFK/psd",
    "spiffe://sarloop/force/SFK",
    "spiffe://sarloop/force/SFK/psd",
    "spiffe://sarloop/force/MPS",
    "spiffe://sarloop/force/MPS/psd",
    "spiffe://sarloop/force/BF",
    "spiffe://sarloop/racu/ERSOU",
    "spiffe://sarloop/racu/ERSOU/cases",
    "spiffe://sarloop/racu/NCAACU",
    "spiffe://sarloop/racu/NCAACU/cases",
    "spiffe://sarloop/analyst/alice",
    "spiffe://sarloop/oversight/NFK/pcc",
    "spiffe://sarloop/oversight/SFK/dcc",
    "spiffe://sarloop/oversight/NCA/senior-manager",
    "spiffe://sarloop/linkage",
    "spiffe://sarloop/linkage/ops",
    "spiffe://sarloop/monitor/prometheus",
};

TEST(AuthzPolicy, BuiltInPolicyMatchesTheIdentityByRpcMatrix) {
  const std::vector<PolicyScope> scopes = {
      {v1::SERVICE_KIND_UKFIU, "UKFIU", {}, {}},
      {v1::SERVICE_KIND_NCA, "NCA", {}, {}},
      {v1::SERVICE_KIND_FORCE, "NFK", {"ERSOU", "NCAACU"}, {}},
      {v1::SERVICE_KIND_FORCE, "SFK", {"ERSOU"}, {}},
      {v1::SERVICE_KIND_FORCE, "MPS", {}, {}},
      {v1::SERVICE_KIND_FORCE, "BF", {"NCAACU"}, {}},
      {v1::SERVICE_KIND_RACU, "ERSOU", {}, {"NFK", "SFK"}},
      {v1::SERVICE_KIND_RACU, "NCAACU", {}, {"BF", "NFK"}},
      {v1::SERVICE_KIND_LINKAGE, "LINKAGE", {}, {}},
  };
  const auto methods = AllMethods();
  ASSERT_GE(methods.size(), 25u);
  int checked = 0, allowed = 0;
  for (const PolicyScope& scope : scopes) {
    ASSERT_OK_AND_ASSIGN(Policy policy, Policy::Parse(Policy::BuiltInText(), scope));
    for (const char* uri : kIdentities) {
      ASSERT_OK_AND_ASSIGN(Identity id, ParseIdentity(uri));
      for (const auto& [service, method] : methods) {
        const bool want = Expected(scope, id, service, method);
        const std::string full = absl::StrCat("/", service, "/", method);
        EXPECT_EQ(policy.Allows(uri, full), want)
            << uri << " -> " << full << " on " << v1::ServiceKind_Name(scope.kind) << " "
            << scope.code;
        ++checked;
        allowed += want;
      }
    }
  }
  // The matrix's size, for the record: every scope x identity x RPC.
  RecordProperty("checked", checked);
  RecordProperty("allowed", allowed);
  std::cout << "authz matrix: " << checked << " identity x RPC x instance cases, " << allowed
            << " allowed\n";
}

TEST(AuthzPolicy, UnknownMethodsAndIdentitiesAreRefused) {
  ASSERT_OK_AND_ASSIGN(Policy policy,
                       Policy::Parse(Policy::BuiltInText(), {v1::SERVICE_KIND_NCA, "NCA", {}, {}}));
  EXPECT_FALSE(policy.Allows("spiffe://sarloop/analyst/alice", "/sarloop.v1.Nca2/GetSummary"));
  EXPECT_FALSE(policy.Allows("spiffe://sarloop/analyst/alice", ""));
  EXPECT_FALSE(policy.Allows("spiffe://other/analyst/alice", "/sarloop.v1.Nca/GetSummary"));
  EXPECT_TRUE(policy.Allows("spiffe://sarloop/analyst/alice", "/sarloop.v1.Nca/GetSummary"));
}

TEST(AuthzPolicy, MalformedRulesAreRefusedNamingTheRule) {
  PolicyScope scope{v1::SERVICE_KIND_NCA, "NCA", {}, {}};
  EXPECT_THAT(
      Policy::Parse("rules { methods: \"Nca/*\" identities: \"spiffe://sarloop/**\" }", scope),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rules[0].methods")));
  EXPECT_THAT(Policy::Parse("rules { methods: \"/a.B/*\" identities: \"*\" }", scope),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rules[0].identities")));
  EXPECT_THAT(Policy::Parse("rules { methods: \"/a.B/*\" }", scope),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rules[0]")));
  EXPECT_FALSE(Policy::Parse("not a policy {", scope).ok());
}

}  // namespace
}  // namespace sarloop
