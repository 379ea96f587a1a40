// Training examples and batches, torch-free. An Example is one tokenized
// sequence with a loss mask (1 on completion tokens: the positions whose token
// the model is trained to predict; the trainer shifts labels by one). A
// Batcher truncates examples at max_length (counting them), groups them into
// length-sorted buckets and emits right-padded Batches in a seeded,
// per-epoch shuffled order that is the same on every machine.
// The QAT trainer turns Batch into tensors.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qwenqat::data {

struct Example {
  std::vector<int32_t> ids;
  std::vector<uint8_t> loss_mask;  // same length as ids; 1 on completion tokens
  std::string reference_answer;    // GSM8K final answer ("" = none; for exact-match eval)
};

struct Batch {
  int64_t batch_size = 0, seq_len = 0;
  std::vector<int32_t> input_ids;       // [B, T] row-major, right-padded with pad_id
  std::vector<uint8_t> loss_mask;       // [B, T] 1 on completion tokens, 0 on prompt/padding
  std::vector<uint8_t> attention_mask;  // [B, T] 1 on real tokens
  std::vector<int32_t> lengths;         // [B] real length of each row
};

// Pads `rows` into one batch of seq_len = the longest row.
Batch collate(std::span<const Example* const> rows, int32_t pad_id);

struct BatcherOptions {
  int64_t batch_size = 8;
  int64_t max_length = 1024;  // longer examples are cut to this many tokens
  int32_t pad_id = 0;
  uint64_t seed = 0;
  bool shuffle = true;
  int64_t bucket_size = 0;  // examples sorted by length together; 0: 32 * batch_size
  bool drop_last = false;   // drop a final partial batch
};

struct BatcherStats {
  int64_t examples = 0;         // examples kept
  int64_t truncated = 0;        // kept, but cut at max_length
  int64_t dropped_no_loss = 0;  // dropped: no completion token left after truncation
  int64_t tokens = 0;           // real tokens over all kept examples
};

// Thread safety: const methods may be called concurrently.
class Batcher {
 public:
  // Takes the examples; validates (ids/mask lengths equal, non-empty) and
  // options (batch_size, max_length >= 1), throwing qwenqat::Error.
  Batcher(std::vector<Example> examples, BatcherOptions options);

  // The batches of epoch `epoch` (0-based). Order: the example order is
  // shuffled with SplitMix64(seed + epoch * 0x9E3779B97F4A7C15) (identity if
  // !shuffle), cut into buckets of bucket_size, each bucket sorted by length
  // (descending, stable) and cut into batches, then the batch order is
  // shuffled with the same generator. Every example appears once per epoch
  // (unless drop_last drops the final partial batch).
  std::vector<Batch> epoch(int64_t epoch) const;
  // Example indices of each batch of `epoch` (what epoch() collates).
  std::vector<std::vector<int64_t>> epoch_indices(int64_t epoch) const;

  const BatcherStats& stats() const { return stats_; }
  const std::vector<Example>& examples() const { return examples_; }
  const BatcherOptions& options() const { return options_; }

 private:
  std::vector<Example> examples_;
  BatcherOptions options_;
  BatcherStats stats_;
};

}  // namespace qwenqat::data
