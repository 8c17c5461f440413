// The clock seam. Services never read the system clock directly, so tests run months in seconds:
// unit tests use ManualClock; multi-process tests and the demo give every service the same
// offset file (ServiceConfig.dev_clock_offset_file).
#ifndef SARLOOP_COMMON_BASE_CLOCK_H_
#define SARLOOP_COMMON_BASE_CLOCK_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/base/mutex.h"

namespace sarloop {

// Thread-safe source of the current time.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

// The real clock.
std::unique_ptr<Clock> NewSystemClock();

// The system clock plus the number of seconds written in `path` (an integer; a missing or empty
// file means 0). The file is read again after a change to it (its directory is watched).
std::unique_ptr<Clock> NewOffsetFileClock(std::string path);

// A clock that only moves when told to. For unit tests.
class ManualClock : public Clock {
 public:
  explicit ManualClock(absl::Time start) : now_(start) {}
  absl::Time Now() override {
    MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_CLOCK_H_
