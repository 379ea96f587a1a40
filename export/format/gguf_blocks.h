// llama.cpp (ggml) tensor types and quantization blocks, torch-free: the exact
// mapping between this project's QuantizedMatrix and ggml's Q8_0 / Q4_0 / Q4_1
// blocks, llama.cpp's dequantization formulas, and llama.cpp's reference
// quantizers (for comparing with files llama.cpp wrote). Formulas and the
// mapping: docs/QUANTIZATION.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qat/quant/quant_math.h"

namespace qwenqat::format {

// ggml tensor type ids as stored in GGUF tensor infos.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct GgmlTypeTraits {
  const char* name;    // "Q4_0"
  int64_t block_size;  // elements per block (1 for plain types)
  int64_t type_size;   // bytes per block
};
// Traits of a known type id; nullptr if this project does not know the id.
const GgmlTypeTraits* ggml_type_traits(uint32_t type);
// "Q4_0", or "type id N" for unknown ids.
std::string ggml_type_name(uint32_t type);
// True for the types this project can convert to float: F32, F16, BF16, Q8_0, Q4_0, Q4_1.
bool ggml_type_readable(GgmlType type);
// Bytes of a row of n elements; throws if n is not a multiple of the block size.
int64_t ggml_row_bytes(GgmlType type, int64_t n, const std::string& tensor);

inline constexpr int64_t kQK = 32;  // elements per Q8_0 / Q4_0 / Q4_1 block

// The blocks exactly as ggml lays them out (little-endian, packed).
struct BlockQ8_0 {
  uint16_t d;     // fp16 scale
  int8_t qs[32];  // w = qs[j] * d
};
struct BlockQ4_0 {
  uint16_t d;      // fp16 scale
  uint8_t qs[16];  // byte j: element j (low nibble), element j+16 (high); w = (nibble-8)*d
};
struct BlockQ4_1 {
  uint16_t d;  // fp16 scale
  uint16_t m;  // fp16 min; w = nibble*d + m
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ8_0) == 34, "ggml block_q8_0 is 34 bytes");
static_assert(sizeof(BlockQ4_0) == 18, "ggml block_q4_0 is 18 bytes");
static_assert(sizeof(BlockQ4_1) == 20, "ggml block_q4_1 is 20 bytes");

// The ggml type a quantization spec maps onto exactly: w8g32 -> Q8_0,
// w4g32 -> Q4_0, w4g32a -> Q4_1. Throws naming `tensor`, the spec and the
// supported ones otherwise.
GgmlType ggml_type_for(const quant::QuantSpec& spec, const std::string& tensor);

// QuantizedMatrix [rows, cols] -> rows * cols/32 blocks, row-major. Exact:
// d = scale bits, (m = offset bits), codes copied (Q8_0: qs = u - 128; Q4_0 and
// Q4_1: nibble = u). Throws if q's spec is not the block's or q is invalid.
std::vector<BlockQ8_0> to_q8_0(const quant::QuantizedMatrix& q, const std::string& tensor);
std::vector<BlockQ4_0> to_q4_0(const quant::QuantizedMatrix& q, const std::string& tensor);
std::vector<BlockQ4_1> to_q4_1(const quant::QuantizedMatrix& q, const std::string& tensor);
// Blocks -> QuantizedMatrix (the inverse). Throws if a block's scale is not a
// positive finite fp16 (llama.cpp writes negative Q4_0 scales, which have no
// exact QuantizedMatrix form; read such files with dequantize_blocks).
quant::QuantizedMatrix from_q8_0(const BlockQ8_0* b, int64_t rows, int64_t cols,
                                 const std::string& tensor);
quant::QuantizedMatrix from_q4_0(const BlockQ4_0* b, int64_t rows, int64_t cols,
                                 const std::string& tensor);
quant::QuantizedMatrix from_q4_1(const BlockQ4_1* b, int64_t rows, int64_t cols,
                                 const std::string& tensor);

// llama.cpp's dequantization (dequantize_row_q8_0 etc.): n elements (a
// multiple of 32) from raw block bytes (any alignment) into out[n].
//   Q8_0: qs*d   Q4_0: (nibble-8)*d   Q4_1: nibble*d + m
void dequantize_blocks(GgmlType type, const uint8_t* blocks, int64_t n, float* out);

// llama.cpp's reference quantizers as gguf-py (which wrote the shared
// reference files) implements them; n a multiple of 32.
//   Q8_0: d = amax/127, id = d ? 1/d : 0, qs = roundf(x*id) (ties away from 0)
//   Q4_0: max = the x of largest |x| (first), d = max/-8, id = d ? 1/d : 0,
//         nibble = min(15, trunc(x*id + 8.5)) with x*id + 8.5 in double (FMA-like)
//   Q4_1: min/max of the block, d = (max-min)/15, id = d ? 1/d : 0,
//         nibble = min(15, trunc((x-min)*id + 0.5))
std::vector<BlockQ8_0> quantize_q8_0_ref(const float* x, int64_t n);
std::vector<BlockQ4_0> quantize_q4_0_ref(const float* x, int64_t n);
std::vector<BlockQ4_1> quantize_q4_1_ref(const float* x, int64_t n);

}  // namespace qwenqat::format
