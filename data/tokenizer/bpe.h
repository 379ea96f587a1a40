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
  size_t num_merges() const { return merges_.size(); }

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
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_ids_[256];
  bool ignore_merges_ = false;

  // Word cache: piece bytes -> [offset, length) in cache_ids_.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash,
                             std::equal_to<>>
      cache_;
  mutable std::vector<int32_t> cache_ids_;
};

}  // namespace qwenqat::data
