// Implementation of tiny_experiment.h: tokenizer -> random init -> base
// training -> sweep -> report, each step skipped when its output exists.
#include "experiments/tiny_experiment.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "data/tokenizer/tokenizer.h"
#include "data/tokenizer/write_tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "experiments/pipeline.h"
#include "experiments/sweep/report_commands.h"
#include "models/checkpoint/qwen2_config.h"
#include "models/checkpoint_io.h"
#include "qat/commands.h"

namespace qwenqat::experiments {
namespace fs = std::filesystem;

void TinyExperimentOptions::validate() const {
  QWENQAT_CHECK(!out.empty(), "--out must name a directory");
  QWENQAT_CHECK(holdout > 0 && holdout < 1, "--holdout must be in (0, 1), got ", holdout);
  QWENQAT_CHECK(eval_limit >= 0, "--eval-limit must be >= 0 (0 = all), got ", eval_limit);
  QWENQAT_CHECK(hidden_size >= 8 && intermediate_size >= 8 && num_hidden_layers >= 1,
                "--hidden, --intermediate must be >= 8 and --layers >= 1");
  QWENQAT_CHECK(
      num_attention_heads >= 1 && num_key_value_heads >= 1 &&
          hidden_size % num_attention_heads == 0 && num_attention_heads % num_key_value_heads == 0,
      "--heads must divide --hidden and --kv-heads must divide --heads (got hidden ", hidden_size,
      ", heads ", num_attention_heads, ", kv heads ", num_key_value_heads, ")");
  QWENQAT_CHECK((hidden_size / num_attention_heads) % 2 == 0,
                "--hidden / --heads (the head dim) must be even for rotary embeddings");
  for (int g : group_sizes) {
    QWENQAT_CHECK(g >= 0 && (g == 0 || (hidden_size % g == 0 && intermediate_size % g == 0)),
                  "--group-sizes: ", g, " must divide --hidden (", hidden_size,
                  ") and --intermediate (", intermediate_size, "), or be 0 (per channel)");
  }
  QWENQAT_CHECK(!group_sizes.empty(), "--group-sizes: give at least one group size");
  for (int a : act_bits)
    QWENQAT_CHECK(a >= 2 && a <= 8, "--act-bits: ", a, " is not 2..8 (per-token activation bits)");
  QWENQAT_CHECK(base_steps >= 0, "--base-steps must be >= 0, got ", base_steps);
  QWENQAT_CHECK(qat_steps >= 1, "--qat-steps must be >= 1, got ", qat_steps);
  QWENQAT_CHECK(base_lr > 0 && qat_lr > 0 && scale_lr > 0,
                "--base-lr, --qat-lr and --scale-lr must be > 0");
  QWENQAT_CHECK(batch_size >= 1 && max_length >= 16,
                "--batch-size must be >= 1 and --max-length >= 16");
}

Json tiny_config_json(const TinyExperimentOptions& o, int64_t vocab_size) {
  return Json{{"architectures", {"Qwen2ForCausalLM"}},
              {"model_type", "qwen2"},
              {"hidden_act", "silu"},
              {"vocab_size", vocab_size},
              {"hidden_size", o.hidden_size},
              {"intermediate_size", o.intermediate_size},
              {"num_hidden_layers", o.num_hidden_layers},
              {"num_attention_heads", o.num_attention_heads},
              {"num_key_value_heads", o.num_key_value_heads},
              {"max_position_embeddings", std::max<int64_t>(1024, o.max_length)},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", false},
              {"torch_dtype", "float32"}};
}

Json tiny_sweep_json(const TinyExperimentOptions& o, const std::string& base_model) {
  const Json weights = {{"bits", o.bits},
                        {"group_size", o.group_sizes},
                        {"symmetric", {true}},
                        {"act_bits", {0}},
                        {"methods", o.methods},
                        {"train_steps", {o.qat_steps}},
                        {"mixed_precision", {"none"}},
                        {"seeds", {o.seed}}};
  Json grid = weights;
  if (!o.act_bits.empty()) {
    Json acts = weights;
    acts["bits"] = {4};
    acts["group_size"] = {o.group_sizes.front()};
    acts["act_bits"] = o.act_bits;
    grid = Json::array({weights, acts});
  }
  return Json{{"name", "tiny-gsm8k"},
              {"base_model", base_model},
              {"data", {{"train", o.data}, {"holdout", o.holdout}, {"eval_limit", o.eval_limit}}},
              {"fp_reference", true},
              {"grid", grid},
              {"options",
               {{"batch_size", o.batch_size},
                {"max_length", o.max_length},
                {"lr", o.qat_lr},
                {"scale_lr", o.scale_lr},
                {"kd_weight", 1.0},
                {"ce_weight_kd", 0.0},
                {"kd_temperature", 1.0},
                {"warmup_steps", std::min<int64_t>(5, o.qat_steps / 5)},
                {"scale_init", "mse"},
                {"threads", o.threads}}}};
}

namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void say(const TinyExperimentOptions& o, const std::string& msg) {
  if (o.progress) std::fprintf(stderr, "[tiny] %s\n", msg.c_str());
}

// Steps 1-2: OUT/init = tokenizer files + random weights (reused if present).
fs::path ensure_init(const TinyExperimentOptions& o, const fs::path& out) {
  const fs::path tok_dir = out / "tokenizer";
  if (!fs::exists(tok_dir / "tokenizer.json")) data::write_byte_level_tokenizer(tok_dir);
  const fs::path init = out / "init";
  if (!fs::exists(init / "model.safetensors")) {
    const auto tok = data::Tokenizer::load(tok_dir);
    const auto config = models::Qwen2Config::from_json(tiny_config_json(o, tok.vocab_size()),
                                                       (out / "init" / "config.json").string());
    models::init_checkpoint(config, init, models::DType::kF32, o.seed, tok_dir);
    say(o, "initialized a random " + std::to_string(config.num_parameters()) +
               "-parameter Qwen2 in " + init.string());
  }
  return init;
}

// Step 3: full-precision training of the base model (OUT/base).
Json ensure_base(const TinyExperimentOptions& o, const fs::path& out, const fs::path& init) {
  const fs::path summary = out / "base_train.json";
  if (fs::exists(summary)) return read_json_file(summary);
  say(o, "training the full-precision base model for " + std::to_string(o.base_steps) +
             " steps on " + o.data);
  qat::TrainCommandOptions t;
  t.model = init.string();
  t.out = (out / "base").string();
  t.preset = "none";
  t.batch_size = o.batch_size;
  t.max_length = o.max_length;
  t.data.data = o.data;
  t.data.holdout = o.holdout;
  t.train.steps = o.base_steps;
  t.train.lr = o.base_lr;
  t.train.warmup_steps = std::min<int64_t>(20, o.base_steps / 10);
  t.train.seed = o.seed;
  t.train.progress = o.progress;
  const Json s = qat::run_train(t);
  write_json_file(summary, s);
  return s;
}

// The settings that decide what OUT/init and OUT/base hold. Reusing an OUT
// made with other values would silently mix models, so that is an error.
void check_reusable(const TinyExperimentOptions& o, const fs::path& out) {
  const Json now{{"data", o.data},
                 {"holdout", o.holdout},
                 {"hidden", o.hidden_size},
                 {"intermediate", o.intermediate_size},
                 {"layers", o.num_hidden_layers},
                 {"heads", o.num_attention_heads},
                 {"kv_heads", o.num_key_value_heads},
                 {"base_steps", o.base_steps},
                 {"base_lr", o.base_lr},
                 {"batch_size", o.batch_size},
                 {"max_length", o.max_length},
                 {"seed", o.seed}};
  const fs::path file = out / "base_settings.json";
  if (!fs::exists(file)) {
    write_json_file(file, now);
    return;
  }
  const Json before = read_json_file(file);
  for (const auto& [key, value] : now.items()) {
    QWENQAT_CHECK(before.contains(key) && before[key] == value, "--out ", out.string(),
                  " holds a run made with ", key, " = ",
                  before.contains(key) ? before[key].dump() : "?", ", not ", value.dump(),
                  "; use another --out (or delete it) to change the model or its training");
  }
}

}  // namespace

