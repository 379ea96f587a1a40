// BpeModel: the byte-level BPE model of a Hugging Face tokenizer.json
// ("model": {"type": "BPE", ...}). Tokens are stored as raw bytes (the
// ByteLevel alphabet is undone at load time), so a word is encoded by starting
// from one symbol per byte and applying merges by rank, lowest rank first and
// leftmost first among equal ranks, exactly as tokenizers' Word::merge_all.
// Thread safety: encode_word() may be called concurrently (the word cache is
// guarded by a mutex); loading is single-threaded.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::data {

class BpeModel {
 public:
  BpeModel() = default;
  // Parses the "model" object. Supports vocab + merges in "a b" or ["a", "b"]
  // form, ignore_merges, byte_fallback=false, empty continuing_subword_prefix
  // and end_of_word_suffix, no dropout. `origin` names the file in errors.
  static BpeModel from_json(const Json& model, const std::string& origin);

  // Appends the ids of one pre-tokenized piece (raw bytes, non-empty).
  // Throws if a byte has no token (not a byte-level vocabulary).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Raw bytes of token `id` ("" for ids that are not in the vocab).
  const std::string& token_bytes(int32_t id) const;
  bool has_id(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < id_to_bytes_.size() && present_[id];
  }
  // Id of the token with these raw bytes, or -1.
  int32_t bytes_to_id(std::string_view bytes) const;
  // One past the largest id in the vocab.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_bytes_.size()); }
  size_t num_merges() const { return num_merges_; }

  BpeModel(BpeModel&& o) noexcept { *this = std::move(o); }
  BpeModel& operator=(BpeModel&& o) noexcept;

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> id_to_bytes_;
  std::vector<uint8_t> present_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> bytes_to_id_;
  // Merges: open addressing on the (left id, right id) key; kEmptyKey marks
  // free slots (ids are < 2^24, so no real key equals it).
  static constexpr uint64_t kEmptyKey = ~0ull;
  struct MergeSlot {
    uint64_t key = kEmptyKey;
    Merge merge{};
  };
  const Merge* find_merge(int32_t a, int32_t b) const;
  void insert_merge(uint64_t key, Merge m);  // keeps an existing (lower-rank) entry
  std::vector<MergeSlot> merge_slots_;
  size_t num_merges_ = 0;
  int32_t byte_ids_[256];
  bool ignore_merges_ = false;

  // Word cache: open addressing over a flat slot array; keys and ids live in
  // arenas, so a lookup touches one slot and two contiguous ranges.
  struct CacheSlot {
    uint64_t hash = 0;
    uint32_t key_offset = 0, ids_offset = 0;
    uint16_t key_len = 0, ids_len = 0;  // key_len 0: empty slot
  };
  bool cache_lookup(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const;
  void cache_insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t n) const;
  mutable std::mutex cache_mutex_;
  mutable std::vector<CacheSlot> cache_slots_;
  mutable std::string cache_keys_;
  mutable std::vector<int32_t> cache_ids_;
  mutable size_t cache_used_ = 0;
};

}  // namespace qwenqat::data
