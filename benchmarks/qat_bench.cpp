// qat_bench: the cost of fake quantization in training. Times optimizer steps
// (forward, masked CE, backward, AdamW) of one randomly initialized Qwen2
// model in three modes — plain fine-tuning, QAT with a weight preset, and QAT
// with 8-bit per-token activations as well — and prints the mean step time,
// the ratio to plain fine-tuning (goal <= 1.3x) and the process's peak RSS.
// --blockwise (for shapes that do not fit full fine-tuning, e.g. --config of
// the real 1.5B model with --dtype bf16): times block-wise QAT steps of
// decoder layer 0 (qat/blockwise.h) against plain fine-tuning of the same
// block (quantizers off), and scales-only end-to-end (E2E-QP) steps of the
// whole model; wall and CPU seconds per step, and peak RSS.
// Usage: qat_bench [--hidden 512] [--layers 4] [--intermediate 1536]
//                  [--vocab 4096] [--batch 4] [--seq 128] [--steps 5]
//                  [--preset w4g32] [--json]
//        qat_bench --blockwise [--config config.json] [--dtype bf16]
//                  [--batch 1] [--seq 256] [--steps 3] [--e2e-steps 1]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "data/util/json_io.h"
#include "models/checkpoint_io.h"
#include "qat/blockwise.h"
#include "qat/prepare.h"
#include "qat/trainer.h"

namespace {

using namespace qwenqat;

struct StepTime {
  double wall = 0, cpu = 0;  // mean seconds per timed step
};

// Mean seconds per step of AdamW over `params` on forward + masked CE +
// backward, over `steps` timed steps (after one warm-up step).
StepTime time_steps(models::Qwen2ForCausalLMImpl& m, std::vector<torch::Tensor> params,
                    int64_t batch, int64_t seq, int64_t steps) {
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-5));
  torch::manual_seed(0);
  const auto ids = torch::randint(m.config().vocab_size, {batch, seq}, torch::kLong);
  const auto pos = torch::arange(seq, torch::kLong).unsqueeze(0).expand({batch, seq}).contiguous();
  const auto mask = torch::ones({batch, seq});
  StepTime total;
  for (int64_t s = 0; s <= steps; ++s) {
    const qat::Stopwatch clock;
    opt.zero_grad();
    const auto loss = qat::masked_ce_sum(m.forward(ids, pos), ids, mask) / double(batch * seq);
    loss.backward();
    opt.step();
    if (s > 0) total.wall += clock.wall_s(), total.cpu += clock.cpu_s();
  }
  return {total.wall / double(steps), total.cpu / double(steps)};
}

// Full fine-tuning (weights), with fake quantization when `preset` is set.
double time_mode(models::Qwen2ForCausalLMImpl& m, const std::string& preset, int64_t batch,
                 int64_t seq, int64_t steps) {
  std::optional<qat::QatModel> q;
  if (!preset.empty()) q.emplace(qat::prepare(m, qat::QatConfig::from_preset(preset)));
  std::vector<torch::Tensor> params;
  for (auto& p : m.parameters()) params.push_back(p);
  const double t = time_steps(m, params, batch, seq, steps).wall;
  if (q) qat::unprepare(*q);
  return t;
}

