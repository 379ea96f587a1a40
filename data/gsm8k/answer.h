// Answer extraction and scoring for GSM8K-style outputs. From generated text
// the answer is taken, in order of preference, from the last complete
// \boxed{...} (nested braces allowed), else the last "#### N", else the last
// "the answer is N" (case-insensitive), else the last number in the text.
// Numbers are normalized to exact rationals: commas, "$", "\$", "%", units and
// \text{...} after the number, a trailing ".0", simple fractions "a/b" and
// LaTeX \frac{a}{b} / \dfrac, and negatives ("-5", Unicode minus) are handled.
// A prediction is correct when its normalized value equals the reference's.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qwenqat::data {

enum class AnswerSource { kNone, kBoxed, kHashes, kAnswerIs, kLastNumber };
const char* answer_source_name(AnswerSource s);  // "none", "boxed", "####", ...

// An exact rational num/den (den > 0, reduced).
struct Rational {
  __int128 num = 0;
  __int128 den = 1;
  bool operator==(const Rational& o) const { return num == o.num && den == o.den; }
};
// "18", "-5", "0.75", "1/3" (non-terminating decimals are written as fractions).
std::string to_string(const Rational& r);

// Parses the first number in `s` after LaTeX/currency cleanup: "$1,234.50",
// "\frac{3}{4}", "-\dfrac{1}{2}", "7/2", "50\%", "18 \text{ dollars}",
// ".5". Returns nullopt if there is none (or it overflows 38 digits).
std::optional<Rational> parse_number(std::string_view s);
// The canonical string of parse_number(s), or nullopt.
std::optional<std::string> normalize_answer(std::string_view s);

struct ExtractedAnswer {
  AnswerSource source = AnswerSource::kNone;
  std::string text;                       // the raw extracted span, e.g. "\frac{1}{2}"
  std::optional<std::string> normalized;  // canonical number, if it parses
};
ExtractedAnswer extract_answer(std::string_view generated);

struct AnswerScore {
  ExtractedAnswer extracted;
  std::optional<std::string> reference;  // normalized reference answer
  bool correct = false;
};
// Scores generated text against a GSM8K final answer (the text after "####").
AnswerScore score_answer(std::string_view generated, std::string_view reference_answer);

}  // namespace qwenqat::data
