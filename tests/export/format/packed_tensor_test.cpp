// Tests for export/format/packed_tensor.h: exact layouts, round trips for every
// bit width and granularity, dequantize_row == quant::dequantize_one bit for
// bit, and rejection of inconsistent views.
#include "export/format/packed_tensor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "data/util/check.h"

namespace qwenqat::format {
namespace {

using quant::QuantizedMatrix;
using quant::QuantSpec;

QuantizedMatrix random_matrix(int64_t rows, int64_t cols, const QuantSpec& spec, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& x : w) x = dist(rng);
  return quant::quantize_matrix(w.data(), rows, cols, spec);
}

TEST(PackedTensor, RowBytes) {
  EXPECT_EQ(packed_row_bytes(64, 8), 64);
  EXPECT_EQ(packed_row_bytes(64, 4), 32);
  EXPECT_EQ(packed_row_bytes(40, 4), 32);  // two chunks, the second padded
  EXPECT_EQ(packed_row_bytes(97, 4), 64);
  EXPECT_EQ(packed_row_bytes(97, 3), 37);  // 291 bits
  EXPECT_EQ(packed_row_bytes(97, 2), 25);
  EXPECT_EQ(packed_row_bytes(8, 7), 7);
  EXPECT_THROW(packed_row_bytes(8, 1), Error);
}

TEST(PackedTensor, FourBitLayoutIsLlamaCppChunkOrder) {
  QuantizedMatrix q;
  q.spec = QuantSpec{4, 0, true};
  q.rows = 1;
  q.cols = 40;
  for (int j = 0; j < 40; ++j) q.codes.push_back(uint8_t(j % 16));
  q.scales = {0x3c00};
  const PackedMatrix p = pack(q);
  ASSERT_EQ(p.data.size(), 32u);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(p.data[j], uint8_t((j % 16) | (((j + 16) % 16) << 4)));
  }
  // chunk 2 holds elements 32..39 in low nibbles; the rest is the zero code 8
  for (int j = 0; j < 16; ++j) {
    const uint8_t lo = 32 + j < 40 ? uint8_t((32 + j) % 16) : 8;
    EXPECT_EQ(p.data[16 + j], uint8_t(lo | (8 << 4))) << j;
  }
  q.spec.symmetric = false;  // asymmetric pads with code 0
  q.offsets = {0};
  EXPECT_EQ(pack(q).data[31], 0);
}

TEST(PackedTensor, DenseLayoutIsLsbFirst) {
  QuantizedMatrix q;
  q.spec = QuantSpec{3, 0, true};
  q.rows = 1;
  q.cols = 3;
  q.codes = {5, 3, 6};  // bits: 101 | 011 | 110 -> 0b110'011'101 = 0x19d
  q.scales = {0x3c00};
  const PackedMatrix p = pack(q);
  ASSERT_EQ(p.data.size(), 2u);
  EXPECT_EQ(p.data[0], 0x9d);
  EXPECT_EQ(p.data[1], 0x01);
  q.spec.bits = 8;
  q.codes = {5, 200, 6};
  EXPECT_EQ(pack(q).data, (std::vector<uint8_t>{5, 200, 6}));
}

TEST(PackedTensor, RoundTripsEveryWidthAndGranularity) {
  int seed = 0;
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sym : {true, false}) {
      for (int group : {0, 32, 64, 128}) {
        for (int64_t cols : {32, 40, 97, 128, 256, 384}) {
          if (group != 0 && cols % group != 0) continue;
          const QuantSpec spec{bits, group, sym};
          const int64_t rows = 3;
          const QuantizedMatrix q = random_matrix(rows, cols, spec, uint32_t(++seed));
          const PackedMatrix p = pack(q);
          EXPECT_EQ(p.row_bytes, packed_row_bytes(cols, bits));
          const PackedView v = view_of(p);
          const QuantizedMatrix back = unpack(v);
          EXPECT_EQ(back.codes, q.codes) << spec.name() << " cols " << cols;
          EXPECT_EQ(back.scales, q.scales);
          EXPECT_EQ(back.offsets, q.offsets);
          std::vector<float> full(static_cast<size_t>(rows * cols)), row(static_cast<size_t>(cols));
          quant::dequantize_matrix(q, full.data());
          for (int64_t r = 0; r < rows; ++r) {
            dequantize_row(v, r, row.data());
            EXPECT_EQ(std::memcmp(row.data(), full.data() + r * cols, size_t(cols) * 4), 0)
                << spec.name() << " cols " << cols << " row " << r;
          }
        }
      }
    }
  }
}

TEST(PackedTensor, UnpackRejectsInconsistentViews) {
  const QuantizedMatrix q = random_matrix(2, 64, QuantSpec{4, 32, false}, 3);
  const PackedMatrix p = pack(q);
  PackedView v = view_of(p);
  EXPECT_NO_THROW(unpack(v));
  PackedView bad = v;
  bad.row_bytes = 33;
  EXPECT_THROW(unpack(bad, "w"), Error);
  bad = v;
  bad.offsets = nullptr;
  EXPECT_THROW(unpack(bad, "w"), Error);
  bad = v;
  bad.spec.group_size = 48;
  EXPECT_THROW(unpack(bad, "w"), Error);
  bad = v;
  bad.rows = 0;
  EXPECT_THROW(unpack(bad, "w"), Error);
  bad = v;
  bad.data = nullptr;
  EXPECT_THROW(unpack(bad, "w"), Error);
  std::vector<uint16_t> scales = p.scales;
  scales[1] = 0;  // zero scale
  bad = v;
  bad.scales = scales.data();
  EXPECT_THROW(unpack(bad, "w"), Error);
  EXPECT_THROW(dequantize_row(v, 2, std::vector<float>(64).data()), Error);
  QuantizedMatrix broken = q;
  broken.codes.pop_back();
  EXPECT_THROW(pack(broken), Error);
}

}  // namespace
}  // namespace qwenqat::format
