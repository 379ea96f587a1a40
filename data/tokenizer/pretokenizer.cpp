// Implementation of pretokenizer.h over PCRE2.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/tokenizer/pretokenizer.h"

#include <pcre2.h>

#include "data/util/check.h"

namespace qwenqat::data {
namespace {

// GPT-2's pattern, used by ByteLevel with use_regex = true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Unicode White_Space, the members of Oniguruma's \s in UTF-8 mode.
constexpr std::string_view kSpaceMembers =
    R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::string rewrite_whitespace_escapes(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 's') {
        if (!in_class) out += '[';
        out.append(kSpaceMembers);
        if (!in_class) out += ']';
      } else if (e == 'S' && !in_class) {
        out += "[^";
        out.append(kSpaceMembers);
        out += ']';
      } else if (e == 'Q') {  // \Q...\E quotes literally: copy through unchanged
        const size_t end = p.find("\\E", i + 2);
        const size_t stop = end == std::string_view::npos ? p.size() : end + 2;
        out.append(p.substr(i, stop - i));
        i = stop - 1;
        continue;
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      const size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view pattern, bool literal, const std::string& origin)
    : pattern_(pattern) {
  const std::string compiled = literal ? std::string(pattern) : rewrite_whitespace_escapes(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                                   options, &error, &offset, nullptr);
  QWENQAT_CHECK(code != nullptr, origin, ": pre-tokenizer pattern \"", pattern,
                "\" does not compile (", pcre2_message(error), " at offset ", offset, ")");
  // Without JIT support (some platforms) the interpreter is used instead.
  jit_ok_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = code;
}

Regex::~Regex() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void Regex::find_all(std::string_view text, size_t base,
                     std::vector<std::pair<size_t, size_t>>& matches) const {
  auto* code = static_cast<pcre2_code*>(code_);
  // One match-data block and JIT stack per thread, reused across calls.
  struct ThreadState {
    pcre2_match_data* md = pcre2_match_data_create(32, nullptr);
    pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    pcre2_match_context* ctx = pcre2_match_context_create(nullptr);
    ThreadState() { pcre2_jit_stack_assign(ctx, nullptr, stack); }
    ~ThreadState() {
      pcre2_match_context_free(ctx);
      pcre2_jit_stack_free(stack);
      pcre2_match_data_free(md);
    }
  };
  thread_local ThreadState state;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    // The JIT entry point skips pcre2_match's option checks (input is valid UTF-8).
    const int rc =
        jit_ok_
            ? pcre2_jit_match(code, subject, text.size(), pos, 0, state.md, state.ctx)
            : pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, state.md, state.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    QWENQAT_CHECK(rc >= 0, "tokenizer: pre-tokenizer regex failed (", pcre2_message(rc), ") on a ",
                  text.size(), "-byte piece");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.md);
    size_t start = ov[0], end = ov[1];
    if (end == start) {  // empty match: step over one code point
      size_t next = start + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      pos = next;
      continue;
    }
    matches.emplace_back(base + start, base + end);
    pos = end;
  }
}

void PreTokenizer::parse_one(const Json& p, const std::string& origin) {
  QWENQAT_CHECK(p.is_object() && p.contains("type") && p["type"].is_string(), origin,
                ": each pre_tokenizer must be an object with a \"type\"");
  const std::string type = p["type"].get<std::string>();
  if (type == "Sequence") {
    QWENQAT_CHECK(p.contains("pretokenizers") && p["pretokenizers"].is_array(), origin,
                  ": pre_tokenizer Sequence needs a \"pretokenizers\" array");
    for (const auto& q : p["pretokenizers"]) parse_one(q, origin);
  } else if (type == "ByteLevel") {
    has_byte_level_ = true;
    QWENQAT_CHECK(steps_.empty() || !p.value("add_prefix_space", false), origin,
                  ": ByteLevel add_prefix_space after another pre-tokenizer is not supported");
    add_prefix_space_ = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) {
      steps_.push_back({std::make_unique<Regex>(kGpt2Pattern, false, origin), false});
    }
  } else if (type == "Split") {
    QWENQAT_CHECK(p.contains("pattern") && p["pattern"].is_object(), origin,
                  ": pre_tokenizer Split needs \"pattern\": {\"Regex\": ...} or {\"String\": ...}");
    const Json& pat = p["pattern"];
    const bool literal = pat.contains("String");
    QWENQAT_CHECK((literal && pat["String"].is_string()) ||
                      (pat.contains("Regex") && pat["Regex"].is_string()),
                  origin, ": pre_tokenizer Split pattern must hold a \"Regex\" or \"String\"");
    const std::string text =
        literal ? pat["String"].get<std::string>() : pat["Regex"].get<std::string>();
    QWENQAT_CHECK(!p.value("invert", false), origin,
                  ": pre_tokenizer Split with invert=true is not supported");
    const std::string behavior = p.value("behavior", std::string("Isolated"));
    QWENQAT_CHECK(behavior == "Isolated" || behavior == "Removed", origin,
                  ": pre_tokenizer Split behavior \"", behavior,
                  "\" is not supported (supported: Isolated, Removed)");
    steps_.push_back({std::make_unique<Regex>(text, literal, origin), behavior == "Removed"});
  } else {
    fail(origin, ": pre_tokenizer type \"", type,
         "\" is not supported (supported: Sequence, Split, ByteLevel)");
  }
}

PreTokenizer PreTokenizer::from_json(const Json& pre, const std::string& origin) {
  PreTokenizer t;
  if (!pre.is_null()) t.parse_one(pre, origin);
  return t;
}

void PreTokenizer::split(std::string_view text,
                         std::vector<std::pair<size_t, size_t>>& pieces) const {
  pieces.clear();
  if (text.empty()) return;
  pieces.emplace_back(0, text.size());
  std::vector<std::pair<size_t, size_t>> next, matches;
  for (const Step& step : steps_) {
    next.clear();
    for (const auto& [b, e] : pieces) {
      matches.clear();
      step.regex->find_all(text.substr(b, e - b), b, matches);
      size_t cursor = b;
      for (const auto& [mb, me] : matches) {
        if (mb > cursor) next.emplace_back(cursor, mb);  // the gap is its own piece
        if (!step.remove) next.emplace_back(mb, me);
        cursor = me;
      }
      if (cursor < e) next.emplace_back(cursor, e);
    }
    pieces.swap(next);
  }
}

}  // namespace qwenqat::data
