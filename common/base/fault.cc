#include "common/base/fault.h"

namespace sarloop::fault {

namespace internal {
std::atomic<Injector*> installed{nullptr};
}

void Install(Injector* injector) { internal::installed.store(injector); }

}  // namespace sarloop::fault
