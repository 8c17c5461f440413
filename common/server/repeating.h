// A task run every `period` on an Asio loop's thread: the service process's timed work (the
// service's periodic task, audit checkpoints, health, retention).
#ifndef SARLOOP_COMMON_SERVER_REPEATING_H_
#define SARLOOP_COMMON_SERVER_REPEATING_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>

namespace sarloop {

// Runs `tick` every `period` from Start until Stop, each time on the loop's thread. Start and Stop
// are called on that thread too; once stopped it stays stopped. A tick whose time had come but
// which had not yet run when Stop was called does not run: a timer that has expired can no longer
// be cancelled, and without this a task would run once more after the process had said it stopped
// it.
class Repeating {
 public:
  Repeating(boost::asio::io_context& io, std::chrono::nanoseconds period,
            std::function<void()> tick);
  Repeating(const Repeating&) = delete;
  Repeating& operator=(const Repeating&) = delete;

  // The first tick comes a period after Start, or after `first` when given: work a restart
  // must not put off (retention, for a service restarted more often than its period) is given
  // a short first delay.
  void Start();
  void Start(std::chrono::nanoseconds first);
  void Stop();

 private:
  boost::asio::steady_timer timer_;
  const std::chrono::nanoseconds period_;
  const std::function<void()> tick_;
  bool stopped_ = false;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_SERVER_REPEATING_H_
