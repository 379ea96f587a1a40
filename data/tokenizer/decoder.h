// IncrementalDecoder: streaming detokenization for generation. Tokens arrive
// one at a time; push() returns the text that is now final. A UTF-8 character
// split across byte tokens is held back until it is complete, so the output
// never contains half a character; bytes that can never become valid are
// replaced by U+FFFD exactly as Tokenizer::decode() would. The concatenation
// of all push() results and finish() equals decode(all ids).
// Not thread-safe (one decoder per stream); the Tokenizer must outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "data/tokenizer/tokenizer.h"

namespace qwenqat::data {

class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

  // Adds one token id; returns the newly completed text (possibly empty).
  // Throws (like decode) on an id outside the vocabulary.
  std::string push(int32_t id);
  // Flushes held-back bytes of an unfinished character as U+FFFD.
  std::string finish();
  // Bytes currently held back (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace qwenqat::data
