// Tests for export/format/gguf_blocks.h: the QuantizedMatrix <-> Q8_0/Q4_0/Q4_1
// mapping is exact both ways, llama.cpp's dequantization of the blocks equals
// quant::dequantize_matrix bit for bit, and unsupported schemes are refused.
#include "export/format/gguf_blocks.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::format {
namespace {

using quant::QuantizedMatrix;
using quant::QuantSpec;

std::vector<float> random_weights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& x : w) x = dist(rng);
  w[3] = 0.0f;
  return w;
}

template <class Block>
std::vector<uint8_t> bytes_of(const std::vector<Block>& b) {
  std::vector<uint8_t> out(b.size() * sizeof(Block));
  std::memcpy(out.data(), b.data(), out.size());
  return out;
}

void expect_dequant_equal(const QuantizedMatrix& q, GgmlType type, const std::vector<uint8_t>& b) {
  std::vector<float> ours(q.codes.size()), theirs(q.codes.size());
  quant::dequantize_matrix(q, ours.data());
  dequantize_blocks(type, b.data(), int64_t(ours.size()), theirs.data());
  EXPECT_EQ(std::memcmp(ours.data(), theirs.data(), ours.size() * 4), 0) << q.spec.name();
}

TEST(GgufBlocks, Q8_0MapsExactly) {
  for (auto init : {quant::ScaleInit::kMinMax, quant::ScaleInit::kMseClip}) {
    auto w = random_weights(6 * 96, 1);
    const QuantizedMatrix q = quant::quantize_matrix(w.data(), 6, 96, QuantSpec{8, 32, true}, init);
    const auto blocks = to_q8_0(q, "t");
    ASSERT_EQ(blocks.size(), 18u);
    EXPECT_EQ(blocks[4].d, q.scales[4]);
    EXPECT_EQ(blocks[4].qs[7], int(q.codes[4 * 32 + 7]) - 128);
    const QuantizedMatrix back = from_q8_0(blocks.data(), 6, 96, "t");
    EXPECT_EQ(back.codes, q.codes);
    EXPECT_EQ(back.scales, q.scales);
    expect_dequant_equal(q, GgmlType::kQ8_0, bytes_of(blocks));
  }
}

TEST(GgufBlocks, Q4_0MapsExactly) {
  auto w = random_weights(4 * 128, 2);
  const QuantizedMatrix q = quant::quantize_matrix(w.data(), 4, 128, QuantSpec{4, 32, true});
  const auto blocks = to_q4_0(q, "t");
  ASSERT_EQ(blocks.size(), 16u);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(blocks[5].qs[j], q.codes[5 * 32 + j] | (q.codes[5 * 32 + j + 16] << 4));
  }
  const QuantizedMatrix back = from_q4_0(blocks.data(), 4, 128, "t");
  EXPECT_EQ(back.codes, q.codes);
  EXPECT_EQ(back.scales, q.scales);
  expect_dequant_equal(q, GgmlType::kQ4_0, bytes_of(blocks));
}

TEST(GgufBlocks, Q4_1MapsExactly) {
  auto w = random_weights(3 * 64, 3);
  for (auto& x : w) x += 0.02f;  // not centred
  const QuantizedMatrix q = quant::quantize_matrix(w.data(), 3, 64, QuantSpec{4, 32, false});
  const auto blocks = to_q4_1(q, "t");
  ASSERT_EQ(blocks.size(), 6u);
  EXPECT_EQ(blocks[2].m, q.offsets[2]);
  const QuantizedMatrix back = from_q4_1(blocks.data(), 3, 64, "t");
  EXPECT_EQ(back.codes, q.codes);
  EXPECT_EQ(back.scales, q.scales);
  EXPECT_EQ(back.offsets, q.offsets);
  expect_dequant_equal(q, GgmlType::kQ4_1, bytes_of(blocks));
}

TEST(GgufBlocks, RefusesOtherSchemes) {
  EXPECT_EQ(ggml_type_for(QuantSpec{8, 32, true}, "t"), GgmlType::kQ8_0);
  EXPECT_EQ(ggml_type_for(QuantSpec{4, 32, true}, "t"), GgmlType::kQ4_0);
  EXPECT_EQ(ggml_type_for(QuantSpec{4, 32, false}, "t"), GgmlType::kQ4_1);
  for (QuantSpec s : {QuantSpec{4, 64, true}, QuantSpec{8, 0, true}, QuantSpec{8, 32, false},
                      QuantSpec{3, 32, true}}) {
    try {
      ggml_type_for(s, "blk.0.attn_q.weight");
      ADD_FAILURE() << s.name();
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(s.name()), std::string::npos);
      EXPECT_NE(msg.find("w8g32 -> Q8_0, w4g32 -> Q4_0, w4g32a -> Q4_1"), std::string::npos);
    }
  }
  auto w = random_weights(64, 4);
  const QuantizedMatrix q = quant::quantize_matrix(w.data(), 1, 64, QuantSpec{4, 32, true});
  EXPECT_THROW(to_q8_0(q, "t"), Error);
  EXPECT_THROW(to_q4_1(q, "t"), Error);
  auto blocks = to_q4_0(q, "t");
  blocks[1].d = f32_to_fp16(-0.5f);  // llama.cpp's negative scale: no exact QuantizedMatrix
  EXPECT_THROW(from_q4_0(blocks.data(), 1, 64, "t"), Error);
  EXPECT_THROW(from_q4_0(blocks.data(), 1, 40, "t"), Error);
}

TEST(GgufBlocks, ReferenceQuantizersFollowLlamaCpp) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = float(j - 12) * 0.25f;  // max |x| = 4.75 at j=31
  const auto q8 = quantize_q8_0_ref(x.data(), 32);
  EXPECT_EQ(q8[0].d, f32_to_fp16(4.75f / 127.0f));
  EXPECT_EQ(q8[0].qs[31], 127);
  EXPECT_EQ(q8[0].qs[12], 0);
  const auto q4 = quantize_q4_0_ref(x.data(), 32);
  EXPECT_EQ(q4[0].d, f32_to_fp16(4.75f / -8.0f));  // negative: the max maps to code 0
  EXPECT_EQ(q4[0].qs[15] >> 4, 0);                 // element 31
  const auto q41 = quantize_q4_1_ref(x.data(), 32);
  EXPECT_EQ(q41[0].m, f32_to_fp16(-3.0f));
  EXPECT_EQ(q41[0].qs[0] & 15, 0);
  EXPECT_EQ(q41[0].qs[15] >> 4, 15);
  std::vector<float> zeros(32, 0.0f);
  EXPECT_EQ(quantize_q4_0_ref(zeros.data(), 32)[0].qs[0], 0x88);
  EXPECT_THROW(quantize_q8_0_ref(x.data(), 31), Error);
}

TEST(GgufBlocks, TypeTraits) {
  EXPECT_STREQ(ggml_type_traits(8)->name, "Q8_0");
  EXPECT_EQ(ggml_type_traits(2)->type_size, 18);
  EXPECT_EQ(ggml_type_traits(4), nullptr);  // removed Q4_2
  EXPECT_EQ(ggml_type_name(12), "Q4_K");
  EXPECT_EQ(ggml_type_name(999), "type id 999");
  EXPECT_EQ(ggml_row_bytes(GgmlType::kQ4_1, 64, "t"), 40);
  EXPECT_THROW(ggml_row_bytes(GgmlType::kQ8_0, 40, "t"), Error);
}

}  // namespace
}  // namespace qwenqat::format
