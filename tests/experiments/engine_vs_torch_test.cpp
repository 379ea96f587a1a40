// The whole deploy path against the training model, for every weight scheme:
// a LibTorch model prepared for QAT (fake quantization on) is saved as a
// checkpoint, exported to .h5, and run by the torch-free engine. The engine's
// logits must equal the LibTorch fake-quant logits within 1e-4 relative (the
// same weights by construction; only the order of float operations differs),
// and 64 greedy tokens must be identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "export/exporter.h"
#include "inference/generate.h"
#include "inference/model.h"
#include "inference/thread_pool.h"
#include "inference/weights.h"
#include "models/checkpoint_io.h"
#include "qat/prepare.h"
#include "qat/qat_config.h"
#include "tests/qat/tiny_model.h"
#include "tests/util/test_util.h"

namespace qwenqat {
namespace {

namespace fs = std::filesystem;

// Engine vs LibTorch logits, relative to the largest |logit|.
constexpr double kEngineVsTorchRelTol = 1e-4;
constexpr int64_t kGreedyTokens = 64;

std::vector<int32_t> prompt_ids() { return {3, 17, 42, 5, 88, 61, 9, 30, 71}; }

// LibTorch: logits of every position [T, V] and 64 greedy tokens (full
// recompute per token; the tiny model makes that cheap).
struct TorchRun {
  std::vector<float> logits;
  std::vector<int32_t> greedy;
};

TorchRun run_torch(models::Qwen2ForCausalLM& m, std::vector<int32_t> ids) {
  torch::NoGradGuard no_grad;
  auto forward = [&](const std::vector<int32_t>& x) {
    std::vector<int64_t> x64(x.begin(), x.end());
    const auto T = int64_t(x.size());
    auto in = torch::tensor(x64, torch::kInt64).view({1, T});
    return m->forward(in, torch::arange(T, torch::kInt64).view({1, T}))[0].contiguous();  // [T, V]
  };
  TorchRun r;
  const auto first = forward(ids);
  r.logits.assign(first.data_ptr<float>(), first.data_ptr<float>() + first.numel());
  for (int64_t i = 0; i < kGreedyTokens; ++i) {
    const int32_t next = int32_t(forward(ids)[-1].argmax().item<int64_t>());
    r.greedy.push_back(next);
    ids.push_back(next);
  }
  return r;
}

class EngineVsTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineVsTorch, LogitsAndGreedyTokensMatch) {
  testing::TempDir dir;
  auto m = qat::testing::tiny_model(5);
  auto qat = qat::prepare(*m, qat::QatConfig::from_preset(GetParam()));
  ASSERT_GT(qat.num_quantized(), 0);
  models::save_model(*m, dir / "ckpt", models::DType::kF32);
  qat::save_quantization(qat, dir / "ckpt");
  const TorchRun torch_run = run_torch(m, prompt_ids());

  exporter::ExportOptions eo;
  eo.model = dir / "ckpt";
  eo.out_h5 = dir / "model.h5";
  eo.progress = false;
  exporter::run_export(eo);

  engine::Model model(engine::open_weight_source(dir / "model.h5"));
  engine::ThreadPool pool(2);
  const auto prompt = prompt_ids();
  engine::KvCache cache(model.config(), 1, int64_t(prompt.size()), engine::KvDtype::kF32);
  std::vector<float> logits;
  model.forward({{0, prompt}}, cache, pool, logits, true);
  ASSERT_EQ(logits.size(), torch_run.logits.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    diff = std::max(diff, std::abs(double(logits[i]) - double(torch_run.logits[i])));
    scale = std::max(scale, std::abs(double(torch_run.logits[i])));
  }
  EXPECT_LE(diff, kEngineVsTorchRelTol * scale) << GetParam() << ": max diff " << diff;

  engine::GenerateOptions g;
  g.max_new_tokens = kGreedyTokens;
  g.sampling.temperature = 0.0f;
  const auto gen = engine::generate(model, {prompt}, g, pool);
  EXPECT_EQ(gen[0].tokens, torch_run.greedy) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Schemes, EngineVsTorch,
                         ::testing::Values("w8g32", "w4g32", "w4g32a", "w3g32", "w2g32", "w8c",
                                           "w4g64", "w4g32-mixed"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace qwenqat
