// Implementation of batching.h.
#include "data/batching.h"

#include <algorithm>
#include <numeric>

#include "data/util/check.h"
#include "data/util/rng.h"

namespace qwenqat::data {

Batch collate(std::span<const Example* const> rows, int32_t pad_id) {
  Batch b;
  b.batch_size = static_cast<int64_t>(rows.size());
  for (const Example* e : rows) b.seq_len = std::max<int64_t>(b.seq_len, e->ids.size());
  const size_t n = static_cast<size_t>(b.batch_size * b.seq_len);
  b.input_ids.assign(n, pad_id);
  b.loss_mask.assign(n, 0);
  b.attention_mask.assign(n, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    const Example& e = *rows[r];
    const size_t off = r * static_cast<size_t>(b.seq_len);
    std::copy(e.ids.begin(), e.ids.end(), b.input_ids.begin() + off);
    std::copy(e.loss_mask.begin(), e.loss_mask.end(), b.loss_mask.begin() + off);
    std::fill_n(b.attention_mask.begin() + off, e.ids.size(), 1);
    b.lengths.push_back(static_cast<int32_t>(e.ids.size()));
  }
  return b;
}

Batcher::Batcher(std::vector<Example> examples, BatcherOptions options) : options_(options) {
  QWENQAT_CHECK(options_.batch_size >= 1, "--batch-size must be at least 1, got ",
                options_.batch_size);
  QWENQAT_CHECK(options_.max_length >= 1, "--max-length must be at least 1, got ",
                options_.max_length);
  QWENQAT_CHECK(options_.bucket_size >= 0, "bucket size must be >= 0");
  if (options_.bucket_size == 0) options_.bucket_size = 32 * options_.batch_size;
  for (size_t i = 0; i < examples.size(); ++i) {
    Example& e = examples[i];
    QWENQAT_CHECK(e.ids.size() == e.loss_mask.size(), "example ", i, ": ", e.ids.size(),
                  " ids but ", e.loss_mask.size(), " loss-mask entries");
    QWENQAT_CHECK(!e.ids.empty(), "example ", i, " is empty");
    if (static_cast<int64_t>(e.ids.size()) > options_.max_length) {
      e.ids.resize(options_.max_length);
      e.loss_mask.resize(options_.max_length);
      if (std::find(e.loss_mask.begin(), e.loss_mask.end(), 1) == e.loss_mask.end()) {
        ++stats_.dropped_no_loss;
        continue;
      }
      ++stats_.truncated;
    }
    stats_.tokens += static_cast<int64_t>(e.ids.size());
    examples_.push_back(std::move(e));
  }
  stats_.examples = static_cast<int64_t>(examples_.size());
}

std::vector<std::vector<int64_t>> Batcher::epoch_indices(int64_t epoch) const {
  const int64_t n = static_cast<int64_t>(examples_.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 rng(options_.seed + static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ull);
  if (options_.shuffle) portable_shuffle(order, rng);
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b0 = 0; b0 < n; b0 += options_.bucket_size) {
    const auto first = order.begin() + b0;
    const auto last = order.begin() + std::min(n, b0 + options_.bucket_size);
    std::stable_sort(first, last, [&](int64_t a, int64_t b) {
      return examples_[a].ids.size() > examples_[b].ids.size();
    });
  }
  // Batches are cut over the whole order, so only the very last may be partial.
  for (int64_t s = 0; s < n; s += options_.batch_size) {
    const int64_t e = std::min(n, s + options_.batch_size);
    if (e - s < options_.batch_size && options_.drop_last) break;
    batches.emplace_back(order.begin() + s, order.begin() + e);
  }
  if (options_.shuffle) portable_shuffle(batches, rng);
  return batches;
}

std::vector<Batch> Batcher::epoch(int64_t epoch) const {
  std::vector<Batch> out;
  std::vector<const Example*> rows;
  for (const auto& idx : epoch_indices(epoch)) {
    rows.clear();
    for (int64_t i : idx) rows.push_back(&examples_[i]);
    out.push_back(collate(rows, options_.pad_id));
  }
  return out;
}

}  // namespace qwenqat::data
