// The whole deploy path against the training model, for every weight scheme
// (and with per-token activation quantization, which the export records and
// the engine applies by default):
// a LibTorch model prepared for QAT (fake quantization on) is saved as a
// checkpoint, exported to .h5, and run by the torch-free engine. The engine's
// logits must equal the LibTorch fake-quant logits within 1e-4 relative (the
// same weights by construction; only the order of float operations differs),
// and 64 greedy tokens must be identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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
// With per-token activation quantization the quantizer itself is bit-exact
// (tests/inference/act_quant_test, tests/qat/fake_quant_test), but an input
// within float-order noise of a rounding boundary can round to the neighbouring
// code, one step of max|x| / 127. Measured on these models: 3-4e-7 where no
// input sits that close to a tie, 2.1-2.2e-3 for w4g32a+a8 and w2g32a8, whose
// layer inputs include values within 1e-4 of a tie (some exactly k + 0.5);
// float activations instead differ by 6-12e-3 (a8) and 0.12 (a4).
constexpr double kEngineVsTorchActQuantRelTol = 3e-3;
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

// A preset name, or "<preset>+a<bits>" for a preset with per-token activation
// quantization added (e.g. "w4g32a+a8": asymmetric weights, int8 inputs).
qat::QatConfig config_for(const std::string& name) {
  const auto plus = name.find("+a");
  if (plus == std::string::npos) return qat::QatConfig::from_preset(name);
  auto c = qat::QatConfig::from_preset(name.substr(0, plus));
  c.activation_bits = std::stoi(name.substr(plus + 2));
  return c;
}

class EngineVsTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineVsTorch, LogitsAndGreedyTokensMatch) {
  testing::TempDir dir;
  auto m = qat::testing::tiny_model(5);
  auto qat = qat::prepare(*m, config_for(GetParam()));
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
  // Max |engine - torch| logit over all positions, relative to max |torch logit|.
  auto rel_diff = [&](engine::ActQuant act) {
    model.set_act_quant(act);
    engine::KvCache cache(model.config(), 1, int64_t(prompt.size()), engine::KvDtype::kF32);
    std::vector<float> logits;
    model.forward({{0, prompt}}, cache, pool, logits, true);
    EXPECT_EQ(logits.size(), torch_run.logits.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < logits.size() && i < torch_run.logits.size(); ++i) {
      diff = std::max(diff, std::abs(double(logits[i]) - double(torch_run.logits[i])));
      scale = std::max(scale, std::abs(double(torch_run.logits[i])));
    }
    return diff / scale;
  };
  const bool act_quant = qat.config().activation_bits > 0;
  const double diff = rel_diff(engine::ActQuant::kAuto);
  EXPECT_LE(diff, act_quant ? kEngineVsTorchActQuantRelTol : kEngineVsTorchRelTol)
      << GetParam() << ": max relative diff " << diff;
  if (act_quant) {
    // Not vacuous: float activations are much further from the trained model.
    const double float_diff = rel_diff(engine::ActQuant::kNone);
    std::printf("%s: relative diff %.3g (auto), %.3g (float activations)\n", GetParam().c_str(),
                diff, float_diff);
    EXPECT_GT(float_diff, 3 * diff) << GetParam();
    model.set_act_quant(engine::ActQuant::kAuto);
  }

  engine::GenerateOptions g;
  g.max_new_tokens = kGreedyTokens;
  g.sampling.temperature = 0.0f;
  const auto gen = engine::generate(model, {prompt}, g, pool);
  EXPECT_EQ(gen[0].tokens, torch_run.greedy) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Schemes, EngineVsTorch,
                         ::testing::Values("w8g32", "w4g32", "w4g32a", "w3g32", "w2g32", "w8c",
                                           "w4g64", "w4g32-mixed",
                                           // Per-token int8 inputs: the int8 kernels (4/8
                                           // bits), the float fallback (2 bits), 4-bit inputs.
                                           "w4g32a8", "w8g32a8", "w8c+a8", "w4g32a+a8", "w2g32a8",
                                           "w4g32+a4"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           std::replace(n.begin(), n.end(), '+', '_');
                           return n;
                         });

}  // namespace
}  // namespace qwenqat
