// Implementation of packed_tensor.h: bit packing of quantized codes per row
// (4-bit in llama.cpp's 32-element chunk order, 8-bit bytes, other widths as a
// dense LSB-first bit stream) and the scalar reference row dequantizer.
#include "export/format/packed_tensor.h"

#include <algorithm>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::format {
namespace {

constexpr int64_t kChunk = 32;  // 4-bit chunk: 32 codes in 16 bytes

// Code j of a packed row.
inline uint8_t code_at(const uint8_t* row, int64_t j, int bits) {
  if (bits == 8) return row[j];
  if (bits == 4) {
    const int64_t chunk = j / kChunk, k = j % kChunk;
    const uint8_t b = row[chunk * 16 + (k & 15)];
    return k < 16 ? uint8_t(b & 0x0f) : uint8_t(b >> 4);
  }
  const int64_t bit = j * bits;
  const int64_t byte = bit >> 3;
  const int shift = int(bit & 7);
  uint32_t v = row[byte];
  if (shift + bits > 8) v |= uint32_t(row[byte + 1]) << 8;
  return uint8_t((v >> shift) & ((1u << bits) - 1));
}

void pack_row(const uint8_t* codes, int64_t cols, const quant::QuantSpec& spec, uint8_t* out) {
  const int bits = spec.bits;
  if (bits == 8) {
    std::copy(codes, codes + cols, out);
    return;
  }
  if (bits == 4) {
    const uint8_t pad = uint8_t(spec.zero_code());
    const int64_t chunks = (cols + kChunk - 1) / kChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      for (int64_t j = 0; j < 16; ++j) {
        const int64_t lo = c * kChunk + j, hi = lo + 16;
        const uint8_t a = lo < cols ? codes[lo] : pad;
        const uint8_t b = hi < cols ? codes[hi] : pad;
        out[c * 16 + j] = uint8_t(a | (b << 4));
      }
    }
    return;
  }
  for (int64_t j = 0; j < cols; ++j) {
    const int64_t bit = j * bits;
    const int64_t byte = bit >> 3;
    const int shift = int(bit & 7);
    const uint32_t v = uint32_t(codes[j]) << shift;
    out[byte] = uint8_t(out[byte] | (v & 0xff));
    if (shift + bits > 8) out[byte + 1] = uint8_t(out[byte + 1] | (v >> 8));
  }
}

}  // namespace

int64_t packed_row_bytes(int64_t cols, int bits) {
  QWENQAT_CHECK(bits >= 2 && bits <= 8, "packed_row_bytes: bits must be 2..8, got ", bits);
  QWENQAT_CHECK(cols >= 0, "packed_row_bytes: negative column count ", cols);
  if (bits == 8) return cols;
  if (bits == 4) return (cols + kChunk - 1) / kChunk * 16;
  return (cols * bits + 7) / 8;
}

PackedMatrix pack(const quant::QuantizedMatrix& q) {
  q.validate("pack");
  PackedMatrix p;
  p.spec = q.spec;
  p.rows = q.rows;
  p.cols = q.cols;
  p.row_bytes = packed_row_bytes(q.cols, q.spec.bits);
  p.data.assign(size_t(p.rows * p.row_bytes), 0);
  for (int64_t r = 0; r < q.rows; ++r) {
    pack_row(q.codes.data() + r * q.cols, q.cols, q.spec, p.data.data() + r * p.row_bytes);
  }
  p.scales = q.scales;
  p.offsets = q.offsets;
  return p;
}

PackedView view_of(const PackedMatrix& p) {
  PackedView v;
  v.spec = p.spec;
  v.rows = p.rows;
  v.cols = p.cols;
  v.row_bytes = p.row_bytes;
  v.data = p.data.data();
  v.scales = p.scales.data();
  v.offsets = p.spec.symmetric ? nullptr : p.offsets.data();
  return v;
}

void validate_view(const PackedView& p, const std::string& tensor) {
  p.spec.validate(p.cols, tensor);
  QWENQAT_CHECK(p.rows > 0, tensor, ": packed matrix needs at least one row, got ", p.rows);
  const int64_t expect = packed_row_bytes(p.cols, p.spec.bits);
  QWENQAT_CHECK(p.row_bytes == expect, tensor, ": row_bytes ", p.row_bytes, " but ", p.cols,
                " columns of ", p.spec.bits, "-bit codes need ", expect);
  QWENQAT_CHECK(p.data != nullptr && p.scales != nullptr, tensor,
                ": packed view has no data or scales");
  QWENQAT_CHECK(p.spec.symmetric || p.offsets != nullptr, tensor, ": asymmetric packed view (",
                p.spec.name(), ") has no offsets");
}

quant::QuantizedMatrix unpack(const PackedView& p, const std::string& tensor) {
  validate_view(p, tensor);
  quant::QuantizedMatrix q;
  q.spec = p.spec;
  q.rows = p.rows;
  q.cols = p.cols;
  q.codes.resize(size_t(p.rows * p.cols));
  for (int64_t r = 0; r < p.rows; ++r) {
    const uint8_t* row = p.data + r * p.row_bytes;
    for (int64_t j = 0; j < p.cols; ++j)
      q.codes[size_t(r * p.cols + j)] = code_at(row, j, p.spec.bits);
  }
  const size_t n = size_t(p.rows * p.groups_per_row());
  q.scales.assign(p.scales, p.scales + n);
  if (!p.spec.symmetric) q.offsets.assign(p.offsets, p.offsets + n);
  q.validate(tensor);
  return q;
}

void dequantize_row(const PackedView& p, int64_t r, float* out) {
  QWENQAT_CHECK(r >= 0 && r < p.rows, "dequantize_row: row ", r, " out of range [0, ", p.rows, ")");
  const int64_t g = p.spec.group_len(p.cols), groups = p.groups_per_row();
  const uint8_t* row = p.data + r * p.row_bytes;
  for (int64_t k = 0; k < groups; ++k) {
    quant::GroupParams gp;
    gp.scale = fp16_to_f32(p.scales[r * groups + k]);
    if (!p.spec.symmetric) gp.offset = fp16_to_f32(p.offsets[r * groups + k]);
    for (int64_t j = k * g; j < (k + 1) * g; ++j) {
      out[j] = quant::dequantize_one(code_at(row, j, p.spec.bits), gp, p.spec);
    }
  }
}

}  // namespace qwenqat::format
