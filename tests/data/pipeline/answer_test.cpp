// Tests for data/gsm8k/answer.h: every extraction path and normalization rule.
#include "data/gsm8k/answer.h"

#include <gtest/gtest.h>

namespace qwenqat::data {
namespace {

std::string norm(std::string_view s) { return normalize_answer(s).value_or("<none>"); }

TEST(Answer, NormalizesNumbers) {
  EXPECT_EQ(norm("18"), "18");
  EXPECT_EQ(norm("1,234,567"), "1234567");
  EXPECT_EQ(norm("$1,000.50"), "1000.5");
  EXPECT_EQ(norm("\\$45"), "45");
  EXPECT_EQ(norm("50%"), "50");
  EXPECT_EQ(norm("50\\%"), "50");
  EXPECT_EQ(norm("18.0"), "18");
  EXPECT_EQ(norm("18.00"), "18");
  EXPECT_EQ(norm("18."), "18");
  EXPECT_EQ(norm(".5"), "0.5");
  EXPECT_EQ(norm("-5"), "-5");
  EXPECT_EQ(norm("\xE2\x88\x92"
                 "7"),
            "-7");  // Unicode minus sign
  EXPECT_EQ(norm("3/4"), "0.75");
  EXPECT_EQ(norm("1/3"), "1/3");
  EXPECT_EQ(norm("\\frac{3}{4}"), "0.75");
  EXPECT_EQ(norm("\\dfrac{10}{4}"), "2.5");
  EXPECT_EQ(norm("-\\frac{1}{2}"), "-0.5");
  EXPECT_EQ(norm("18 dollars"), "18");
  EXPECT_EQ(norm("18 \\text{ dollars}"), "18");
  EXPECT_EQ(norm("\\text{\\$}18"), "18");
  EXPECT_EQ(norm("1{,}000"), "1000");
  EXPECT_EQ(norm("12,5"), "12");  // not a thousands separator: the first number
  EXPECT_EQ(norm("no number"), "<none>");
  EXPECT_EQ(norm("\\frac{1}{0}"), "<none>");
  EXPECT_EQ(norm("99999999999999999999999999999999999999999999"), "<none>");  // overflow
}

TEST(Answer, BoxedWinsAndHandlesNestedBraces) {
  auto e = extract_answer("First \\boxed{3}, then finally \\boxed{\\frac{1}{2}} done. 99");
  EXPECT_EQ(e.source, AnswerSource::kBoxed);
  EXPECT_EQ(e.text, "\\frac{1}{2}");
  EXPECT_EQ(e.normalized, "0.5");
  // An unterminated \boxed{ (cut-off generation) is ignored.
  e = extract_answer("The answer is 7. \\boxed{8");
  EXPECT_EQ(e.source, AnswerSource::kAnswerIs);
  EXPECT_EQ(e.normalized, "7");
  e = extract_answer("so $\\boxed{1,200 \\text{ apples}}$.");
  EXPECT_EQ(e.normalized, "1200");
}

TEST(Answer, HashesThenAnswerIsThenLastNumber) {
  auto e = extract_answer("He has 3*3=9 apples.\n#### 9\nextra 5");
  EXPECT_EQ(e.source, AnswerSource::kHashes);
  EXPECT_EQ(e.normalized, "9");
  e = extract_answer("We add 2 and 3. The answer is: $5.00 total. Later 7.");
  EXPECT_EQ(e.source, AnswerSource::kAnswerIs);
  EXPECT_EQ(e.normalized, "5");
  e = extract_answer("THE ANSWER IS -12 degrees");
  EXPECT_EQ(e.source, AnswerSource::kAnswerIs);
  EXPECT_EQ(e.normalized, "-12");
  e = extract_answer("She ends with 10-3 = 7 eggs, costing $1,250.");
  EXPECT_EQ(e.source, AnswerSource::kLastNumber);
  EXPECT_EQ(e.normalized, "1250");
  e = extract_answer("10-3");  // a minus between numbers is not a sign
  EXPECT_EQ(e.normalized, "3");
  e = extract_answer("It drops to -4.");
  EXPECT_EQ(e.normalized, "-4");
  e = extract_answer("no digits here");
  EXPECT_EQ(e.source, AnswerSource::kNone);
  EXPECT_FALSE(e.normalized.has_value());
}

TEST(Answer, ScoresExactMatch) {
  EXPECT_TRUE(score_answer("... so \\boxed{18}", "18").correct);
  EXPECT_TRUE(score_answer("Total: $1,600.00", "1600").correct);
  EXPECT_TRUE(score_answer("\\boxed{1600}", "1,600").correct);
  EXPECT_TRUE(score_answer("\\boxed{-45}", "-45").correct);
  EXPECT_TRUE(score_answer("\\boxed{\\frac{3}{4}}", "0.75").correct);
  EXPECT_TRUE(score_answer("the answer is 10.8 km", "10.8").correct);
  EXPECT_FALSE(score_answer("\\boxed{45}", "-45").correct);
  EXPECT_FALSE(score_answer("\\boxed{18.5}", "18").correct);
  EXPECT_FALSE(score_answer("nothing", "18").correct);
  EXPECT_FALSE(score_answer("\\boxed{x}", "18").correct);
}

TEST(Answer, RationalToString) {
  EXPECT_EQ(to_string(Rational{-1, 8}), "-0.125");
  EXPECT_EQ(to_string(Rational{1, 20}), "0.05");
  EXPECT_EQ(to_string(Rational{2, 3}), "2/3");
  EXPECT_EQ(to_string(Rational{0, 1}), "0");
}

}  // namespace
}  // namespace qwenqat::data
