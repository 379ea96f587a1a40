// Implementation of gguf_blocks.h: ggml type traits, the exact QuantizedMatrix
// <-> Q8_0/Q4_0/Q4_1 mapping, llama.cpp's dequantization and gguf-py's
// reference quantizers.
#include "export/format/gguf_blocks.h"

#include <cmath>
#include <cstring>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::format {
namespace {

struct TypeEntry {
  uint32_t id;
  GgmlTypeTraits traits;
};
constexpr TypeEntry kTypes[] = {
    {0, {"F32", 1, 4}},       {1, {"F16", 1, 2}},       {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},    {6, {"Q5_0", 32, 22}},    {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},    {9, {"Q8_1", 32, 36}},    {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}}, {12, {"Q4_K", 256, 144}}, {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}}, {15, {"Q8_K", 256, 292}}, {24, {"I8", 1, 1}},
    {25, {"I16", 1, 2}},      {26, {"I32", 1, 4}},      {27, {"I64", 1, 8}},
    {28, {"F64", 1, 8}},      {30, {"BF16", 1, 2}},
};

bool positive_finite_fp16(uint16_t h) {
  return (h & 0x8000) == 0 && h != 0 && (h & 0x7c00) != 0x7c00;
}

void check_spec(const quant::QuantizedMatrix& q, const quant::QuantSpec& want, const char* type,
                const std::string& tensor) {
  QWENQAT_CHECK(q.spec == want, tensor, ": ", type, " needs quantization ", want.name(),
                ", the tensor is ", q.spec.name());
  q.validate(tensor);
}

quant::QuantizedMatrix empty_matrix(const quant::QuantSpec& spec, int64_t rows, int64_t cols,
                                    const std::string& tensor) {
  QWENQAT_CHECK(rows > 0 && cols > 0 && cols % kQK == 0, tensor, ": [", rows, ", ", cols,
                "] cannot be held in blocks of 32 (cols must be a positive multiple of 32)");
  quant::QuantizedMatrix q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.codes.resize(size_t(rows * cols));
  q.scales.resize(size_t(rows * cols / kQK));
  if (!spec.symmetric) q.offsets.resize(q.scales.size());
  return q;
}

void check_block_scale(uint16_t d, int64_t block, const std::string& tensor) {
  QWENQAT_CHECK(positive_finite_fp16(d), tensor, ": block ", block, " has scale ", fp16_to_f32(d),
                ", which has no exact form as a positive quantization scale");
}

// Nibble order shared by Q4_0 and Q4_1.
void pack_nibbles(const uint8_t* u, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t(u[j] | (u[j + 16] << 4));
}
void unpack_nibbles(const uint8_t* qs, uint8_t* u) {
  for (int j = 0; j < 16; ++j) {
    u[j] = qs[j] & 0x0f;
    u[j + 16] = qs[j] >> 4;
  }
}

// numpy's np_roundf in gguf-py: round half away from zero, like C roundf.
float roundf_away(float x) { return std::round(x); }

}  // namespace

const GgmlTypeTraits* ggml_type_traits(uint32_t type) {
  for (const auto& e : kTypes) {
    if (e.id == type) return &e.traits;
  }
  return nullptr;
}

std::string ggml_type_name(uint32_t type) {
  const GgmlTypeTraits* t = ggml_type_traits(type);
  return t ? std::string(t->name) : "type id " + std::to_string(type);
}

bool ggml_type_readable(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
      return true;
    default:
      return false;
  }
}

int64_t ggml_row_bytes(GgmlType type, int64_t n, const std::string& tensor) {
  const GgmlTypeTraits* t = ggml_type_traits(uint32_t(type));
  QWENQAT_CHECK(t != nullptr, tensor, ": unknown ggml ", ggml_type_name(uint32_t(type)));
  QWENQAT_CHECK(n >= 0 && n % t->block_size == 0, tensor, ": ", t->name, " needs a row length that",
                " is a multiple of ", t->block_size, ", got ", n);
  return n / t->block_size * t->type_size;
}

