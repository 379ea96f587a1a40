// What this process has used so far: CPU seconds and peak resident memory,
// for the benchmarks and the training summary (Linux /proc, getrusage where
// /proc is missing). Thread-safe (reads of kernel counters).
#pragma once

#include <cstdint>

namespace qwenqat {

// User + system CPU seconds of this process so far (all threads).
double process_cpu_seconds();

// Peak resident set size of this process, bytes (VmHWM; getrusage's
// ru_maxrss where /proc is missing).
uint64_t peak_rss_bytes();
// The same in GiB.
inline double peak_rss_gib() { return static_cast<double>(peak_rss_bytes()) / (1 << 30); }

// Restarts the peak RSS from the current RSS (Linux /proc/self/clear_refs);
// false where that is not possible (peak_rss_bytes then keeps the old peak).
bool reset_peak_rss();

}  // namespace qwenqat
