// Opt-in int8 activations for the packed matmuls (llama.cpp Q8_0 style):
// each activation row is quantized in blocks of kQ8Block elements to int8
// codes q with one float scale d per block, and the products with 4- or 8-bit
// packed weights are computed as integer dot products per block, scaled once
// per block:
//   y[b, r] = sum_k float(isum_k) * (s_g(k) * d_k)      (+ sum_k o_g(k) * e_k)
//   isum_k  = sum_{i in block k} (int(u_i) - zero) * q_i   (exact, int32)
// where s, o are the weight group's fp16 scale and offset (offset only for
// asymmetric weights, zero = 0 then) and e_k = d_k * sum_i q_i.
// This changes the numerics (x is rounded to 8 bits per block), so it is off
// by default and selected with --act-quant q8.
// Per-token activations (quantize_per_token) are the model's own numerics
// when it was trained with activation quantization (qwenqat train, e.g.
// preset w4g32a8): the export records "activation_bits" per layer and
// ActQuant::kAuto (the default) applies exactly the trained quantizer,
// qat::fake_quantize_per_token, with the same formula and rounding.
// Two implementations, chosen by KernelIsa: the scalar reference
// (q8_matmul_rows_reference, the formula above in sequential order) and the
// AVX2 kernel (avx2_q8_impl.h: _mm256_maddubs_epi16, or vpdpbusd where the
// CPU has AVX-VNNI, with identical results), the AVX-512 VNNI one
// (avx512_q8.cpp) and, for batches of kAmxMinBatch or more, the AMX one
// (amx_q8.cpp). Their integer block sums are identical; they differ only in
// the order of the float sums.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "export/format/packed_tensor.h"
#include "inference/kernels/aligned.h"
#include "inference/kernels/packed_matmul.h"

