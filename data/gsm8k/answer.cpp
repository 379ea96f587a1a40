// Implementation of answer.h.
#include "data/gsm8k/answer.h"

#include <cctype>
#include <vector>

namespace qwenqat::data {
namespace {

constexpr __int128 kLimit = static_cast<__int128>(1) << 120;  // overflow guard

__int128 gcd128(__int128 a, __int128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    const __int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

std::optional<Rational> make_rational(__int128 num, __int128 den) {
  if (den == 0) return {};
  if (den < 0) {
    num = -num;
    den = -den;
  }
  const __int128 g = gcd128(num, den);
  if (g > 1) {
    num /= g;
    den /= g;
  }
  return Rational{num, den};
}

std::string int128_to_string(__int128 v) {
  if (v == 0) return "0";
  const bool neg = v < 0;
  std::string s;
  while (v != 0) {
    const int digit = static_cast<int>(v % 10);
    s.push_back(static_cast<char>('0' + (digit < 0 ? -digit : digit)));
    v /= 10;
  }
  if (neg) s.push_back('-');
  return std::string(s.rbegin(), s.rend());
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  // Rebuilt rather than replaced in place (GCC 12 warns falsely on replace()).
  std::string out;
  out.reserve(s.size());
  size_t pos = 0, hit;
  while ((hit = s.find(from, pos)) != std::string::npos) {
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Cleans LaTeX and currency so that numbers stand alone.
std::string clean(std::string_view in) {
  std::string s(in);
  replace_all(s, "\xE2\x88\x92", "-");  // U+2212 minus sign
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "{,}", "");  // LaTeX thousands separator 1{,}000
  for (std::string_view drop :
       {"\\$", "$", "\\%", "%", "\\!", "\\,", "\\;", "\\left", "\\right", "\\mathrm", "\\mathbf"}) {
    replace_all(s, drop, "");
  }
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses digits with optional thousands commas and decimals at s[i].
// Returns false if no digit is found; advances i.
bool parse_decimal(const std::string& s, size_t& i, __int128& num, __int128& den) {
  num = 0;
  den = 1;
  bool any = false;
  while (i < s.size()) {
    if (is_digit(s[i])) {
      num = num * 10 + (s[i] - '0');
      any = true;
      ++i;
    } else if (s[i] == ',' && any && i + 3 < s.size() && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
               is_digit(s[i + 3]) && (i + 4 >= s.size() || !is_digit(s[i + 4]))) {
      ++i;  // a thousands separator: exactly three digits follow
    } else {
      break;
    }
    if (num > kLimit) return false;
  }
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) {
    ++i;
    while (i < s.size() && is_digit(s[i])) {
      num = num * 10 + (s[i] - '0');
      den *= 10;
      any = true;
      ++i;
      if (num > kLimit || den > kLimit) return false;
    }
  }
  return any;
}

// Reads "{...}" at s[i] (balanced), returning the inside; advances i.
std::optional<std::string> braced(const std::string& s, size_t& i) {
  while (i < s.size() && s[i] == ' ') ++i;
  if (i >= s.size() || s[i] != '{') return {};
  int depth = 0;
  const size_t start = i + 1;
  for (; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) {
      ++i;
      return s.substr(start, i - 1 - start);
    }
  }
  return {};
}

// Is s[i] a minus sign belonging to the number that follows?
bool sign_at(const std::string& s, size_t i) {
  if (s[i] != '-') return false;
  if (i == 0) return true;
  const char p = s[i - 1];
  return !(std::isalnum(static_cast<unsigned char>(p)) || p == ')' || p == '}' || p == '.');
}

// Numbers in `s` as (start, end, value), in order.
struct NumberSpan {
  size_t start, end;
  Rational value;
};
std::vector<NumberSpan> find_numbers(const std::string& s) {
  std::vector<NumberSpan> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    bool negative = false;
    if (sign_at(s, i) && i + 1 < s.size() &&
        (is_digit(s[i + 1]) || s[i + 1] == '.' || s.compare(i + 1, 5, "\\frac") == 0)) {
      negative = true;
      ++i;
    }
    if (s.compare(i, 5, "\\frac") == 0) {
      size_t j = i + 5;
      const auto a = braced(s, j);
      const auto b = a ? braced(s, j) : std::nullopt;
      const auto ra = a ? parse_number(*a) : std::nullopt;
      const auto rb = b ? parse_number(*b) : std::nullopt;
      if (a && b && !(ra && rb && rb->num != 0)) {  // \frac{1}{0}, \frac{x}{2}: no number
        i = j;
        continue;
      }
      if (ra && rb) {
        auto r = make_rational(ra->num * rb->den, ra->den * rb->num);
        if (r) {
          if (negative) r->num = -r->num;
          out.push_back({start, j, *r});
          i = j;
          continue;
        }
      }
      i = start + 1;
      continue;
    }
    const bool starts_number =
        i < s.size() && (is_digit(s[i]) || (s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1]) &&
                                            (i == 0 || !is_digit(s[i - 1]))));
    if (!starts_number) {
      i = start + 1;
      continue;
    }
    __int128 num, den;
    if (!parse_decimal(s, i, num, den)) {
      while (i < s.size() && (is_digit(s[i]) || s[i] == '.' || s[i] == ',')) ++i;
      continue;
    }
    // A simple fraction "a/b" of integers.
    if (den == 1 && i + 1 < s.size() && s[i] == '/' && is_digit(s[i + 1])) {
      size_t j = i + 1;
      __int128 n2, d2;
      if (parse_decimal(s, j, n2, d2) && d2 == 1 && n2 != 0) {
        den = n2;
        i = j;
      }
    }
    auto r = make_rational(negative ? -num : num, den);
    if (r) out.push_back({start, i, *r});
  }
  return out;
}

