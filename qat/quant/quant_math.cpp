// Implementation of quant_math.h: the torch-free quantization numerics. Every
// formula here is normative (docs/QUANTIZATION.md); the LibTorch fake-quant op
// and the engine kernels replicate these exact float operations.
#include "qat/quant/quant_math.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::quant {
namespace {

// Clip ratios tried by ScaleInit::kMseClip: 1.0, 0.975, ..., 0.5.
constexpr int kClipSteps = 21;
constexpr float kClipStep = 0.025f;

// fp16-rounds a scale and keeps it in [kMinScale, kMaxHalf].
float finish_scale(float raw) {
  const float s = round_to_fp16(std::min(raw, kMaxHalf));
  return s >= kMinScale ? s : kMinScale;  // also catches 0 and subnormals
}

float finish_offset(float raw) { return round_to_fp16(std::clamp(raw, -kMaxHalf, kMaxHalf)); }

// Min-max parameters of the range [lo, hi] (lo <= hi).
GroupParams params_for_range(float lo, float hi, const QuantSpec& spec) {
  GroupParams p;
  if (spec.symmetric) {
    const float amax = std::max(std::fabs(lo), std::fabs(hi));
    p.scale = finish_scale(amax / float((1 << (spec.bits - 1)) - 1));
  } else {
    p.offset = finish_offset(lo);
    p.scale = finish_scale((hi - p.offset) / float(spec.umax()));
  }
  return p;
}

double squared_error(const float* w, int64_t n, const GroupParams& p, const QuantSpec& spec) {
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(fake_quantize_one(w[i], p, spec)) - double(w[i]);
    err += d * d;
  }
  return err;
}

bool valid_scale_bits(uint16_t h) { return (h & 0x8000) == 0 && h != 0 && (h & 0x7c00) != 0x7c00; }

}  // namespace

void QuantSpec::validate(int64_t cols, const std::string& tensor) const {
  QWENQAT_CHECK(bits >= 2 && bits <= 8, tensor, ": quantization bits must be 2..8, got ", bits);
  QWENQAT_CHECK(group_size >= 0, tensor, ": group size must be positive (or 0 = per channel), got ",
                group_size);
  QWENQAT_CHECK(cols > 0, tensor, ": cannot quantize a matrix with ", cols, " columns");
  QWENQAT_CHECK(group_size == 0 || cols % group_size == 0, tensor, ": group size ", group_size,
                " does not divide the ", cols,
                " input columns; use a group size that divides it or per-channel (w", bits, "c)");
}

std::string QuantSpec::name() const {
  std::ostringstream os;
  os << 'w' << bits;
  if (group_size == 0) {
    os << 'c';
  } else {
    os << 'g' << group_size;
  }
  if (!symmetric) os << 'a';
  return os.str();
}

QuantSpec parse_spec(const std::string& name) {
  auto bad = [&]() {
    fail("unknown quantization scheme '", name,
         "': expected w<bits>g<group>[a] or w<bits>c[a] with bits 2..8 and a positive group "
         "size, e.g. w4g32, w8g32, w4g128a (asymmetric), w8c (per channel)");
  };
  size_t i = 0;
  auto number = [&](int64_t max) {
    size_t start = i;
    int64_t v = 0;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') {
      v = v * 10 + (name[i] - '0');
      if (v > max) bad();
      ++i;
    }
    if (i == start || name[start] == '0') bad();
    return v;
  };
  QuantSpec spec;
  if (name.empty() || name[i++] != 'w') bad();
  spec.bits = int(number(8));
  if (spec.bits < 2) bad();
  if (i >= name.size()) bad();
  if (name[i] == 'c') {
    spec.group_size = 0;
    ++i;
  } else if (name[i] == 'g') {
    ++i;
    spec.group_size = int(number(1 << 30));
  } else {
    bad();
  }
  if (i < name.size() && name[i] == 'a') {
    spec.symmetric = false;
    ++i;
  }
  if (i != name.size()) bad();
  return spec;
}

