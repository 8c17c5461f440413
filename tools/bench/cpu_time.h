// CPU time for the benchmarks, in seconds, from the kernel's CPU clocks: nanoseconds, where
// /proc/PID/stat counts in 10 ms ticks (a service that worked 9 ms in a short phase read 0).
#ifndef SARLOOP_TOOLS_BENCH_CPU_TIME_H_
#define SARLOOP_TOOLS_BENCH_CPU_TIME_H_

#include <sys/types.h>
#include <time.h>

namespace sarloop::bench {

// The time on `clock`; 0 when it cannot be read (a process that has gone).
inline double CpuClockSeconds(clockid_t clock) {
  timespec t{};
  if (clock_gettime(clock, &t) != 0) return 0;
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// Another process's CPU time, user and system, every thread it ever ran included.
inline double ProcessCpuSeconds(pid_t pid) {
  clockid_t clock;
  return clock_getcpuclockid(pid, &clock) == 0 ? CpuClockSeconds(clock) : 0;
}

// This process's and this thread's.
inline double OwnProcessCpuSeconds() { return CpuClockSeconds(CLOCK_PROCESS_CPUTIME_ID); }
inline double OwnThreadCpuSeconds() { return CpuClockSeconds(CLOCK_THREAD_CPUTIME_ID); }

}  // namespace sarloop::bench

#endif  // SARLOOP_TOOLS_BENCH_CPU_TIME_H_
