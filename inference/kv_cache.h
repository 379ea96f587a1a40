// The key/value cache: for each of num_slots independent sequences, every
// layer's keys and values (after rotary) for positions [0, length), stored as
// float32 or fp16. Capacity max_context positions per slot, checked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inference/kernels/aligned.h"
#include "inference/kernels/attention.h"
#include "models/checkpoint/qwen2_config.h"

namespace qwenqat::engine {

enum class KvDtype { kF32, kF16 };
// "f32" | "f16"; `what` names the flag in the error.
KvDtype parse_kv_dtype(const std::string& s, const std::string& what);

// Not thread-safe for writes to the same slot; reads of distinct positions
// from several threads are fine.
class KvCache {
 public:
  // max_context >= 1 positions per slot; memory: 2 * slots * layers *
  // max_context * kv_dim * (4 or 2) bytes (allocated up front).
  KvCache(const models::Qwen2Config& config, int64_t num_slots, int64_t max_context, KvDtype dtype);

  int64_t num_slots() const { return num_slots_; }
  int64_t max_context() const { return max_context_; }
  KvDtype dtype() const { return dtype_; }
  int64_t kv_dim() const { return kv_dim_; }
  int64_t length(int64_t slot) const { return lengths_.at(slot); }
  void set_length(int64_t slot, int64_t len);  // 0 resets a slot; len <= max_context
  uint64_t bytes() const;

  // Writes k and v ([kv_dim] floats each) at (slot, layer, pos) (fp16: each
  // value as f32_to_fp16 rounds it). Thread-safe for distinct (slot, layer,
  // pos) triples.
  void store(int64_t slot, int64_t layer, int64_t pos, const float* k, const float* v);
  // The cached keys and values of kv head `head` (head_dim elements each, the
  // config's head_dim) at (slot, layer), in place: float32 or fp16 pointers
  // as the cache's dtype, position p's row p * head_dim elements after
  // position 0 (KvRows::stride: each head's rows are contiguous). Valid while
  // the cache lives; rows past length(slot) hold whatever was stored last.
  KvRows head(int64_t slot, int64_t layer, int64_t head, int64_t head_dim) const;

 private:
  size_t offset(int64_t slot, int64_t layer, int64_t head, int64_t pos) const;
  int64_t num_slots_, num_layers_, max_context_, kv_dim_, head_dim_;
  KvDtype dtype_;
  std::vector<int64_t> lengths_;
  AlignedVector<float> k32_, v32_;  // 64-byte aligned: each head's rows start on a line
  AlignedVector<uint16_t> k16_, v16_;
};

}  // namespace qwenqat::engine
