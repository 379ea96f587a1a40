// The int8-activation (Q8) path: the activation quantizer, the scalar
// reference against the float product of the dequantized operands, the AVX2
// kernel against the reference (bit for bit when every float product and sum
// is exact, within summation-order tolerance otherwise), batch and thread
// independence, and the logits of a tiny model against the float path.
#include "inference/kernels/act_quant.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "data/util/check.h"
#include "data/util/half.h"
#include "inference/kernels/amx_kernels.h"
#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/avx512_kernels.h"
#include "inference/model.h"
#include "qat/quant/quant_math.h"
#include "tests/inference/engine_test_util.h"

namespace qwenqat::engine {
namespace {

struct Shape {
  int bits, group;
  bool symmetric;
  int64_t rows, cols;
};

std::string shape_name(const Shape& s) {
  return quant::QuantSpec{s.bits, s.group, s.symmetric}.name() + "_" + std::to_string(s.rows) +
         "x" + std::to_string(s.cols);
}

// Random codes; scales (and offsets) are powers of two in [2^-8, 2^-7] when
// `pow2`, else random positive fp16 values.
format::PackedMatrix random_packed(const Shape& s, bool pow2, std::mt19937& rng) {
  format::PackedMatrix m;
  m.spec = {s.bits, s.group, s.symmetric};
  m.rows = s.rows;
  m.cols = s.cols;
  m.row_bytes = format::packed_row_bytes(s.cols, s.bits);
  m.data.resize(static_cast<size_t>(m.rows * m.row_bytes));
  for (auto& b : m.data) b = static_cast<uint8_t>(rng());
  const int64_t groups = s.rows * m.spec.groups_per_row(s.cols);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  auto value = [&] {
    return pow2 ? std::ldexp(1.0f, -7 - static_cast<int>(rng() % 2)) : 0.01f * u(rng);
  };
  for (int64_t g = 0; g < groups; ++g) m.scales.push_back(f32_to_fp16(value()));
  if (!s.symmetric)
    for (int64_t g = 0; g < groups; ++g)
      m.offsets.push_back(f32_to_fp16((rng() % 2 ? 1.0f : -1.0f) * value()));
  return m;
}

// Int8 activations with d = 2^-7 (every product with a power-of-two scale is
// exact).
Q8Activations pow2_activations(int64_t n, int64_t cols, std::mt19937& rng) {
  Q8Activations a;
  a.n = n;
  a.cols = cols;
  a.blocks = cols / kQ8Block;
  for (int64_t i = 0; i < n * cols; ++i) a.q.push_back(static_cast<int8_t>(int(rng() % 255) - 127));
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t k = 0; k < a.blocks; ++k) {
      int32_t qs = 0;
      for (int64_t i = 0; i < kQ8Block; ++i) qs += a.q[b * cols + k * kQ8Block + i];
      a.d.push_back(std::ldexp(1.0f, -7));
      a.e.push_back(a.d.back() * static_cast<float>(qs));
      a.qsum.push_back(qs);
    }
  }
  return a;
}

// Shapes: one group, groups of 32 / 64 / 128, per channel, odd row counts.
// With pow2 scales every partial sum stays below 2^24 units, so it is exact.
std::vector<Shape> shapes() {
  return {{4, 32, true, 1, 32},   {4, 32, true, 7, 512},   {4, 64, false, 9, 256},
          {4, 0, true, 5, 128},   {4, 128, true, 33, 512}, {4, 32, false, 3, 96},
          {8, 32, true, 11, 128}, {8, 0, false, 3, 128},   {8, 64, true, 13, 128},
          {8, 32, false, 1, 32}};
}

std::vector<float> run(const format::PackedView& w, const Q8Activations& x, KernelIsa isa) {
  std::vector<float> y(x.n * w.rows, -1.0f);
  const int64_t mid = w.rows / 2;  // two row ranges, as the thread pool splits them
  q8_matmul_rows(w, x, y.data(), w.rows, 0, mid, isa);
  q8_matmul_rows(w, x, y.data(), w.rows, mid, w.rows, isa);
  return y;
}

