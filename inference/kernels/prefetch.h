// Software prefetch of a byte range or of a fixed number of cache lines,
// shared by the kernels whatever their target (SSE's prefetch is part of
// x86-64's baseline): the packed-weight kernels' codes and scale stream
// (avx2_util.h) and the attention's key and value rows (attention_impl.h).
#pragma once

#include <xmmintrin.h>

#include <cstdint>

namespace qwenqat::engine::kernels {

// Prefetches (T0) every cache line of [p, p + bytes). p is an integer
// address: a range past an array's end is harmless (a prefetch never
// faults), so callers may form it for rows past the last one.
inline void prefetch_range(uintptr_t p, uintptr_t bytes) {
  for (uintptr_t line = p & ~uintptr_t{63}; line < p + bytes; line += 64)
    _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
}

// Prefetches (T0) the kLines cache lines `ahead` bytes past p: a weight
// chunk's lines some distance ahead, in the packed-weight kernels. p points
// into its array; the address past it is integer arithmetic, so it may lie
// past the array's end (a prefetch never faults).
template <int kLines>
inline void prefetch_lines(const void* p, int64_t ahead) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(ahead);
  for (int l = 0; l < kLines; ++l)
    _mm_prefetch(reinterpret_cast<const char*>(at + 64 * l), _MM_HINT_T0);
}

// The same lines twice: into L1 `near` bytes on
// (non-temporal: decode reads each weight once per step) and into L2 `far`
// bytes on, each line's two prefetches together (integer addresses, as
// prefetch_lines). The decode kernels' weight codes (avx512_q8.cpp
// il_rows_n1, avx2_q8_impl.h w4_block) and bench's memory probe: the far
// ones keep more lines in flight when the memory's latency rises (figures
// there; all the L1 ones first made 8-bit AVX-512 decode 1.05-1.07x slower
// than one prefetch, paired per step on Zen 5, where these gave 0.98-1.01x).
template <int kLines>
inline void prefetch_l1_l2(const void* p, int64_t near, int64_t far) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  for (int l = 0; l < kLines; ++l) {
    _mm_prefetch(reinterpret_cast<const char*>(at + static_cast<uintptr_t>(near) + 64 * l),
                 _MM_HINT_NTA);
    _mm_prefetch(reinterpret_cast<const char*>(at + static_cast<uintptr_t>(far) + 64 * l),
                 _MM_HINT_T1);
  }
}

}  // namespace qwenqat::engine::kernels
