// Writes a minimal byte-level BPE tokenizer in Hugging Face format: the 256
// byte tokens (ids 0..255 in byte order), no merges, NFC, the Qwen2 Split
// regex + ByteLevel pre-tokenizer, ByteLevel decoder, and added tokens after
// the bytes. Used by the tiny experiment to train a small model whose files
// load in transformers as well as here.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace qwenqat::data {

// The pre-tokenizer regex of Qwen2 tokenizers (tokenizer.json's Split pattern).
inline constexpr const char* kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct ByteLevelTokenizerSpec {
  // Added tokens with special=true (ids 256.. in this order) ...
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  // ... then added tokens with special=false (kept in decoded text).
  std::vector<std::string> added_tokens = {"<think>", "</think>"};
  std::string eos_token = "<|endoftext|>";  // must be one of the tokens above
  std::string pad_token = "<|endoftext|>";
  std::string bos_token;  // empty: no BOS (add_bos_token false)
};

// Writes `dir`/tokenizer.json and `dir`/tokenizer_config.json atomically
// (creating `dir`). Throws qwenqat::Error if the spec names a token twice or
// eos/pad/bos is not among the added tokens. Vocab size: 256 + added.
void write_byte_level_tokenizer(const std::filesystem::path& dir,
                                const ByteLevelTokenizerSpec& spec = {});

}  // namespace qwenqat::data
