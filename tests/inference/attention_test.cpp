// The attention kernel (kernels/attention.h): both forms against a
// double-precision softmax-weighted sum, the vector form (AVX-512 where the
// CPU has it; the Avx2Only run of these tests takes the AVX2 one) against the
// scalar one within kAttendTolerance, on contexts that are and are not multiples of its
// 8-position blocks; a position's probability independent of the block it
// falls in; fp16 rows (strided, as in the KV cache) equal to their values as
// float32 rows; heads masked to fewer positions (attend_masked) equal to
// those heads alone.
#include "inference/kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "data/util/check.h"
#include "data/util/half.h"
#include "tests/inference/engine_test_util.h"

namespace qwenqat::engine {
namespace {

struct Case {
  int64_t ctx, d;
};

// softmax(scale * K q) . V in double precision.
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, int64_t ctx, int64_t d, double scale) {
  std::vector<double> s(ctx), out(d, 0.0);
  double mx = -INFINITY, sum = 0.0;
  for (int64_t p = 0; p < ctx; ++p) {
    double dot = 0.0;
    for (int64_t i = 0; i < d; ++i) dot += double(q[i]) * double(k[p * d + i]);
    s[p] = dot * scale;
    mx = std::max(mx, s[p]);
  }
  for (int64_t p = 0; p < ctx; ++p) sum += s[p] = std::exp(s[p] - mx);
  for (int64_t p = 0; p < ctx; ++p)
    for (int64_t i = 0; i < d; ++i) out[i] += s[p] / sum * double(v[p * d + i]);
  return out;
}

std::vector<float> run(const std::vector<float>& q, const std::vector<float>& k,
                       const std::vector<float>& v, int64_t ctx, int64_t d, float scale,
                       KernelIsa isa, std::vector<float>* w = nullptr) {
  std::vector<float> wb(ctx), out(d, -1.0f);
  KvRows kv;
  kv.k = k.data();
  kv.v = v.data();
  kv.stride = d;
  attend(q.data(), 1, kv, ctx, d, scale, wb.data(), out.data(), isa);
  if (w) *w = wb;
  return out;
}

// The same with the rows as fp16, `pad` unused elements after each row
// (KvRows::stride > d: the kernels take any row stride).
std::vector<float> run_f16(const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, int64_t ctx, int64_t d, int64_t pad,
                           float scale, KernelIsa isa) {
  std::vector<uint16_t> k16(ctx * (d + pad), 0x7e00), v16(ctx * (d + pad), 0x7e00);  // NaN pad
  for (int64_t p = 0; p < ctx; ++p)
    for (int64_t i = 0; i < d; ++i) {
      k16[p * (d + pad) + i] = f32_to_fp16(k[p * d + i]);
      v16[p * (d + pad) + i] = f32_to_fp16(v[p * d + i]);
    }
  std::vector<float> wb(ctx), out(d, -1.0f);
  KvRows kv;
  kv.k16 = k16.data();
  kv.v16 = v16.data();
  kv.stride = d + pad;
  attend(q.data(), 1, kv, ctx, d, scale, wb.data(), out.data(), isa);
  return out;
}

// x rounded to fp16 and back.
std::vector<float> rounded(std::vector<float> x) {
  for (float& f : x) f = fp16_to_f32(f32_to_fp16(f));
  return x;
}

// The fp16 bits of each element of x.
std::vector<uint16_t> fp16_of(const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = f32_to_fp16(x[i]);
  return h;
}

TEST(Attention, BothFormsMatchDoubleReference) {
  std::mt19937 rng(5);
  // Contexts below, at and past one block, d with and without 64-column runs
  // (and 12: the AVX2 form falls back to the scalar one).
  for (const Case c : std::vector<Case>{{1, 128},
                                        {7, 128},
                                        {8, 128},
                                        {9, 128},
                                        {100, 128},
                                        {1000, 128},
                                        {17, 64},
                                        {9, 80},
                                        {5, 16},
                                        {33, 24},
                                        {6, 12}}) {
    // Scores spread over ~30 nats so that the softmax is far from uniform.
    const auto q = testing::random_vector(c.d, 2.0f, rng);
    const auto k = testing::random_vector(c.ctx * c.d, 2.0f, rng);
    const auto v = testing::random_vector(c.ctx * c.d, 1.0f, rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    const auto ref = reference(q, k, v, c.ctx, c.d, scale);
    const auto scalar = run(q, k, v, c.ctx, c.d, scale, KernelIsa::kScalar);
    float vmax = 0.0f;
    for (float x : v) vmax = std::max(vmax, std::abs(x));
    for (int64_t i = 0; i < c.d; ++i)
      ASSERT_NEAR(scalar[i], ref[i], 1e-5 * vmax) << c.ctx << "x" << c.d << " " << i;
    if (!cpu_has_avx2()) continue;
    const auto avx2 = run(q, k, v, c.ctx, c.d, scale, KernelIsa::kAvx2);
    for (int64_t i = 0; i < c.d; ++i) {
      ASSERT_NEAR(avx2[i], ref[i], 1e-5 * vmax) << c.ctx << "x" << c.d << " " << i;
      ASSERT_NEAR(avx2[i], scalar[i], kAttendTolerance * vmax) << c.ctx << "x" << c.d << " " << i;
    }
  }
}

// The probabilities of positions [0, 9) with 9..12 positions equal those
// with 20 positions scaled by the second context's larger sum: the score and
// exp of a position do not depend on the block or register tile it lies in
// (position 8 ends a tile of 1, 2, 3 or 4 positions) or on the tail's
// padding.
TEST(Attention, ScoreOfAPositionDoesNotDependOnItsBlock) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(6);
  const int64_t d = 128, kept = 9;
  const auto q = testing::random_vector(d, 1.0f, rng);
  auto k = testing::random_vector(20 * d, 1.0f, rng);
  const auto v = testing::random_vector(20 * d, 1.0f, rng);
  // Positions 9..19 get scores far below the rest (exp at its clamp, ~1e-38), so
  // every context has the same softmax over positions 0..8.
  for (int64_t i = kept * d; i < 20 * d; ++i) k[i] = -q[i % d] * 1e4f;
  std::vector<float> w, w20;
  const auto o20 = run(q, k, v, 20, d, 0.1f, KernelIsa::kAvx2, &w20);
  for (int64_t p = kept; p < 20; ++p) EXPECT_LT(w20[p], 1e-30f) << p;  // exp clamped, ~1e-38
  for (int64_t ctx : {9, 10, 11, 12}) {
    const auto o = run(q, k, v, ctx, d, 0.1f, KernelIsa::kAvx2, &w);
    for (int64_t p = 0; p < kept; ++p) EXPECT_EQ(w[p], w20[p]) << ctx << " " << p;
    for (int64_t i = 0; i < d; ++i) EXPECT_EQ(o[i], o20[i]) << ctx << " " << i;
  }
}

// fp16 rows in place (with padding between positions) give exactly the
// results of the same values as float32 rows, in both forms.
TEST(Attention, Fp16RowsEqualTheirFloatValues) {
  std::mt19937 rng(7);
  for (const Case c : std::vector<Case>{{1, 128}, {13, 128}, {40, 64}, {9, 12}}) {
    const auto q = testing::random_vector(c.d, 1.0f, rng);
    const auto k = rounded(testing::random_vector(c.ctx * c.d, 1.0f, rng));
    const auto v = rounded(testing::random_vector(c.ctx * c.d, 1.0f, rng));
    for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
      if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
      const auto f32 = run(q, k, v, c.ctx, c.d, 0.125f, isa);
      const auto f16 = run_f16(q, k, v, c.ctx, c.d, 128, 0.125f, isa);
      EXPECT_EQ(0, std::memcmp(f32.data(), f16.data(), f32.size() * 4))
          << c.ctx << "x" << c.d << " " << isa_name(isa);
    }
  }
}

