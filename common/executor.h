// Where RPC bodies run. The serving thread (common/serving.h) takes every call and must not block,
// yet a body waits for its commit's fsync. Bodies therefore run on a pool with a thread for every
// call the server admits, so while one batch is being synced the next calls queue behind it and
// share the next commit (Database::Transact's group commit).
#ifndef SARLOOP_COMMON_EXECUTOR_H_
#define SARLOOP_COMMON_EXECUTOR_H_

#include <functional>
#include <memory>

namespace sarloop {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `task` on some thread, later.
  virtual void Post(std::function<void()> task) = 0;
  // Waits for the posted tasks to finish and stops the threads; later Posts are dropped.
  virtual void Join() = 0;
};

// A fixed pool of `threads` threads.
std::unique_ptr<Executor> NewThreadPool(int threads);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_EXECUTOR_H_
