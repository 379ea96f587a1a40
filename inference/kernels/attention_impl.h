// Internal to attention.cpp and attention_avx512.cpp (contract: attention.h):
// the softmax pass both vector forms share, and the AVX-512 form.
#pragma once

#include <xmmintrin.h>

#include <cstdint>

#include "inference/kernels/attention.h"

namespace qwenqat::engine::attention_impl {

// Each of the `heads` rows of w (ctx scores, row stride ctx) replaced by its
// softmax, in place: the maximum, exp(w - max) 8 at a time with the AVX2
// exp, their sum, the quotients. Needs AVX2/FMA. A row's values depend only
// on that row.
void softmax_rows(float* w, int64_t heads, int64_t ctx);

// Positions ahead that the AVX-512 form prefetches the key and value rows
// of: a decode step reads the fp16 cache from L3 or DRAM (57 MB per step at
// a 2000-token context for the 1.5B shapes), and the first head tile of a
// group waited on every row. Paired per-step timing of decode after a
// 2000-token prompt on Zen 5 (AVX-512 form): 16 ahead 0.92-0.96x time, 4 or
// 8 0.95-0.97x, 32 0.95-0.99x, 96 0.99x. The AVX2 form, which loads a key
// vector per FMA, gained nothing from it (0.98-1.01x) and does not prefetch.
constexpr int64_t kPrefetchPositions = 16;

// Prefetches (T0) `bytes` bytes from element `col` of the rows of positions
// [p, p + n), rows `stride` elements apart from base. Addresses are formed
// as integers: rows past the context point past the cache, harmlessly (a
// prefetch does not fault).
template <class T>
inline void prefetch_rows(const T* base, int64_t stride, int64_t p, int n, int64_t col,
                          int64_t bytes) {
  const uintptr_t b = reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(col) * sizeof(T);
  for (int j = 0; j < n; ++j) {
    const uintptr_t row = b + static_cast<uintptr_t>((p + j) * stride) * sizeof(T);
    for (uintptr_t line = row & ~uintptr_t{63}; line < row + bytes; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
  }
}

// attend's AVX-512 form (d a multiple of 16; needs cpu_has_avx512()):
// scores as register tiles of 4 heads x 4 positions (each key row loaded
// once for 4 heads), softmax_rows, then out as tiles of 4 heads x 64 columns
// (each value row loaded once for 4 heads); the same per-entry operations
// whatever the tile, the number of heads or ctx.
void attend_avx512(const float* q, int64_t heads, const KvRows& kv, int64_t ctx, int64_t d,
                   float scale, float* w, float* out);

}  // namespace qwenqat::engine::attention_impl
