// The train -> export -> evaluate pipeline for one quantization point, used by
// `qwenqat sweep` (as its PointRunner), the demo and the tiny-gsm8k
// experiment. Each step reuses its output when it already exists in the
// point's work directory, so an interrupted sweep resumes cheaply.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>

#include "data/util/json_io.h"
#include "experiments/sweep/sweep_runner.h"

namespace qwenqat::experiments {

// Settings of the pipeline that are not part of a sweep point; read from the
// sweep file's "data" and "options" objects (keys named below, all optional).
struct PipelineSettings {
  std::string train_data = "embedded";  // data.train: GSM8K JSONL or "embedded"
  std::string eval_data;                // data.eval: held-out file ("" = the split of train)
  double holdout = 0.05;                // data.holdout
  int64_t eval_limit = 64;              // data.eval_limit: held-out problems evaluated (0 = all)
  int64_t batch_size = 8;               // options.batch_size
  int64_t max_length = 256;             // options.max_length
  double lr = 1e-4;                     // options.lr (weights)
  double scale_lr = 1e-3;               // options.scale_lr
  double kd_weight = 1.0;               // options.kd_weight (qat_kd)
  double ce_weight_kd = 0.0;            // options.ce_weight_kd: CE weight in qat_kd
  double kd_temperature = 1.0;          // options.kd_temperature
  int64_t warmup_steps = 0;             // options.warmup_steps
  std::string scale_init = "mse";       // options.scale_init: minmax | mse
  bool generation_eval = false;         // options.generation_eval: also GSM8K accuracy
  int64_t max_new_tokens = 256;         // options.max_new_tokens (generation eval)
  std::string device = "cpu";           // options.device: training device (cpu, cuda, cuda:N)
  std::string dtype = "f32";            // options.dtype: training compute dtype (f32, bf16)
  int threads = 0;                      // engine threads (0 = all cores)
  bool progress = true;

  static PipelineSettings from_spec(const SweepSpec& spec);
};

// PointRunner: "fp" evaluates the base model itself; "ptq" is `train --steps
// 0`; "qat" trains with CE; "qat_kd" with distillation from the base model.
// Each quantized point is exported to <work_dir>/model.h5 and evaluated with
// the native engine (perplexity, KL and top-1 against the base model, and
// GSM8K accuracy when settings.generation_eval).
class PipelineRunner : public PointRunner {
 public:
  explicit PipelineRunner(PipelineSettings settings) : settings_(std::move(settings)) {}
  PointMetrics run(const SweepPoint& point, const SweepSpec& spec,
                   const std::filesystem::path& work_dir) override;

 private:
  PipelineSettings settings_;
};

// `qwenqat sweep --spec SWEEP.json --out DIR [--shard i/n] [--keep-going]`.
void register_sweep_commands(CLI::App& app);

}  // namespace qwenqat::experiments
