// Fault injection seams for the fault suite (tests/fault/).
//
// Production binaries never install an injector, so every hook below is a load of a null pointer
// and nothing else. The test builds of the services (tests/fault/sarloop-<kind>-faults) link an
// injector that kills the process at named crash points, turns on unsafe modes that prove the
// suite has teeth, and duplicates deliveries on the wire, as its environment asks.
#ifndef SARLOOP_COMMON_BASE_FAULT_H_
#define SARLOOP_COMMON_BASE_FAULT_H_

#include <atomic>

namespace sarloop::fault {

class Injector {
 public:
  virtual ~Injector() = default;
  // Called at each crash point; may end the process as kill -9 would.
  virtual void Reached(const char* point) = 0;
  // Whether an unsafe mode is on: "sync_normal" (SQLite synchronous=NORMAL) or
  // "ack_before_commit" (Transact returns before its COMMIT).
  virtual bool Unsafe(const char* mode) = 0;
  // Percent of successful delivery batches to send a second time, and to follow with a replay of
  // an older batch.
  virtual int DuplicatePercent() = 0;
};

// Installs `injector` for the life of the process. Test builds only.
void Install(Injector* injector);

namespace internal {
extern std::atomic<Injector*> installed;
}

// The named crash points, each at a step where a crash must lose and duplicate nothing.
inline void CrashPoint(const char* point) {
  if (Injector* i = internal::installed.load(std::memory_order_relaxed)) i->Reached(point);
}

inline bool Unsafe(const char* mode) {
  Injector* i = internal::installed.load(std::memory_order_relaxed);
  return i != nullptr && i->Unsafe(mode);
}

inline int DuplicatePercent() {
  Injector* i = internal::installed.load(std::memory_order_relaxed);
  return i == nullptr ? 0 : i->DuplicatePercent();
}

}  // namespace sarloop::fault

#endif  // SARLOOP_COMMON_BASE_FAULT_H_