// The activation buffers start on a 64-byte line (AlignedVector): the
// AVX-512 tiles load 64 bytes of qi per vector, which straddled two lines at
// std::vector's 16-byte alignment (batch-16 decode 1.08-1.22x with them aligned).
TEST(ActQuant, BuffersStartOnACacheLine) {
  for (int64_t n : {1, 3, 16})
    for (int64_t cols : {64, 1536, 8960}) {
      Q8Activations x;
      size_q8(n, cols, &x);
      const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; };
      EXPECT_TRUE(aligned(x.q.data()) && aligned(x.d.data()) && aligned(x.qsum.data()))
          << n << " x " << cols;
      if (!x.qi.empty()) {
        EXPECT_TRUE(aligned(x.qi.data()) && aligned(x.di.data()) && aligned(x.qsumi.data()))
            << n << " x " << cols;
      }
    }
}

TEST(ActQuant, QuantizerRoundsWithinHalfAStep) {
  std::mt19937 rng(1);
  auto x = testing::random_vector(3 * 96, 2.0f, rng);
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
  Q8Activations a;
  quantize_q8(x.data(), 3, 96, 96, &a);
  ASSERT_EQ(a.blocks, 3);
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t k = 0; k < 3; ++k) {
      const float d = a.d[b * 3 + k];
      int32_t qs = 0;
      for (int64_t i = 0; i < 32; ++i) {
        const int64_t j = b * 96 + k * 32 + i;
        ASSERT_LE(std::abs(int(a.q[j])), 127);
        EXPECT_LE(std::abs(x[j] - a.q[j] * d), 0.5f * d * 1.0001f) << j;
        qs += a.q[j];
      }
      EXPECT_EQ(a.e[b * 3 + k], d * static_cast<float>(qs));
    }
  }
  EXPECT_EQ(a.d[1], 0.0f);
  EXPECT_THROW(quantize_q8(x.data(), 1, 96, 40, &a), Error);
}

// The AVX2 quantizer gives the scalar one's bits: random rows, an all-zero
// block, and values on rounding ties (x * (1 / d) = k + 0.5 exactly).
TEST(ActQuant, Avx2QuantizerEqualsScalar) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(10);
  const int64_t n = 5, cols = 8960;  // 280 blocks: the real MLP width
  auto x = testing::random_vector(n * cols, 3.0f, rng);
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // block 2 of row 0
  for (int64_t i = 0; i < 32; ++i)                  // block 3: amax 127 -> d = 1, ties at k + 0.5
    x[96 + i] = i == 0 ? 127.0f : static_cast<float>(int(i) - 16) + 0.5f;
  Q8Activations a, b;
  const KernelIsa before = active_isa();
  set_kernel_isa(KernelIsa::kScalar);
  quantize_q8(x.data(), n, cols, cols, &a);
  set_kernel_isa(KernelIsa::kAvx2);
  quantize_q8(x.data(), n, cols, cols, &b);
  set_kernel_isa(before);
  EXPECT_EQ(a.q, b.q);
  EXPECT_EQ(0, std::memcmp(a.d.data(), b.d.data(), a.d.size() * 4));
  EXPECT_EQ(0, std::memcmp(a.e.data(), b.e.data(), a.e.size() * 4));
  EXPECT_EQ(a.d[3], 127.0f / 127.0f);
  EXPECT_EQ(a.q[97], -14);  // -14.5 rounds to even
  EXPECT_EQ(a.q[98], -14);  // -13.5 too
}

