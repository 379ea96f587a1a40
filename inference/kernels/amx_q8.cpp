// The int8-activation matmul on AMX tiles (contract: kernels/amx_kernels.h).
//
// Weight rows are taken in panels of 16, sequences in column tiles of 16
// (Q8Activations::qt, laid out by layout_amx). Per panel, column tile and
// 32-element block k:
//   A = the panel's codes of block k, 16 rows x 32 bytes, copied per pass
//       into per-thread scratch [16][pass blocks * 32] (contiguous, so A's
//       tile loads hit L1 across the column tiles): signed u - zero for
//       symmetric weights (u ^ 0x80 for 8-bit, u - 8 for 4-bit), unsigned u
//       for asymmetric ones;
//   B = qt[t, k], 8 rows x 64 bytes (four codes of each of 16 sequences);
//   C = TDPBSSD (signed A) or TDPBUSD (unsigned A) of A and B: int32 [16
//       rows][16 sequences], the exact block sums (|.| <= 32 * 255 * 128).
// C goes through a 1 KB buffer to the epilogue, one 16-lane vector per row m:
//   acc[m] = fma(float(C[m]), d_k * s[m, k / bpg], acc[m])
// (float(.) exact below 2^24), and for asymmetric weights, after a group's
// last block,
// acc[m] = fma(o[m, g], eg[g], acc[m]). Four C tiles and two A/B sets keep
// blocks in flight (see step()) so the tile unit works ahead while the vector
// units run earlier blocks' epilogues. Each panel runs in passes of at most
// kPassBlocks blocks (A and B of a pass stay in L1 across the column tiles),
// and the next panel's weights are prefetched during the first column tile.
// At the end acc is transposed into y.
// Rows past r1 in the last panel are zero codes (their results are dropped);
// sequences past n are zero in qt and dt.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "data/util/check.h"
#include "inference/kernels/aligned.h"
#include "inference/kernels/amx_kernels.h"

#pragma GCC push_options
// GCC 12 reports the undefined pass-through operands inside the AVX-512
// intrinsics (avx512fintrin.h) as (maybe-)uninitialized: a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,amx-tile,amx-int8")

#include "inference/kernels/avx2_util.h"

namespace qwenqat::engine::amx {
namespace {

constexpr int kRows = static_cast<int>(kPanelRows);
constexpr int kSeqs = static_cast<int>(kTileSeqs);
constexpr int kBlockBytes = 32;                   // one int8 block of A per row
constexpr int kBTileBytes = kSeqs * kBlockBytes;  // one B tile (8 x 64 bytes)
constexpr int kCTileInts = kRows * kSeqs;         // one C tile (16 x 16 int32)
static_assert(kBTileBytes == 512 && kCTileInts * 4 == 1024, "AMX tile sizes");

// Tile registers (GCC's tile intrinsics take literal numbers): tmm0-tmm3
// the accumulators C of four blocks in flight (block k in C[k % 4]),
// tmm4/tmm5 weights A and tmm6/tmm7 activations B (block k in set k % 2).
constexpr int kCTiles = 4, kATile0 = 4, kBTile0 = 6;

// The LDTILECFG operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of each tile
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG takes 64 bytes");

void load_tile_config() {
  TileConfig cfg;
  for (int j = 0; j < kCTiles; ++j) cfg.colsb[j] = kSeqs * 4, cfg.rows[j] = kRows;
  for (int j = 0; j < 2; ++j) {
    cfg.colsb[kATile0 + j] = kBlockBytes, cfg.rows[kATile0 + j] = kRows;
    cfg.colsb[kBTile0 + j] = kSeqs * 4, cfg.rows[kBTile0 + j] = kBlockBytes / 4;
  }
  _tile_loadconfig(&cfg);
}

// One 4-bit row's blocks [0, blocks) from src (16 packed bytes per block:
// low nibbles = elements 0-15, high nibbles = 16-31) as codes u - zero (int8;
// zero = 0: the unsigned codes) in element order, 32 bytes per block at dst.
inline void unpack_q4_row(const uint8_t* src, int64_t blocks, int8_t zero, uint8_t* dst) {
  const __m512i mask = _mm512_set1_epi8(0x0f), z = _mm512_set1_epi8(zero);
  // qwords of [lo | hi] -> [lo0 hi0 lo1 hi1] and [lo2 hi2 lo3 hi3].
  const __m512i first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  int64_t k = 0;
  for (; k + 4 <= blocks; k += 4) {
    const __m512i v = _mm512_loadu_si512(src + k * 16);
    const __m512i lo = _mm512_sub_epi8(_mm512_and_si512(v, mask), z);
    const __m512i hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), mask), z);
    _mm512_storeu_si512(dst + k * kBlockBytes, _mm512_permutex2var_epi64(lo, first, hi));
    _mm512_storeu_si512(dst + k * kBlockBytes + 64, _mm512_permutex2var_epi64(lo, second, hi));
  }
  for (; k < blocks; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k * 16));
    const __m128i m4 = _mm_set1_epi8(0x0f), z4 = _mm_set1_epi8(zero);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k * kBlockBytes),
                     _mm_sub_epi8(_mm_and_si128(v, m4), z4));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k * kBlockBytes + 16),
                     _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m4), z4));
  }
}

