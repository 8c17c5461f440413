// sarloop-linkage: screening SAR subjects against force personnel indexes for indirect links
// (issue 9). Run by the NCA's co-ordination function; holds encodings, never the key.

#include "common/server/server.h"
#include "common/version/version.h"
#include "services/linkage/desk.h"
#include "services/linkage/service.h"

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-linkage",
          sarloop::ServiceUsage(
              "sarloop-linkage",
              "The linkage service: screens referral subjects against the Bloom-filter encoded "
              "workforce indices the forces upload, for indirect links."))) {
    return 0;
  }
  return sarloop::RunService(argc, argv, sarloop::v1::SERVICE_KIND_LINKAGE,
                             sarloop::linkage::LinkageMigrations(), sarloop::linkage::Build,
                             sarloop::linkage::LinkageMigrationsAfterAudit());
}
