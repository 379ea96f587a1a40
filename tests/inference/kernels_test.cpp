// The packed kernels against the scalar reference (format::dequantize_row and
// a plain loop): dequantized tiles bit for bit, products within float
// tolerance, on odd shapes and every layout; plus the thread pool.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "data/util/check.h"
#include "data/util/half.h"
#include "export/format/packed_tensor.h"
#include "inference/kernels/act_quant.h"
#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/avx512_kernels.h"
#include "inference/kernels/packed_matmul.h"
#include "inference/thread_pool.h"
#include "inference/weights.h"
#include "qat/quant/quant_math.h"
#include "tests/inference/engine_test_util.h"

namespace qwenqat::engine {
namespace {

struct Case {
  int bits, group;
  bool symmetric;
  int64_t rows, cols;
};

std::string case_name(const Case& c) {
  quant::QuantSpec s{c.bits, c.group, c.symmetric};
  return s.name() + "_" + std::to_string(c.rows) + "x" + std::to_string(c.cols);
}

std::vector<Case> cases() {
  return {
      {4, 32, true, 1, 32},     // one group, one row
      {4, 32, true, 17, 96},    // rows not a multiple of the tile
      {4, 32, true, 67, 320},   // many groups, several row tiles
      {4, 64, false, 21, 192},  // asymmetric
      {4, 0, true, 9, 160},     // per channel
      {4, 0, false, 5, 96},     // per channel asymmetric
      {4, 8, true, 7, 40},      // cols not a multiple of 32 (padded chunk)
      {4, 16, false, 19, 48},   // group shorter than the 32-element chunk
      {8, 32, true, 33, 128},  {8, 32, false, 15, 64},
      {8, 0, true, 3, 72},                             // per channel, cols % 32 != 0
      {8, 8, false, 11, 24},   {3, 32, true, 13, 64},  // generic widths: scalar dequantizer
      {5, 0, false, 6, 40},
  };
}

format::PackedMatrix make_packed(const Case& c, std::mt19937& rng) {
  auto w = testing::random_vector(c.rows * c.cols, 1.0f, rng);
  quant::QuantSpec spec{c.bits, c.group, c.symmetric};
  return format::pack(quant::quantize_matrix(w.data(), c.rows, c.cols, spec));
}

// cases() and the real model's widths (1536, 8960), for the AVX-512 GEMVs.
std::vector<Case> wide_cases() {
  auto all = cases();
  all.push_back({4, 32, true, 5, 8960});
  all.push_back({8, 128, false, 3, 1536});
  return all;
}

TEST(Kernels, DequantizeIsBitIdenticalToReference) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(1);
  for (const Case& c : cases()) {
    auto pm = make_packed(c, rng);
    auto v = format::view_of(pm);
    std::vector<float> ref(c.rows * c.cols), got(c.rows * c.cols);
    for (int64_t r = 0; r < c.rows; ++r) format::dequantize_row(v, r, ref.data() + r * c.cols);
    dequantize_rows(v, 0, c.rows, got.data(), KernelIsa::kAvx2);
    EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * 4)) << case_name(c);
  }
}

// The error a float product of summed magnitude `mag` may carry against the
// double reference (float summation order only).
double product_tolerance(double mag) { return 1e-5 * mag + 1e-6; }

// y for n activation rows computed in double from the reference dequantizer.
std::vector<double> reference_product(const format::PackedView& v, const std::vector<float>& x,
                                      int64_t n, std::vector<double>* mag) {
  std::vector<double> y(n * v.rows);
  mag->assign(n * v.rows, 0.0);
  std::vector<float> row(v.cols);
  for (int64_t r = 0; r < v.rows; ++r) {
    format::dequantize_row(v, r, row.data());
    for (int64_t b = 0; b < n; ++b) {
      double s = 0.0, m = 0.0;
      for (int64_t k = 0; k < v.cols; ++k) {
        s += static_cast<double>(row[k]) * x[b * v.cols + k];
        m += std::abs(static_cast<double>(row[k]) * x[b * v.cols + k]);
      }
      y[b * v.rows + r] = s;
      (*mag)[b * v.rows + r] = m;
    }
  }
  return y;
}

