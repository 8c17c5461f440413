// What one scan of UKFIU's feedback clock costs with many referrals open: a fresh ukfiu database
// (the service's own migrations, in a temporary directory) gets --open referrals through the desk,
// then the clock scans it --scans times while nothing is owed, and once more a month later, when
// every referral owes a reminder. It prints each figure on a line of its own.
//
//   sarloop-clock-bench [--open N] [--scans N]
//
// Run the binary of two builds one after the other to compare them: the figures are per scan.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/crypto.h"
#include "common/base/ids.h"
#include "common/reference/reference.h"
#include "common/server/server.h"
#include "common/version/version.h"
#include "services/ukfiu/desk.h"
#include "tools/bench/cpu_time.h"
#include "tools/bench/number_flag.h"

namespace sarloop {
namespace {

int Usage(const std::string& problem) {
  std::cerr << "sarloop-clock-bench: " << problem
            << "\nusage: sarloop-clock-bench [--open N] [--scans N]\n";
  return 2;
}

// A failure of the run itself (not of its arguments): said once, exit 1.
int Fail(const absl::Status& status) {
  std::cerr << "sarloop-clock-bench: " << status << "\n";
  return 1;
}

int Run(int open, int scans) {
  std::error_code made;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path(made) / NewId("sarloop-clock-bench-", 12);
  if (!made) std::filesystem::create_directories(dir, made);
  if (made) {
    return Fail(
        absl::UnavailableError(absl::StrCat("cannot create ", dir.string(), ": ", made.message())));
  }
  absl::StatusOr<std::shared_ptr<const Keyring>> keys =
      Keyring::FromKeys({std::string(Keyring::kKeySize, 'b')});
  if (!keys.ok()) return Fail(keys.status());
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(
      (dir / "ukfiu.db").string(),
      ServiceMigrations(ukfiu::DeskMigrations(), ukfiu::DeskMigrationsAfterAudit()), *keys);
  if (!db.ok()) return Fail(db.status());
  ManualClock clock(absl::FromUnixSeconds(1780000000));
  ukfiu::DeskOptions options;
  options.subject_key = std::string(32, 's');
  options.feedback.set_due_days(28);
  options.feedback.set_grace_days(28);
  options.feedback.set_ack_days(5);
  options.feedback.set_reminder_repeat_days(14);
  options.reachable = {"NFK", "SFK"};
  ukfiu::Desk desk(**db, clock, ReferenceData::BuiltIn(), options);
  Call call;
  call.actor.set_identity("spiffe://sarloop/ukfiu/intake");
  call.actor.set_user("clock.bench");
  call.scope = "bench";

  for (int i = 0; i < open; ++i) {
    v1::SubmitSarRequest submit;
    submit.set_request_id(absl::StrCat("sar-", i));
    v1::Sar& sar = *submit.mutable_sar();
    sar.set_reporter_sector("bank");
    sar.set_reporter_reference(absl::StrCat("CASE-", i));
    sar.set_narrative("Structured cash deposits below reporting thresholds.");
    sar.set_amount_pence(1250000);
    v1::Subject& s = *sar.add_subjects();
    s.set_full_name(absl::StrCat("Clock Person ", i));
    s.set_date_of_birth("1985-04-12");
    s.set_role(v1::SUBJECT_ROLE_OFFICER);
    s.set_employer_code(i % 2 ? "NFK" : "SFK");
    absl::StatusOr<v1::SubmitSarResponse> submitted = desk.SubmitSar(call, submit);
    if (!submitted.ok()) return Fail(submitted.status());
    v1::ReferSarRequest refer;
    refer.set_request_id(absl::StrCat("refer-", i));
    refer.set_sar_id(submitted->sar().sar_id());
    refer.set_organisation(i % 2 ? "NFK" : "SFK");
    v1::ThrAssessment& thr = *refer.mutable_thr();
    thr.set_threat(v1::THR_LEVEL_HIGH);
    thr.set_risk(v1::THR_LEVEL_MEDIUM);
    thr.set_harm(v1::THR_LEVEL_LOW);
    thr.set_rationale("Cash deposits inconsistent with salary.");
    absl::StatusOr<v1::ReferSarResponse> referred = desk.Refer(call, refer);
    if (!referred.ok()) return Fail(referred.status());
  }

  // Scans that owe nothing: the clock has not moved since the referrals were made.
  std::vector<double> wall_ms;
  double cpu_s = 0;
  const int64_t writes_before = (*db)->Stats().transactions;
  for (int i = 0; i < scans; ++i) {
    const double cpu0 = bench::OwnThreadCpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<v1::RunFeedbackClockResponse> r = desk.RunClock();
    wall_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cpu_s += bench::OwnThreadCpuSeconds() - cpu0;
    if (!r.ok()) return Fail(r.status());
  }
  const int64_t idle_writes = (*db)->Stats().transactions - writes_before;
  std::sort(wall_ms.begin(), wall_ms.end());

  // A month later every referral owes a reminder: the scan that sends them.
  clock.Advance(absl::Hours(24 * 30));
  const int64_t writes_due = (*db)->Stats().transactions;
  const int64_t commits_due = (*db)->Stats().commits;
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<v1::RunFeedbackClockResponse> due = desk.RunClock();
  const double due_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!due.ok()) return Fail(due.status());

  std::printf("open referrals: %d\n", open);
  std::printf("scans owing nothing: %d\n", scans);
  std::printf("scan owing nothing, wall ms p50: %.2f\n", wall_ms[wall_ms.size() / 2]);
  std::printf("scan owing nothing, wall ms max: %.2f\n", wall_ms.back());
  std::printf("scan owing nothing, CPU ms of the calling thread (mean): %.2f\n",
              cpu_s * 1000 / scans);
  std::printf("scan owing nothing, write transactions (mean): %.1f\n",
              static_cast<double>(idle_writes) / scans);
  std::printf("scan owing a reminder for each, wall ms: %.1f\n", due_ms);
  std::printf("scan owing a reminder for each, reminders sent: %d\n", due->reminders_sent());
  std::printf("scan owing a reminder for each, write transactions: %lld\n",
              static_cast<long long>((*db)->Stats().transactions - writes_due));
  std::printf("scan owing a reminder for each, commits: %lld\n",
              static_cast<long long>((*db)->Stats().commits - commits_due));
  db->reset();
  std::error_code removed;
  std::filesystem::remove_all(dir, removed);
  return 0;
}

}  // namespace
}  // namespace sarloop

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(argc, argv, "sarloop-clock-bench",
                                  "usage: sarloop-clock-bench [--open N] [--scans N]\n\n"
                                  "What one scan of UKFIU's feedback clock costs with N "
                                  "referrals open.\n")) {
    return 0;
  }
  int open = 2000, scans = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return sarloop::Usage(arg + " needs a value");
    int* target = arg == "--open" ? &open : arg == "--scans" ? &scans : nullptr;
    if (target == nullptr) return sarloop::Usage("unknown flag " + arg);
    *target = sarloop::bench::NumberFlag<int>("sarloop-clock-bench", arg, argv[++i]);
    if (*target < 1) {
      return sarloop::Usage(arg + " must be a whole number of at least 1");
    }
  }
  return sarloop::Run(open, scans);
}
