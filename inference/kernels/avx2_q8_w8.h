// The 8-bit rows of the int8-activation kernel (avx2_q8_impl.h, which
// includes this file after its common part: Q8Args, dot_u8_s8, chunk_scales):
// w8_block in block order for single sequences, w8_il_rows with interleaved
// chunks for n >= 2 (the same bits). Internal to avx2_q8.cpp /
// avx_vnni_q8.cpp, inside their #pragma GCC target regions.
#pragma once

#include <immintrin.h>

#include <memory>

#ifndef QWENQAT_Q8_VNNI
#error "include avx2_q8_w8.h through avx2_q8_impl.h"
#endif

namespace qwenqat::engine::avx2 {
namespace {

// 8-bit weight row r against activation rows [b0, b0 + B), in chunks of 8
// blocks: per block the exact int32 products in 8 lanes (v = u - 128,
// dot(|v|, sign(q, v))), a pair of blocks joined by one hadd, so that after
// 8 blocks one vector holds the 8 exact block sums in block order; one
// convert + FMA by s * d per chunk (missing blocks of a last partial chunk are
// zero lanes). The operations per (row, sequence) do not depend on B.
// With il (w8_il_block): acc[b] starts at il[b], the sums of the chunks
// before block k_start in block order.
template <int B>
void w8_block(const Q8Args& a, int64_t r, int64_t b0, int64_t k_start = 0,
              const __m256* il = nullptr) {
  const format::PackedView& w = *a.w;
  const int64_t cols = w.cols, blocks = cols / 32, groups = w.groups_per_row();
  const int64_t bpg = blocks / groups;
  const uint8_t* row = w.data + r * w.row_bytes;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256 acc[B];
  for (int b = 0; b < B; ++b) acc[b] = il ? il[b] : _mm256_setzero_ps();
  for (int64_t k0 = k_start; k0 < blocks; k0 += kIlChunk) {
    const int count = static_cast<int>(blocks - k0 < kIlChunk ? blocks - k0 : kIlChunk);
    kernels::prefetch_lines<4>(row + k0 * 32, kPrefetchBytes);  // the chunk's 4 lines, ahead
    // Products of block k0 + m (zero past count) for sequence b.
    const auto dot = [&](int m, const __m256i& wv, const __m256i& wa, int b) {
      if (m >= count) return _mm256_setzero_si256();
      const __m256i qv = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(a.q + (b0 + b) * cols + (k0 + m) * 32));
      return dot_u8_s8(wa, _mm256_sign_epi8(qv, wv));
    };
    __m256i h4[2][B];  // hadd of blocks 0-3 and 4-7
    for (int half = 0; half < 2; ++half) {
      __m256i h2[B];
      for (int j = 0; j < 2; ++j) {
        const int m = 4 * half + 2 * j;
        __m256i wv[2], wa[2];
        for (int t = 0; t < 2; ++t) {
          const int64_t k = m + t < count ? k0 + m + t : k0;  // any block when past count
          wv[t] = _mm256_xor_si256(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k * 32)), flip);
          wa[t] = _mm256_abs_epi8(wv[t]);
        }
        for (int b = 0; b < B; ++b) {
          const __m256i p = _mm256_hadd_epi32(dot(m, wv[0], wa[0], b), dot(m + 1, wv[1], wa[1], b));
          h4[half][b] = j == 0 ? p : _mm256_hadd_epi32(h2[b], p);
          h2[b] = p;
        }
      }
    }
    const __m256 s = chunk_scales<false>(w, r, k0, count, groups, bpg);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes);
    for (int b = 0; b < B; ++b) {
      // lanes [blocks 0-3 of the low halves | 4-7 low] + [0-3 high | 4-7 high]
      const __m256i isum = _mm256_add_epi32(_mm256_permute2x128_si256(h4[0][b], h4[1][b], 0x20),
                                            _mm256_permute2x128_si256(h4[0][b], h4[1][b], 0x31));
      const __m256 d = _mm256_maskload_ps(a.d + (b0 + b) * blocks + k0, live);
      acc[b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(s, d), acc[b]);
    }
  }
  // As w4_block: the codes used are u - 128; add (128 - zero) * s + o times e.
  const float cs = static_cast<float>(128 - (w.spec.symmetric ? w.spec.zero_code() : 0));
  const int64_t p = r * groups;
  for (int b = 0; b < B; ++b) {
    const float* eg = a.eg + (b0 + b) * groups;
    float corr = cs != 0.0f ? cs * util::dot_fp16(w.scales + p, eg, groups) : 0.0f;
    if (w.offsets) corr += util::dot_fp16(w.offsets + p, eg, groups);
    a.y[(b0 + b) * a.y_stride + r] = util::hsum(acc[b]) + corr;
  }
}

// The 8 blocks of an 8-bit chunk (256 bytes at p) as v = u - 128 and |v|,
// interleaved as Q8Activations::qi (il_chunk 8): v[t] lane m = bytes 4t..4t+3
// of block sigma(m) = 2 * (m % 4) + m / 4. Blocks 0, 2, 4, 6 and 1, 3, 5, 7
// each take a 4 x 4 dword transpose per 128-bit half; the halves are joined.
inline void unpack_q8_chunk8(const uint8_t* p, __m256i v[8], __m256i va[8]) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i o[2][4];  // o[e][t]: half h = dword 4h + t of blocks e, e + 2, e + 4, e + 6
  for (int e = 0; e < 2; ++e) {
    __m256i in[4];  // in[j]: block e + 2j
    for (int j = 0; j < 4; ++j)
      in[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * (e + 2 * j)));
    transpose_dwords(in, o[e]);
  }
  for (int t = 0; t < 4; ++t) {
    v[t] = _mm256_xor_si256(_mm256_permute2x128_si256(o[0][t], o[1][t], 0x20), flip);
    v[t + 4] = _mm256_xor_si256(_mm256_permute2x128_si256(o[0][t], o[1][t], 0x31), flip);
  }
  for (int t = 0; t < 8; ++t) va[t] = _mm256_abs_epi8(v[t]);
}