TEST(Kernels, GemvAndGemmMatchScalarReference) {
  std::mt19937 rng(2);
  std::vector<KernelIsa> isas = {KernelIsa::kScalar};
  if (cpu_has_avx2()) isas.push_back(KernelIsa::kAvx2);
  for (const Case& c : cases()) {
    auto pm = make_packed(c, rng);
    auto v = format::view_of(pm);
    // 1: GEMV; 2..16: multi-vector GEMV (one pass, 5 + 4, 8 + 8); 17: GEMM.
    for (int64_t n : {1, 2, 5, 9, 16, 17}) {
      auto x = testing::random_vector(n * c.cols, 1.0f, rng);
      std::vector<double> mag;
      auto ref = reference_product(v, x, n, &mag);
      for (KernelIsa isa : isas) {
        std::vector<float> y(n * c.rows, -1.0f);
        // Two row ranges, as the thread pool would split them.
        const int64_t mid = c.rows / 2;
        packed_matmul_rows(v, x.data(), n, c.cols, y.data(), c.rows, 0, mid, isa);
        packed_matmul_rows(v, x.data(), n, c.cols, y.data(), c.rows, mid, c.rows, isa);
        for (int64_t i = 0; i < n * c.rows; ++i) {
          ASSERT_NEAR(y[i], ref[i], product_tolerance(mag[i]))
              << case_name(c) << " n=" << n << " isa=" << isa_name(isa) << " i=" << i;
        }
      }
    }
  }
}

// A sequence's result does not depend on the batch it is in (multi-vector
// GEMV passes) nor on where its row range starts (two-row GEMV pairing).
TEST(Kernels, GemvResultsIndependentOfBatchAndRowRange) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(5);
  for (const Case& c : {Case{4, 32, true, 13, 96}, Case{4, 64, false, 9, 192},
                        Case{8, 32, true, 7, 64}, Case{8, 0, false, 5, 96}}) {
    auto pm = make_packed(c, rng);
    auto v = format::view_of(pm);
    const int64_t n = 16;
    auto x = testing::random_vector(n * c.cols, 1.0f, rng);
    std::vector<float> all(n * c.rows), part(n * c.rows);
    packed_matmul_rows(v, x.data(), n, c.cols, all.data(), c.rows, 0, c.rows, KernelIsa::kAvx2);
    // The same sequences in batches of 3 (the last of 1 runs the n = 1 GEMV,
    // compare it against one-row calls below instead).
    for (int64_t b0 = 0; b0 + 3 <= n; b0 += 3) {
      packed_matmul_rows(v, x.data() + b0 * c.cols, 3, c.cols, part.data() + b0 * c.rows, c.rows, 0,
                         c.rows, KernelIsa::kAvx2);
      EXPECT_EQ(0, std::memcmp(all.data() + b0 * c.rows, part.data() + b0 * c.rows,
                               3 * c.rows * sizeof(float)))
          << case_name(c) << " b0=" << b0;
    }
    // n = 1 over [0, rows) (row pairs) against one row at a time.
    std::vector<float> pairs(c.rows), singles(c.rows);
    packed_matmul_rows(v, x.data(), 1, c.cols, pairs.data(), c.rows, 0, c.rows, KernelIsa::kAvx2);
    for (int64_t r = 0; r < c.rows; ++r)
      packed_matmul_rows(v, x.data(), 1, c.cols, singles.data(), c.rows, r, r + 1,
                         KernelIsa::kAvx2);
    EXPECT_EQ(0, std::memcmp(pairs.data(), singles.data(), c.rows * sizeof(float))) << case_name(c);
  }
}