std::string_view rest_of_line(std::string_view s, size_t from) {
  const size_t end = s.find('\n', from);
  return s.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from);
}

}  // namespace

const char* answer_source_name(AnswerSource s) {
  switch (s) {
    case AnswerSource::kBoxed:
      return "boxed";
    case AnswerSource::kHashes:
      return "####";
    case AnswerSource::kAnswerIs:
      return "answer is";
    case AnswerSource::kLastNumber:
      return "last number";
    case AnswerSource::kNone:
      break;
  }
  return "none";
}

std::string to_string(const Rational& r) {
  if (r.den == 1) return int128_to_string(r.num);
  // Terminating decimal if den = 2^a 5^b.
  __int128 d = r.den;
  int twos = 0, fives = 0;
  while (d % 2 == 0) d /= 2, ++twos;
  while (d % 5 == 0) d /= 5, ++fives;
  if (d != 1) return int128_to_string(r.num) + "/" + int128_to_string(r.den);
  const int digits = twos > fives ? twos : fives;
  __int128 scale = 1;
  for (int k = 0; k < digits; ++k) scale *= 10;
  const __int128 scaled = r.num * (scale / r.den);
  const bool neg = scaled < 0;
  std::string mag = int128_to_string(neg ? -scaled : scaled);
  if (static_cast<int>(mag.size()) <= digits) {
    std::string padded(static_cast<size_t>(digits) + 1 - mag.size(), '0');
    padded.append(mag);
    mag = std::move(padded);
  }
  const size_t point = mag.size() - static_cast<size_t>(digits);
  std::string out = neg ? "-" : "";
  out.append(mag, 0, point);
  out.push_back('.');
  out.append(mag, point, std::string::npos);
  return out;
}

std::optional<Rational> parse_number(std::string_view s) {
  const auto nums = find_numbers(clean(s));
  if (nums.empty()) return {};
  return nums.front().value;
}

std::optional<std::string> normalize_answer(std::string_view s) {
  const auto r = parse_number(s);
  if (!r) return {};
  return to_string(*r);
}

ExtractedAnswer extract_answer(std::string_view text) {
  ExtractedAnswer out;
  const std::string s(text);
  // 1. The last complete \boxed{...}.
  std::optional<std::string> boxed;
  for (size_t pos = s.find("\\boxed"); pos != std::string::npos; pos = s.find("\\boxed", pos + 1)) {
    size_t j = pos + 6;
    if (auto inside = braced(s, j)) boxed = std::move(inside);
  }
  if (boxed) {
    out.source = AnswerSource::kBoxed;
    out.text = *boxed;
  } else if (const size_t h = s.rfind("####"); h != std::string::npos) {
    out.source = AnswerSource::kHashes;
    out.text = std::string(rest_of_line(s, h + 4));
  } else {
    std::string lower(s);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const size_t a = lower.rfind("the answer is");
    std::optional<Rational> after;
    if (a != std::string::npos) {
      out.text = std::string(rest_of_line(s, a + 13));
      after = parse_number(out.text);
    }
    if (after) {
      out.source = AnswerSource::kAnswerIs;
    } else {
      const auto nums = find_numbers(clean(s));
      if (nums.empty()) {
        out.text.clear();
        return out;
      }
      const std::string cleaned = clean(s);
      out.source = AnswerSource::kLastNumber;
      out.text = cleaned.substr(nums.back().start, nums.back().end - nums.back().start);
      out.normalized = to_string(nums.back().value);
      return out;
    }
  }
  out.normalized = normalize_answer(out.text);
  return out;
}

AnswerScore score_answer(std::string_view generated, std::string_view reference_answer) {
  AnswerScore score;
  score.extracted = extract_answer(generated);
  score.reference = normalize_answer(reference_answer);
  score.correct = score.reference.has_value() && score.extracted.normalized.has_value() &&
                  *score.reference == *score.extracted.normalized;
  return score;
}

}  // namespace qwenqat::data
