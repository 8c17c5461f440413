// sarloop-racu: one per investigating unit (e.g. ERSOU; the NCA's ACU for Border Force). The
// unit's case system takes handovers here and records decisions and outcomes.

#include "common/server/server.h"
#include "common/version/version.h"
#include "services/racu/service.h"
#include "services/racu/unit.h"

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-racu",
          sarloop::ServiceUsage("sarloop-racu",
                                "A regional anti-corruption unit's node: handovers from the forces "
                                "it serves, joint investigations and their outcomes."))) {
    return 0;
  }
  return sarloop::RunService(argc, argv, sarloop::v1::SERVICE_KIND_RACU,
                             sarloop::racu::UnitMigrations(), sarloop::racu::Build,
                             sarloop::racu::UnitMigrationsAfterAudit());
}