// The same floats bit for bit (memcmp of empty vectors' null data is UB).
template <class V>
bool same_bits(const V& a, const V& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

// Q8 activations with every layout compared byte for byte.
void expect_same_q8(const Q8Activations& a, const Q8Activations& b, const std::string& what) {
  EXPECT_EQ(a.q, b.q) << what;
  EXPECT_TRUE(same_bits(a.d, b.d)) << what;
  EXPECT_TRUE(same_bits(a.e, b.e)) << what;
  EXPECT_EQ(a.qsum, b.qsum) << what;
  EXPECT_EQ(a.il_chunk, b.il_chunk) << what;
  EXPECT_EQ(a.qi, b.qi) << what;
  EXPECT_TRUE(same_bits(a.di, b.di)) << what;
  EXPECT_EQ(a.qsumi, b.qsumi) << what;
  EXPECT_EQ(a.amx_tiles, b.amx_tiles) << what;
  EXPECT_EQ(a.qt, b.qt) << what;
}

// The AVX-512 interleave (the weight rows' transposes) against the scalar
// loop, on rows of 1, 16, 17 and 280 blocks (a padded last chunk of 1 and 8
// blocks), and quantize_q8_rows / quantize_per_token_rows over split row
// ranges (reusing buffers that held a larger input) against one call.
TEST(ActQuant, RowRangesAndAvx512InterleaveGiveTheSameBytes) {
  std::mt19937 rng(12);
  const KernelIsa before = active_isa();
  for (const int64_t cols : {32, 512, 544, 8960}) {
    const int64_t n = 5;
    auto x = testing::random_vector(n * cols, 2.0f, rng);
    Q8Activations whole;
    quantize_q8(x.data(), n, cols, cols, &whole);
    for (const int64_t chunk : {8, 16}) {
      Q8Activations fast = whole, slow = whole;
      interleave_q8(&fast, chunk);  // AVX-512 for chunk 16 where the CPU has it
      set_kernel_isa(KernelIsa::kScalar);
      interleave_q8(&slow, chunk);
      set_kernel_isa(before);
      expect_same_q8(slow, fast,
                     "chunk " + std::to_string(chunk) + ", cols " + std::to_string(cols));
    }
    for (const int bits : {0, 8, 4}) {
      Q8Activations one, parts;
      auto big = testing::random_vector(2 * n * 8960, 1.0f, rng);
      quantize_q8(big.data(), 2 * n, 8960, 8960, &parts);  // stale, larger contents
      if (bits == 0) {
        quantize_q8(x.data(), n, cols, cols, &one);
      } else {
        quantize_per_token(x.data(), n, cols, cols, bits, &one);
      }
      size_q8(n, cols, &parts);
      for (const auto& [b0, b1] : {std::pair<int64_t, int64_t>{3, 5}, {0, 1}, {1, 3}}) {
        if (bits == 0) {
          quantize_q8_rows(x.data(), cols, b0, b1, &parts);
        } else {
          quantize_per_token_rows(x.data(), cols, bits, b0, b1, &parts);
        }
      }
      expect_same_q8(one, parts, "bits " + std::to_string(bits) + ", cols " + std::to_string(cols));
    }
  }
}

// The reference against the double product of the dequantized weights and
// the dequantized activations q * d: the same value up to float rounding.
TEST(ActQuant, ReferenceEqualsProductOfDequantizedOperands) {
  std::mt19937 rng(2);
  for (const Shape& s : shapes()) {
    auto pm = random_packed(s, false, rng);
    auto w = format::view_of(pm);
    auto xf = testing::random_vector(4 * s.cols, 1.0f, rng);
    Q8Activations x;
    quantize_q8(xf.data(), 4, s.cols, s.cols, &x);
    const auto y = run(w, x, KernelIsa::kScalar);
    std::vector<float> row(s.cols);
    for (int64_t r = 0; r < s.rows; ++r) {
      format::dequantize_row(w, r, row.data());
      for (int64_t b = 0; b < 4; ++b) {
        double sum = 0.0, mag = 0.0;
        for (int64_t c = 0; c < s.cols; ++c) {
          const double t = double(row[c]) * x.q[b * s.cols + c] * x.d[b * x.blocks + c / 32];
          sum += t;
          mag += std::abs(t);
        }
        ASSERT_NEAR(y[b * s.rows + r], sum, 1e-5 * mag + 1e-6) << shape_name(s);
      }
    }
  }
}

TEST(ActQuant, Avx2EqualsReferenceExactlyWhenFloatsAreExact) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(3);
  for (const Shape& s : shapes()) {
    auto pm = random_packed(s, true, rng);
    auto w = format::view_of(pm);
    for (int64_t n : {1, 2, 3, 5, 16}) {
      const auto x = pow2_activations(n, s.cols, rng);
      const auto ref = run(w, x, KernelIsa::kScalar);
      const auto got = run(w, x, KernelIsa::kAvx2);
      EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * 4))
          << shape_name(s) << " n=" << n;
    }
  }
}

using Runner = std::function<std::vector<float>(const format::PackedView&, const Q8Activations&)>;

// A kernel against the scalar reference on a batch of 9 (within float
// summation tolerance), and each sequence alone giving the batch's bits.
void expect_matches_reference_and_batch_independent(const std::vector<Shape>& shapes,
                                                    std::mt19937& rng, const Runner& kernel) {
  for (const Shape& s : shapes) {
    auto pm = random_packed(s, false, rng);
    auto w = format::view_of(pm);
    const int64_t n = 9;
    auto xf = testing::random_vector(n * s.cols, 1.0f, rng);
    Q8Activations x;
    quantize_q8(xf.data(), n, s.cols, s.cols, &x);
    const auto ref = run(w, x, KernelIsa::kScalar);
    const auto got = kernel(w, x);
    for (int64_t i = 0; i < n * s.rows; ++i) {
      // Only the float summation order differs: a few ulps of the magnitude.
      ASSERT_NEAR(got[i], ref[i], 1e-5 * std::abs(ref[i]) + 1e-5) << shape_name(s) << " " << i;
    }
    for (int64_t b = 0; b < n; ++b) {
      Q8Activations one;
      quantize_q8(xf.data() + b * s.cols, 1, s.cols, s.cols, &one);
      const auto y1 = kernel(w, one);
      EXPECT_EQ(0, std::memcmp(y1.data(), got.data() + b * s.rows, s.rows * 4)) << shape_name(s);
    }
  }
}