GgmlType ggml_type_for(const quant::QuantSpec& spec, const std::string& tensor) {
  if (spec == quant::QuantSpec{8, 32, true}) return GgmlType::kQ8_0;
  if (spec == quant::QuantSpec{4, 32, true}) return GgmlType::kQ4_0;
  if (spec == quant::QuantSpec{4, 32, false}) return GgmlType::kQ4_1;
  fail(tensor, ": quantization ", spec.name(),
       " has no exact llama.cpp tensor type; GGUF export supports w8g32 -> Q8_0, w4g32 -> Q4_0, "
       "w4g32a -> Q4_1 and unquantized -> F32/F16");
}

std::vector<BlockQ8_0> to_q8_0(const quant::QuantizedMatrix& q, const std::string& tensor) {
  check_spec(q, {8, 32, true}, "Q8_0", tensor);
  std::vector<BlockQ8_0> out(q.scales.size());
  for (size_t b = 0; b < out.size(); ++b) {
    out[b].d = q.scales[b];
    for (int j = 0; j < 32; ++j) out[b].qs[j] = int8_t(int(q.codes[b * 32 + j]) - 128);
  }
  return out;
}

std::vector<BlockQ4_0> to_q4_0(const quant::QuantizedMatrix& q, const std::string& tensor) {
  check_spec(q, {4, 32, true}, "Q4_0", tensor);
  std::vector<BlockQ4_0> out(q.scales.size());
  for (size_t b = 0; b < out.size(); ++b) {
    out[b].d = q.scales[b];
    pack_nibbles(q.codes.data() + b * 32, out[b].qs);
  }
  return out;
}

std::vector<BlockQ4_1> to_q4_1(const quant::QuantizedMatrix& q, const std::string& tensor) {
  check_spec(q, {4, 32, false}, "Q4_1", tensor);
  std::vector<BlockQ4_1> out(q.scales.size());
  for (size_t b = 0; b < out.size(); ++b) {
    out[b].d = q.scales[b];
    out[b].m = q.offsets[b];
    pack_nibbles(q.codes.data() + b * 32, out[b].qs);
  }
  return out;
}

quant::QuantizedMatrix from_q8_0(const BlockQ8_0* b, int64_t rows, int64_t cols,
                                 const std::string& tensor) {
  quant::QuantizedMatrix q = empty_matrix({8, 32, true}, rows, cols, tensor);
  for (size_t i = 0; i < q.scales.size(); ++i) {
    check_block_scale(b[i].d, int64_t(i), tensor);
    q.scales[i] = b[i].d;
    for (int j = 0; j < 32; ++j) q.codes[i * 32 + j] = uint8_t(int(b[i].qs[j]) + 128);
  }
  return q;
}

quant::QuantizedMatrix from_q4_0(const BlockQ4_0* b, int64_t rows, int64_t cols,
                                 const std::string& tensor) {
  quant::QuantizedMatrix q = empty_matrix({4, 32, true}, rows, cols, tensor);
  for (size_t i = 0; i < q.scales.size(); ++i) {
    check_block_scale(b[i].d, int64_t(i), tensor);
    q.scales[i] = b[i].d;
    unpack_nibbles(b[i].qs, q.codes.data() + i * 32);
  }
  return q;
}

quant::QuantizedMatrix from_q4_1(const BlockQ4_1* b, int64_t rows, int64_t cols,
                                 const std::string& tensor) {
  quant::QuantizedMatrix q = empty_matrix({4, 32, false}, rows, cols, tensor);
  for (size_t i = 0; i < q.scales.size(); ++i) {
    check_block_scale(b[i].d, int64_t(i), tensor);
    QWENQAT_CHECK((b[i].m & 0x7c00) != 0x7c00, tensor, ": block ", i, " has a non-finite min");
    q.scales[i] = b[i].d;
    q.offsets[i] = b[i].m;
    unpack_nibbles(b[i].qs, q.codes.data() + i * 32);
  }
  return q;
}