// One 8-bit row's `bytes` codes from src to dst: as signed codes u - 128
// (u ^ 0x80) when zero == 128 (symmetric rows), else the unsigned codes.
inline void copy_q8_row(const uint8_t* src, int64_t bytes, int zero, uint8_t* dst) {
  const __m512i x = _mm512_set1_epi8(zero != 0 ? char(0x80) : 0);
  int64_t i = 0;
  for (; i + 64 <= bytes; i += 64)
    _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), x));
  if (i < bytes) {
    const __mmask64 mk = ~__mmask64{0} >> (64 - (bytes - i));
    _mm512_mask_storeu_epi8(dst + i, mk, _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, src + i), x));
  }
}

// A of one pass: blocks [k0, k1) of the rows [r, r + count) of w (4- or
// 8-bit) into out [16][(k1 - k0) * 32] as the codes u - zero (signed) for
// symmetric rows and u for asymmetric ones (zero = 0), rows past count zeros;
// block k's A tile is 16 rows of 32 bytes at out + (k - k0) * 32 with row
// stride (k1 - k0) * 32.
void unpack_panel(const format::PackedView& w, int64_t r, int64_t count, int64_t k0, int64_t k1,
                  int zero, uint8_t* out) {
  const int64_t blocks = k1 - k0, row_stride = blocks * kBlockBytes;
  const bool q4 = w.spec.bits == 4;
  for (int64_t m = 0; m < kRows; ++m) {
    uint8_t* dst = out + m * row_stride;
    const uint8_t* row = w.data + (r + m) * w.row_bytes;
    if (m >= count) {
      std::memset(dst, 0, static_cast<size_t>(row_stride));
    } else if (q4) {
      unpack_q4_row(row + k0 * (kBlockBytes / 2), blocks, static_cast<int8_t>(zero), dst);
    } else {
      copy_q8_row(row + k0 * kBlockBytes, row_stride, zero, dst);
    }
  }
}

// The fp16 values [r, r + count) x [0, groups) of `half` (row-major) as floats,
// out [16][groups] (rows past count: zeros).
void panel_floats(const uint16_t* half, int64_t groups, int64_t r, int64_t count, float* out) {
  for (int64_t m = 0; m < kRows; ++m) {
    float* o = out + m * groups;
    if (m >= count) {
      std::fill(o, o + groups, 0.0f);
      continue;
    }
    const uint16_t* h = half + (r + m) * groups;
    for (int64_t g = 0; g < groups; g += 16) {
      const int64_t c = std::min<int64_t>(16, groups - g);
      const __mmask16 mk = static_cast<__mmask16>((1u << c) - 1);
      _mm512_mask_storeu_ps(o + g, mk, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, h + g)));
    }
  }
}

