// Int8 activations: mode selection, the Q8 activation quantizer, the scalar
// reference of the int8-activation matmul and the dispatch to the AVX2 one
// (with AVX-VNNI where the CPU has it), the AVX-512 VNNI one or the AMX one.
#include "inference/kernels/act_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "data/util/check.h"
#include "data/util/half.h"
#include "inference/kernels/amx_kernels.h"
#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/avx512_kernels.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::engine {
namespace {

// The unsigned code of element e of a packed 4- or 8-bit row.
inline int code_at(const uint8_t* row, int bits, int64_t e) {
  if (bits == 8) return row[e];
  const int64_t c = e / 32, j = e % 32;
  return j < 16 ? (row[c * 16 + j] & 0x0f) : (row[c * 16 + j - 16] >> 4);
}

// sigma(m) of Q8Activations::qi: the block of a chunk of `chunk` blocks in
// interleaved lane m.
inline int64_t il_block(int64_t m, int64_t chunk) { return chunk / 4 * (m % 4) + m / 4; }

// The scalar interleave of rows [b0, b1) into x->qi, x->di, x->qsumi (sized
// for x->il_chunk by size_interleave).
void interleave_rows_scalar(Q8Activations* x, int64_t b0, int64_t b1) {
  const int64_t kChunk = x->il_chunk, kChunkBytes = kChunk * kQ8Block, chunks = x->il_chunks;
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t c = 0; c < chunks; ++c) {
      const int8_t* src = x->q.data() + b * x->cols + c * kChunkBytes;
      int8_t* dst = x->qi.data() + (b * chunks + c) * kChunkBytes;
      for (int64_t m = 0; m < kChunk; ++m) {
        const int64_t block = c * kChunk + il_block(m, kChunk), at = (b * chunks + c) * kChunk + m;
        const bool pad = block >= x->blocks;  // past the row: a zero block
        for (int64_t t = 0; t < 8; ++t) {
          int8_t* to = dst + (t * kChunk + m) * 4;
          if (pad) {
            std::memset(to, 0, 4);
          } else {
            std::memcpy(to, src + (block - c * kChunk) * kQ8Block + 4 * t, 4);
          }
        }
        x->di[at] = pad ? 0.0f : x->d[b * x->blocks + block];
        x->qsumi[at] = pad ? 0 : x->qsum[b * x->blocks + block];
      }
    }
  }
}

// Sizes x's interleaved layout for chunks of `chunk` blocks (every element is
// written by the interleave, so no zeroing beyond what resize does).
void size_interleave(Q8Activations* x, int64_t chunk) {
  QWENQAT_CHECK(chunk == 8 || chunk == 16, "interleave_q8: chunk ", chunk, " is not 8 or 16");
  const int64_t chunks = (x->blocks + chunk - 1) / chunk;
  x->il_chunk = chunk;
  x->il_chunks = chunks;
  x->qi.resize(static_cast<size_t>(x->n * chunks * chunk * kQ8Block));
  x->di.resize(static_cast<size_t>(x->n * chunks * chunk));
  x->qsumi.resize(static_cast<size_t>(x->n * chunks * chunk));
}

// Interleaves rows [b0, b1): with AVX-512 (the weight rows' transposes) where
// the CPU has it and the chunk is 16, else the scalar loop; the same bytes.
void interleave_rows(Q8Activations* x, int64_t b0, int64_t b1) {
  if (x->il_chunk == 16 && active_isa() == KernelIsa::kAvx2 && cpu_has_avx512_vnni()) {
    avx512::interleave_q8_rows(x, b0, b1);
  } else {
    interleave_rows_scalar(x, b0, b1);
  }
}

// Sizes the AMX tile layout (zeroed: sequences past n are 0).
void size_amx(Q8Activations* x) {
  constexpr int64_t kSeqs = amx::kTileSeqs, kTileBytes = kSeqs * kQ8Block;
  const int64_t tiles = (x->n + kSeqs - 1) / kSeqs;
  x->amx_tiles = tiles;
  x->qt.assign(static_cast<size_t>(tiles * x->blocks * kTileBytes), 0);
  x->dt.assign(static_cast<size_t>(tiles * x->blocks * kSeqs), 0.0f);
}

void layout_amx_rows(Q8Activations* x, int64_t b0, int64_t b1) {
  constexpr int64_t kSeqs = amx::kTileSeqs, kTileBytes = kSeqs * kQ8Block;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t t = b / kSeqs, c = b % kSeqs;
    for (int64_t k = 0; k < x->blocks; ++k) {
      const int8_t* src = x->q.data() + b * x->cols + k * kQ8Block;
      int8_t* dst = x->qt.data() + (t * x->blocks + k) * kTileBytes + c * 4;
      for (int64_t i = 0; i < kQ8Block / 4; ++i) std::memcpy(dst + i * kSeqs * 4, src + 4 * i, 4);
      x->dt[(t * x->blocks + k) * kSeqs + c] = x->d[b * x->blocks + k];
    }
  }
}

