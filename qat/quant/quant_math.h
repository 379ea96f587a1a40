// The quantization numerics, written once, torch-free: choose_qparams,
// quantize, dequantize, fake_quantize for one group of weights. Training (the
// LibTorch fake-quant ops), export (packing) and the engine's kernels are all
// tested bit for bit against these functions. Formulas: docs/QUANTIZATION.md.
//
// Codes are stored unsigned, u in [0, 2^bits - 1]:
//   symmetric : w = float(int(u) - 2^(bits-1)) * scale          (llama.cpp Q4_0/Q8_0 form)
//   asymmetric: w = float(u) * scale + offset                   (llama.cpp Q4_1 form)
// scale and offset are fp16-representable floats (stored as fp16 in exports).
// Compile with -ffp-contract=off (the project does) so no FMA changes results.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace qwenqat::quant {

// Weight quantization of one [rows, cols] matrix; groups run along cols.
struct QuantSpec {
  int bits = 4;         // 2..8
  int group_size = 32;  // elements per group; 0 = per channel (one group per row)
  bool symmetric = true;

  int levels() const { return 1 << bits; }
  int umax() const { return levels() - 1; }                          // largest unsigned code
  int zero_code() const { return symmetric ? 1 << (bits - 1) : 0; }  // u of q=0 (symmetric)
  int64_t group_len(int64_t cols) const { return group_size == 0 ? cols : group_size; }
  int64_t groups_per_row(int64_t cols) const { return cols / group_len(cols); }
  // Throws qwenqat::Error naming `tensor` if bits are out of range or the group
  // size does not divide cols.
  void validate(int64_t cols, const std::string& tensor) const;
  // Canonical name: "w4g32", "w8c" (per channel), "w4g128a" (asymmetric).
  std::string name() const;
  bool operator==(const QuantSpec&) const = default;
};

// Parses a canonical spec name: "w<bits>g<group>" or "w<bits>c" (per channel),
// with a trailing "a" for asymmetric, e.g. "w4g32", "w8c", "w4g128a". Throws
// qwenqat::Error quoting `name` and the accepted forms when it does not parse.
QuantSpec parse_spec(const std::string& name);

// The smallest scale choose_qparams produces: 2^-14, the smallest normal fp16.
// A computed scale that is zero or would round to an fp16 subnormal (all-zero
// or tiny groups) is replaced by it, so nothing divides by 0.
inline constexpr float kMinScale = 6.103515625e-05f;
// The largest finite fp16; scales and offsets are clamped to +-kMaxHalf.
inline constexpr float kMaxHalf = 65504.0f;

// Parameters of one group. scale > 0 and both fp16-representable.
struct GroupParams {
  float scale = 1.0f;
  float offset = 0.0f;  // asymmetric only (float form of the zero point); 0 for symmetric
};

enum class ScaleInit {
  kMinMax,   // range of the group
  kMseClip,  // grid search over clipping ratios minimizing the group's squared error
};

// Chooses the parameters of one group of n >= 1 finite weights (fp16-rounded,
// scale in [kMinScale, kMaxHalf]). Throws qwenqat::Error on a non-finite weight.
GroupParams choose_qparams(const float* w, int64_t n, const QuantSpec& spec,
                           ScaleInit init = ScaleInit::kMinMax);

// Rounds one weight to its unsigned code: nearest, ties to even (std::nearbyint,
// the same as torch.round), clamped to [0, umax]:
//   symmetric : u = clamp(nearbyint(w / scale), -zero_code, umax - zero_code) + zero_code
//   asymmetric: u = clamp(nearbyint((w - offset) / scale), 0, umax)
// A NaN weight maps to the code of 0 (symmetric) or code 0 (asymmetric).
uint8_t quantize_one(float w, const GroupParams& p, const QuantSpec& spec);
float dequantize_one(uint8_t u, const GroupParams& p, const QuantSpec& spec);
inline float fake_quantize_one(float w, const GroupParams& p, const QuantSpec& spec) {
  return dequantize_one(quantize_one(w, p, spec), p, spec);
}

// Per-token dynamic symmetric activation quantization (the "a8" of w4g32a8):
// one scale per token (a row of n inputs of a linear layer), chosen at run time,
//   qmax = 2^(bits-1) - 1
//   s    = max_i |x_i| / qmax            (float32 division; 1 for an all-zero row)
//   q_i  = clamp(nearbyint(x_i / s), -qmax - 1, qmax)      (ties to even)
//   x_i' = q_i * s
// |x_i / s| <= qmax * (1 + 2^-24), so -qmax - 1 never occurs in practice.
// qat::fake_quantize_per_token (LibTorch, training) and the engine's
// per-token kernels are tested bit for bit against these. bits: 2..8.
float activation_qmax(int bits);  // throws qwenqat::Error unless 2 <= bits <= 8
float choose_token_scale(const float* x, int64_t n, int bits);
inline int quantize_activation(float x, float s, float qmax) {
  return static_cast<int>(std::fmin(qmax, std::fmax(-qmax - 1.0f, std::nearbyint(x / s))));
}

// A whole matrix quantized: unpacked codes (one byte per element) and fp16
// parameters. This is what qat::convert produces and export packs.
struct QuantizedMatrix {
  QuantSpec spec;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;     // [rows, cols] unsigned codes
  std::vector<uint16_t> scales;   // [rows, groups_per_row] fp16 bits
  std::vector<uint16_t> offsets;  // [rows, groups_per_row] fp16 bits; empty if symmetric

  GroupParams params(int64_t row, int64_t group) const;
  // Throws qwenqat::Error naming `tensor` if the spec is invalid for cols, a
  // vector has the wrong size, a code exceeds umax or a scale is not a positive
  // finite fp16 (offsets: finite).
  void validate(const std::string& tensor) const;
};

// Quantizes w ([rows, cols] row-major float32) choosing params per group.
// Throws qwenqat::Error on an invalid spec/shape or a non-finite weight.
QuantizedMatrix quantize_matrix(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                                ScaleInit init = ScaleInit::kMinMax);
// Quantizes with given parameters (e.g. learned scales from QAT): scales
// [rows, groups_per_row] fp16 bits, each positive and finite; offsets the same
// shape (asymmetric) or empty (symmetric). Throws qwenqat::Error otherwise.
QuantizedMatrix quantize_matrix_with(const float* w, int64_t rows, int64_t cols,
                                     const QuantSpec& spec, std::vector<uint16_t> scales,
                                     std::vector<uint16_t> offsets);
// out: rows*cols floats. Throws if q's vectors do not match its shape.
void dequantize_matrix(const QuantizedMatrix& q, float* out);

}  // namespace qwenqat::quant
