// A SQLite VFS for power-loss tests, in the manner of SQLite's own crash tests: every file keeps
// only what was synced when the "power" is cut.
//
// Writes reach the real files at once (so reads see them), but until the file is synced the VFS
// remembers what each write overwrote. CutPower() fails every later I/O call; Restore() then puts
// back the overwritten bytes and the synced length of every file, and removes the shared-memory
// index, leaving the directory as a disk would be after the machine lost power.
#ifndef SARLOOP_TESTS_FAULT_POWER_VFS_H_
#define SARLOOP_TESTS_FAULT_POWER_VFS_H_

#include <cstdint>

namespace sarloop::testing {

class PowerVfs {
 public:
  // Registers the VFS as SQLite's default. Once per process.
  static void Install();
  // Cuts the power after `writes` more write, sync or truncate calls (the call that reaches zero
  // fails, as does everything after it); a negative count never cuts.
  static void CutAfter(int64_t writes);
  static void CutPower();
  static bool PowerIsOff();
  // After every connection is closed: brings the files back to their synced state, forgets all
  // bookkeeping and turns the power on.
  static void Restore();
  // Write, sync and truncate calls seen since the last Restore.
  static int64_t Operations();
  // Disk full: while `full()` holds, writes and truncations fail with SQLITE_FULL (the power stays
  // on). For the services' test builds (fault_injector.cc).
  static void FailWritesWhile(bool (*full)());
  // A slow disk: every sync first waits `delay()` milliseconds (none when it returns 0 or less).
  // For the services' test builds (fault_injector.cc).
  static void SlowSyncsBy(int (*delay)());
};

}  // namespace sarloop::testing

#endif  // SARLOOP_TESTS_FAULT_POWER_VFS_H_