// Block-wise mode: block steps of layer 0 with quantizers on and off, then
// E2E scales-only steps of the whole model.
Json bench_blockwise(models::Qwen2ForCausalLM m, const std::string& preset, int64_t batch,
                     int64_t seq, int64_t steps, int64_t e2e_steps) {
  auto q = qat::prepare(*m, qat::QatConfig::from_preset(preset));
  torch::manual_seed(0);
  data::Batch b;
  b.batch_size = batch;
  b.seq_len = seq;
  const auto ids = torch::randint(m->config().vocab_size, {batch * seq}, torch::kInt);
  b.input_ids.assign(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + batch * seq);
  b.loss_mask.assign(size_t(batch * seq), 1);
  b.attention_mask.assign(size_t(batch * seq), 1);
  b.lengths.assign(size_t(batch), int32_t(seq));
  qat::BlockwiseOptions o;
  o.blocks = 1;
  o.block_steps = 2 * (steps + 1);
  o.progress = false;
  qat::BlockwiseTrainer bt(m, q, {b}, o);
  bt.begin_block(0);
  auto time_block = [&]() {
    StepTime t;
    for (int64_t s = 0; s <= steps; ++s) {
      const auto r = bt.step();
      if (s > 0) t.wall += r.step_s / double(steps), t.cpu += r.cpu_s / double(steps);
    }
    return t;
  };
  q.set_enabled(false);
  const StepTime plain = time_block();
  q.set_enabled(true);
  const StepTime block = time_block();
  bt.end_block();
  const double block_rss = peak_rss_gib();
  // --e2e-steps 0: block phase only (no E2E step, not even the warm-up).
  const StepTime e2e =
      e2e_steps > 0 ? time_steps(*m, q.scale_parameters(), batch, seq, e2e_steps) : StepTime{};
  Json j = {{"params", m->config().num_parameters()},
            {"batch", batch},
            {"seq", seq},
            {"threads", torch::get_num_threads()},
            {"preset", preset},
            {"block_plain_step_s", plain.wall},
            {"block_plain_cpu_s", plain.cpu},
            {"block_qat_step_s", block.wall},
            {"block_qat_cpu_s", block.cpu},
            {"block_qat_ratio", block.wall / plain.wall},
            {"peak_rss_gb_after_block", block_rss},
            {"peak_rss_gb", peak_rss_gib()}};
  if (e2e_steps > 0) {
    j["e2e_scales_step_s"] = e2e.wall;
    j["e2e_scales_cpu_s"] = e2e.cpu;
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qat_bench: QAT step time vs plain fine-tuning"};
  int64_t hidden = 512, layers = 4, inter = 1536, vocab = 4096, batch = 4, seq = 128, steps = 5;
  int64_t e2e_steps = 1;
  std::string preset = "w4g32", config_file, dtype = "f32";
  bool json = false, blockwise = false;
  app.add_option("--hidden", hidden, "hidden size")->capture_default_str();
  app.add_option("--layers", layers, "decoder layers")->capture_default_str();
  app.add_option("--intermediate", inter, "MLP size")->capture_default_str();
  app.add_option("--vocab", vocab, "vocabulary")->capture_default_str();
  app.add_option("--batch", batch, "batch size")->capture_default_str();
  app.add_option("--seq", seq, "sequence length")->capture_default_str();
  app.add_option("--steps", steps, "timed steps per mode")->capture_default_str();
  app.add_option("--preset", preset, "weight preset of the QAT modes")->capture_default_str();
  app.add_flag("--json", json, "print JSON")->capture_default_str();
  app.add_flag("--blockwise", blockwise, "block-wise QAT steps and E2E scale steps instead")
      ->capture_default_str();
  app.add_option("--config", config_file,
                 "config.json of the model shape (overrides --hidden, "
                 "--layers, --intermediate, --vocab)");
  app.add_option("--dtype", dtype, "parameter dtype: f32 | bf16")->capture_default_str();
  app.add_option("--e2e-steps", e2e_steps, "--blockwise: timed E2E scales-only steps (0: none)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    models::Qwen2Config c;
    c.vocab_size = vocab;
    c.hidden_size = hidden;
    c.intermediate_size = inter;
    c.num_hidden_layers = layers;
    c.num_attention_heads = hidden / 64;
    c.num_key_value_heads = std::max<int64_t>(1, hidden / 256);
    if (!config_file.empty()) c = models::Qwen2Config::load(config_file);
    if (blockwise) {
      models::ModuleOptions mo;
      mo.dtype = models::parse_torch_dtype(dtype);
      models::Qwen2ForCausalLM m(c, mo);
      models::init_weights(*m, 1);
      const Json j = bench_blockwise(m, preset, batch, seq, steps, e2e_steps);
      std::cout << j.dump(json ? 2 : -1) << std::endl;
      return 0;
    }
    models::Qwen2ForCausalLM m(c);
    models::init_weights(*m, 1);
    const double plain = time_mode(*m, "", batch, seq, steps);
    const double qat_w = time_mode(*m, preset, batch, seq, steps);
    const double qat_wa = time_mode(*m, preset + "a8", batch, seq, steps);
    Json j{{"params", c.num_parameters()},
           {"batch", batch},
           {"seq", seq},
           {"threads", torch::get_num_threads()},
           {"plain_step_s", plain},
           {"qat_step_s", qat_w},
           {"qat_a8_step_s", qat_wa},
           {"qat_ratio", qat_w / plain},
           {"qat_a8_ratio", qat_wa / plain},
           {"peak_rss_gb", peak_rss_gib()},
           {"preset", preset}};
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
      std::printf("peak RSS %.2f GB\n", peak_rss_gib());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qat_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