namespace qwenqat::engine {

// kAuto: each layer as its weights record (per-token int activations for
// layers trained with them, float for the others); kNone: float everywhere
// (ignores what the file records); kQ8: Q8 blocks for every layer that
// supports_q8(), float for the others.
enum class ActQuant { kAuto, kNone, kQ8 };

const char* act_quant_name(ActQuant a);  // "auto" | "none" | "q8"
// Parses "auto" | "none" | "q8"; `what` names the flag in the error.
ActQuant parse_act_quant(const std::string& s, const std::string& what);

constexpr int64_t kQ8Block = 32;

// n activation rows of `cols` elements (cols % kQ8Block == 0), quantized:
// d = max|x| / 127 per block, q = nearbyint(x * (1 / d)) in [-127, 127]
// (all zero when the block is zero, d = 0 then).
struct Q8Activations {
  int64_t n = 0, cols = 0, blocks = 0;  // blocks = cols / kQ8Block per row
  AlignedVector<int8_t> q;              // [n, cols]
  AlignedVector<float> d;               // [n, blocks] block scales
  AlignedVector<float> e;               // [n, blocks] d * sum(q of the block)
  AlignedVector<int32_t> qsum;          // [n, blocks] sum(q of the block)
  // 0 (qi, di empty), or the chunk length L of qi: 16 for the AVX-512
  // kernel, 8 for the AVX2 one.
  int64_t il_chunk = 0;
  // With qi: chunks per row, ceil(blocks / L); a last chunk of fewer than L
  // blocks is padded with blocks whose q, d and qsum are 0.
  int64_t il_chunks = 0;
  // Empty, or (interleave_q8) q of each row's L-block chunks in the order of
  // the kernels' 4 x 4 dword transpose: [n, il_chunks, 8, L, 4]; element
  // [b, c, t, m, j] = q[b, (Lc + sigma(m)) * 32 + 4t + j] (0 for blocks past
  // the row), sigma(m) = (L / 4) * (m % 4) + m / 4. The AVX-512 kernel takes
  // every chunk, the padded one included (zero products and zero d: its
  // missing blocks add exactly nothing); the AVX2 one the full chunks, and
  // the blocks past them from q.
  AlignedVector<int8_t> qi;
  // With qi: d in the same order, [n, il_chunks, L]; element [b, c, m] =
  // d[b, Lc + sigma(m)] (0 past the row).
  AlignedVector<float> di;
  // With qi: qsum in the same order, [n, il_chunks, L] (0 past the row).
  AlignedVector<int32_t> qsumi;
  // 0 (qt, dt empty), or (layout_amx) the number of 16-sequence
  // column tiles, ceil(n / 16), of the AMX tile layout below.
  int64_t amx_tiles = 0;
  // q as TDPBUSD's B operand, one 8 x 64-byte tile per (column tile, block):
  // [amx_tiles, blocks, 8, 16, 4]; element [t, k, i, c, j] = q[16t + c, 32k +
  // 4i + j], 0 for sequences 16t + c >= n.
  AlignedVector<int8_t> qt;
  // d of the same sequences: [amx_tiles, blocks, 16], 0 past n.
  AlignedVector<float> dt;
};

// The chunk length the active kernels take interleaved activations in: 16
// with AVX-512 VNNI, 8 with AVX2, 0 (none) with the scalar kernels.
int64_t q8_interleave_chunk();

// Fills x->qi, x->di, x->qsumi and x->il_chunk = chunk (8 or 16) from x->q,
// x->d and x->qsum (above), with AVX-512 where the CPU has it (chunk 16) or
// the scalar loop (the same bytes). The quantizers lay out their rows the
// same way when size_q8 chose chunk = q8_interleave_chunk() != 0.
void interleave_q8(Q8Activations* x, int64_t chunk);

// The smallest batch the int8 products run on AMX tiles for (where the CPU
// has AMX): below it the AVX-512 kernel is faster (kernel_bench).
constexpr int64_t kAmxMinBatch = 8;

// Fills x->qt, x->dt and x->amx_tiles from x->q and x->d (above). The
// quantizers lay out their rows the same way when cpu_has_amx() and
// n >= kAmxMinBatch; q8_matmul_rows then uses the AMX kernel.
void layout_amx(Q8Activations* x);

// Sizes out for n rows of `cols` elements: q, d, e, qsum and the layouts the
// active kernels take (qi, di, qsumi with q8_interleave_chunk(); qt, dt on a
// CPU with AMX for n >= kAmxMinBatch). The buffers keep their capacity, and
// their contents are left to the quantizers below. Throws qwenqat::Error
// unless cols % kQ8Block == 0.
void size_q8(int64_t n, int64_t cols, Q8Activations* out);

// Quantizes x [n, cols] (row stride x_stride) into out (size_q8, then
// quantize_q8_rows over every row). Deterministic and the same for every ISA.
// Throws qwenqat::Error unless cols % kQ8Block == 0.
void quantize_q8(const float* x, int64_t n, int64_t x_stride, int64_t cols, Q8Activations* out);

// Rows [b0, b1) of quantize_q8 into out, sized by size_q8 (x points at row 0,
// rows of out->cols elements): q, d, e, qsum and the layouts size_q8 chose.
// Thread-safe on disjoint row ranges of one out; the same bytes as
// quantize_q8 for any split.
void quantize_q8_rows(const float* x, int64_t x_stride, int64_t b0, int64_t b1, Q8Activations* out);

// Per-token dynamic symmetric quantization, the engine form of
// qat::fake_quantize_per_token: per row b, qmax = 2^(bits-1) - 1,
//   s_b = max_i |x[b, i]| / qmax   (float32 division; s_b = 1 for a zero row)
//   q   = clamp(nearbyint(x[b, i] / s_b), -qmax - 1, qmax)
// (|x / s_b| <= qmax * (1 + 2^-24), so -qmax - 1 never occurs: codes fit the
// kernels' [-127, 127]). Stored as Q8Activations with every block scale d = s_b,
// so q8_matmul_rows computes sum_i (q_i * s_b) * w_i as integer block sums.
// bits in 2..8; cols % kQ8Block == 0 (else use fake_quantize_per_token).
void quantize_per_token(const float* x, int64_t n, int64_t x_stride, int64_t cols, int bits,
                        Q8Activations* out);
// Rows [b0, b1) of quantize_per_token into out, sized by size_q8; as
// quantize_q8_rows (thread-safe on disjoint row ranges, any split the same).
void quantize_per_token_rows(const float* x, int64_t x_stride, int bits, int64_t b0, int64_t b1,
                             Q8Activations* out);

// The same quantizer in float, in place: x[b, i] = q * s_b (rows of `cols`
// elements, row stride `stride`). For layers the int8 kernel does not cover.
void fake_quantize_per_token(float* x, int64_t n, int64_t stride, int64_t cols, int bits);

// out [x.n, groups] = the sums of x.e over the blocks of each weight group of
// `groups` groups per row (groups divides x.blocks): what the AVX2 kernels take.
void q8_group_e_sums(const Q8Activations& x, int64_t groups, std::vector<float>* out);

// True when w can be multiplied with Q8Activations: 4 or 8 bits, cols and the
// group length multiples of kQ8Block. Other layers keep float activations.
bool supports_q8(const format::PackedView& w);

// y[b * y_stride + r] for b < x.n, r in [r0, r1), by the formula at the top;
// requires supports_q8(w) and x.cols == w.cols. kScalar: the reference;
// kAvx2: the fastest kernel the CPU has (AMX when x carries its layout).
// Thread-safe on disjoint row ranges. The result of one (row, sequence) pair
// does not depend on r0, r1 or x.n, except that on a CPU with AMX a batch of
// kAmxMinBatch or more takes the AMX kernel, whose float sums are in another
// order than those of smaller batches.
void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, float* y, int64_t y_stride,
                    int64_t r0, int64_t r1, KernelIsa isa);

// The scalar reference of q8_matmul_rows (sequential sums over blocks).
void q8_matmul_rows_reference(const format::PackedView& w, const Q8Activations& x, float* y,
                              int64_t y_stride, int64_t r0, int64_t r1);

}  // namespace qwenqat::engine