// x without the AMX tile layout (the dispatch then takes the vector kernels
// for any n).
Q8Activations without_amx(Q8Activations x) {
  x.amx_tiles = 0;
  x.qt.clear();
  x.dt.clear();
  return x;
}

TEST(ActQuant, Avx2MatchesReferenceAndIsBatchIndependent) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(4);
  expect_matches_reference_and_batch_independent(
      shapes(), rng, [](const format::PackedView& w, const Q8Activations& x) {
        return run(w, without_amx(x), KernelIsa::kAvx2);
      });
}

// Shapes for the interleaved kernels (cols a multiple of 64): chunks of 8 and
// 16 blocks with tails (18 and 280 blocks), 2, 4, 3 (group 96) blocks per
// group, per channel with 16 blocks (one scale per chunk) and 18 (scales
// filled one by one), both widths, symmetric and asymmetric, odd row counts;
// 8960-wide rows of both widths with 4 or more rows in each half of
// run_direct's row split (the AVX-512 register tiles in several column
// ranges, then the 8-block tail); rows of 65 16-block chunks (the AVX-512
// decode path's limit is 64).
std::vector<Shape> wide_shapes() {
  return {{4, 32, true, 7, 576},  {4, 32, false, 3, 8960}, {4, 32, true, 9, 8960},
          {8, 32, true, 8, 8960}, {4, 64, true, 5, 576},   {4, 128, false, 9, 1536},
          {4, 96, true, 3, 576},  {4, 0, true, 5, 512},    {4, 0, false, 3, 576},
          {8, 32, true, 11, 576}, {8, 32, false, 3, 1536}, {8, 64, true, 5, 576},
          {8, 0, true, 3, 576},   {4, 32, true, 1, 64},    {4, 32, true, 2, 33280}};
}

// A kernel with the signature of avx2::q8_matmul_rows / avx512::q8_matmul_rows.
using DirectKernel = void (*)(const format::PackedView&, const Q8Activations&, const float*, float*,
                              int64_t, int64_t, int64_t);

// A kernel called directly (act_quant.cpp picks one by CPU), with the
// per-group e sums the dispatch passes; two row ranges.
std::vector<float> run_direct(DirectKernel kernel, const format::PackedView& w,
                              const Q8Activations& x) {
  std::vector<float> eg;
  q8_group_e_sums(x, w.groups_per_row(), &eg);
  std::vector<float> y(x.n * w.rows, -1.0f);
  const int64_t mid = w.rows / 2;
  kernel(w, x, eg.data(), y.data(), w.rows, 0, mid);
  kernel(w, x, eg.data(), y.data(), w.rows, mid, w.rows);
  return y;
}

std::vector<float> run_avx2(const format::PackedView& w, const Q8Activations& x) {
  return run_direct(avx2::q8_matmul_rows, w, x);
}

std::vector<float> run_avx512(const format::PackedView& w, const Q8Activations& x) {
  return run_direct(avx512::q8_matmul_rows, w, x);
}

// x re-interleaved in chunks of `chunk` blocks (0: not interleaved), whatever
// the CPU's kernels take.
Q8Activations interleaved(Q8Activations x, int64_t chunk) {
  if (chunk) {
    interleave_q8(&x, chunk);
  } else {
    x.il_chunk = 0;
    x.qi.clear();
    x.di.clear();
    x.qsumi.clear();
  }
  return x;
}

