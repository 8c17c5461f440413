// sarloop-ukfiu: the UK Financial Intelligence Unit's service. SAR intake and referral decisions;
// runs the feedback clock on a timer.

#include "common/server/server.h"
#include "common/version/version.h"
#include "services/ukfiu/desk.h"
#include "services/ukfiu/service.h"

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-ukfiu",
          sarloop::ServiceUsage("sarloop-ukfiu",
                                "UKFIU's node: SAR intake, referrals to forces and agencies, "
                                "reminders, escalation and the conversation with them."))) {
    return 0;
  }
  return sarloop::RunService(argc, argv, sarloop::v1::SERVICE_KIND_UKFIU,
                             sarloop::ukfiu::DeskMigrations(), sarloop::ukfiu::Build,
                             sarloop::ukfiu::DeskMigrationsAfterAudit());
}
