// Tests for inference/weights.h's MemorySource: packed tensors handed out
// with their bytes unchanged, on 64-byte lines (as the .h5 export lays them
// out; the kernels read them in place) and large ones on huge pages.
#include "inference/weights.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>

#include "export/format/packed_tensor.h"
#include "qat/quant/quant_math.h"
#include "tests/inference/engine_test_util.h"

namespace qwenqat::engine {
namespace {

bool on_line(const void* p) { return reinterpret_cast<uintptr_t>(p) % kCacheLine == 0; }

TEST(MemorySource, PackedTensorsKeepTheirBytesOnCacheLines) {
  std::mt19937 rng(3);
  MemorySource src(testing::tiny_config(), "test");
  // Odd shapes (rows of 48 codes: 24 or 48 bytes, not whole lines), both
  // widths, symmetric and asymmetric (offsets), and one of 4 MB of codes.
  struct Case {
    const char* name;
    int64_t rows, cols;
    const char* spec;
  };
  const Case cases[] = {{"a.weight", 3, 64, "w4g32"},
                        {"b.weight", 5, 96, "w8g32a"},
                        {"c.weight", 7, 160, "w4g32a"},
                        {"big.weight", 1024, 4096, "w8g32"}};
  std::vector<format::PackedMatrix> originals;
  for (const Case& c : cases) {
    const auto w = testing::random_vector(c.rows * c.cols, 0.1f, rng);
    const auto spec = quant::parse_spec(c.spec);
    format::PackedMatrix m = format::pack(quant::quantize_matrix(w.data(), c.rows, c.cols, spec));
    originals.push_back(m);
    src.add_packed(c.name, std::move(m));
  }
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    const format::PackedMatrix& o = originals[i];
    const auto t = src.find(c.name);
    ASSERT_TRUE(t.has_value()) << c.name;
    ASSERT_TRUE(t->quantized);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{c.rows, c.cols}));
    const format::PackedView& v = t->packed;
    EXPECT_EQ(v.rows, c.rows);
    EXPECT_EQ(v.cols, c.cols);
    EXPECT_EQ(v.row_bytes, o.row_bytes);
    EXPECT_EQ(v.spec.name(), o.spec.name());
    EXPECT_TRUE(on_line(v.data)) << c.name;
    EXPECT_TRUE(on_line(v.scales)) << c.name;
    EXPECT_EQ(0, std::memcmp(v.data, o.data.data(), o.data.size())) << c.name;
    EXPECT_EQ(0, std::memcmp(v.scales, o.scales.data(), o.scales.size() * 2)) << c.name;
    if (o.spec.symmetric) {
      EXPECT_EQ(v.offsets, nullptr) << c.name;
    } else {
      ASSERT_NE(v.offsets, nullptr) << c.name;
      EXPECT_TRUE(on_line(v.offsets)) << c.name;
      EXPECT_EQ(0, std::memcmp(v.offsets, o.offsets.data(), o.offsets.size() * 2)) << c.name;
    }
    format::validate_view(v, c.name);
  }
  const auto big = src.find("big.weight");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big->packed.data) % kHugePageBytes, 0u);
  EXPECT_FALSE(src.find("missing.weight").has_value());
}

}  // namespace
}  // namespace qwenqat::engine
