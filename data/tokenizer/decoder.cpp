// Implementation of decoder.h.
#include "data/tokenizer/decoder.h"

#include "data/tokenizer/text_util.h"

namespace qwenqat::data {

std::string IncrementalDecoder::push(int32_t id) {
  tokenizer_->append_token_bytes(id, skip_special_, pending_);
  const size_t hold = incomplete_utf8_suffix(pending_);
  const std::string_view ready(pending_.data(), pending_.size() - hold);
  std::string out = utf8_lossy(ready);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string IncrementalDecoder::finish() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace qwenqat::data
