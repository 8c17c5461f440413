// The process-wide settings every service runs with (common/server/server.h TuneServiceProcess,
// ProbesBandwidthDelay).
#include <malloc.h>

#include <vector>

#include "common/server/server.h"
#include "gtest/gtest.h"

namespace sarloop {
namespace {

// Bytes this thread's arena keeps in glibc's fast bins after `n` small blocks are freed (more than
// the thread cache holds).
size_t FastBinBytesAfterFreeing(int n) {
  std::vector<void*> blocks;
  for (int i = 0; i < n; ++i) blocks.push_back(malloc(48));
  for (void* b : blocks) free(b);
  return mallinfo2().fsmblks;
}

TEST(ProcessTuning, SmallFreesDoNotWaitInFastBins) {
  // glibc's default keeps them there, for the next large request to consolidate.
  ASSERT_GT(FastBinBytesAfterFreeing(1000), 0u);
  TuneServiceProcess();
  EXPECT_EQ(FastBinBytesAfterFreeing(1000), 0u);
}

// Bandwidth-delay probing stays on only where bulk uploads arrive (the linkage service's index
// uploads); the services of small messages leave it off.
TEST(ProcessTuning, OnlyTheLinkageServiceProbesBandwidth) {
  EXPECT_TRUE(ProbesBandwidthDelay(v1::SERVICE_KIND_LINKAGE));
  for (const v1::ServiceKind kind : {v1::SERVICE_KIND_UKFIU, v1::SERVICE_KIND_FORCE,
                                     v1::SERVICE_KIND_RACU, v1::SERVICE_KIND_NCA}) {
    EXPECT_FALSE(ProbesBandwidthDelay(kind)) << v1::ServiceKind_Name(kind);
  }
}

}  // namespace
}  // namespace sarloop