// The 16-lane GEMV called directly (packed_matmul_rows picks it only on CPUs
// with AVX-512) against the double reference and the AVX2 GEMV, on every
// layout the GEMVs take and on the real model's widths (1536, 8960).
TEST(Kernels, Avx512GemvMatchesReference) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(6);
  int tested = 0;
  for (const Case& c : wide_cases()) {
    auto pm = make_packed(c, rng);
    auto v = format::view_of(pm);
    if (!avx2::supports_gemv(v)) continue;
    ++tested;
    auto x = testing::random_vector(c.cols, 1.0f, rng);
    std::vector<double> mag;
    const auto ref = reference_product(v, x, 1, &mag);
    std::vector<float> y(c.rows, -1.0f), y2(c.rows, -1.0f), xsum(v.groups_per_row());
    const int64_t mid = c.rows / 2;
    avx512::gemv_rows(v, x.data(), y.data(), 0, mid, xsum.data());
    avx512::gemv_rows(v, x.data(), y.data(), mid, c.rows, xsum.data());
    avx2::gemv_rows(v, x.data(), y2.data(), 0, c.rows, xsum.data());
    for (int64_t r = 0; r < c.rows; ++r) {
      ASSERT_NEAR(y[r], ref[r], product_tolerance(mag[r])) << case_name(c) << " r=" << r;
      ASSERT_NEAR(y[r], y2[r], product_tolerance(mag[r])) << case_name(c) << " r=" << r;
    }
  }
  EXPECT_GE(tested, 9);
}

// The 16-lane multi-vector GEMV called directly (packed_matmul_rows picks it
// for 2 <= n <= 16 on CPUs with AVX-512): against the double reference on
// every layout it takes and the real model's widths, with row ranges that
// start on odd rows (the row pairing shifts), and a sequence's result the
// same bits in a batch of 16 as in batches of 2 and 3.
TEST(Kernels, Avx512MultiGemvMatchesReferenceAndIsBatchIndependent) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(8);
  auto run = [](const format::PackedView& v, const float* x, int64_t n, int64_t r0, int64_t r1,
                float* y, int64_t y_rows) {
    std::vector<float> scratch(avx512::multi_gemv_scratch_floats(r1 - r0, n));
    avx512::multi_gemv_rows(v, x, n, v.cols, y, y_rows, r0, r1, scratch.data());
  };
  int tested = 0;
  for (const Case& c : wide_cases()) {
    auto pm = make_packed(c, rng);
    auto v = format::view_of(pm);
    if (!avx2::supports_gemv(v)) continue;
    ++tested;
    for (int64_t n : {2, 3, 5, 8, 9, 16}) {
      auto x = testing::random_vector(n * c.cols, 1.0f, rng);
      std::vector<double> mag;
      const auto ref = reference_product(v, x, n, &mag);
      std::vector<float> y(n * c.rows, -1.0f);
      const int64_t mid = (c.rows + 1) / 2 | 1;  // odd: the second range starts on an odd row
      run(v, x.data(), n, 0, std::min(mid, c.rows), y.data(), c.rows);
      if (mid < c.rows) run(v, x.data(), n, mid, c.rows, y.data(), c.rows);
      for (int64_t i = 0; i < n * c.rows; ++i)
        ASSERT_NEAR(y[i], ref[i], product_tolerance(mag[i]))
            << case_name(c) << " n=" << n << " i=" << i;
      if (n != 16) continue;
      for (int64_t part : {2, 3}) {
        for (int64_t b0 = 0; b0 + part <= n; b0 += part) {
          std::vector<float> yp(part * c.rows);
          run(v, x.data() + b0 * c.cols, part, 0, c.rows, yp.data(), c.rows);
          EXPECT_EQ(0, std::memcmp(y.data() + b0 * c.rows, yp.data(), yp.size() * 4))
              << case_name(c) << " part=" << part << " b0=" << b0;
        }
      }
    }
  }
  EXPECT_GE(tested, 9);
}