// Everything the panel loop needs, fixed per call.
struct Panel {
  const uint8_t* a;        // A of block k_begin (unpack_panel): 16 rows, row stride a_stride
  int64_t a_stride;        // bytes between A's rows: (k_end - k_begin) * 32
  const int8_t* b;         // qt of the column tile: [blocks][512]
  const float* d;          // dt of the column tile: [blocks][16]
  const float* s;          // [16][groups] weight scales
  const float* o;          // [16][groups] offsets, or nullptr
  const float* egt;        // [groups][16] e sums of the column tile (with o)
  const uint8_t* next;     // the next 16 packed rows, prefetched, or nullptr
  const uint8_t* next_s;   // (with next) their fp16 scales, 16 * groups contiguous
  int64_t next_s_lines;    // cache lines of next_s
  int64_t row_bytes;       // packed bytes per row
  int64_t block_bytes;     // packed bytes per block and row (16 or 32)
  int64_t k_begin, k_end;  // the blocks of this pass: [k_begin, k_end)
  int64_t groups, bpg;
};

#define QWENQAT_AMX_ISSUE(tc, ta, tb)                               \
  _tile_zero(tc);                                                   \
  _tile_loadd(ta, p.a + (k - p.k_begin) * kBlockBytes, p.a_stride); \
  _tile_loadd(tb, p.b + k * kBTileBytes, kSeqs * 4);                \
  if constexpr (kSigned) {                                          \
    _tile_dpbssd(tc, ta, tb);                                       \
  } else {                                                          \
    _tile_dpbusd(tc, ta, tb);                                       \
  }

// Issues block k's tiles into C[J] and the A/B set J % 2 (above): TDPBSSD
// for signed codes in A (kSigned), else TDPBUSD. The tile loads' asm does not
// tell the compiler it reads memory: the caller's compiler barrier after
// writing A's scratch keeps those stores before them.
template <int J, bool kSigned>
inline void issue(const Panel& p, int64_t k) {
  static_assert(kATile0 == 4 && kBTile0 == 6, "literal tile numbers below");
  if constexpr (J == 0) {
    QWENQAT_AMX_ISSUE(0, 4, 6);
  } else if constexpr (J == 1) {
    QWENQAT_AMX_ISSUE(1, 5, 7);
  } else if constexpr (J == 2) {
    QWENQAT_AMX_ISSUE(2, 4, 6);
  } else {
    QWENQAT_AMX_ISSUE(3, 5, 7);
  }
}
#undef QWENQAT_AMX_ISSUE

// Stores C[J] to c.
template <int J>
inline void store(int32_t* c) {
  if constexpr (J == 0) {
    _tile_stored(0, c, kSeqs * 4);
  } else if constexpr (J == 1) {
    _tile_stored(1, c, kSeqs * 4);
  } else if constexpr (J == 2) {
    _tile_stored(2, c, kSeqs * 4);
  } else {
    _tile_stored(3, c, kSeqs * 4);
  }
}

// Block k's epilogue from its int32 tile c (above), and a prefetch of the
// cache lines where block k of the next panel's rows starts, into L2: a whole
// panel ahead, in L1 they were evicted by A, B and C before the unpack read
// them (kernel_bench 8-bit n = 16 from DRAM, three alternating runs: 112 ->
// 118 G MAC/s per core; 4-bit within noise).
__attribute__((always_inline)) inline void epilogue(const Panel& p, int64_t k, const int32_t* c,
                                                    __m512 acc[kRows]) {
  if (p.next != nullptr && (k * p.block_bytes) % 64 == 0) {
    for (int m = 0; m < kRows; ++m)
      _mm_prefetch(reinterpret_cast<const char*>(p.next + m * p.row_bytes + k * p.block_bytes),
                   _MM_HINT_T1);
  }
  // One line of the next panel's scales per block: panel_floats had stalled
  // on them (perf: most of q8_matmul_rows' own time at n = 16).
  if (p.next != nullptr && k < p.next_s_lines)
    _mm_prefetch(reinterpret_cast<const char*>(p.next_s + 64 * k), _MM_HINT_T0);
  const __m512 d = _mm512_loadu_ps(p.d + k * kSeqs);
  const int64_t g = p.bpg == 1 ? k : k / p.bpg;
#pragma GCC unroll 16
  for (int m = 0; m < kRows; ++m) {
    const __m512i isum = _mm512_load_si512(c + m * kSeqs);
    const __m512 sd = _mm512_mul_ps(d, _mm512_set1_ps(p.s[m * p.groups + g]));
    acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sd, acc[m]);
  }
  if (p.o != nullptr && (p.bpg == 1 || (k + 1) % p.bpg == 0)) {
    const __m512 e = _mm512_loadu_ps(p.egt + g * kSeqs);
#pragma GCC unroll 16
    for (int m = 0; m < kRows; ++m)
      acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(p.o[m * p.groups + g]), e, acc[m]);
  }
}

