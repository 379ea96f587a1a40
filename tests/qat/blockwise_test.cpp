// Tests of block-wise QAT (qat/blockwise.h) on a tiny Qwen2 model: the block
// MSE goes down during each block's training (float32 and bf16 storage), the
// trained model is closer to full precision than round-to-nearest, the
// block-wise + scales-only run of `qwenqat train --mode blockwise` writes a
// normal run directory whose checkpoint reloads to the same fake-quant logits
// exactly, and bad values of the new flags are rejected naming the flag.
#include "qat/blockwise.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "models/checkpoint_io.h"
#include "qat/commands.h"
#include "tests/qat/tiny_model.h"
#include "tests/util/test_util.h"

namespace qwenqat::qat {
namespace {

namespace fs = std::filesystem;
using testing::tiny_ids;
using testing::tiny_logits;
using testing::tiny_model;

// 8 rule-following sequences of 10..17 tokens (varied lengths: padding).
std::vector<data::Example> calib_examples() {
  std::vector<data::Example> out;
  for (int s = 0; s < 8; ++s) {
    data::Example e;
    for (int t = 0; t < 10 + s; ++t) {
      e.ids.push_back(int32_t((s * 7 + t * (s % 3 + 1)) % 96));
      e.loss_mask.push_back(t >= 5);
    }
    out.push_back(e);
  }
  return out;
}

BlockwiseOptions fast_options(int64_t steps) {
  return {
      .calib_samples = 8, .block_steps = steps, .lr = 1e-3, .scale_lr = 1e-3, .progress = false};
}

// Final hidden states [B, T, hidden] of `m` on `ids`.
torch::Tensor hidden(models::Qwen2ForCausalLMImpl& m, const torch::Tensor& ids) {
  torch::NoGradGuard ng;
  const auto pos = torch::arange(ids.size(1), torch::kLong).unsqueeze(0).expand_as(ids);
  return m.model->forward(ids, pos.contiguous()).to(torch::kFloat);
}

double mse(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).pow(2).mean().item<double>();
}

TEST(Blockwise, BlockMseGoesDownDuringEachBlock) {
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(dtype == torch::kFloat32 ? "f32" : "bf16");
    auto m = tiny_model(21, false, dtype);
    auto qat = prepare(*m, QatConfig::from_preset("w3g32"));
    const auto o = fast_options(30);
    BlockwiseTrainer bt(m, qat, calibration_batches(calib_examples(), 8, 4, 64, 0), o);
    std::map<int64_t, std::vector<double>> curve;
    bt.on_step = [&](const BlockStepMetrics& s) { curve[s.block].push_back(s.mse); };
    const auto summary = bt.run();
    ASSERT_EQ(summary.size(), 2u);
    for (const auto& s : summary) {
      SCOPED_TRACE("block " + std::to_string(s.block));
      const auto& c = curve[s.block];
      ASSERT_EQ(c.size(), 30u);
      // Steps 1 and 29 see the same calibration batch (2 batches, cycled).
      EXPECT_LT(c[28], 0.7 * c[0]) << c[0] << " -> " << c[28];
      EXPECT_LT(s.mse_after, s.mse_before);
    }
    // The trained layers are back in the storage dtype; scales stay float32.
    for (const auto& p : m->named_parameters()) {
      const bool scale = !models::is_checkpoint_parameter(p.key());
      EXPECT_EQ(p.value().scalar_type(), scale ? torch::kFloat32 : dtype) << p.key();
    }
  }
}

TEST(Blockwise, TrainedModelIsCloserToFullPrecisionThanRoundToNearest) {
  auto reference = tiny_model(22);
  auto rtn = tiny_model(22);
  auto rtn_qat = prepare(*rtn, QatConfig::from_preset("w3g32"));
  auto trained = tiny_model(22);
  auto qat = prepare(*trained, QatConfig::from_preset("w3g32"));
  BlockwiseTrainer bt(trained, qat, calibration_batches(calib_examples(), 8, 4, 64, 0),
                      fast_options(40));
  bt.run();
  // The first 10 tokens of each calibration sequence: [8, 10].
  std::vector<int64_t> flat;
  for (const auto& e : calib_examples()) flat.insert(flat.end(), e.ids.begin(), e.ids.begin() + 10);
  const auto ids = torch::tensor(flat, torch::kLong).view({8, 10});
  const auto want = hidden(*reference, ids);
  const double rtn_err = mse(hidden(*rtn, ids), want);
  const double bw_err = mse(hidden(*trained, ids), want);
  EXPECT_LT(bw_err, 0.7 * rtn_err) << "RTN " << rtn_err << " block-wise " << bw_err;
}

