// Tests of the teacher-forced driver with fake two-token models whose
// perplexity, KL and top-1 agreement are worked out by hand.
#include "experiments/eval/teacher_forced.h"

#include <gtest/gtest.h>

#include <cmath>

#include "data/util/check.h"

namespace qwenqat::experiments {
namespace {

const float kLn3 = float(std::log(3.0));

// Row t of the logits is rows[t % rows.size()] (vocab 2).
class FakeModel : public LogitsSource {
 public:
  explicit FakeModel(std::vector<std::vector<float>> rows, int64_t vocab = 2)
      : rows_(std::move(rows)), vocab_(vocab) {}
  int64_t vocab_size() const override { return vocab_; }
  std::vector<float> logits(const std::vector<int32_t>& ids) override {
    std::vector<float> out;
    for (size_t t = 0; t < ids.size(); ++t) {
      const auto& r = rows_[t % rows_.size()];
      out.insert(out.end(), r.begin(), r.end());
    }
    return out;
  }

 private:
  std::vector<std::vector<float>> rows_;
  int64_t vocab_;
};

TEST(TeacherForced, HandComputedPerplexityKlTop1) {
  // Reference: every row [0, ln 3] -> P = [1/4, 3/4].
  FakeModel reference({{0.0f, kLn3}});
  // Model: rows 0, 2, ... uniform; rows 1, 3, ... equal to the reference.
  FakeModel model({{0.0f, 0.0f}, {0.0f, kLn3}});
  // ids [0, 1, 1, 0], score_from 2: token 2 (id 1) is predicted by row 1 and
  // token 3 (id 0) by row 2.
  std::vector<TeacherForcedSequence> seqs = {{"s", {0, 1, 1, 0}, 2}};
  auto acc = run_teacher_forced(seqs, model, &reference, false);
  EXPECT_EQ(acc.tokens(), 2);
  // Model: row 1 = reference -> -ln(3/4) = 0.287682; row 2 uniform -> ln 2 = 0.693147.
  // Sum 0.980829, perplexity exp(0.490415) = 1.632993 (= sqrt(8/3)).
  EXPECT_NEAR(acc.nll_sum(), 0.9808293, 1e-6);
  EXPECT_NEAR(acc.perplexity(), 1.6329932, 1e-6);
  // Reference: -ln(3/4) - ln(1/4) = 0.287682 + 1.386294 = 1.673976,
  // perplexity exp(0.836988) = 2.309401 (= sqrt(16/3)).
  EXPECT_NEAR(acc.reference_perplexity(), 2.3094011, 1e-6);
  // KL: row 1 identical -> 0; row 2: KL([1/4,3/4] || [1/2,1/2]) = 0.130812.
  KlStats kl = acc.kl_stats();
  EXPECT_NEAR(kl.mean, 0.1308120 / 2, 1e-6);
  EXPECT_NEAR(kl.max, 0.1308120, 1e-6);
  EXPECT_NEAR(kl.median, 0.1308120 / 2, 1e-6);
  // Top-1: row 1 agrees (both pick id 1); row 2 model ties -> id 0, reference id 1.
  EXPECT_NEAR(acc.top1_agreement().value, 0.5, 1e-12);
  Json j = acc.to_json();
  EXPECT_NEAR(j["kl"]["mean"].get<double>(), 0.0654060, 1e-6);
}

TEST(TeacherForced, WithoutReference) {
  FakeModel model({{0.0f, 0.0f}});
  std::vector<TeacherForcedSequence> seqs = {{"a", {1, 0, 1}, 1}, {"b", {0, 0}, 1}};
  auto acc = run_teacher_forced(seqs, model, nullptr, false);
  EXPECT_EQ(acc.tokens(), 3);
  EXPECT_EQ(acc.sequences(), 2);
  EXPECT_NEAR(acc.perplexity(), 2.0, 1e-9);  // three uniform binary predictions
  EXPECT_FALSE(acc.has_reference());
  EXPECT_THROW(acc.kl_stats(), Error);
  EXPECT_FALSE(acc.to_json().contains("kl"));
}

TEST(TeacherForced, BadInput) {
  FakeModel model({{0.0f, 0.0f}});
  FakeModel wide({{0.0f, 0.0f, 0.0f}}, 3);
  EXPECT_THROW(run_teacher_forced({{"a", {0, 1}, 1}}, model, &wide, false), Error);
  EXPECT_THROW(run_teacher_forced({{"a", {0, 1}, 2}}, model, nullptr, false), Error);
  EXPECT_THROW(run_teacher_forced({{"a", {0, 1}, 0}}, model, nullptr, false), Error);
  EXPECT_THROW(run_teacher_forced({{"a", {0, 5}, 1}}, model, nullptr, false), Error);
  EXPECT_THROW(run_teacher_forced({{"a", {}, 1}}, model, nullptr, false), Error);
  // A model returning the wrong number of logits.
  FakeModel lying({{0.0f, 0.0f, 0.0f}}, 2);
  EXPECT_THROW(run_teacher_forced({{"a", {0, 1}, 1}}, lying, nullptr, false), Error);
  // NaN logits are reported, not averaged in.
  FakeModel nan_model({{0.0f, NAN}});
  EXPECT_THROW(run_teacher_forced({{"a", {0, 1}, 1}}, nan_model, nullptr, false), Error);
  // Mixing sequences with and without a reference in one accumulator.
  TeacherForcedAccumulator acc;
  std::vector<float> two_rows = {0, 0, 0, 0};
  acc.add({"a", {0, 1}, 1}, two_rows, two_rows, 2);
  EXPECT_THROW(acc.add({"b", {0, 1}, 1}, two_rows, {}, 2), Error);
}

}  // namespace
}  // namespace qwenqat::experiments
