#include "common/rpc/executor.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace sarloop {
namespace {

class ThreadPool : public Executor {
 public:
  explicit ThreadPool(int threads) : pool_(static_cast<size_t>(threads)) {}
  ~ThreadPool() override { Join(); }

  void Post(std::function<void()> task) override { boost::asio::post(pool_, std::move(task)); }
  void Join() override { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace

std::unique_ptr<Executor> NewThreadPool(int threads) {
  return std::make_unique<ThreadPool>(threads < 1 ? 1 : threads);
}

}  // namespace sarloop
