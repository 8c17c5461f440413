#include "common/server/repeating.h"

#include <utility>

namespace sarloop {

Repeating::Repeating(boost::asio::io_context& io, std::chrono::nanoseconds period,
                     std::function<void()> tick)
    : timer_(io), period_(period), tick_(std::move(tick)) {}

void Repeating::Start() { Start(period_); }

void Repeating::Start(std::chrono::nanoseconds first) {
  timer_.expires_after(first);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    tick_();
    if (!stopped_) Start();
  });
}

void Repeating::Stop() {
  stopped_ = true;
  timer_.cancel();
}

}  // namespace sarloop
