// Tests of the QAT trainer on a tiny Qwen2 model: loss goes down under int4
// and int2 QAT, --resume reproduces the uninterrupted loss curve exactly, a
// NaN loss stops with a message and keeps the last good checkpoint, steps 0
// (PTQ) writes a checkpoint, the loss helpers, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "qat/train_data.h"
#include "qat/trainer.h"
#include "tests/qat/tiny_model.h"
#include "tests/util/test_util.h"

namespace qwenqat::qat {
namespace {

namespace fs = std::filesystem;
using testing::tiny_model;

// A small repeated dataset: 8 sequences of 16 tokens following simple rules
// (learnable in a few dozen steps), loss on the second half.
std::vector<data::Example> toy_examples() {
  std::vector<data::Example> out;
  for (int s = 0; s < 8; ++s) {
    data::Example e;
    for (int t = 0; t < 16; ++t) {
      e.ids.push_back(int32_t((s * 7 + t * (s % 3 + 1)) % 96));
      e.loss_mask.push_back(t >= 8);
    }
    out.push_back(e);
  }
  return out;
}

data::Batcher toy_batcher(uint64_t seed = 0) {
  data::BatcherOptions o;
  o.batch_size = 4;
  o.max_length = 64;
  o.seed = seed;
  return data::Batcher(toy_examples(), o);
}

TrainOptions fast_options(int64_t steps) {
  TrainOptions o;
  o.steps = steps;
  o.lr = 3e-3;
  o.scale_lr = 1e-3;
  o.warmup_steps = 2;
  o.progress = false;
  return o;
}

TEST(Trainer, LossGoesDownUnderInt4AndInt2Qat) {
  for (const char* preset : {"w4g32", "w2g32"}) {
    SCOPED_TRACE(preset);
    qwenqat::testing::TempDir dir;
    auto m = tiny_model(11);
    auto qat = prepare(*m, QatConfig::from_preset(preset));
    Trainer tr(m, qat, fast_options(40), toy_batcher(), toy_batcher(), dir.path());
    const auto before = tr.evaluate().ce;
    const auto steps = tr.run();
    ASSERT_EQ(steps.size(), 40u);
    const auto after = tr.evaluate().ce;
    EXPECT_LT(after, 0.5 * before) << "before " << before << " after " << after;
    EXPECT_LT(steps.back().ce, steps.front().ce);
    EXPECT_TRUE(fs::exists(dir / "checkpoint-40" / "model.safetensors"));
    EXPECT_TRUE(fs::exists(dir / "checkpoint-40" / "quantization.json"));
    EXPECT_EQ(read_file(dir / "latest"), "checkpoint-40\n");
  }
}

TEST(Trainer, ResumeReproducesTheUninterruptedLossCurve) {
  auto options = fast_options(6);
  options.kd_weight = 0.5;
  options.kd_temperature = 2.0;
  options.grad_accum = 2;
  options.save_every = 3;
  std::vector<double> full;
  {
    qwenqat::testing::TempDir dir;
    auto m = tiny_model(12);
    auto qat = prepare(*m, QatConfig::from_preset("w4g32a8"));
    Trainer tr(m, qat, options, toy_batcher(3), std::nullopt, dir.path());
    for (const auto& s : tr.run()) full.push_back(s.loss);
  }
  qwenqat::testing::TempDir dir;
  {
    auto m = tiny_model(12);
    auto qat = prepare(*m, QatConfig::from_preset("w4g32a8"));
    Trainer tr(m, qat, options, toy_batcher(3), std::nullopt, dir.path());
    tr.on_step = [](const StepMetrics& s) {
      if (s.step == 4) throw std::runtime_error("killed");  // after checkpoint-3, mid-run
    };
    EXPECT_THROW(tr.run(), std::runtime_error);
  }
  ASSERT_EQ(read_file(dir / "latest"), "checkpoint-3\n");
  const auto ckpt = dir / "checkpoint-3";
  auto m = models::load_model(ckpt);
  auto qat = load_quantization(*m, ckpt);
  Trainer tr(m, qat, options, toy_batcher(3), std::nullopt, dir.path());
  tr.resume(ckpt);
  EXPECT_EQ(tr.step(), 3);
  const auto rest = tr.run();
  ASSERT_EQ(rest.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(rest[i].loss, full[3 + i]) << "step " << 4 + i;
  // metrics.jsonl holds each train step once (the killed run's step 4 dropped).
  std::ifstream in(dir / "metrics.jsonl");
  int train_lines = 0;
  for (std::string line; std::getline(in, line);) {
    train_lines += line.find("\"train\"") != std::string::npos;
  }
  EXPECT_EQ(train_lines, 6);
}

TEST(Trainer, NanLossStopsAndKeepsTheLastGoodCheckpoint) {
  qwenqat::testing::TempDir dir;
  auto m = tiny_model(13);
  auto qat = prepare(*m, QatConfig::from_preset("w4g32"));
  auto options = fast_options(5);
  options.save_every = 1;
  Trainer tr(m, qat, options, toy_batcher(), std::nullopt, dir.path());
  tr.on_step = [&](const StepMetrics& s) {
    if (s.step == 2) {
      torch::NoGradGuard ng;
      m->model->norm->weight().fill_(std::nanf(""));
    }
  };
  try {
    tr.run();
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("at step 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("checkpoint-2"), std::string::npos) << msg;
  }
  EXPECT_EQ(read_file(dir / "latest"), "checkpoint-2\n");
  auto good = models::load_model(dir / "checkpoint-2");
  EXPECT_TRUE(torch::isfinite(good->model->norm->weight()).all().item<bool>());
}

TEST(Trainer, ZeroStepsIsPostTrainingQuantization) {
  qwenqat::testing::TempDir dir;
  auto m = tiny_model(14);
  auto qat = prepare(*m, QatConfig::from_preset("w4g32"));
  Trainer tr(m, qat, fast_options(0), toy_batcher(), toy_batcher(), dir.path());
  EXPECT_TRUE(tr.run().empty());
  EXPECT_TRUE(fs::exists(dir / "checkpoint-0" / "quantizers.safetensors"));
  EXPECT_NE(read_file(dir / "metrics.jsonl").find("eval_ce"), std::string::npos);
}

// With trainable weights the self-teacher (quantizers off) drifts with them;
// a frozen teacher stays the base model. Both agree on the first step (same
// weights), the frozen one is untouched by training, and KD against it keeps
// the student's fp logits closer to the base than KD against the drifting self.
TEST(Trainer, FrozenTeacherAnchorsDistillation) {
  auto options = fast_options(12);
  options.ce_weight = 0.0;
  options.kd_weight = 1.0;
  auto run = [&](bool frozen, std::vector<StepMetrics>* steps) {
    qwenqat::testing::TempDir dir;
    auto m = tiny_model(21);
    auto qat = prepare(*m, QatConfig::from_preset("w2g32"));
    Trainer tr(m, qat, options, toy_batcher(), toy_batcher(), dir.path());
    auto teacher = tiny_model(21);
    if (frozen) tr.set_teacher(teacher);
    EXPECT_EQ(tr.has_teacher(), frozen);
    *steps = tr.run();
    torch::NoGradGuard no_grad;
    const auto ids = testing::tiny_ids();
    const auto pos = torch::arange(ids.size(1)).expand_as(ids);
    qat.set_enabled(false);
    const auto drift = (m->forward(ids, pos) - tiny_model(21)->forward(ids, pos)).abs().max();
    if (frozen) {  // the teacher itself never moved
      EXPECT_TRUE(torch::equal(teacher->forward(ids, pos), tiny_model(21)->forward(ids, pos)));
    }
    return drift.item<double>();
  };
  std::vector<StepMetrics> self_steps, frozen_steps;
  const double self_drift = run(false, &self_steps);
  const double frozen_drift = run(true, &frozen_steps);
  ASSERT_EQ(self_steps.size(), 12u);
  ASSERT_EQ(frozen_steps.size(), 12u);
  EXPECT_DOUBLE_EQ(self_steps[0].kd, frozen_steps[0].kd);
  EXPECT_LT(frozen_drift, self_drift);
}

TEST(Trainer, LossHelpersMatchManualComputation) {
  torch::manual_seed(3);
  const auto logits = torch::randn({2, 4, 5});
  const auto ids = torch::randint(5, {2, 4}, torch::kLong);
  auto mask = torch::tensor({0, 1, 1, 0, 0, 0, 1, 1}, torch::kFloat).view({2, 4});
  double expect = 0;
  for (int b = 0; b < 2; ++b) {
    for (int t = 1; t < 4; ++t) {
      if (mask[b][t].item<float>() == 0) continue;
      const auto lp = torch::log_softmax(logits[b][t - 1], -1);
      expect -= lp[ids[b][t].item<int64_t>()].item<double>();
    }
  }
  EXPECT_NEAR(masked_ce_sum(logits, ids, mask).item<double>(), expect, 1e-5);
  EXPECT_NEAR(masked_kd_sum(logits, logits, mask, 2.0).item<double>(), 0.0, 1e-6);
  const auto teacher = torch::randn({2, 4, 5});
  double kd = 0;
  for (int b = 0; b < 2; ++b) {
    for (int t = 1; t < 4; ++t) {
      if (mask[b][t].item<float>() == 0) continue;
      const auto p = torch::softmax(teacher[b][t - 1] / 2.0, -1);
      const auto q = torch::softmax(logits[b][t - 1] / 2.0, -1);
      kd += 4.0 * (p * (p.log() - q.log())).sum().item<double>();
    }
  }
  EXPECT_NEAR(masked_kd_sum(logits, teacher, mask, 2.0).item<double>(), kd, 1e-5);
}

TEST(Trainer, BadInputIsRejected) {
  auto bad = [](auto mutate, const char* needle) {
    auto o = fast_options(3);
    mutate(o);
    try {
      o.validate();
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  bad([](TrainOptions& o) { o.lr = 0; }, "--lr");
  bad([](TrainOptions& o) { o.lr = -1e-3; }, "--lr");
  bad([](TrainOptions& o) { o.scale_lr = 0; }, "--scale-lr");
  bad([](TrainOptions& o) { o.steps = -1; }, "--steps");
  bad([](TrainOptions& o) { o.grad_accum = 0; }, "--grad-accum");
  bad([](TrainOptions& o) { o.kd_temperature = 0; }, "--kd-temperature");
  bad([](TrainOptions& o) { o.ce_weight = 0; }, "--kd-weight");

  qwenqat::testing::TempDir dir;
  DataOptions d;
  d.data = (dir / "none.jsonl").string();
  write_file_atomic(d.data, "{\"ids\": [1, 2, 3], \"loss_mask\": [1, 0, 0]}\n");
  EXPECT_THROW(load_train_data(d, 96), Error);  // no loss token after the first
  write_file_atomic(d.data, "\n\n");
  EXPECT_THROW(load_train_data(d, 96), Error);  // empty
  write_file_atomic(d.data, "{\"ids\": [1, 200]}\n");
  EXPECT_THROW(load_train_data(d, 96), Error);  // id outside the vocabulary
  write_file_atomic(d.data, "{\"ids\": [1, 2], \"loss_mask\": [1]}\n");
  EXPECT_THROW(load_train_data(d, 96), Error);
  write_file_atomic(d.data, "{\"text\": \"hello\"}\n");
  EXPECT_THROW(load_train_data(d, 96), Error);  // unknown format
  write_file_atomic(d.data, "{\"ids\": [1, 2, 3]}\n{\"ids\": [4, 5, 6, 7]}\n{\"ids\": [8, 9]}\n");
  d.holdout = 0.34;
  const auto td = load_train_data(d, 96);
  EXPECT_EQ(td.format, "tokens");
  EXPECT_EQ(td.train.size() + td.eval.size(), 3u);
  EXPECT_EQ(td.eval.size(), 1u);
}

}  // namespace
}  // namespace qwenqat::qat