// A GQA group's heads together (positions in blocks across the 512-position
// block boundary, fp16 rows; 3 and 6 heads: register tiles of 3, and of 4 + 2)
// give each head's result alone, bit for bit, in both forms.
TEST(Attention, GroupOfHeadsEqualsEachHeadAlone) {
  std::mt19937 rng(8);
  for (const int64_t heads : {3, 6}) {
    const int64_t ctx = 1100, d = 128, stride = 2 * d;
    const auto q = testing::random_vector(heads * d, 1.0f, rng);
    const auto kf = testing::random_vector(ctx * stride, 1.0f, rng);
    const auto vf = testing::random_vector(ctx * stride, 1.0f, rng);
    const auto k16 = fp16_of(kf), v16 = fp16_of(vf);
    KvRows kv;
    kv.k16 = k16.data() + d;  // the second kv head of rows holding two
    kv.v16 = v16.data() + d;
    kv.stride = stride;
    for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
      if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
      std::vector<float> w(heads * ctx), out(heads * d);
      attend(q.data(), heads, kv, ctx, d, 0.09f, w.data(), out.data(), isa);
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<float> w1(ctx), out1(d);
        attend(q.data() + h * d, 1, kv, ctx, d, 0.09f, w1.data(), out1.data(), isa);
        EXPECT_EQ(0, std::memcmp(out1.data(), out.data() + h * d, d * 4)) << h << isa_name(isa);
        EXPECT_EQ(0, std::memcmp(w1.data(), w.data() + h * ctx, ctx * 4)) << h << isa_name(isa);
      }
    }
  }
}

