// The QAT training loop: AdamW (weight decay on matrices only) with a
// separate learning rate for the quantizer scales, linear warm-up + cosine
// decay, global gradient-norm clipping, gradient accumulation, masked
// next-token cross entropy mixed with knowledge distillation from the same
// weights with quantization off (KL(teacher || student) at temperature T,
// scaled by T^2), held-out evaluation, metrics as JSON lines, and atomic
// checkpoints that --resume continues exactly. Deterministic on CPU for a
// given seed and thread count. Layout of a run directory: docs/QAT.md.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/batching.h"
#include "data/util/process_stats.h"
#include "models/checkpoint/safetensors.h"
#include "models/qwen2_model.h"
#include "qat/eval_accuracy.h"
#include "qat/prepare.h"

namespace qwenqat::qat {

struct TrainOptions {
  int64_t steps = 100;          // optimizer steps; 0 = post-training quantization only
  int64_t grad_accum = 1;       // micro-batches per optimizer step
  double lr = 1e-5;             // peak learning rate of the weights (> 0)
  double scale_lr = 1e-4;       // peak learning rate of scales / offsets (> 0)
  double weight_decay = 0.01;   // AdamW decay of 2-D weights (not norms, biases, scales)
  int64_t warmup_steps = 0;     // linear warm-up from lr/warmup to lr
  double min_lr_ratio = 0.1;    // cosine decays to lr * min_lr_ratio at the last step
  double grad_clip = 1.0;       // max global L2 norm of all gradients; 0 = off
  double ce_weight = 1.0;       // loss = ce_weight * CE + kd_weight * KD
  double kd_weight = 0.0;
  double kd_temperature = 1.0;
  bool train_weights = true;    // false: only the scales train (weights frozen)
  int64_t eval_every = 0;       // held-out evaluation every N steps (0: only at the end)
  int64_t eval_accuracy = 0;    // also greedy exact match on the first N held-out GSM8K problems
  int64_t eval_max_new_tokens = 256;  // token budget of each of those answers
  int64_t save_every = 0;       // checkpoint every N steps (0: only at the end)
  int64_t keep_checkpoints = 2; // newest checkpoint-<step> dirs kept (>= 1)
  uint64_t seed = 0;            // data order and torch's generator
  bool progress = true;         // progress bar on stderr
  models::DType save_dtype = models::DType::kF32;  // checkpoint dtype (use the model's)
  std::filesystem::path tokenizer_src;  // tokenizer files copied into checkpoints ("" = none)

  // Throws qwenqat::Error naming the flag (--lr, --steps, ...) when invalid.
  void validate() const;
};

// One optimizer step's figures (also a line of metrics.jsonl).
struct StepMetrics {
  int64_t step = 0;  // 1-based: the step just completed
  double loss = 0, ce = 0, kd = 0, lr = 0, scale_lr = 0, grad_norm = 0;
  int64_t tokens = 0;  // loss tokens in the step
  double tokens_per_s = 0;
  double step_s = 0, cpu_s = 0;  // wall and process CPU seconds of the step
};

struct EvalMetrics {
  int64_t step = 0;
  double ce = 0;       // mean masked next-token CE on the held-out examples
  int64_t tokens = 0;
  AccuracyResult accuracy;  // n = 0 unless --eval-accuracy
};

// The optimizer recipe shared by the trainer and block-wise training
// (qat/blockwise.h): AdamW whose param groups are the matrices (dim >= 2) of
// `weights` with weight_decay, the other weights (norms, biases) without, and
// `scales` (quantizer scales / offsets) at scale_lr without decay; empty groups
// are left out. The learning rates follow lr_schedule_factor().
class ScheduledAdamW {
 public:
  ScheduledAdamW() = default;
  ScheduledAdamW(const std::vector<torch::Tensor>& weights, std::vector<torch::Tensor> scales,
                 double lr, double scale_lr, double weight_decay);
  bool empty() const { return optimizer_ == nullptr; }  // no parameter at all
  torch::optim::AdamW& optimizer() { return *optimizer_; }
  // Sets every group's lr to its peak lr times `factor`.
  void set_lr_factor(double factor);
  // Clips the global L2 norm of all groups' gradients to max_norm (0 = no
  // clipping) and returns the norm before clipping.
  double clip_grad_norm(double max_norm);

 private:
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<double> peak_lr_;  // per param group
};

// Turns every quantizer of `qat` off for its lifetime (the full-precision
// teacher: the same weights unquantized); back on when it ends, also on throw.
class QuantizersOff {
 public:
  explicit QuantizersOff(QatModel& qat) : qat_(qat) { qat_.set_enabled(false); }
  ~QuantizersOff() { qat_.set_enabled(true); }
  QuantizersOff(const QuantizersOff&) = delete;
  QuantizersOff& operator=(const QuantizersOff&) = delete;

