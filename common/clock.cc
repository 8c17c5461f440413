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
      if (st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec ||
          st.st_size != size_) {
        mtime_ = st.st_mtim;
        size_ = st.st_size;
        std::ifstream in(path_);
        long long seconds = 0;
        if (in >> seconds && absl::Seconds(seconds) != offset_) {
          offset_ = absl::Seconds(seconds);
          // Loud on every change: a moved clock moves deadlines, escalations and purges.
          spdlog::warn("DEVELOPMENT CLOCK: {} moves this service's clock by {} s (now {})", path_,
                       seconds, absl::FormatTime(absl::Now() + offset_, absl::UTCTimeZone()));
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
};

}  // namespace

std::unique_ptr<Clock> NewSystemClock() { return std::make_unique<SystemClock>(); }

std::unique_ptr<Clock> NewOffsetFileClock(std::string path) {
  return std::make_unique<OffsetFileClock>(std::move(path));
}

}  // namespace sarloop
