// KvCache: what store() writes is what head() reads back, for every slot,
// layer, kv head and position, in float32 and fp16; each head's rows are
// contiguous (KvRows::stride == head_dim, the layout the attention threads
// stream); bad slots, layers, heads, positions and lengths are errors.
#include "inference/kv_cache.h"

#include <gtest/gtest.h>

#include <vector>

#include "data/util/check.h"
#include "data/util/half.h"
#include "tests/inference/engine_test_util.h"

namespace qwenqat::engine {
namespace {

// A distinct value for every (slot, layer, position, element of kv_dim) of
// the tiny config (3 slots, 2 layers, 5 positions, kv_dim 32): integers below
// 2048, so exact in fp16; negated for the values.
float key_at(int64_t slot, int64_t layer, int64_t pos, int64_t i) {
  return static_cast<float>(slot * 400 + layer * 200 + pos * 32 + i);
}

void fill(KvCache& cache, const models::Qwen2Config& c, int64_t slots, int64_t ctx) {
  std::vector<float> k(c.kv_dim()), v(c.kv_dim());
  for (int64_t s = 0; s < slots; ++s)
    for (int64_t l = 0; l < c.num_hidden_layers; ++l)
      for (int64_t p = 0; p < ctx; ++p) {
        for (int64_t i = 0; i < c.kv_dim(); ++i) {
          k[i] = key_at(s, l, p, i);
          v[i] = -k[i];
        }
        cache.store(s, l, p, k.data(), v.data());
      }
}

class KvCacheTest : public ::testing::TestWithParam<KvDtype> {};

TEST_P(KvCacheTest, HeadRowsAreWhatWasStoredAndContiguous) {
  const models::Qwen2Config c = testing::tiny_config();
  const int64_t slots = 3, ctx = 5, d = c.dim_head();
  ASSERT_EQ(c.kv_dim(), 32);  // key_at's values stay distinct and exact
  KvCache cache(c, slots, ctx, GetParam());
  fill(cache, c, slots, ctx);
  for (int64_t s = 0; s < slots; ++s)
    for (int64_t l = 0; l < c.num_hidden_layers; ++l)
      for (int64_t h = 0; h < c.num_key_value_heads; ++h) {
        const KvRows r = cache.head(s, l, h, d);
        ASSERT_EQ(r.stride, d);
        for (int64_t p = 0; p < ctx; ++p)
          for (int64_t j = 0; j < d; ++j) {
            const float want = key_at(s, l, p, h * d + j);
            const int64_t at = p * r.stride + j;
            if (GetParam() == KvDtype::kF32) {
              ASSERT_EQ(r.k[at], want) << s << " " << l << " " << h << " " << p << " " << j;
              ASSERT_EQ(r.v[at], -want);
            } else {
              ASSERT_EQ(fp16_to_f32(r.k16[at]), want) << s << " " << l << " " << h << " " << p;
              ASSERT_EQ(fp16_to_f32(r.v16[at]), -want);
            }
          }
      }
}

// Every head's rows start on a 64-byte line when a head's block of positions
// is a whole number of lines (the attention kernels' 64-byte loads then
// never straddle two lines): the buffers are AlignedVector.
TEST_P(KvCacheTest, HeadsStartOnACacheLine) {
  const models::Qwen2Config c = testing::tiny_config();
  const int64_t d = c.dim_head(), ctx = 8;  // 8 x 16 elements: 256 or 512 bytes per head
  for (int64_t slots : {1, 2, 3}) {
    KvCache cache(c, slots, ctx, GetParam());
    for (int64_t s = 0; s < slots; ++s)
      for (int64_t l = 0; l < c.num_hidden_layers; ++l)
        for (int64_t h = 0; h < c.num_key_value_heads; ++h) {
          const KvRows r = cache.head(s, l, h, d);
          const void* k = GetParam() == KvDtype::kF32 ? static_cast<const void*>(r.k) : r.k16;
          const void* v = GetParam() == KvDtype::kF32 ? static_cast<const void*>(r.v) : r.v16;
          EXPECT_EQ(reinterpret_cast<uintptr_t>(k) % 64, 0u) << s << " " << l << " " << h;
          EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % 64, 0u) << s << " " << l << " " << h;
        }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, KvCacheTest, ::testing::Values(KvDtype::kF32, KvDtype::kF16),
                         [](const auto& info) {
                           return info.param == KvDtype::kF32 ? std::string("F32")
                                                              : std::string("F16");
                         });

TEST(KvCache, BadArgumentsAreErrors) {
  const models::Qwen2Config c = testing::tiny_config();
  const int64_t d = c.dim_head();
  KvCache cache(c, 2, 4, KvDtype::kF16);
  std::vector<float> k(c.kv_dim(), 1.0f), v(c.kv_dim(), 1.0f);
  EXPECT_THROW(cache.store(0, 0, 4, k.data(), v.data()), Error);  // past the context
  EXPECT_THROW(cache.store(2, 0, 0, k.data(), v.data()), Error);  // slot
  EXPECT_THROW(cache.store(0, c.num_hidden_layers, 0, k.data(), v.data()), Error);
  EXPECT_THROW(cache.head(2, 0, 0, d), Error);                      // slot
  EXPECT_THROW(cache.head(0, c.num_hidden_layers, 0, d), Error);    // layer
  EXPECT_THROW(cache.head(0, 0, c.num_key_value_heads, d), Error);  // kv head
  EXPECT_THROW(cache.head(0, 0, 0, d / 2), Error);                  // not the config's head_dim
  EXPECT_THROW(cache.set_length(0, 5), Error);
  EXPECT_THROW(KvCache(c, 0, 4, KvDtype::kF32), Error);
  EXPECT_THROW(KvCache(c, 1, 0, KvDtype::kF32), Error);
  EXPECT_THROW(parse_kv_dtype("bf16", "--kv-cache"), Error);
}

}  // namespace
}  // namespace qwenqat::engine