// attend_masked: heads seeing different numbers of positions (a block of
// prompt rows: the head of row j sees ctx - rows + 1 + j, 6 heads per row)
// give each head's attend over its own positions, bit for bit, in every
// form, float32 and fp16 rows; the weights past a head's positions are 0;
// a head seeing none or more than ctx is a clear error.
TEST(Attention, MaskedHeadsEqualEachHeadOverItsOwnPositions) {
  std::mt19937 rng(9);
  const int64_t group = 6;
  for (const int64_t d : {128, 24}) {  // 24: the reference form under kAvx2 too
    for (const int64_t ctx : {5, 37, 530, 1100}) {
      const int64_t rows = std::min<int64_t>(8, ctx), heads = rows * group;
      const auto q = testing::random_vector(heads * d, 1.0f, rng);
      const auto kf = testing::random_vector(ctx * d, 1.0f, rng);
      const auto vf = testing::random_vector(ctx * d, 1.0f, rng);
      const auto k16 = fp16_of(kf), v16 = fp16_of(vf);
      std::vector<int64_t> visible(heads);
      for (int64_t h = 0; h < heads; ++h) visible[h] = ctx - rows + 1 + h / group;
      for (const bool f16 : {false, true}) {
        KvRows kv;
        kv.stride = d;
        if (f16) {
          kv.k16 = k16.data();
          kv.v16 = v16.data();
        } else {
          kv.k = kf.data();
          kv.v = vf.data();
        }
        for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
          if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
          std::vector<float> w(heads * ctx, -1.0f), out(heads * d, -1.0f);
          attend_masked(q.data(), heads, visible.data(), kv, ctx, d, 0.09f, w.data(), out.data(),
                        isa);
          for (int64_t h = 0; h < heads; ++h) {
            const int64_t n = visible[h];
            std::vector<float> w1(n), out1(d);
            attend(q.data() + h * d, 1, kv, n, d, 0.09f, w1.data(), out1.data(), isa);
            const std::string what = "d " + std::to_string(d) + ", ctx " + std::to_string(ctx) +
                                     ", head " + std::to_string(h) + (f16 ? ", fp16 " : " ") +
                                     isa_name(isa);
            EXPECT_EQ(0, std::memcmp(out1.data(), out.data() + h * d, d * 4)) << what;
            EXPECT_EQ(0, std::memcmp(w1.data(), w.data() + h * ctx, n * 4)) << what;
            for (int64_t p = n; p < ctx; ++p) ASSERT_EQ(w[h * ctx + p], 0.0f) << what;
          }
        }
      }
    }
  }
  std::vector<float> q(128, 0.5f), k(2 * 128, 0.5f), w(2), out(128);
  KvRows kv;
  kv.k = kv.v = k.data();
  kv.stride = 128;
  for (const int64_t bad : {0, 3}) {
    EXPECT_THROW(attend_masked(q.data(), 1, &bad, kv, 2, 128, 0.1f, w.data(), out.data(),
                               KernelIsa::kScalar),
                 Error);
  }
}

}  // namespace
}  // namespace qwenqat::engine