// n = 1 (decode: whole rows, 8 at a time) and n = 4 (column blocks), with
// row ranges that leave groups of 8, 4 and single rows.
TEST(Kernels, FloatMatmulMatchesDoubleLoop) {
  std::mt19937 rng(3);
  const int64_t rows = 37, cols = 75;
  auto w = testing::random_vector(rows * cols, 1.0f, rng);
  for (auto [isa, n] : {std::pair{KernelIsa::kScalar, int64_t{1}},
                        {KernelIsa::kScalar, 4},
                        {KernelIsa::kAvx2, 1},
                        {KernelIsa::kAvx2, 4}}) {
    if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
    auto x = testing::random_vector(n * cols, 1.0f, rng);
    std::vector<float> y(n * rows);
    float_matmul_rows(w.data(), cols, x.data(), n, cols, y.data(), rows, 0, 20, isa);
    float_matmul_rows(w.data(), cols, x.data(), n, cols, y.data(), rows, 20, rows, isa);
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0.0, m = 0.0;
        for (int64_t k = 0; k < cols; ++k) {
          s += static_cast<double>(w[r * cols + k]) * x[b * cols + k];
          m += std::abs(static_cast<double>(w[r * cols + k]) * x[b * cols + k]);
        }
        ASSERT_NEAR(y[b * rows + r], s, 1e-5 * m) << isa_name(isa) << " n " << n;
      }
    }
    for (int64_t len : {1, 7, 8, 33}) {
      double s = 0.0;
      for (int64_t k = 0; k < len; ++k) s += static_cast<double>(w[k]) * x[k];
      EXPECT_NEAR(dot(w.data(), x.data(), len, isa), s, 1e-5 * len);
    }
  }
}

// bf16 weights (kept as their 16 bits, widened in the kernels) give the same
// bits as the float32 weights of the same values: odd shapes (a row tail past
// the 8-wide vectors, more columns than a K block), one to 17 activation
// rows, row ranges not on chunk boundaries, both kernel sets.
TEST(Kernels, Bf16MatmulEqualsFloatMatmulOfTheSameValues) {
  std::mt19937 rng(8);
  const int64_t rows = 29, cols = 1037;
  std::vector<uint16_t> wb(rows * cols);
  std::vector<float> wf(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    wb[i] = f32_to_bf16(testing::random_vector(1, 0.5f, rng)[0]);
    wf[i] = bf16_to_f32(wb[i]);
  }
  std::vector<KernelIsa> isas = {KernelIsa::kScalar};
  if (cpu_has_avx2()) isas.push_back(KernelIsa::kAvx2);
  for (KernelIsa isa : isas) {
    for (int64_t n : {1, 2, 3, 5, 17}) {
      const auto x = testing::random_vector(n * cols, 1.0f, rng);
      std::vector<float> yb(n * rows, -1.0f), yf(n * rows, -1.0f);
      for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 13}, {13, rows}}) {
        bf16_matmul_rows(wb.data(), cols, x.data(), n, cols, yb.data(), rows, r0, r1, isa);
        float_matmul_rows(wf.data(), cols, x.data(), n, cols, yf.data(), rows, r0, r1, isa);
      }
      EXPECT_EQ(std::memcmp(yb.data(), yf.data(), yb.size() * sizeof(float)), 0)
          << isa_name(isa) << " n " << n;
    }
  }
}

