// qat_bench: the cost of fake quantization in training. Times optimizer steps
// (forward, masked CE, backward, AdamW) of one randomly initialized Qwen2
// model in three modes — plain fine-tuning, QAT with a weight preset, and QAT
// with 8-bit per-token activations as well — and prints the mean step time,
// the ratio to plain fine-tuning (goal <= 1.3x) and the process's peak RSS.
// Usage: qat_bench [--hidden 512] [--layers 4] [--intermediate 1536]
//                  [--vocab 4096] [--batch 4] [--seq 128] [--steps 5]
//                  [--preset w4g32] [--json]
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "data/util/json_io.h"
#include "models/checkpoint_io.h"
#include "qat/prepare.h"
#include "qat/trainer.h"

namespace {

using namespace qwenqat;

double peak_rss_gb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

// Mean seconds per step over `steps` timed steps (after one warm-up step).
double time_steps(models::Qwen2ForCausalLMImpl& m, const std::string& preset, int64_t batch,
                  int64_t seq, int64_t steps) {
  std::optional<qat::QatModel> q;
  if (!preset.empty()) q.emplace(qat::prepare(m, qat::QatConfig::from_preset(preset)));
  std::vector<torch::Tensor> params;
  for (auto& p : m.parameters()) params.push_back(p);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-5));
  torch::manual_seed(0);
  const auto ids = torch::randint(m.config().vocab_size, {batch, seq}, torch::kLong);
  const auto pos = torch::arange(seq, torch::kLong).unsqueeze(0).expand({batch, seq}).contiguous();
  const auto mask = torch::ones({batch, seq});
  double total = 0;
  for (int64_t s = 0; s <= steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    const auto loss = qat::masked_ce_sum(m.forward(ids, pos), ids, mask) / double(batch * seq);
    loss.backward();
    opt.step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) total += dt;
  }
  if (q) qat::unprepare(*q);
  return total / double(steps);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qat_bench: QAT step time vs plain fine-tuning"};
  int64_t hidden = 512, layers = 4, inter = 1536, vocab = 4096, batch = 4, seq = 128, steps = 5;
  std::string preset = "w4g32";
  bool json = false;
  app.add_option("--hidden", hidden, "hidden size")->capture_default_str();
  app.add_option("--layers", layers, "decoder layers")->capture_default_str();
  app.add_option("--intermediate", inter, "MLP size")->capture_default_str();
  app.add_option("--vocab", vocab, "vocabulary")->capture_default_str();
  app.add_option("--batch", batch, "batch size")->capture_default_str();
  app.add_option("--seq", seq, "sequence length")->capture_default_str();
  app.add_option("--steps", steps, "timed steps per mode")->capture_default_str();
  app.add_option("--preset", preset, "weight preset of the QAT modes")->capture_default_str();
  app.add_flag("--json", json, "print JSON")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    models::Qwen2Config c;
    c.vocab_size = vocab;
    c.hidden_size = hidden;
    c.intermediate_size = inter;
    c.num_hidden_layers = layers;
    c.num_attention_heads = hidden / 64;
    c.num_key_value_heads = std::max<int64_t>(1, hidden / 256);
    models::Qwen2ForCausalLM m(c);
    models::init_weights(*m, 1);
    const double plain = time_steps(*m, "", batch, seq, steps);
    const double qat_w = time_steps(*m, preset, batch, seq, steps);
    const double qat_wa = time_steps(*m, preset + "a8", batch, seq, steps);
    Json j{{"params", c.num_parameters()}, {"batch", batch}, {"seq", seq},
           {"threads", torch::get_num_threads()}, {"plain_step_s", plain},
           {"qat_step_s", qat_w}, {"qat_a8_step_s", qat_wa}, {"qat_ratio", qat_w / plain},
           {"qat_a8_ratio", qat_wa / plain}, {"peak_rss_gb", peak_rss_gb()}, {"preset", preset}};
    if (json) {
      std::cout << j.dump(2) << std::endl;
    } else {
      std::printf("model %lld params, batch %lld x %lld tokens, %d threads\n",
                  static_cast<long long>(c.num_parameters()), static_cast<long long>(batch),
                  static_cast<long long>(seq), torch::get_num_threads());
      std::printf("plain fine-tuning   %.3f s/step\n", plain);
      std::printf("QAT %-14s  %.3f s/step  (%.2fx)\n", preset.c_str(), qat_w, qat_w / plain);
      std::printf("QAT %-14s  %.3f s/step  (%.2fx)\n", (preset + "a8").c_str(), qat_wa,
                  qat_wa / plain);
      std::printf("peak RSS %.2f GB\n", peak_rss_gb());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qat_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
