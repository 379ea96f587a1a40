// The experiments library's subcommands: `qwenqat demo` (the tiny end-to-end
// experiment, tiny_experiment.h) and `qwenqat sweep` (pipeline.h).
#include "experiments/commands.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "experiments/pipeline.h"
#include "experiments/tiny_experiment.h"

namespace qwenqat::experiments {

namespace {

void add_demo_flags(CLI::App* c, TinyExperimentOptions& o) {
  c->add_option("--out", o.out, "Output directory (re-running continues what is there)")
      ->capture_default_str();
  c->add_option("--data", o.data, "GSM8K train JSONL, or \"embedded\" (the built-in problems)")
      ->capture_default_str();
  c->add_option("--holdout", o.holdout, "Fraction of --data held out for evaluation")
      ->capture_default_str();
  c->add_option("--eval-limit", o.eval_limit, "Held-out problems evaluated (0 = all)")
      ->capture_default_str();
  c->add_option("--hidden", o.hidden_size, "hidden_size of the model")->capture_default_str();
  c->add_option("--intermediate", o.intermediate_size, "intermediate_size (MLP width)")
      ->capture_default_str();
  c->add_option("--layers", o.num_hidden_layers, "num_hidden_layers")->capture_default_str();
  c->add_option("--heads", o.num_attention_heads, "num_attention_heads")->capture_default_str();
  c->add_option("--kv-heads", o.num_key_value_heads, "num_key_value_heads")->capture_default_str();
  c->add_option("--base-steps", o.base_steps, "Full-precision training steps of the base model")
      ->capture_default_str();
  c->add_option("--base-lr", o.base_lr, "Peak learning rate of the base training")
      ->capture_default_str();
  c->add_option("--batch-size", o.batch_size, "Examples per step (base and QAT)")
      ->capture_default_str();
  c->add_option("--max-length", o.max_length, "Examples are cut to this many tokens")
      ->capture_default_str();
  c->add_option("--bits", o.bits, "Weight bits of the grid (2..8)")->capture_default_str();
  c->add_option("--group-sizes", o.group_sizes, "Group sizes of the grid (0 = per channel)")
      ->capture_default_str();
  c->add_option("--methods", o.methods, "Methods of the grid: ptq, qat, qat_kd")
      ->capture_default_str();
  c->add_option("--act-bits", o.act_bits,
                "Per-token activation bits (2..8) added for int4 at the first group size, e.g. 8 "
                "for w4g32 with int8 inputs (none by default)");
  c->add_option("--qat-steps", o.qat_steps, "Training steps of each QAT point")
      ->capture_default_str();
  c->add_option("--qat-lr", o.qat_lr, "Peak learning rate of the weights in QAT")
      ->capture_default_str();
  c->add_option("--scale-lr", o.scale_lr, "Peak learning rate of the scales in QAT")
      ->capture_default_str();
  c->add_option("--seed", o.seed, "Seed of the weights, the data order and the split")
      ->capture_default_str();
  c->add_option("--threads", o.threads, "Engine threads for evaluation (0 = all cores)")
      ->capture_default_str();
  c->add_flag("!--no-progress", o.progress, "No progress bars");
}

}  // namespace

void register_commands(CLI::App& app) {
  auto o = std::make_shared<TinyExperimentOptions>();
  auto json = std::make_shared<bool>(false);
  auto* demo = app.add_subcommand(
      "demo",
      "The main job, on an embedded default: write a byte-level tokenizer, train a tiny Qwen2 in "
      "full precision on GSM8K-format problems, then sweep PTQ / QAT / QAT+KD (train, export to "
      ".h5, evaluate perplexity, KL and top-1 agreement with the native engine) and print the "
      "table. experiments/tiny-gsm8k/run.sh runs it at full size on the real GSM8K");
  add_demo_flags(demo, *o);
  demo->add_flag("--json", *json, "Print the summary as JSON");
  demo->callback([o, json] {
    const Json s = run_tiny_experiment(*o);
    if (*json) {
      std::cout << s.dump(2) << "\n";
      return;
    }
    std::cout << s["table"].get<std::string>() << "\n"
              << "base model: " << s["base_model"].get<std::string>() << "\n"
              << "results:    " << s["results"].get<std::string>()
              << "/results.{csv,jsonl,md}, plot " << s["plot"]["png"].get<std::string>() << "\n";
    std::printf("time:       %.1f s (%lld point(s) run, %lld reused)\n", s["seconds"].get<double>(),
                (long long)s["sweep"]["ran"].get<int64_t>(),
                (long long)s["sweep"]["skipped"].get<int64_t>());
  });
  register_sweep_commands(app);
}

}  // namespace qwenqat::experiments
