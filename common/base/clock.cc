#include "common/base/clock.h"

#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <fstream>

#include "absl/time/clock.h"
#include "common/base/mutex.h"

namespace sarloop {
namespace {

class SystemClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

class OffsetFileClock : public Clock {
 public:
  explicit OffsetFileClock(std::string path) : path_(std::move(path)) {
    MutexLock lock(&mu_);
    Watch();
  }
  ~OffsetFileClock() override {
    if (watch_fd_ >= 0) ::close(watch_fd_);
  }

  absl::Time Now() override {
    MutexLock lock(&mu_);
    if (Changed()) Reload();
    return absl::Now() + offset_;
  }

 private:
  // Every read of the clock used to stat the file, a path walk in the kernel per call: about 2%
  // of a development chain's CPU, on every step. The file's directory is watched instead, and the
  // file is read again only after an event names it. inotify queues the event inside the writer's
  // own write, rename or unlink, so a Now() that starts after the writer's call returns sees it.
  void Watch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string::size_type slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
    name_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return;
    if (::inotify_add_watch(fd, dir.c_str(),
                            IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
      ::close(fd);
      return;
    }
    watch_fd_ = fd;
  }

  // Whether the file may have changed since it was last read. Without a watch (none could be
  // set up, or the directory went away), always.
  bool Changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (watch_fd_ < 0) return true;
    bool changed = !read_once_;
    alignas(inotify_event) char buf[4096];
    for (;;) {
      const ssize_t n = ::read(watch_fd_, buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: nothing has happened since the last look
      for (ssize_t at = 0; at < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
        if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
          ::close(watch_fd_);
          watch_fd_ = -1;
          return true;
        }
        if ((ev->mask & IN_Q_OVERFLOW) || (ev->len > 0 && name_ == ev->name)) changed = true;
        at += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
    read_once_ = true;
    return changed;
  }

  void Reload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::ifstream in(path_);
    if (!in) {
      offset_ = absl::ZeroDuration();
      return;
    }
    long long seconds = 0;
    // A file caught between its truncation and its write reads as empty: the offset stays, and
    // the write's own event brings the next read.
    if (!(in >> seconds) || absl::Seconds(seconds) == offset_) return;
    offset_ = absl::Seconds(seconds);
    // Loud when it moves: a moved clock moves deadlines, escalations and purges. An exercise
    // moves it every few milliseconds, so at most one line every 10 s, which counts the moves
    // in between.
    ++moves_;
    const absl::Time now = absl::Now();
    if (now - last_log_ >= absl::Seconds(10)) {
      spdlog::warn(
          "DEVELOPMENT CLOCK: {} moves this service's clock by {} s (now {}; {} move(s) since "
          "the last line)",
          path_, seconds, absl::FormatTime(now + offset_, absl::UTCTimeZone()), moves_);
      last_log_ = now;
      moves_ = 0;
    }
  }

  const std::string path_;
  std::string name_;
  Mutex mu_;
  int watch_fd_ ABSL_GUARDED_BY(mu_) = -1;
  bool read_once_ ABSL_GUARDED_BY(mu_) = false;
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