// Also with more threads than cores (7 on a CI machine's 2): threads done
// with their own chunks take the others' (forward_shared), and every chunk
// must still be computed once (y starts as NaN: a skipped chunk shows).
TEST(Kernels, LinearIsIndependentOfThreadCount) {
  std::mt19937 rng(4);
  for (const Case& c :
       {Case{4, 32, true, 200, 128}, Case{8, 0, false, 150, 96}, Case{4, 32, true, 1500, 64}}) {
    auto pm = make_packed(c, rng);
    SourceTensor t;
    t.quantized = true;
    t.shape = {c.rows, c.cols};
    t.packed = format::view_of(pm);
    Linear lin = Linear::from_source(t, "w", c.rows, c.cols);
    for (int64_t n : {1, 6}) {
      auto x = testing::random_vector(n * c.cols, 1.0f, rng);
      std::vector<float> y1(n * c.rows);
      ThreadPool p1(1);
      lin.forward(x.data(), n, y1.data(), p1, active_isa());
      for (int threads : {3, 7}) {
        ThreadPool pool(threads);
        for (int rep = 0; rep < 3; ++rep) {
          std::vector<float> y2(n * c.rows, std::nanf(""));
          lin.forward(x.data(), n, y2.data(), pool, active_isa());
          EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4))
              << case_name(c) << " threads=" << threads;
        }
      }
    }
  }
}

// Several layers on one input in one parallel_for (q/k/v, gate/up) give the
// bits of one forward() per layer, for float, Q8 and per-token inputs, with a
// float layer between packed ones (another input preparation) and any pool.
TEST(Kernels, ForwardSharedEqualsOneForwardPerLayer) {
  std::mt19937 rng(7);
  const int64_t cols = 512;
  std::vector<format::PackedMatrix> pms;
  std::vector<Linear> layers;
  for (const Case& c :
       {Case{4, 32, true, 200, cols}, Case{4, 64, false, 64, cols}, Case{8, 32, true, 70, cols}}) {
    pms.push_back(make_packed(c, rng));
  }
  for (size_t i = 0; i < pms.size(); ++i) {
    SourceTensor t;
    t.quantized = true;
    t.shape = {pms[i].rows, cols};
    t.packed = format::view_of(pms[i]);
    if (i == 2) t.activation_bits = 8;  // a per-token layer after two others
    // (not "w" + to_string(i): GCC 12 warns -Wrestrict on it, a false positive)
    std::string name = "w";
    name += std::to_string(i);
    layers.push_back(Linear::from_source(t, name, pms[i].rows, cols));
  }
  const auto wf = testing::random_vector(33 * cols, 1.0f, rng);  // a float layer
  SourceTensor tf;
  tf.shape = {33, cols};
  tf.view.name = "wf";
  tf.view.dtype = models::DType::kF32;
  tf.view.shape = {33, cols};
  tf.view.data = reinterpret_cast<const uint8_t*>(wf.data());
  tf.view.nbytes = wf.size() * sizeof(float);
  layers.insert(layers.begin() + 1, Linear::from_source(tf, "wf", 33, cols));
  for (ActQuant act : {ActQuant::kAuto, ActQuant::kNone, ActQuant::kQ8}) {
    for (int64_t n : {1, 5}) {
      const auto x = testing::random_vector(n * cols, 1.0f, rng);
      ThreadPool p1(1), p2(2);
      std::vector<std::vector<float>> one(layers.size()), shared(layers.size());
      std::vector<std::pair<const Linear*, float*>> outs;
      for (size_t i = 0; i < layers.size(); ++i) {
        one[i].resize(n * layers[i].rows());
        shared[i].assign(n * layers[i].rows(), -1.0f);
        layers[i].forward(x.data(), n, one[i].data(), p1, active_isa(), act);
        outs.push_back({&layers[i], shared[i].data()});
      }
      for (ThreadPool* pool : {&p1, &p2}) {
        Linear::forward_shared(outs, x.data(), n, *pool, active_isa(), act);
        for (size_t i = 0; i < layers.size(); ++i)
          EXPECT_EQ(one[i], shared[i]) << "layer " << i << " n=" << n << " act "
                                       << act_quant_name(act) << " threads " << pool->size();
      }
    }
  }
}

TEST(Kernels, IsaParsing) {
  EXPECT_EQ(parse_isa("scalar", "--kernels"), KernelIsa::kScalar);
  EXPECT_THROW(parse_isa("avx512", "--kernels"), Error);
}

}  // namespace
}  // namespace qwenqat::engine