// Rows [b0, b1) of q, d, qsum laid out for the kernels size_q8 chose.
void layout_rows(Q8Activations* x, int64_t b0, int64_t b1) {
  if (x->il_chunk) interleave_rows(x, b0, b1);
  if (x->amx_tiles) layout_amx_rows(x, b0, b1);
}

}  // namespace

const char* act_quant_name(ActQuant a) {
  return a == ActQuant::kQ8 ? "q8" : a == ActQuant::kNone ? "none" : "auto";
}

ActQuant parse_act_quant(const std::string& s, const std::string& what) {
  if (s == "auto") return ActQuant::kAuto;
  if (s == "none") return ActQuant::kNone;
  if (s == "q8") return ActQuant::kQ8;
  fail(what, ": unknown activation quantization '", s, "'; use auto, none or q8");
}

void size_q8(int64_t n, int64_t cols, Q8Activations* out) {
  QWENQAT_CHECK(cols > 0 && cols % kQ8Block == 0, "int8 activations need a row length that is a ",
                "multiple of ", kQ8Block, ", got ", cols);
  out->n = n;
  out->cols = cols;
  out->blocks = cols / kQ8Block;
  out->q.resize(static_cast<size_t>(n * cols));
  out->d.resize(static_cast<size_t>(n * out->blocks));
  out->e.resize(static_cast<size_t>(n * out->blocks));
  out->qsum.resize(static_cast<size_t>(n * out->blocks));
  out->il_chunk = 0;
  out->il_chunks = 0;
  out->amx_tiles = 0;
  if (const int64_t chunk = q8_interleave_chunk()) size_interleave(out, chunk);
  if (active_isa() == KernelIsa::kAvx2 && cpu_has_amx() && n >= kAmxMinBatch) size_amx(out);
}

void quantize_per_token(const float* x, int64_t n, int64_t x_stride, int64_t cols, int bits,
                        Q8Activations* out) {
  size_q8(n, cols, out);
  quantize_per_token_rows(x, x_stride, bits, 0, n, out);
}

void quantize_per_token_rows(const float* x, int64_t x_stride, int bits, int64_t b0, int64_t b1,
                             Q8Activations* out) {
  const float qmax = quant::activation_qmax(bits);
  const int64_t cols = out->cols;
  for (int64_t b = b0; b < b1; ++b) {
    const float* xs = x + b * x_stride;
    const float s = quant::choose_token_scale(xs, cols, bits);
    int8_t* q = out->q.data() + b * cols;
    for (int64_t k = 0; k < out->blocks; ++k) {
      int32_t qsum = 0;
      for (int64_t i = k * kQ8Block; i < (k + 1) * kQ8Block; ++i) {
        q[i] = static_cast<int8_t>(quant::quantize_activation(xs[i], s, qmax));
        qsum += q[i];
      }
      out->d[b * out->blocks + k] = s;
      out->e[b * out->blocks + k] = s * static_cast<float>(qsum);
      out->qsum[b * out->blocks + k] = qsum;
    }
  }
  layout_rows(out, b0, b1);
}

void fake_quantize_per_token(float* x, int64_t n, int64_t stride, int64_t cols, int bits) {
  const float qmax = quant::activation_qmax(bits);
  for (int64_t b = 0; b < n; ++b) {
    float* xs = x + b * stride;
    const float s = quant::choose_token_scale(xs, cols, bits);
    for (int64_t i = 0; i < cols; ++i)
      xs[i] = static_cast<float>(quant::quantize_activation(xs[i], s, qmax)) * s;
  }
}

void quantize_q8(const float* x, int64_t n, int64_t x_stride, int64_t cols, Q8Activations* out) {
  size_q8(n, cols, out);
  quantize_q8_rows(x, x_stride, 0, n, out);
}