// The AVX2 kernel's interleaved 4-bit path (chunks of 8 blocks) and its
// per-block path, each bit for bit the reference when the floats are exact.
TEST(ActQuant, Avx2InterleavedEqualsReferenceExactlyWhenFloatsAreExact) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(11);
  auto all = shapes();
  for (const Shape& s : wide_shapes()) all.push_back(s);
  for (const Shape& s : all) {
    auto pm = random_packed(s, true, rng);
    auto w = format::view_of(pm);
    for (int64_t n : {1, 2, 3, 5, 8, 9, 16}) {
      const auto x = pow2_activations(n, s.cols, rng);
      const auto ref = run(w, x, KernelIsa::kScalar);
      const auto blocks = run_avx2(w, x);  // x.il_chunk = 0: every block on its own
      EXPECT_EQ(0, std::memcmp(ref.data(), blocks.data(), ref.size() * 4))
          << shape_name(s) << " n=" << n;
      const auto il = run_avx2(w, interleaved(x, 8));
      EXPECT_EQ(0, std::memcmp(ref.data(), il.data(), ref.size() * 4))
          << shape_name(s) << " n=" << n << " interleaved";
    }
  }
}

TEST(ActQuant, Avx2InterleavedMatchesReferenceAndIsBatchIndependent) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(12);
  expect_matches_reference_and_batch_independent(
      wide_shapes(), rng, [](const format::PackedView& w, const Q8Activations& x) {
        return run_avx2(w, interleaved(x, 8));
      });
}

// The AVX-VNNI form of the kernel (vpdpbusd) against the AVX2 one: the same
// bits, for every layout and batch size, per block and interleaved.
TEST(ActQuant, AvxVnniEqualsAvx2BitForBit) {
  if (!cpu_has_avx2() || !__builtin_cpu_supports("avxvnni")) GTEST_SKIP() << "no AVX-VNNI";
  std::mt19937 rng(7);
  auto all = shapes();
  for (const Shape& s : wide_shapes()) all.push_back(s);
  for (const Shape& s : all) {
    auto pm = random_packed(s, false, rng);
    auto w = format::view_of(pm);
    for (int64_t n : {1, 2, 5, 16}) {
      auto xf = testing::random_vector(n * s.cols, 1.0f, rng);
      Q8Activations x;
      quantize_q8(xf.data(), n, s.cols, s.cols, &x);
      for (const Q8Activations& xs : {interleaved(x, 0), interleaved(x, 8)}) {
        const auto y1 = run_avx2(w, xs);
        const auto y2 = run_direct(avx2::q8_matmul_rows_vnni, w, xs);
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4))
            << shape_name(s) << " n=" << n << " il_chunk=" << xs.il_chunk;
      }
    }
  }
}

TEST(ActQuant, Avx512EqualsReferenceExactlyWhenFloatsAreExact) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937 rng(8);
  for (const Shape& s : wide_shapes()) {
    auto pm = random_packed(s, true, rng);
    auto w = format::view_of(pm);
    ASSERT_TRUE(avx512::supports_q8(w)) << shape_name(s);
    for (int64_t n : {1, 2, 3, 5, 16}) {
      auto x = pow2_activations(n, s.cols, rng);
      const auto ref = run(w, x, KernelIsa::kScalar);
      const auto pairs = run_avx512(w, x);  // x.il_chunk = 0: every block in pairs from q
      EXPECT_EQ(0, std::memcmp(ref.data(), pairs.data(), ref.size() * 4))
          << shape_name(s) << " n=" << n;
      const auto il = run_avx512(w, interleaved(x, 16));  // 4-bit: full 16-block chunks
      EXPECT_EQ(0, std::memcmp(ref.data(), il.data(), ref.size() * 4))
          << shape_name(s) << " n=" << n << " interleaved";
    }
  }
}

TEST(ActQuant, Avx512MatchesReferenceAndIsBatchIndependent) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937 rng(9);
  expect_matches_reference_and_batch_independent(
      wide_shapes(), rng, [](const format::PackedView& w, const Q8Activations& x) {
        return run_avx512(w, interleaved(x, 16));
      });
  // Rows not a multiple of 64 columns are not the AVX-512 kernel's.
  auto pm = random_packed({4, 32, true, 3, 96}, false, rng);
  EXPECT_FALSE(avx512::supports_q8(format::view_of(pm)));
}

// Wide rows run their register tiles in column slices with the tiles'
// accumulators carried between slices; past ~58 sequences an 8960-wide input
// is cut into sequence blocks too, each with its own passes and carries.
// Bit for bit the reference (power-of-two scales) across both cuts.
TEST(ActQuant, Avx512TileSlicesSpanSequenceBlocks) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937 rng(21);
  for (const Shape& s : std::vector<Shape>{{4, 32, true, 8, 8960}, {8, 32, true, 9, 8960}}) {
    auto pm = random_packed(s, true, rng);
    const auto w = format::view_of(pm);
    const auto x = pow2_activations(70, s.cols, rng);
    const auto ref = run(w, x, KernelIsa::kScalar);
    const auto got = run_avx512(w, interleaved(x, 16));
    EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * 4)) << shape_name(s);
  }
}

