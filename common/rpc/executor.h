// Where the bodies of calls that are not write jobs run (reads, and calls that wait on something
// other than the writer). The serving thread (common/rpc/serving.h) takes every call and runs the
// writer's batches; a body that waited there would hold up every call. Bodies therefore run on a
// pool with a thread for every call the server admits.
#ifndef SARLOOP_COMMON_RPC_EXECUTOR_H_
#define SARLOOP_COMMON_RPC_EXECUTOR_H_

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

#endif  // SARLOOP_COMMON_RPC_EXECUTOR_H_