void quantize_q8_rows(const float* x, int64_t x_stride, int64_t b0, int64_t b1,
                      Q8Activations* out) {
  const int64_t cols = out->cols, blocks = out->blocks;
  if (active_isa() == KernelIsa::kAvx2) {  // the same bits, vectorized
    avx2::quantize_q8_rows(x + b0 * x_stride, b1 - b0, x_stride, cols, out->q.data() + b0 * cols,
                           out->d.data() + b0 * blocks, out->e.data() + b0 * blocks,
                           out->qsum.data() + b0 * blocks);
    layout_rows(out, b0, b1);
    return;
  }
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t k = 0; k < blocks; ++k) {
      const float* xs = x + b * x_stride + k * kQ8Block;
      int8_t* q = out->q.data() + b * cols + k * kQ8Block;
      float amax = 0.0f;
      for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(xs[i]));
      const float d = amax / 127.0f;
      const float id = d > 0.0f ? 1.0f / d : 0.0f;
      int32_t qsum = 0;
      for (int64_t i = 0; i < kQ8Block; ++i) {
        const float v = std::nearbyint(xs[i] * id);
        q[i] = static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, v)));
        qsum += q[i];
      }
      out->d[b * blocks + k] = d;
      out->e[b * blocks + k] = d * static_cast<float>(qsum);
      out->qsum[b * blocks + k] = qsum;
    }
  }
  layout_rows(out, b0, b1);
}

int64_t q8_interleave_chunk() {
  if (active_isa() != KernelIsa::kAvx2) return 0;
  return cpu_has_avx512_vnni() ? 16 : 8;
}

void interleave_q8(Q8Activations* x, int64_t chunk) {
  size_interleave(x, chunk);
  interleave_rows(x, 0, x->n);
}

void layout_amx(Q8Activations* x) {
  size_amx(x);
  layout_amx_rows(x, 0, x->n);
}

void q8_group_e_sums(const Q8Activations& x, int64_t groups, std::vector<float>* out) {
  const int64_t bpg = x.blocks / groups;  // blocks per group
  out->assign(static_cast<size_t>(x.n * groups), 0.0f);
  for (int64_t b = 0; b < x.n; ++b)
    for (int64_t k = 0; k < x.blocks; ++k) (*out)[b * groups + k / bpg] += x.e[b * x.blocks + k];
}

bool supports_q8(const format::PackedView& w) {
  return (w.spec.bits == 4 || w.spec.bits == 8) && w.cols % kQ8Block == 0 &&
         w.spec.group_len(w.cols) % kQ8Block == 0;
}

void q8_matmul_rows_reference(const format::PackedView& w, const Q8Activations& x, float* y,
                              int64_t y_stride, int64_t r0, int64_t r1) {
  const int64_t groups = w.groups_per_row();
  const int64_t bpg = w.spec.group_len(w.cols) / kQ8Block;  // blocks per group
  const int zero = w.spec.symmetric ? w.spec.zero_code() : 0;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + r * w.row_bytes;
    for (int64_t b = 0; b < x.n; ++b) {
      const int8_t* q = x.q.data() + b * x.cols;
      float acc = 0.0f;
      for (int64_t k = 0; k < x.blocks; ++k) {
        int32_t isum = 0;
        for (int64_t i = k * kQ8Block; i < (k + 1) * kQ8Block; ++i)
          isum += (code_at(row, w.spec.bits, i) - zero) * q[i];
        const int64_t g = r * groups + k / bpg;
        acc += static_cast<float>(isum) * (fp16_to_f32(w.scales[g]) * x.d[b * x.blocks + k]);
        if (w.offsets) acc += fp16_to_f32(w.offsets[g]) * x.e[b * x.blocks + k];
      }
      y[b * y_stride + r] = acc;
    }
  }
}

void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, float* y, int64_t y_stride,
                    int64_t r0, int64_t r1, KernelIsa isa) {
  QWENQAT_CHECK(supports_q8(w) && x.cols == w.cols,
                "q8_matmul_rows: weights and int8 activations do not fit (", w.rows, "x", w.cols,
                " ", w.spec.name(), " with rows of ", x.cols, ")");
  if (isa == KernelIsa::kAvx2) {
    // The kernel wants the sums of e per weight group (= e for 32-groups).
    const int64_t groups = w.groups_per_row();
    const float* eg = x.e.data();
    thread_local std::vector<float> sums;
    if (x.blocks > groups) {
      q8_group_e_sums(x, groups, &sums);
      eg = sums.data();
    }
    if (x.amx_tiles > 0 && cpu_has_amx()) {
      amx::q8_matmul_rows(w, x, eg, y, y_stride, r0, r1);
    } else if (cpu_has_avx512_vnni() && avx512::supports_q8(w)) {
      avx512::q8_matmul_rows(w, x, eg, y, y_stride, r0, r1);
    } else if (cpu_has_avx_vnni()) {
      avx2::q8_matmul_rows_vnni(w, x, eg, y, y_stride, r0, r1);
    } else {
      avx2::q8_matmul_rows(w, x, eg, y, y_stride, r0, r1);
    }
  } else {
    q8_matmul_rows_reference(w, x, y, y_stride, r0, r1);
  }
}

}  // namespace qwenqat::engine
