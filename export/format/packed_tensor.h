// Packed quantized weights as stored in exports and read by the engine.
// Torch-free. Layout (normative description: docs/FORMAT.md):
//   * each row packed independently into row_bytes = packed_row_bytes(cols, bits);
//   * 8 bits: one code per byte;
//   * 4 bits: the row is cut into chunks of 32 elements (the last one padded
//     with zero-point codes); chunk byte j (0..15) holds element j in its low
//     nibble and element j+16 in its high nibble (llama.cpp Q4_0/Q4_1 order);
//   * 2, 3, 5, 6, 7 bits: a dense LSB-first bit stream per row, padded to a byte;
//   * scales / offsets: fp16 bits, [rows, groups_per_row], row-major.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qat/quant/quant_math.h"

namespace qwenqat::format {

// Bytes of one packed row: cols (8 bits), 16 * ceil(cols / 32) (4 bits),
// ceil(cols * bits / 8) otherwise.
int64_t packed_row_bytes(int64_t cols, int bits);

// Owning packed matrix (what the exporter writes).
struct PackedMatrix {
  quant::QuantSpec spec;
  int64_t rows = 0, cols = 0, row_bytes = 0;
  std::vector<uint8_t> data;      // [rows, row_bytes]
  std::vector<uint16_t> scales;   // [rows, groups] fp16
  std::vector<uint16_t> offsets;  // [rows, groups] fp16; empty if symmetric
};

// Non-owning view (what the engine reads from a memory map). Pointers must
// stay valid while in use; read-only, safe to share between threads.
struct PackedView {
  quant::QuantSpec spec;
  int64_t rows = 0, cols = 0, row_bytes = 0;
  const uint8_t* data = nullptr;
  const uint16_t* scales = nullptr;
  const uint16_t* offsets = nullptr;  // nullptr if symmetric
  int64_t groups_per_row() const { return spec.groups_per_row(cols); }
};

// Packs validated codes (throws qwenqat::Error if q is inconsistent).
PackedMatrix pack(const quant::QuantizedMatrix& q);
// Unpacks to one code per byte; throws qwenqat::Error (naming `tensor`) if the
// view's spec, shape, row_bytes or pointers are inconsistent or a scale is not
// a positive finite fp16. unpack(view_of(pack(q))) == q.
quant::QuantizedMatrix unpack(const PackedView& p, const std::string& tensor = "packed tensor");
// A view of p's buffers; valid while p lives and is not resized.
PackedView view_of(const PackedMatrix& p);
// Checks a view's spec, shape, row_bytes and pointers (not its values).
void validate_view(const PackedView& p, const std::string& tensor);

// Dequantizes row `r` of a packed matrix into out[cols] with exactly the
// formulas of quant::dequantize_one (the scalar reference for the kernels).
void dequantize_row(const PackedView& p, int64_t r, float* out);

}  // namespace qwenqat::format