// A padded last chunk (blocks % 16 != 0) reads nothing past its row: the
// codes and scales of the last row end at a page that cannot be read, so a
// full-width load of the chunk would fault. Results as on ordinary memory.
TEST(ActQuant, Avx512PaddedChunkReadsNothingPastTheRow) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  const int64_t page = sysconf(_SC_PAGESIZE);
  std::mt19937 rng(17);
  for (const Shape& s : std::vector<Shape>{{4, 32, true, 3, 576},
                                           {8, 32, true, 3, 576},
                                           {4, 96, true, 2, 576},
                                           {8, 0, false, 2, 8960}}) {
    auto pm = random_packed(s, true, rng);
    const auto w = format::view_of(pm);
    const size_t data_bytes = pm.data.size(), scale_bytes = pm.scales.size() * 2;
    // [data | guard][scales | guard], each ending where its guard page starts.
    const size_t span =
        (data_bytes + page - 1) / page * page + (scale_bytes + page - 1) / page * page;
    auto* base = static_cast<uint8_t*>(
        mmap(nullptr, span + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(base, MAP_FAILED);
    const size_t data_span = (data_bytes + page - 1) / page * page;
    uint8_t* data = base + data_span - data_bytes;
    uint8_t* scales = base + data_span + page + (span - data_span) - scale_bytes;
    ASSERT_EQ(0, mprotect(base + data_span, page, PROT_NONE));
    ASSERT_EQ(0, mprotect(base + span + page, page, PROT_NONE));
    std::memcpy(data, pm.data.data(), data_bytes);
    std::memcpy(scales, pm.scales.data(), scale_bytes);
    format::PackedView guarded = w;
    guarded.data = data;
    guarded.scales = reinterpret_cast<const uint16_t*>(scales);
    for (int64_t n : {1, 4}) {
      const auto x = interleaved(pow2_activations(n, s.cols, rng), 16);
      ASSERT_NE(0, s.cols / 32 % 16) << "not a padded chunk";
      const auto want = run_avx512(w, x);
      const auto got = run_avx512(guarded, x);
      EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4))
          << shape_name(s) << " n=" << n;
    }
    munmap(base, span + 2 * page);
  }
}

std::vector<float> run_amx(const format::PackedView& w, const Q8Activations& x) {
  Q8Activations xa = x;
  layout_amx(&xa);
  return run_direct(amx::q8_matmul_rows, w, xa);
}

// Every shape above, and full 16-row panels of 8-bit rows (tile-loaded from
// the packed rows themselves) and of 4-bit rows with a partial last panel.
std::vector<Shape> amx_shapes() {
  auto all = shapes();
  for (const Shape& s : wide_shapes()) all.push_back(s);
  for (const Shape& s : std::vector<Shape>{{8, 32, true, 37, 576},
                                           {8, 0, false, 32, 256},
                                           {8, 64, false, 16, 1536},
                                           {4, 32, true, 48, 1536},
                                           {4, 64, false, 21, 576}})
    all.push_back(s);
  return all;
}

TEST(ActQuant, AmxEqualsReferenceExactlyWhenFloatsAreExact) {
  if (!cpu_has_amx()) GTEST_SKIP() << "no AMX-INT8 on this CPU (or QWENQAT_ENGINE_AMX=0)";
  std::mt19937 rng(13);
  for (const Shape& s : amx_shapes()) {
    auto pm = random_packed(s, true, rng);
    auto w = format::view_of(pm);
    for (int64_t n : {1, 2, 5, 16, 17, 40}) {  // one, two and three column tiles
      const auto x = pow2_activations(n, s.cols, rng);
      const auto ref = run(w, x, KernelIsa::kScalar);
      const auto got = run_amx(w, x);
      EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * 4))
          << shape_name(s) << " n=" << n;
    }
  }
}

TEST(ActQuant, AmxMatchesReferenceAndIsBatchIndependent) {
  if (!cpu_has_amx()) GTEST_SKIP() << "no AMX-INT8 on this CPU (or QWENQAT_ENGINE_AMX=0)";
  std::mt19937 rng(14);
  expect_matches_reference_and_batch_independent(amx_shapes(), rng, run_amx);
}