// Blocks are pipelined: step k issues block k, stores block k - kStoreLag's
// C tile to a buffer and runs the epilogue of block k - kEpilogueLag, so a
// tile store waits for a product issued two steps earlier and the vector loads
// read a buffer stored a step earlier (tile stores do not forward to loads).
constexpr int64_t kStoreLag = 2, kEpilogueLag = 3;
// The most blocks per pass over a panel (A: 16 KB, B: 16 KB per column tile;
// kernel_bench, 4-bit 1536 x 8960 at n = 16: 172-176 G MAC/s per core with
// passes of <= 32 blocks, 112-117 with one pass over all 280).
constexpr int64_t kPassBlocks = 32;
static_assert(kStoreLag < kCTiles && kEpilogueLag > kStoreLag, "pipeline depth");

template <int J, bool kSigned>
__attribute__((always_inline)) inline void step(const Panel& p, int64_t k, int32_t (*c)[kCTileInts],
                                                __m512 acc[kRows]) {
  if (k < p.k_end) issue<J, kSigned>(p, k);
  const int64_t ks = k - kStoreLag, ke = k - kEpilogueLag;
  if (ks >= p.k_begin && ks < p.k_end) store<(J + kCTiles - kStoreLag) % kCTiles>(c[ks % 2]);
  if (ke >= p.k_begin && ke < p.k_end) epilogue(p, ke, c[ke % 2], acc);
}

// Adds blocks [p.k_begin, p.k_end) of one panel and column tile to
// acc_mem [16 rows][16 sequences] (zeros first when k_begin == 0). kSigned:
// A holds signed codes u - zero (TDPBSSD, symmetric weights), else the
// unsigned codes u (TDPBUSD, asymmetric weights: no zero point).
template <bool kSigned>
void panel_tile(const Panel& p, float* acc_mem) {
  alignas(64) int32_t c[2][kCTileInts];
  __m512 acc[kRows];
  for (int m = 0; m < kRows; ++m)
    acc[m] = p.k_begin == 0 ? _mm512_setzero_ps() : _mm512_load_ps(acc_mem + m * kSeqs);
  for (int64_t k = p.k_begin; k < p.k_end + kEpilogueLag; k += kCTiles) {
    step<0, kSigned>(p, k, c, acc);
    step<1, kSigned>(p, k + 1, c, acc);
    step<2, kSigned>(p, k + 2, c, acc);
    step<3, kSigned>(p, k + 3, c, acc);
  }
  for (int m = 0; m < kRows; ++m) _mm512_store_ps(acc_mem + m * kSeqs, acc[m]);
}

}  // namespace

