// Tests for data/batching.h: padding, masks, truncation counts, bucketing and
// seeded per-epoch shuffling.
#include "data/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data/util/check.h"

namespace qwenqat::data {
namespace {

Example make(int len, int prompt_len, int32_t base) {
  Example e;
  for (int i = 0; i < len; ++i) {
    e.ids.push_back(base + i);
    e.loss_mask.push_back(i >= prompt_len ? 1 : 0);
  }
  return e;
}

TEST(Batching, CollatePadsRightWithMasks) {
  const Example a = make(3, 1, 10), b = make(5, 2, 20);
  const Example* rows[] = {&a, &b};
  const Batch batch = collate(rows, -7);
  EXPECT_EQ(batch.batch_size, 2);
  EXPECT_EQ(batch.seq_len, 5);
  EXPECT_EQ(batch.input_ids, (std::vector<int32_t>{10, 11, 12, -7, -7, 20, 21, 22, 23, 24}));
  EXPECT_EQ(batch.loss_mask, (std::vector<uint8_t>{0, 1, 1, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(batch.attention_mask, (std::vector<uint8_t>{1, 1, 1, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(batch.lengths, (std::vector<int32_t>{3, 5}));
}

TEST(Batching, TruncatesAndCounts) {
  std::vector<Example> ex = {make(10, 2, 0), make(4, 1, 100), make(12, 9, 200)};
  BatcherOptions o;
  o.max_length = 8;
  o.batch_size = 2;
  const Batcher b(ex, o);
  EXPECT_EQ(b.stats().examples, 2);
  EXPECT_EQ(b.stats().truncated, 1);
  EXPECT_EQ(b.stats().dropped_no_loss, 1);  // its completion started after token 8
  EXPECT_EQ(b.stats().tokens, 8 + 4);
  for (const Batch& batch : b.epoch(0)) EXPECT_LE(batch.seq_len, 8);
  o.batch_size = 0;
  EXPECT_THROW(Batcher(ex, o), Error);
  std::vector<Example> broken = {make(3, 1, 0)};
  broken[0].loss_mask.pop_back();
  EXPECT_THROW(Batcher(broken, BatcherOptions{}), Error);
}

TEST(Batching, EpochsCoverAllExamplesSortedWithinBucketsAndShuffleBySeed) {
  std::vector<Example> ex;
  for (int i = 0; i < 100; ++i) ex.push_back(make(5 + (i * 37) % 50, 2, i * 1000));
  BatcherOptions o;
  o.batch_size = 4;
  o.bucket_size = 20;
  o.seed = 9;
  const Batcher b(ex, o);
  const auto e0 = b.epoch_indices(0), e0again = b.epoch_indices(0), e1 = b.epoch_indices(1);
  EXPECT_EQ(e0, e0again);
  EXPECT_NE(e0, e1);
  std::multiset<int64_t> seen;
  for (const auto& batch : e0) {
    EXPECT_EQ(batch.size(), 4u);
    for (size_t k = 1; k < batch.size(); ++k) {  // length-sorted within a bucket
      EXPECT_GE(ex[batch[k - 1]].ids.size(), ex[batch[k]].ids.size());
    }
    seen.insert(batch.begin(), batch.end());
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 100u);
  // Collated batches carry exactly the indexed examples.
  const auto batches = b.epoch(0);
  ASSERT_EQ(batches.size(), e0.size());
  EXPECT_EQ(batches[0].input_ids[0], ex[e0[0][0]].ids[0]);
  o.seed = 10;
  EXPECT_NE(Batcher(ex, o).epoch_indices(0), e0);
  o.shuffle = false;
  o.drop_last = true;
  o.bucket_size = 100;
  std::vector<Example> odd(ex.begin(), ex.begin() + 10);
  const auto plain = Batcher(odd, o).epoch_indices(0);
  EXPECT_EQ(plain.size(), 2u);  // 10 examples, batch 4, last partial dropped
}

}  // namespace
}  // namespace qwenqat::data