// quantize_q8 lays out batches of kAmxMinBatch or more for AMX, and the
// dispatch then gives the AMX kernel's bits; smaller batches the vector
// kernels'.
TEST(ActQuant, DispatchTakesAmxForLargerBatches) {
  if (!cpu_has_amx()) GTEST_SKIP() << "no AMX-INT8 on this CPU (or QWENQAT_ENGINE_AMX=0)";
  std::mt19937 rng(15);
  const Shape s{4, 32, true, 70, 1536};
  auto pm = random_packed(s, false, rng);
  auto w = format::view_of(pm);
  for (int64_t n : {kAmxMinBatch - 1, kAmxMinBatch, int64_t{16}, int64_t{23}}) {
    auto xf = testing::random_vector(n * s.cols, 1.0f, rng);
    Q8Activations x;
    quantize_q8(xf.data(), n, s.cols, s.cols, &x);
    EXPECT_EQ(x.amx_tiles, n >= kAmxMinBatch ? (n + 15) / 16 : 0) << "n=" << n;
    const auto got = run(w, x, KernelIsa::kAvx2);
    const auto want = n >= kAmxMinBatch ? run_amx(w, x) : run(w, without_amx(x), KernelIsa::kAvx2);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), got.size() * 4)) << "n=" << n;
  }
}

// Max |logit difference| / max |logit| allowed between int8 and float
// activations on the tiny models.
constexpr double kTinyQ8Bound = 0.03;  // measured: 0.009-0.011

std::vector<float> logits_of(Model& m, const std::vector<int32_t>& ids, int threads) {
  KvCache cache(m.config(), 1, static_cast<int64_t>(ids.size()), KvDtype::kF32);
  ThreadPool pool(threads);
  std::vector<float> logits;
  m.forward({{0, ids}}, cache, pool, logits, true);
  return logits;
}

// The tiny model with int8 activations stays close to the float path
// (the bound is about 3x the difference measured on these models) and does
// not depend on the thread count.
TEST(ActQuant, TinyModelLogitsCloseToFloatPath) {
  std::vector<int32_t> ids;
  for (int i = 0; i < 12; ++i) ids.push_back((i * 37 + 5) % 300);
  for (const quant::QuantSpec& spec :
       {quant::QuantSpec{4, 32, true}, quant::QuantSpec{8, 32, true},
        quant::QuantSpec{4, 32, false}, quant::QuantSpec{8, 0, true}}) {
    Model m(testing::random_model(testing::tiny_config(), 11, &spec, true));
    const auto ref = logits_of(m, ids, 2);
    m.set_act_quant(ActQuant::kQ8);
    for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
      if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
      m.set_isa(isa);
      const auto got = logits_of(m, ids, 2);
      testing::expect_close_rel(got.data(), ref.data(), static_cast<int64_t>(ref.size()),
                                kTinyQ8Bound, spec.name() + " " + isa_name(isa));
      const auto got3 = logits_of(m, ids, 3);
      EXPECT_EQ(0, std::memcmp(got.data(), got3.data(), got.size() * 4));
    }
  }
}

// Batched decode with int8 activations (9 sequences: the AMX kernel where
// the CPU has it, the vector kernels otherwise) gives each sequence the
// logits it gets alone, up to float summation order.
TEST(ActQuant, BatchedTinyModelMatchesSingleSequences) {
  const quant::QuantSpec spec{4, 32, true};
  Model m(testing::random_model(testing::tiny_config(), 12, &spec, true));
  m.set_act_quant(ActQuant::kQ8);
  constexpr int64_t kSeqs = 9, kPrompt = 3;
  std::vector<std::vector<int32_t>> prompts(kSeqs);
  for (int64_t s = 0; s < kSeqs; ++s)
    for (int64_t i = 0; i < kPrompt; ++i)
      prompts[s].push_back(static_cast<int32_t>((s * 31 + i * 7 + 3) % 300));
  ThreadPool pool(2);
  // All sequences in one forward call (cache slot s), last-position logits.
  KvCache batch_cache(m.config(), kSeqs, kPrompt, KvDtype::kF32);
  std::vector<SequenceStep> steps;
  for (int64_t s = 0; s < kSeqs; ++s) steps.push_back({s, prompts[s]});
  std::vector<float> batched;
  m.forward(steps, batch_cache, pool, batched, false);
  const int64_t V = m.config().vocab_size;
  for (int64_t s = 0; s < kSeqs; ++s) {
    KvCache cache(m.config(), 1, kPrompt, KvDtype::kF32);
    std::vector<float> alone;
    m.forward({{0, prompts[s]}}, cache, pool, alone, false);
    testing::expect_close_rel(&batched[s * V], alone.data(), V, 1e-4,
                              "sequence " + std::to_string(s));
  }
}

