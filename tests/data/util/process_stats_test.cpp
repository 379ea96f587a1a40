// data/util/process_stats: CPU seconds grow with work, the peak RSS sees a
// touched mapping and (where Linux allows) restarts below it once unmapped.
#include "data/util/process_stats.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

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
  EXPECT_GT(peak_rss_bytes(), 0u);
  // Mapped and unmapped directly, so that the pages go back to the system
  // whatever the allocator (or a sanitizer's quarantine) does with free().
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 1, kBytes);  // resident now
  EXPECT_GE(peak_rss_bytes(), kBytes);
  ASSERT_EQ(munmap(p, kBytes), 0);
  const uint64_t peak = peak_rss_bytes();
  if (!reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  // The restarted peak is the current RSS, without the 96 MB.
  EXPECT_LT(peak_rss_bytes() + (uint64_t{48} << 20), peak);
}

}  // namespace
}  // namespace qwenqat