GroupParams choose_qparams(const float* w, int64_t n, const QuantSpec& spec, ScaleInit init) {
  QWENQAT_CHECK(n > 0, "choose_qparams: empty group");
  float lo = w[0], hi = w[0];
  for (int64_t i = 0; i < n; ++i) {
    QWENQAT_CHECK(std::isfinite(w[i]), "cannot quantize a non-finite weight (", w[i], " at index ",
                  i, " of its group); check the checkpoint for NaN/inf");
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  GroupParams best = params_for_range(lo, hi, spec);
  if (init == ScaleInit::kMinMax) return best;
  double best_err = squared_error(w, n, best, spec);
  for (int step = 1; step < kClipSteps; ++step) {
    const float ratio = 1.0f - float(step) * kClipStep;
    const GroupParams p = params_for_range(lo * ratio, hi * ratio, spec);
    const double err = squared_error(w, n, p, spec);
    if (err < best_err) {
      best_err = err;
      best = p;
    }
  }
  return best;
}

float activation_qmax(int bits) {
  QWENQAT_CHECK(bits >= 2 && bits <= 8, "per-token activation quantization needs 2..8 bits, got ",
                bits);
  return static_cast<float>((1 << (bits - 1)) - 1);
}

float choose_token_scale(const float* x, int64_t n, int bits) {
  const float qmax = activation_qmax(bits);
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float s = amax / qmax;
  return s == 0.0f ? 1.0f : s;
}

uint8_t quantize_one(float w, const GroupParams& p, const QuantSpec& spec) {
  if (spec.symmetric) {
    const int zc = 1 << (spec.bits - 1);
    float r = std::nearbyint(w / p.scale);
    if (std::isnan(r)) r = 0.0f;
    r = std::clamp(r, float(-zc), float(zc - 1));
    return uint8_t(int(r) + zc);
  }
  float r = std::nearbyint((w - p.offset) / p.scale);
  if (std::isnan(r)) r = 0.0f;
  r = std::clamp(r, 0.0f, float(spec.umax()));
  return uint8_t(int(r));
}

float dequantize_one(uint8_t u, const GroupParams& p, const QuantSpec& spec) {
  if (spec.symmetric) return float(int(u) - (1 << (spec.bits - 1))) * p.scale;
  return float(u) * p.scale + p.offset;
}

GroupParams QuantizedMatrix::params(int64_t row, int64_t group) const {
  const int64_t i = row * spec.groups_per_row(cols) + group;
  GroupParams p;
  p.scale = fp16_to_f32(scales[size_t(i)]);
  if (!spec.symmetric) p.offset = fp16_to_f32(offsets[size_t(i)]);
  return p;
}

void QuantizedMatrix::validate(const std::string& tensor) const {
  spec.validate(cols, tensor);
  QWENQAT_CHECK(rows > 0, tensor, ": a quantized matrix needs at least one row, got ", rows);
  const size_t n_params = size_t(rows * spec.groups_per_row(cols));
  QWENQAT_CHECK(codes.size() == size_t(rows * cols), tensor, ": ", codes.size(), " codes for a [",
                rows, ", ", cols, "] matrix");
  QWENQAT_CHECK(scales.size() == n_params, tensor, ": ", scales.size(), " scales, expected ",
                n_params, " (", spec.name(), ")");
  QWENQAT_CHECK(offsets.size() == (spec.symmetric ? 0 : n_params), tensor, ": ", offsets.size(),
                " offsets, expected ", spec.symmetric ? 0 : n_params, " (", spec.name(), ")");
  const int umax = spec.umax();
  for (size_t i = 0; i < codes.size(); ++i) {
    QWENQAT_CHECK(codes[i] <= umax, tensor, ": code ", int(codes[i]), " at element ", i,
                  " exceeds ", umax, " for ", spec.bits, "-bit quantization");
  }
  for (size_t i = 0; i < scales.size(); ++i) {
    QWENQAT_CHECK(valid_scale_bits(scales[i]), tensor, ": scale ", i, " (fp16 0x", std::hex,
                  scales[i], std::dec, " = ", fp16_to_f32(scales[i]),
                  ") must be positive and finite");
  }
  for (size_t i = 0; i < offsets.size(); ++i) {
    QWENQAT_CHECK((offsets[i] & 0x7c00) != 0x7c00, tensor, ": offset ", i, " is not finite");
  }
}

QuantizedMatrix quantize_matrix(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                                ScaleInit init) {
  spec.validate(cols, "quantize_matrix");
  QWENQAT_CHECK(rows > 0, "quantize_matrix: need at least one row, got ", rows);
  const int64_t g = spec.group_len(cols), groups = spec.groups_per_row(cols);
  std::vector<uint16_t> scales(size_t(rows * groups)), offsets;
  if (!spec.symmetric) offsets.resize(scales.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < groups; ++k) {
      const GroupParams p = choose_qparams(w + r * cols + k * g, g, spec, init);
      scales[size_t(r * groups + k)] = f32_to_fp16(p.scale);
      if (!spec.symmetric) offsets[size_t(r * groups + k)] = f32_to_fp16(p.offset);
    }
  }
  return quantize_matrix_with(w, rows, cols, spec, std::move(scales), std::move(offsets));
}

QuantizedMatrix quantize_matrix_with(const float* w, int64_t rows, int64_t cols,
                                     const QuantSpec& spec, std::vector<uint16_t> scales,
                                     std::vector<uint16_t> offsets) {
  QuantizedMatrix q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.codes.assign(size_t(std::max<int64_t>(rows, 0) * std::max<int64_t>(cols, 0)), 0);
  q.scales = std::move(scales);
  q.offsets = std::move(offsets);
  q.validate("quantize_matrix_with");
  const int64_t g = spec.group_len(cols), groups = spec.groups_per_row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < groups; ++k) {
      const GroupParams p = q.params(r, k);
      for (int64_t i = r * cols + k * g, end = i + g; i < end; ++i) {
        QWENQAT_CHECK(std::isfinite(w[i]), "cannot quantize a non-finite weight (", w[i],
                      ") at row ", r, ", column ", i - r * cols,
                      "; check the checkpoint for NaN/inf");
        q.codes[size_t(i)] = quantize_one(w[i], p, spec);
      }
    }
  }
  return q;
}

void dequantize_matrix(const QuantizedMatrix& q, float* out) {
  q.validate("dequantize_matrix");
  const int64_t g = q.spec.group_len(q.cols), groups = q.spec.groups_per_row(q.cols);
  for (int64_t r = 0; r < q.rows; ++r) {
    for (int64_t k = 0; k < groups; ++k) {
      const GroupParams p = q.params(r, k);
      for (int64_t i = r * q.cols + k * g, end = i + g; i < end; ++i) {
        out[i] = dequantize_one(q.codes[size_t(i)], p, q.spec);
      }
    }
  }
}

}  // namespace qwenqat::quant