TEST(Blockwise, RunDirectoryCheckpointReloadsToTheSameFakeQuantLogits) {
  qwenqat::testing::TempDir dir;
  auto m = tiny_model(23);
  models::save_model(*m, dir / "model", models::DType::kF32);
  std::string jsonl;
  for (const auto& e : calib_examples()) {
    Json j{{"ids", e.ids}, {"loss_mask", std::vector<int>(e.loss_mask.begin(), e.loss_mask.end())}};
    jsonl += j.dump() + "\n";
  }
  write_file_atomic(dir / "data.jsonl", jsonl);
  TrainCommandOptions o;
  o.model = (dir / "model").string();
  o.out = (dir / "run").string();
  o.mode = "blockwise";
  o.data.data = (dir / "data.jsonl").string();
  o.data.holdout = 0;
  o.max_length = 64;
  o.train.steps = 3;
  o.train.scale_lr = 1e-3;
  o.train.progress = false;
  o.blockwise = fast_options(4);
  const Json summary = run_train(o);
  EXPECT_EQ(summary["mode"], "blockwise");
  ASSERT_EQ(summary["blocks"].size(), 2u);
  EXPECT_EQ(summary["steps"], 3);
  const fs::path cp = summary["checkpoint"].get<std::string>();
  EXPECT_EQ(cp.filename(), "checkpoint-3");
  const std::string metrics = read_file(dir / "run" / "metrics.jsonl");
  EXPECT_NE(metrics.find("\"type\":\"block\""), std::string::npos);
  EXPECT_NE(metrics.find("\"type\":\"block_summary\""), std::string::npos);
  EXPECT_NE(metrics.find("\"type\":\"train\""), std::string::npos);

  auto reloaded = models::load_model(cp);
  const auto reloaded_qat = load_quantization(*reloaded, cp);
  EXPECT_EQ(reloaded_qat.num_quantized(), 14);  // 2 layers x 7 projections
}

TEST(Blockwise, SavedCheckpointReloadsToExactlyTheSameFakeQuantLogits) {
  qwenqat::testing::TempDir dir;
  auto m = tiny_model(25);
  auto qat = prepare(*m, QatConfig::from_preset("w4g32"));
  BlockwiseTrainer(m, qat, calibration_batches(calib_examples(), 8, 4, 64, 0), fast_options(5))
      .run();
  TrainOptions e2e;  // E2E-QP: scales only
  e2e.steps = 2;
  e2e.train_weights = false;
  e2e.scale_lr = 1e-3;
  e2e.progress = false;
  data::BatcherOptions bo;
  bo.batch_size = 4;
  Trainer tr(m, qat, e2e, data::Batcher(calib_examples(), bo), std::nullopt, dir.path());
  tr.run();
  const auto ids = tiny_ids(6);
  const auto before = tiny_logits(*m, ids);
  auto reloaded = models::load_model(dir / "checkpoint-2");
  const auto reloaded_qat = load_quantization(*reloaded, dir / "checkpoint-2");
  EXPECT_EQ(reloaded_qat.num_quantized(), qat.num_quantized());
  EXPECT_TRUE(torch::equal(tiny_logits(*reloaded, ids), before));
  qat.set_enabled(false);  // and the quantizers matter: fp logits differ
  EXPECT_FALSE(torch::equal(tiny_logits(*m, ids), before));
}

// Runs f; expects a qwenqat::Error whose message names `flag`.
void expect_error_naming(const std::function<void()>& f, const std::string& flag) {
  try {
    f();
    ADD_FAILURE() << "accepted (" << flag << ")";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
  }
}

// fast_options(3) changed by `mutate` must fail validation naming `flag`.
void expect_invalid(const std::function<void(BlockwiseOptions&)>& mutate, const std::string& flag) {
  auto o = fast_options(3);
  mutate(o);
  expect_error_naming([&] { o.validate(); }, flag);
}

TEST(Blockwise, BadFlagsAreRejectedNamingTheFlag) {
  expect_invalid([](BlockwiseOptions& o) { o.calib_samples = 0; }, "--calib-samples");
  expect_invalid([](BlockwiseOptions& o) { o.block_steps = -1; }, "--block-steps");
  expect_invalid([](BlockwiseOptions& o) { o.blocks = -2; }, "--blocks");
  expect_invalid([](BlockwiseOptions& o) { o.batch_size = 0; }, "--block-batch-size");
  expect_invalid([](BlockwiseOptions& o) { o.lr = 0; }, "--block-lr");
  expect_invalid([](BlockwiseOptions& o) { o.scale_lr = -1; }, "--block-scale-lr");
  expect_invalid([](BlockwiseOptions& o) { o.scale_lr = std::nan(""); }, "--block-scale-lr");

  auto m = tiny_model(24);
  auto qat = prepare(*m, QatConfig::from_preset("w4g32"));
  auto o = fast_options(2);
  o.blocks = 3;  // the tiny model has 2 decoder layers
  const auto calib = calibration_batches(calib_examples(), 8, 4, 64, 0);
  expect_error_naming([&] { BlockwiseTrainer(m, qat, calib, o); }, "--blocks");
  expect_error_naming([&] { calibration_batches(calib_examples(), 0, 4, 64, 0); },
                      "--calib-samples");
  TrainCommandOptions c;
  c.mode = "blocky";
  expect_error_naming([&] { run_train(c); }, "--mode");
  c.mode = "blockwise";
  c.blockwise.block_steps = -5;  // checked by the command before anything is loaded
  expect_error_naming([&] { run_train(c); }, "--block-steps");
}

}  // namespace
}  // namespace qwenqat::qat
