// PreTokenizer: the "pre_tokenizer" of a Hugging Face tokenizer.json for
// byte-level BPE models: null, ByteLevel (use_regex true: the GPT-2 pattern),
// Split (a Regex or String pattern taken from the file, behavior "Isolated"
// or "Removed", invert false), or a Sequence of those. Regexes are compiled
// with PCRE2 (UTF + Unicode properties, JIT). Oniguruma's \s (Unicode
// White_Space, used by Hugging Face) is matched exactly by rewriting \s and \S
// to explicit classes, since PCRE2's \s omits U+0085.
// Thread safety: split() is const and may be called concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::data {

// One compiled PCRE2 pattern; move-only.
class Regex {
 public:
  // Throws naming `origin` and the PCRE2 error offset if the pattern is invalid.
  Regex(std::string_view pattern, bool literal, const std::string& origin);
  ~Regex();
  Regex(Regex&& o) noexcept : code_(o.code_), jit_ok_(o.jit_ok_), pattern_(std::move(o.pattern_)) {
    o.code_ = nullptr;
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  Regex& operator=(Regex&&) = delete;

  // Appends the [begin, end) byte ranges of successive non-overlapping,
  // non-empty matches in `text` (valid UTF-8), offset by `base`.
  void find_all(std::string_view text, size_t base,
                std::vector<std::pair<size_t, size_t>>& matches) const;
  const std::string& pattern() const { return pattern_; }

 private:
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ok_ = false;
  std::string pattern_;
};

// Rewrites \s / \S (outside and inside character classes) to Unicode
// White_Space classes. Exposed for tests.
std::string rewrite_whitespace_escapes(std::string_view pattern);

class PreTokenizer {
 public:
  // Parses the "pre_tokenizer" value (may be null). Throws naming `origin`
  // and the unsupported type/behavior.
  static PreTokenizer from_json(const Json& pre, const std::string& origin);

  // Splits `text` into pieces (byte ranges into text, in order, non-empty).
  void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) const;
  bool add_prefix_space() const { return add_prefix_space_; }
  bool has_byte_level() const { return has_byte_level_; }

 private:
  struct Step {
    std::unique_ptr<Regex> regex;
    bool remove = false;  // behavior "Removed": drop the matches, keep the gaps
  };
  void parse_one(const Json& p, const std::string& origin);
  std::vector<Step> steps_;
  bool add_prefix_space_ = false;
  bool has_byte_level_ = false;
};

}  // namespace qwenqat::data