void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, const float* eg, float* y,
                    int64_t y_stride, int64_t r0, int64_t r1) {
  thread_local AlignedVector<uint8_t> a_buf;
  thread_local AlignedVector<float> s_buf, o_buf, egt_buf, acc_buf;
  const int64_t blocks = x.blocks, groups = w.groups_per_row(), tiles = x.amx_tiles;
  const bool asym = w.offsets != nullptr;
  Panel p{};
  p.groups = groups;
  p.bpg = w.spec.group_len(w.cols) / kQ8Block;
  const int zero = w.spec.symmetric ? w.spec.zero_code() : 0;
  // The unpack takes the zero point off: u ^ 0x80 for 8-bit, u - 8 for 4-bit.
  QWENQAT_CHECK(zero == 0 || zero == (w.spec.bits == 4 ? 8 : 128),
                "amx::q8_matmul_rows: ", w.spec.bits, "-bit zero point ", zero,
                " is not supported");
  uint8_t* a_panel = aligned_scratch(a_buf, static_cast<size_t>(kRows * w.cols));
  float* s_panel = aligned_scratch(s_buf, static_cast<size_t>(kRows * groups));
  float* o_panel = asym ? aligned_scratch(o_buf, static_cast<size_t>(kRows * groups)) : nullptr;
  float* egt = aligned_scratch(egt_buf, static_cast<size_t>(tiles * groups * kSeqs));
  float* acc = aligned_scratch(acc_buf, static_cast<size_t>(tiles * kRows * kSeqs));
  if (asym) {  // eg transposed per column tile: [tiles][groups][16], 0 past n
    std::fill(egt, egt + tiles * groups * kSeqs, 0.0f);
    for (int64_t b = 0; b < x.n; ++b)
      for (int64_t g = 0; g < groups; ++g)
        egt[((b / kSeqs) * groups + g) * kSeqs + b % kSeqs] = eg[b * groups + g];
  }
  p.s = s_panel;
  p.o = o_panel;
  p.row_bytes = w.row_bytes;
  p.next_s_lines = (kRows * groups * 2 + 63) / 64;
  p.block_bytes = w.spec.bits == 8 ? kBlockBytes : kBlockBytes / 2;
  p.a = a_panel;  // unpacked per pass below
  // Column c of a 16 x 16 accumulator tile: the gather indices m * 16.
  const __m512i column =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(kSeqs));
  load_tile_config();
  for (int64_t r = r0; r < r1; r += kRows) {
    const int64_t count = std::min<int64_t>(kRows, r1 - r);
    panel_floats(w.scales, groups, r, count, s_panel);
    if (asym) panel_floats(w.offsets, groups, r, count, o_panel);
    // Passes of equal length, at most kPassBlocks blocks, keep a pass's A and
    // B in L1 across the column tiles; acc carries the sums between passes
    // (the same order of operations as one pass).
    const int64_t passes = (blocks + kPassBlocks - 1) / kPassBlocks;
    const int64_t pass = (blocks + passes - 1) / passes;
    for (p.k_begin = 0; p.k_begin < blocks; p.k_begin = p.k_end) {
      p.k_end = std::min(blocks, p.k_begin + pass);
      unpack_panel(w, r, count, p.k_begin, p.k_end, zero, a_panel);
      p.a_stride = (p.k_end - p.k_begin) * kBlockBytes;
      asm volatile("" ::: "memory");  // A's scratch written before the tile loads
      for (int64_t t = 0; t < tiles; ++t) {
        p.b = x.qt.data() + t * blocks * kBTileBytes;
        p.d = x.dt.data() + t * blocks * kSeqs;
        p.egt = egt + t * groups * kSeqs;
        // The next panel (past r1 too: the next call's rows) streams in while
        // the first column tile runs.
        const bool next = t == 0 && r + 2 * kRows <= w.rows;
        p.next = next ? w.data + (r + kRows) * w.row_bytes : nullptr;
        p.next_s =
            next ? reinterpret_cast<const uint8_t*>(w.scales + (r + kRows) * groups) : nullptr;
        float* a = acc + t * kRows * kSeqs;
        if (zero != 0) {
          panel_tile<true>(p, a);
        } else {
          panel_tile<false>(p, a);
        }
      }
    }
    // Transposed into y: one gather of a column and one (masked) store of
    // 16 rows per sequence; 256 scalar stores to lines not in cache had filled
    // the store buffer (kernel_bench n = 128: ~8% of the time).
    const __mmask16 rows_mask = static_cast<__mmask16>((1u << count) - 1);
    for (int64_t t = 0; t < tiles; ++t) {
      const float* a = acc + t * kRows * kSeqs;
      const int64_t seqs = std::min<int64_t>(kSeqs, x.n - t * kSeqs);
      for (int64_t c = 0; c < seqs; ++c) {
        float* yb = y + (t * kSeqs + c) * y_stride + r;
        _mm512_mask_storeu_ps(yb, rows_mask, _mm512_i32gather_ps(column, a + c, 4));
      }
    }
  }
  _tile_release();
}

}  // namespace qwenqat::engine::amx

#pragma GCC diagnostic pop
#pragma GCC pop_options
