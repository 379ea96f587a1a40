// The models library's subcommands (see commands.h).
#include "models/commands.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "data/util/check.h"
#include "data/util/json_io.h"
#include "data/util/process_stats.h"
#include "data/util/progress.h"
#include "models/checkpoint_io.h"

namespace qwenqat::models {
namespace fs = std::filesystem;

std::vector<int64_t> parse_ids(const std::string& s, const std::string& flag) {
  std::vector<int64_t> ids;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string tok = s.substr(i, j - i);
    const auto b = tok.find_first_not_of(" \t"), e = tok.find_last_not_of(" \t");
    tok = b == std::string::npos ? "" : tok.substr(b, e - b + 1);
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    QWENQAT_CHECK(!tok.empty() && used == tok.size() && v >= 0, flag, ": \"", tok,
                  "\" is not a token id (expected comma-separated non-negative integers, "
                  "e.g. 1,2,3)");
    ids.push_back(v);
    i = j + 1;
  }
  return ids;
}

void run_init(const InitOptions& o) {
  const fs::path config_path = o.config;
  const Qwen2Config config = Qwen2Config::load(config_path);
  const DType dtype = parse_file_dtype(o.dtype);
  const fs::path src = fs::is_directory(config_path) ? config_path : config_path.parent_path();
  const auto start = std::chrono::steady_clock::now();
  init_checkpoint(config, o.out, dtype, o.seed, src, o.progress);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto bytes = fs::file_size(fs::path(o.out) / "model.safetensors");
  std::printf("wrote %s: %lld parameters, %.3f GB (%s) in %s\n", o.out.c_str(),
              static_cast<long long>(config.num_parameters()), double(bytes) / 1e9,
              o.dtype.c_str(), format_duration(secs).c_str());
}

void run_logits(const LogitsOptions& o) {
  const auto ids = parse_ids(o.ids);
  ModuleOptions mo{parse_torch_dtype(o.dtype), parse_device(o.device)};
  auto model = load_model(o.model, mo);
  const int64_t vocab = model->config().vocab_size;
  for (int64_t id : ids) {
    QWENQAT_CHECK(id < vocab, "--ids: token id ", id, " is out of range (vocab_size ", vocab, ")");
  }
  torch::NoGradGuard no_grad;
  const auto T = static_cast<int64_t>(ids.size());
  auto input = torch::tensor(ids, torch::kInt64).view({1, T}).to(mo.device);
  auto positions = torch::arange(T, torch::kInt64).view({1, T}).to(mo.device);
  auto logits = model->forward(input, positions).to(torch::kCPU).contiguous();  // [1, T, V]
  Json rows = Json::array();
  const float* p = logits.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) rows.push_back(std::vector<float>(p + t * vocab, p + (t + 1) * vocab));
  Json out{{"logits", std::move(rows)}};
  if (o.out.empty()) {
    std::cout << out.dump() << "\n";
  } else {
    write_json_file(o.out, out, -1);
  }
}

void run_bench_load(const BenchLoadOptions& o) {
  ModuleOptions mo{parse_torch_dtype(o.dtype), torch::kCPU};
  const double rss_before = static_cast<double>(peak_rss_bytes());
  const auto start = std::chrono::steady_clock::now();
  const Qwen2Config config = Qwen2Config::load(
      (fs::is_directory(o.model) ? fs::path(o.model) : fs::path(o.model).parent_path()) /
      "config.json");
  Checkpoint ckpt(o.model);
  Qwen2ForCausalLM model(config, mo);
  load_weights(*model, ckpt);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double file_bytes = double(ckpt.total_bytes());
  const double peak = static_cast<double>(peak_rss_bytes());
  Json j{{"model", o.model},
         {"dtype", o.dtype},
         {"parameters", count_parameters(*model)},
         {"tensor_bytes", file_bytes},
         {"seconds", secs},
         {"gb_per_s", file_bytes / 1e9 / secs},
         {"peak_rss_bytes", peak},
         {"rss_before_load_bytes", rss_before},
         {"peak_rss_over_file_size", peak / file_bytes}};
  if (o.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("loaded %s (%s compute): %.3f GB in %.2f s = %.2f GB/s; peak RSS %.3f GB = %.2fx "
                "the tensor bytes\n",
                o.model.c_str(), o.dtype.c_str(), file_bytes / 1e9, secs, file_bytes / 1e9 / secs,
                peak / 1e9, peak / file_bytes);
  }
}

void register_commands(CLI::App& app) {
  auto init_o = std::make_shared<InitOptions>();
  auto* init = app.add_subcommand(
      "init", "Write a random-weight Hugging Face Qwen2 checkpoint (tokenizer files beside "
              "CONFIG are copied)");
  init->add_option("--config", init_o->config, "config.json (or its directory)")->required();
  init->add_option("--out", init_o->out, "Output model directory")->required();
  init->add_option("--dtype", init_o->dtype, "File dtype: bf16, f16 or f32")->capture_default_str();
  init->add_option("--seed", init_o->seed, "Random seed")->capture_default_str();
  init->callback([init_o] { run_init(*init_o); });

  auto bo = std::make_shared<BenchLoadOptions>();
  auto* bench = app.add_subcommand(
      "bench-load", "Measure loading a checkpoint into the LibTorch model: seconds, GB/s, peak RSS");
  bench->add_option("--model", bo->model, "Model directory or .safetensors file")->required();
  bench->add_option("--dtype", bo->dtype, "Compute dtype: f32, bf16 or f16")
      ->capture_default_str();
  bench->add_flag("--json", bo->json, "Print the figures as JSON")->capture_default_str();
  bench->callback([bo] { run_bench_load(*bo); });
}

}  // namespace qwenqat::models
