// data/util/process_stats: CPU seconds grow with work, the peak RSS sees a
// touched allocation and (where Linux allows) restarts below it once freed.
#include "data/util/process_stats.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

namespace qwenqat {
namespace {

TEST(ProcessStats, CpuSecondsGrowWithWork) {
  const double t0 = process_cpu_seconds();
  volatile double x = 0.0;
  while (process_cpu_seconds() - t0 < 0.02) x = x + 1.0;
  EXPECT_GE(process_cpu_seconds() - t0, 0.02);
  EXPECT_GT(x, 0.0);
}

TEST(ProcessStats, PeakRssSeesATouchedAllocationAndRestarts) {
  constexpr size_t kBytes = size_t{96} << 20;
  const uint64_t before = peak_rss_bytes();
  EXPECT_GT(before, 0u);
  {
    auto buf = std::make_unique<char[]>(kBytes);
    std::memset(buf.get(), 1, kBytes);  // resident now
    EXPECT_GE(peak_rss_bytes(), kBytes);
    EXPECT_EQ(buf[kBytes - 1], 1);
  }
  const uint64_t peak = peak_rss_bytes();
  if (!reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  // The 96 MB were returned to the system (an allocation this large is
  // mmapped), so the restarted peak is the current RSS, well below the old one.
  EXPECT_LT(peak_rss_bytes() + (uint64_t{48} << 20), peak);
}

}  // namespace
}  // namespace qwenqat
