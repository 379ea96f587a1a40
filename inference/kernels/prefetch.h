// Software prefetch of a byte range, shared by the kernels whatever their
// target (SSE's prefetch is part of x86-64's baseline): the decode kernels'
// scale stream (avx2_util.h) and the attention's key and value rows
// (attention_impl.h).
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

}  // namespace qwenqat::engine::kernels
