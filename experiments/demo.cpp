// Implementation of `qwenqat demo` (see demo.h).
#include "experiments/demo.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "data/util/progress.h"
#include "models/checkpoint_io.h"

namespace qwenqat::experiments {
namespace fs = std::filesystem;

Json demo_config_json() {
  return Json{{"architectures", {"Qwen2ForCausalLM"}},
              {"model_type", "qwen2"},
              {"hidden_act", "silu"},
              {"vocab_size", 2048},
              {"hidden_size", 128},
              {"intermediate_size", 352},
              {"num_hidden_layers", 4},
              {"num_attention_heads", 8},
              {"num_key_value_heads", 2},
              {"max_position_embeddings", 4096},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", false},
              {"torch_dtype", "float32"}};
}

namespace {
double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

Json run_demo(const DemoOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto config = models::Qwen2Config::from_json(demo_config_json(), "demo config");
  const fs::path ckpt = fs::path(o.out) / "checkpoint";
  auto t0 = Clock::now();
  models::init_checkpoint(config, ckpt, models::DType::kF32, o.seed);
  const double init_s = since(t0);

  t0 = Clock::now();
  auto model = models::load_model(ckpt, {torch::kFloat32});
  const double load_s = since(t0);

  torch::NoGradGuard no_grad;
  const std::vector<int64_t> ids = {1, 42, 7, 1000, 3, 2047, 512, 9};
  const auto T = static_cast<int64_t>(ids.size());
  auto input = torch::tensor(ids, torch::kInt64).view({1, T});
  t0 = Clock::now();
  auto logits = model->forward(input, torch::arange(T, torch::kInt64).view({1, T}));  // [1, T, V]
  const double forward_s = since(t0);
  auto argmax = logits[0].argmax(-1);

  // Greedy generation with the KV cache.
  t0 = Clock::now();
  auto cache = model->make_cache(1, T + o.new_tokens);
  auto step = model->forward(input, torch::arange(T, torch::kInt64).view({1, T}), {}, &cache);
  std::vector<int64_t> generated;
  for (int i = 0; i < o.new_tokens; ++i) {
    const int64_t next = step[0][-1].argmax().item<int64_t>();
    generated.push_back(next);
    if (i + 1 == o.new_tokens) break;
    step = model->forward(torch::full({1, 1}, next, torch::kInt64),
                          torch::full({1, 1}, cache.length, torch::kInt64), {}, &cache);
  }
  const double generate_s = since(t0);

  Json s{{"checkpoint", ckpt.string()},
         {"parameters", models::count_parameters(*model)},
         {"file_bytes", fs::file_size(ckpt / "model.safetensors")},
         {"input_ids", ids},
         {"logits_shape", logits.sizes().vec()},
         {"logits_mean", logits.mean().item<double>()},
         {"logits_std", logits.std().item<double>()},
         {"logits_min", logits.min().item<double>()},
         {"logits_max", logits.max().item<double>()},
         {"argmax", std::vector<int64_t>(argmax.data_ptr<int64_t>(),
                                         argmax.data_ptr<int64_t>() + T)},
         {"generated", generated},
         {"seconds",
          {{"init", init_s}, {"load", load_s}, {"forward", forward_s}, {"generate", generate_s}}}};
  write_json_file(fs::path(o.out) / "demo_summary.json", s);
  return s;
}

void print_demo_summary(const Json& s) {
  auto list = [](const Json& a) {
    std::string r;
    for (const auto& v : a) r += (r.empty() ? "" : " ") + v.dump();
    return r;
  };
  std::printf("qwenqat demo: random Qwen2 checkpoint -> save -> load -> forward\n");
  std::printf("  checkpoint   %s (%lld parameters, %.2f MB)\n",
              s["checkpoint"].get<std::string>().c_str(), s["parameters"].get<long long>(),
              s["file_bytes"].get<double>() / 1e6);
  std::printf("  input ids    %s\n", list(s["input_ids"]).c_str());
  std::printf("  logits       shape [%s], mean %.4g, std %.4g, min %.4g, max %.4g\n",
              list(s["logits_shape"]).c_str(), s["logits_mean"].get<double>(),
              s["logits_std"].get<double>(), s["logits_min"].get<double>(),
              s["logits_max"].get<double>());
  std::printf("  argmax       %s\n", list(s["argmax"]).c_str());
  std::printf("  greedy (kv)  %s\n", list(s["generated"]).c_str());
  const Json& t = s["seconds"];
  std::printf("  time         init %s, load %s, forward %s, generate %s\n",
              format_duration(t["init"].get<double>()).c_str(),
              format_duration(t["load"].get<double>()).c_str(),
              format_duration(t["forward"].get<double>()).c_str(),
              format_duration(t["generate"].get<double>()).c_str());
}

}  // namespace qwenqat::experiments