void dequantize_blocks(GgmlType type, const uint8_t* blocks, int64_t n, float* out) {
  QWENQAT_CHECK(n % kQK == 0, "dequantize_blocks: ", n, " elements is not a multiple of 32");
  const int64_t nb = n / kQK;
  switch (type) {
    case GgmlType::kQ8_0:
      for (int64_t i = 0; i < nb; ++i) {
        BlockQ8_0 b;
        std::memcpy(&b, blocks + i * sizeof b, sizeof b);
        const float d = fp16_to_f32(b.d);
        for (int j = 0; j < 32; ++j) out[i * 32 + j] = float(b.qs[j]) * d;
      }
      return;
    case GgmlType::kQ4_0:
      for (int64_t i = 0; i < nb; ++i) {
        BlockQ4_0 b;
        std::memcpy(&b, blocks + i * sizeof b, sizeof b);
        const float d = fp16_to_f32(b.d);
        for (int j = 0; j < 16; ++j) {
          out[i * 32 + j] = float((b.qs[j] & 0x0f) - 8) * d;
          out[i * 32 + j + 16] = float((b.qs[j] >> 4) - 8) * d;
        }
      }
      return;
    case GgmlType::kQ4_1:
      for (int64_t i = 0; i < nb; ++i) {
        BlockQ4_1 b;
        std::memcpy(&b, blocks + i * sizeof b, sizeof b);
        const float d = fp16_to_f32(b.d), m = fp16_to_f32(b.m);
        for (int j = 0; j < 16; ++j) {
          out[i * 32 + j] = float(b.qs[j] & 0x0f) * d + m;
          out[i * 32 + j + 16] = float(b.qs[j] >> 4) * d + m;
        }
      }
      return;
    default:
      fail("dequantize_blocks: ", ggml_type_name(uint32_t(type)), " is not a block type");
  }
}

std::vector<BlockQ8_0> quantize_q8_0_ref(const float* x, int64_t n) {
  QWENQAT_CHECK(n % kQK == 0, "quantize_q8_0_ref: ", n, " is not a multiple of 32");
  std::vector<BlockQ8_0> y(size_t(n / kQK));
  for (size_t i = 0; i < y.size(); ++i) {
    const float* v = x + i * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    for (int j = 0; j < 32; ++j) y[i].qs[j] = int8_t(roundf_away(v[j] * id));
  }
  return y;
}

std::vector<BlockQ4_0> quantize_q4_0_ref(const float* x, int64_t n) {
  QWENQAT_CHECK(n % kQK == 0, "quantize_q4_0_ref: ", n, " is not a multiple of 32");
  std::vector<BlockQ4_0> y(size_t(n / kQK));
  for (size_t i = 0; i < y.size(); ++i) {
    const float* v = x + i * 32;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(v[j])) {
        amax = std::fabs(v[j]);
        max = v[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    uint8_t u[32];
    for (int j = 0; j < 32; ++j) {
      const double t = std::trunc(double(v[j]) * double(id) + 8.5);
      u[j] = uint8_t(std::min(15.0, std::max(0.0, t)));
    }
    pack_nibbles(u, y[i].qs);
  }
  return y;
}

std::vector<BlockQ4_1> quantize_q4_1_ref(const float* x, int64_t n) {
  QWENQAT_CHECK(n % kQK == 0, "quantize_q4_1_ref: ", n, " is not a multiple of 32");
  std::vector<BlockQ4_1> y(size_t(n / kQK));
  for (size_t i = 0; i < y.size(); ++i) {
    const float* v = x + i * 32;
    float min = v[0], max = v[0];
    for (int j = 0; j < 32; ++j) {
      min = std::min(min, v[j]);
      max = std::max(max, v[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_fp16(d);
    y[i].m = f32_to_fp16(min);
    uint8_t u[32];
    for (int j = 0; j < 32; ++j) {
      const float t = std::trunc((v[j] - min) * id + 0.5f);
      u[j] = uint8_t(std::min(15.0f, std::max(0.0f, t)));
    }
    pack_nibbles(u, y[i].qs);
  }
  return y;
}

}  // namespace qwenqat::format
