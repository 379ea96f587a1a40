// Tokenizer: a Hugging Face byte-level BPE tokenizer (tokenizer.json, plus
// tokenizer_config.json beside it when present), e.g. Qwen2 and the
// DeepSeek-R1 distills. encode() follows tokenizers' pipeline: added tokens
// (special and not) are matched in the text first, leftmost then longest
// (non-normalized ones on the raw text, normalized ones after normalization);
// the text between them is normalized (NFC for Qwen2), split by the
// pre-tokenizer regex taken from the file, and each piece is BPE-encoded over
// its UTF-8 bytes. decode() maps ids back to bytes and repairs invalid UTF-8
// with U+FFFD, as Hugging Face does.
//
// Invalid UTF-8 input to encode() is rejected with a qwenqat::Error naming the
// byte offset (never replaced silently).
// Thread safety: a loaded Tokenizer is immutable apart from an internal,
// mutex-guarded BPE cache; encode/decode may be called from many threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/bpe.h"
#include "data/tokenizer/pretokenizer.h"
#include "data/tokenizer/text_util.h"
#include "data/util/json_io.h"

namespace qwenqat::data {

// An entry of tokenizer.json's "added_tokens" (Hugging Face field names).
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

class Tokenizer {
 public:
  // Loads `path`: a tokenizer.json file or a directory holding one. Reads
  // tokenizer_config.json from the same directory when present. Throws naming
  // the file and field on anything malformed or unsupported.
  static Tokenizer load(const std::filesystem::path& path);
  // From parsed JSON; `config` is tokenizer_config.json or null.
  static Tokenizer from_json(const Json& tokenizer, const Json& config, const std::string& origin);

  // Token ids of `text` (UTF-8). With add_special_tokens, adds BOS/EOS as
  // tokenizer_config.json says (add_bos_token / add_eos_token), or as a
  // TemplateProcessing post-processor says when the config is silent.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Appends the ids of `text` (no BOS/EOS) to `out`.
  void encode_append(std::string_view text, std::vector<int32_t>& out) const;

  // Text of `ids`; invalid UTF-8 from partial byte tokens becomes U+FFFD.
  // Throws naming the id if one is outside [0, vocab_size()) or unassigned.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // Appends the raw bytes of one token (nothing for a skipped special token).
  void append_token_bytes(int32_t id, bool skip_special_tokens, std::string& out) const;

  // Id of a token given as its vocabulary string: an added token's content or
  // a byte-level token ("Ġthe"); nullopt if absent.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocabulary string of `id` (added content or byte-level form).
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  const AddedToken* added_token(int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  // One past the largest assigned id (regular vocab and added tokens).
  int32_t vocab_size() const { return vocab_size_; }

  // Special tokens from tokenizer_config.json (nullopt when not configured).
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::optional<int32_t> pad_id() const { return pad_id_; }
  bool add_bos_token() const { return !prefix_ids_.empty(); }
  const std::string& origin() const { return origin_; }

 private:
  struct AddedMatcher {
    std::vector<const AddedToken*> tokens;  // longest first
    bool first_byte[256] = {};
    bool empty() const { return tokens.empty(); }
  };
  template <class OnGap>
  void split_added(std::string_view text, const AddedMatcher& m, std::vector<int32_t>& out,
                   OnGap&& on_gap) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  static void build_matcher(AddedMatcher& m, const std::vector<AddedToken>& all, bool normalized);

  std::string origin_;
  std::unique_ptr<BpeModel> bpe_;
  PreTokenizer pre_;
  std::vector<NormalForm> normalizers_;
  std::vector<AddedToken> added_;
  std::vector<int32_t> added_index_;      // id -> index into added_, or -1
  std::vector<std::string> added_bytes_;  // decoded bytes per added_ entry
  AddedMatcher raw_matcher_, normalized_matcher_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
  int32_t vocab_size_ = 0;
};

}  // namespace qwenqat::data