 private:
  QatModel& qat_;
};

// Linear warm-up over `warmup` steps, then cosine from 1 to min_lr_ratio at
// the last of `steps` steps; `step` is 0-based.
double lr_schedule_factor(int64_t step, int64_t steps, int64_t warmup, double min_lr_ratio);

// Appends one JSON line to `path` (metrics.jsonl); throws if the write fails.
void append_json_line(const std::filesystem::path& path, const Json& j);

// Wall-clock and process CPU seconds since construction.
class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()), cpu0_(process_cpu_seconds()) {}
  double wall_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  double cpu_s() const { return process_cpu_seconds() - cpu0_; }

 private:
  std::chrono::steady_clock::time_point t0_;
  double cpu0_;
};

// Trains `model` (already prepare()d; `qat` aliases its quantizers). The run
// directory receives metrics.jsonl, checkpoint-<step>/ (a Hugging Face model
// directory + quantization.json + quantizers.safetensors + optimizer.pt +
// trainer_state.json) and a "latest" file naming the newest checkpoint.
// Not thread-safe.
class Trainer {
 public:
  Trainer(models::Qwen2ForCausalLM model, QatModel& qat, TrainOptions options,
          data::Batcher train, std::optional<data::Batcher> eval,
          std::filesystem::path run_dir);

  // Continues from `checkpoint` (a checkpoint-<step> dir of this run whose
  // weights and quantizers are already loaded into the model): restores the
  // optimizer, the step counter and the RNG state.
  void resume(const std::filesystem::path& checkpoint);

  // Runs the remaining steps (evaluating and checkpointing as configured)
  // and returns every step's metrics. A NaN/Inf loss or gradient stops with
  // qwenqat::Error naming the step and the last good checkpoint. Throws
  // before the first step if there are no batches.
  std::vector<StepMetrics> run();

  EvalMetrics evaluate();  // on the held-out batches (ce 0, tokens 0 if none)
  // Writes checkpoint-<step> atomically; returns its path.
  std::filesystem::path save_checkpoint();
  int64_t step() const { return step_; }
  // Distils from `teacher` (a frozen full-precision model with the same
  // config; set to eval mode, gradients off) instead of this model with its
  // quantizers disabled. Needed when the weights train: the self-teacher
  // would drift with them and KD would no longer anchor to the original
  // model. Costs a second copy of the weights.
  void set_teacher(models::Qwen2ForCausalLM teacher);
  // Held-out problems scored by greedy exact match at every evaluation
  // (options.eval_accuracy of them; see eval_accuracy.h). `tok` outlives the
  // trainer.
  void set_accuracy_eval(std::vector<AccuracyProblem> problems, const data::Tokenizer* tok,
                         std::vector<int32_t> stop_ids);
  bool has_teacher() const { return !teacher_.is_empty(); }
  // Called after each step (for tests and the CLI); may throw to stop.
  std::function<void(const StepMetrics&)> on_step;

 private:
  void append_metrics(const Json& j);
  // Loss of one micro-batch; adds CE/KD sums (per-token means are over
  // `step_tokens`) and returns the weighted loss to backpropagate.
  torch::Tensor micro_batch_loss(const data::Batch& b, int64_t step_tokens, double* ce,
                                 double* kd);

  models::Qwen2ForCausalLM model_;
  models::Qwen2ForCausalLM teacher_{nullptr};  // empty: self with quantizers off
  std::vector<AccuracyProblem> accuracy_problems_;
  const data::Tokenizer* accuracy_tok_ = nullptr;
  std::vector<int32_t> accuracy_stop_ids_;
  QatModel& qat_;
  TrainOptions options_;
  data::Batcher train_;
  std::optional<data::Batcher> eval_;
  std::filesystem::path run_dir_;
  ScheduledAdamW optimizer_;  // empty with nothing to train (steps 0)
  int64_t step_ = 0;
  std::filesystem::path last_checkpoint_;
};

// Masked next-token cross entropy and distillation terms of a batch.
// logits [B, T, V] float32; ids [B, T] int64; mask [B, T] (1 = completion
// token to predict). Position t predicts token t+1 where mask[t+1] == 1.
// Returns the SUM over those tokens (not the mean).
torch::Tensor masked_ce_sum(const torch::Tensor& logits, const torch::Tensor& ids,
                            const torch::Tensor& mask);
// sum over masked positions of T^2 * KL(softmax(t/T) || softmax(s/T)).
torch::Tensor masked_kd_sum(const torch::Tensor& student_logits,
                            const torch::Tensor& teacher_logits, const torch::Tensor& mask,
                            double temperature);

// Batch -> tensors: ids [B, T] int64, loss mask [B, T] float32, attention
// mask [B, T] int64, positions [B, T] int64.
struct BatchTensors {
  torch::Tensor ids, loss_mask, attention_mask, positions;
};
BatchTensors to_tensors(const data::Batch& b, torch::Device device);

}  // namespace qwenqat::qat
