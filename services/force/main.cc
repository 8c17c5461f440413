// sarloop-force: one per force or agency. The force's Professional Standards systems work their
// inbox of referrals here; events go to ukfiu and the NCA, handovers to the configured unit.

#include "common/server/server.h"
#include "common/version/version.h"
#include "services/force/desk.h"
#include "services/force/service.h"

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-force",
          sarloop::ServiceUsage(
              "sarloop-force",
              "A force's or agency's node: its Professional Standards inbox of UKFIU referrals, "
              "its decisions, handovers to its unit and feedback to UKFIU and the NCA."))) {
    return 0;
  }
  return sarloop::RunService(argc, argv, sarloop::v1::SERVICE_KIND_FORCE,
                             sarloop::force::DeskMigrations(), sarloop::force::Build,
                             sarloop::force::DeskMigrationsAfterAudit());
}