// Per-token activations (models trained with activation quantization): the
// codes and scale are quant_math's, bit for bit, in the int8 form and in
// the fake-quantized float form.
TEST(ActQuant, PerTokenQuantizerIsQuantMath) {
  std::mt19937 rng(5);
  auto x = testing::random_vector(3 * 96, 2.0f, rng);
  std::fill(x.begin() + 96, x.begin() + 192, 0.0f);  // an all-zero token
  for (int bits : {8, 4, 2}) {
    Q8Activations a;
    quantize_per_token(x.data(), 3, 96, 96, bits, &a);
    auto f = x;
    fake_quantize_per_token(f.data(), 3, 96, 96, bits);
    const float qmax = quant::activation_qmax(bits);
    for (int64_t b = 0; b < 3; ++b) {
      const float s = quant::choose_token_scale(x.data() + b * 96, 96, bits);
      if (b == 1) {
        EXPECT_EQ(s, 1.0f);
      }
      for (int64_t k = 0; k < 3; ++k) {
        int32_t qs = 0;
        for (int64_t i = 0; i < 32; ++i) {
          const int64_t j = b * 96 + k * 32 + i;
          const int q = quant::quantize_activation(x[j], s, qmax);
          ASSERT_EQ(int(a.q[j]), q) << bits << " bits, element " << j;
          ASSERT_LE(std::abs(q), int(qmax));
          ASSERT_EQ(f[j], float(q) * s) << j;
          qs += q;
        }
        EXPECT_EQ(a.d[b * 3 + k], s);
        EXPECT_EQ(a.e[b * 3 + k], s * static_cast<float>(qs));
      }
    }
  }
  Q8Activations a;
  EXPECT_THROW(quantize_per_token(x.data(), 1, 96, 96, 1, &a), Error);
  EXPECT_THROW(quantize_per_token(x.data(), 1, 96, 40, 8, &a), Error);
  EXPECT_THROW(fake_quantize_per_token(x.data(), 1, 96, 96, 9), Error);
}

// The int8 product of per-token activations equals the float product of the
// fake-quantized activations (what the trainer computes) up to summation
// order, for every weight layout, with both kernels.
TEST(ActQuant, PerTokenProductEqualsFakeQuantFloatProduct) {
  std::mt19937 rng(6);
  for (const Shape& s : shapes()) {
    auto pm = random_packed(s, false, rng);
    auto w = format::view_of(pm);
    const int64_t n = 5;
    auto xf = testing::random_vector(n * s.cols, 1.0f, rng);
    Q8Activations x;
    quantize_per_token(xf.data(), n, s.cols, s.cols, 8, &x);
    auto fq = xf;
    fake_quantize_per_token(fq.data(), n, s.cols, s.cols, 8);
    // Double product of the dequantized weights and the fake-quantized x.
    std::vector<double> want(n * s.rows), mag(n * s.rows);
    std::vector<float> row(s.cols);
    for (int64_t r = 0; r < s.rows; ++r) {
      format::dequantize_row(w, r, row.data());
      for (int64_t b = 0; b < n; ++b)
        for (int64_t c = 0; c < s.cols; ++c) {
          const double t = double(row[c]) * fq[b * s.cols + c];
          want[b * s.rows + r] += t;
          mag[b * s.rows + r] += std::abs(t);
        }
    }
    for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
      if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
      const auto got = run(w, x, isa);
      for (int64_t i = 0; i < n * s.rows; ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5 * mag[i] + 1e-6)
            << shape_name(s) << " " << isa_name(isa) << " " << i;
    }
  }
}

TEST(ActQuant, Parsing) {
  EXPECT_EQ(parse_act_quant("auto", "--act-quant"), ActQuant::kAuto);
  EXPECT_EQ(parse_act_quant("q8", "--act-quant"), ActQuant::kQ8);
  EXPECT_EQ(parse_act_quant("none", "--act-quant"), ActQuant::kNone);
  EXPECT_THROW(parse_act_quant("q4", "--act-quant"), Error);
}

}  // namespace
}  // namespace qwenqat::engine