Json run_tiny_experiment(const TinyExperimentOptions& o) {
  o.validate();
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path out = o.out;
  fs::create_directories(out);
  check_reusable(o, out);
  const fs::path init = ensure_init(o, out);
  const Json base = ensure_base(o, out, init);
  const std::string base_model = base.at("checkpoint").get<std::string>();

  const Json sweep_json = tiny_sweep_json(o, base_model);
  write_json_file(out / "sweep.json", sweep_json);
  const SweepSpec spec = parse_sweep(sweep_json, (out / "sweep.json").string());
  PipelineSettings settings = PipelineSettings::from_spec(spec);
  settings.progress = o.progress;
  PipelineRunner runner(settings);
  SweepRunOptions ro;
  ro.progress = o.progress;
  const fs::path sweep_dir = out / "sweep";
  fs::create_directories(sweep_dir);
  say(o, "sweep: " + (out / "sweep.json").string() + " -> " + sweep_dir.string());
  const SweepRunReport r = run_sweep(spec, runner, sweep_dir, ro);

  // KL to the base model is the headline metric (every quantized row has it;
  // accuracy needs generation, which a model this small cannot pass).
  ReportOptions rep;
  rep.results_dir = sweep_dir;
  rep.metric = "kl";
  rep.title = "tiny-gsm8k: KL to the full-precision model vs size";
  const ReportResult report = write_report(rep);
  const std::string& table = report.markdown;
  Json summary{{"out", out.string()},
               {"base_model", base_model},
               {"base_train", base},
               {"sweep", {{"ran", r.ran}, {"skipped", r.skipped}, {"failed", r.failed}}},
               {"results", sweep_dir.string()},
               {"table", table},
               {"plot", {{"png", report.json["plot"]["png"]}, {"svg", report.json["plot"]["svg"]}}},
               {"seconds", since(t0)}};
  write_json_file(out / "summary.json", summary);
  return summary;
}

}  // namespace qwenqat::experiments
