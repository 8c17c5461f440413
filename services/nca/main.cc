// sarloop-nca: the NCA aggregator. Receives every lifecycle event into the national register and
// answers NCA analysts' queries.

#include "common/server/server.h"
#include "common/version/version.h"
#include "services/nca/dashboard.h"
#include "services/nca/register.h"
#include "services/nca/service.h"

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-nca",
          sarloop::ServiceUsage(
              "sarloop-nca",
              "The NCA register: every referral's events from the chain, aggregates, the overdue "
              "list, the STA report and the analysts' dashboard."))) {
    return 0;
  }
  return sarloop::RunService(
      argc, argv, sarloop::v1::SERVICE_KIND_NCA,
      sarloop::nca::RegisterMigrations().first(sarloop::nca::kRegisterMigrationsBeforeAudit),
      sarloop::nca::Build,
      sarloop::nca::RegisterMigrations().subspan(sarloop::nca::kRegisterMigrationsBeforeAudit));
}
