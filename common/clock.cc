#include "common/clock.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/time/clock.h"

namespace sarloop {
namespace {

class SystemClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

class OffsetFileClock : public Clock {
 public:
  explicit OffsetFileClock(std::string path) : path_(std::move(path)) {}

  absl::Time Now() override {
    struct stat st {};
    std::lock_guard lock(mu_);
    if (::stat(path_.c_str(), &st) == 0) {
      // A file replaced twice within the kernel's timestamp granularity (a few ms) can keep
      // its mtime and size: while the file is that fresh, read it anyway.
      const absl::Time mtime = absl::TimeFromTimespec(st.st_mtim);
      if (st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec ||
          st.st_size != size_ || absl::Now() - mtime < absl::Milliseconds(100)) {
        mtime_ = st.st_mtim;
        size_ = st.st_size;
        std::ifstream in(path_);
        long long seconds = 0;
        if (in >> seconds && absl::Seconds(seconds) != offset_) {
          offset_ = absl::Seconds(seconds);
          // Loud when it moves: a moved clock moves deadlines, escalations and purges. An
          // exercise moves it every few milliseconds, so at most one line every 10 s, which
          // counts the moves in between.
          ++moves_;
          const absl::Time now = absl::Now();
          if (now - last_log_ >= absl::Seconds(10)) {
            spdlog::warn(
                "DEVELOPMENT CLOCK: {} moves this service's clock by {} s (now {}; {} "
                "move(s) since the last line)",
                path_, seconds, absl::FormatTime(now + offset_, absl::UTCTimeZone()), moves_);
            last_log_ = now;
            moves_ = 0;
          }
        }
      }
    } else {
      offset_ = absl::ZeroDuration();
    }
    return absl::Now() + offset_;
  }

 private:
  const std::string path_;
  std::mutex mu_;
  timespec mtime_ ABSL_GUARDED_BY(mu_){};
  off_t size_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Duration offset_ ABSL_GUARDED_BY(mu_);
  absl::Time last_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t moves_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

std::unique_ptr<Clock> NewSystemClock() { return std::make_unique<SystemClock>(); }

std::unique_ptr<Clock> NewOffsetFileClock(std::string path) {
  return std::make_unique<OffsetFileClock>(std::move(path));
}

}  // namespace sarloop