// Lane m = the exact int32 sum of v * q over block sigma(m) of the chunk (v,
// va from unpack_q8_chunk8, qi the chunk's 256 interleaved activation bytes).
inline __m256i chunk_isum8(const __m256i* v, const __m256i* va, const int8_t* qi) {
  const auto term = [&](int t) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qi + 32 * t));
    return dot_u8_s8(_mm256_load_si256(va + t), _mm256_sign_epi8(q, _mm256_load_si256(v + t)));
  };
  __m256i c0 = term(0), c1 = term(1);
  for (int t = 2; t < 8; t += 2) {
    c0 = _mm256_add_epi32(c0, term(t));
    c1 = _mm256_add_epi32(c1, term(t + 1));
  }
  return _mm256_add_epi32(c0, c1);
}

// 8-bit rows with interleaved activations, n >= 2: each row's full chunks are
// unpacked once per sequence block into an L1 scratch (v and |v|, 512 bytes a
// chunk), then passes of up to kMaxPass8 sequences take per chunk 8 products
// with no hadd (w8_block: 6 hadds per chunk and sequence). The accumulators
// hold lane m = block sigma(m); per lane the FMAs are w8_block's (the same
// exact block sums times the same s * d, in chunk order), so after the
// inverse permutation they equal w8_block's bit for bit, which then takes the
// blocks past the last full chunk and the epilogue.
template <int B>
void w8_il_block(const Q8Args& a, int64_t r, int64_t b0, const __m256i* scratch) {
  const format::PackedView& w = *a.w;
  const int64_t blocks = w.cols / 32, chunks = blocks / kIlChunk, groups = w.groups_per_row();
  const int64_t bpg = blocks / groups;
  __m256 acc[B];
  for (int b = 0; b < B; ++b) acc[b] = _mm256_setzero_ps();
  for (int64_t c = 0; c < chunks; ++c) {
    const __m256i* v = scratch + 16 * c;
    const __m256 s = chunk_scales<true>(w, r, c * kIlChunk, kIlChunk, groups, bpg);
    for (int b = 0; b < B; ++b) {
      const int64_t at = (b0 + b) * a.il_chunks + c;  // chunk index in qi / di
      const __m256 sd = _mm256_mul_ps(s, _mm256_loadu_ps(a.di + at * kIlChunk));
      const __m256i isum = chunk_isum8(v, v + 8, a.qi + at * kIlChunk * 32);
      acc[b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), sd, acc[b]);
    }
  }
  const __m256i natural = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // lane j <- sigma^-1(j)
  for (int b = 0; b < B; ++b) acc[b] = _mm256_permutevar8x32_ps(acc[b], natural);
  w8_block<B>(a, r, b0, chunks * kIlChunk, acc);
}

void w8_il_rows(const Q8Args& a, int64_t n, int64_t r0, int64_t r1) {
  const int64_t chunks = a.w->cols / 32 / kIlChunk;
  struct alignas(32) Ymm {  // (a vector of __m256i would drop the alignment)
    int8_t bytes[32];
  };
  // Not zeroed: every row's chunks are unpacked into it before they are read
  // (as the AVX-512 tiles' scratch, avx512_q8.cpp).
  const auto buf = std::make_unique_for_overwrite<Ymm[]>(static_cast<size_t>(16 * chunks));
  __m256i* scratch = reinterpret_cast<__m256i*>(buf.get());
  over_seq_blocks(n, a.w->cols, kMaxPass8, [&](int64_t s0, int64_t s1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = a.w->data + r * a.w->row_bytes;
      for (int64_t c = 0; c < chunks; ++c) {
        kernels::prefetch_lines<4>(row + c * 256, kPrefetchBytes);  // 4 lines, ahead
        unpack_q8_chunk8(row + c * 256, scratch + 16 * c, scratch + 16 * c + 8);
      }
      over_passes(s0, s1, kMaxPass8, [&](int64_t b0, int64_t nb) {
        switch (nb) {
          case 1:
            return w8_il_block<1>(a, r, b0, scratch);
          case 2:
            return w8_il_block<2>(a, r, b0, scratch);
          case 3:
            return w8_il_block<3>(a, r, b0, scratch);
          case 4:
            return w8_il_block<4>(a, r, b0, scratch);
        }
      });
    }
  });
}

// 8-bit rows: one at a time, passes of up to kMaxPass8 sequences.
void w8_rows(const Q8Args& a, int64_t n, int64_t r0, int64_t r1) {
  if (n >= 2 && a.qi != nullptr) return w8_il_rows(a, n, r0, r1);
  over_seq_blocks(n, a.w->cols, kMaxPass8, [&](int64_t s0, int64_t s1) {
    for (int64_t r = r0; r < r1; ++r) {
      over_passes(s0, s1, kMaxPass8, [&](int64_t b0, int64_t nb) {
        switch (nb) {
          case 1:
            return w8_block<1>(a, r, b0);
          case 2:
            return w8_block<2>(a, r, b0);
          case 3:
            return w8_block<3>(a, r, b0);
          case 4:
            return w8_block<4>(a, r, b0);
        }
      });
    }
  });
}

}  // namespace
}  // namespace qwenqat::engine::avx2
