// Memory-efficient QAT, phase 1: block-wise training of the decoder layers
// (EfficientQAT's Block-AP). Each decoder layer i, in order, trains its weights
// AND its quantizer scales (AdamW, own lr for the scales, MSE loss) so that its
// fake-quantized output reproduces the full-precision model's output of layer
// i; then it is frozen and the next layer follows. Only calibration
// activations [N, T, hidden] are kept between layers, never the autograd graph
// of the model, so memory is the model plus one layer's training state.
//   input  of layer i: the output of the already trained (fake-quantized)
//                      layers < i on the calibration sequences (as EfficientQAT
//                      trains on quantized inputs), so each layer learns to
//                      compensate the error of the layers before it;
//   target of layer i: the full-precision layer i on the full-precision inputs
//                      (the original model's hidden state after layer i).
// A bf16 model stays bf16 except for the layer in training, whose weights are
// upcast to float32 for its steps and cast back before its output is cached
// (so the next layer sees exactly what the saved model computes).
// Phase 2 (E2E-QP: weights frozen, scales trained end to end with CE/KD) is the
// ordinary Trainer with TrainOptions::train_weights = false (qat/trainer.h).
// Not thread-safe. Details and memory figures: docs/QAT.md.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/batching.h"
#include "models/qwen2_model.h"
#include "qat/prepare.h"
#include "qat/trainer.h"

namespace qwenqat::qat {

struct BlockwiseOptions {
  int64_t calib_samples = 128;  // calibration sequences taken from the training data (>= 1)
  int64_t batch_size = 4;       // calibration sequences per block step (>= 1)
  int64_t block_steps = 100;    // optimizer steps per decoder layer (0 = no block phase)
  int64_t blocks = 0;           // train only the first N decoder layers (0 = all)
  double lr = 2e-5;             // peak learning rate of a block's weights (> 0)
  double scale_lr = 1e-4;       // peak learning rate of a block's scales / offsets (> 0)
  double weight_decay = 0.0;    // AdamW decay of the block's matrices
  double min_lr_ratio = 0.1;    // cosine (no warm-up) to lr * min_lr_ratio per block
  double grad_clip = 1.0;       // max gradient norm per step; 0 = off
  bool train_weights = true;    // false: only the block's scales train
  bool progress = true;         // one progress bar per block on stderr

  // Throws qwenqat::Error naming the flag (--calib-samples, --block-steps, ...).
  void validate() const;
};

// One block step (also a {"type": "block", ...} line of metrics.jsonl).
struct BlockStepMetrics {
  int64_t block = 0;       // decoder layer index
  int64_t block_step = 0;  // 1-based within the block
  double mse = 0;          // MSE over real tokens x hidden of this step's batch
  double lr = 0, scale_lr = 0, grad_norm = 0;
  int64_t tokens = 0;            // real (unpadded) tokens in the batch
  double step_s = 0, cpu_s = 0;  // wall and process CPU seconds
};

// One trained block (a {"type": "block_summary", ...} line).
struct BlockSummary {
  int64_t block = 0;
  // MSE (real tokens x hidden, all calibration batches) between the quantized
  // layer's output on its cached inputs and the full-precision target: before
  // training (initial = round-to-nearest scales) and after (as saved).
  double mse_before = 0, mse_after = 0;
  double seconds = 0, cpu_s = 0;  // the whole block (targets, steps, caching)
};

// The first min(n, train.size()) examples of a seeded shuffle of `train`
// (data::Batcher order, the same on every machine), cut at max_length and
// collated into right-padded batches of batch_size without shuffling.
std::vector<data::Batch> calibration_batches(const std::vector<data::Example>& train, int64_t n,
                                             int64_t batch_size, int64_t max_length, uint64_t seed);

// Block-wise trainer over a prepare()d model (`qat` aliases its quantizers;
// both must outlive this object). `calib`: the calibration batches (token ids
// [B, T], attention mask 1 on real tokens). metrics_file: JSON lines appended
// per block step and per block ("" = none). The constructor computes the
// embeddings of the calibration batches (full-precision and quantized path).
class BlockwiseTrainer {
 public:
  BlockwiseTrainer(models::Qwen2ForCausalLM model, QatModel& qat, std::vector<data::Batch> calib,
                   BlockwiseOptions options, std::filesystem::path metrics_file = {});

  // Trains blocks 0 .. num_blocks() - 1 in turn; returns their summaries.
  std::vector<BlockSummary> run();
  int64_t num_blocks() const;  // options.blocks, or every decoder layer

  // The steps of run(), for benchmarks and tests. begin_block(i) (i = the
  // next block) computes the full-precision targets, upcasts a bf16 layer to
  // float32 and makes its optimizer; step() is one optimizer step on the
  // next calibration batch (cycling); end_block() casts the layer back,
  // freezes it and caches its quantized outputs as the next block's inputs.
  void begin_block(int64_t block);
  BlockStepMetrics step();
  BlockSummary end_block();

  // MSE of the current block (quantizers as they are) over all calibration
  // batches against its targets; between begin_block and end_block.
  double block_mse();

  std::function<void(const BlockStepMetrics&)> on_step;  // after each step; may throw

 private:
  // Activations of one calibration batch at the current block's input.
  struct Calib {
    torch::Tensor positions;  // [B, T] int64
    torch::Tensor allowed;    // [B, 1, T, T] bool: causal and key is a real token
    torch::Tensor weight;     // [B, T, 1] float32: 1 on real tokens, 0 on padding
    int64_t tokens = 0;       // real tokens
    torch::Tensor fp;         // [B, T, hidden] model dtype: full-precision model's input
    torch::Tensor q;          // [B, T, hidden] model dtype: quantized-so-far model's input
    torch::Tensor target;     // [B, T, hidden] model dtype: fp layer on fp (between begin/end)
  };
  // Layer `block_` on h (the layer's dtype decides the compute dtype).
  torch::Tensor layer_forward(const torch::Tensor& h, const Calib& c);
  // Masked MSE of `out` against c.target (float32 scalar, differentiable in out).
  torch::Tensor masked_mse(const torch::Tensor& out, const Calib& c) const;
  void cast_layer(torch::Dtype dtype);
  void append(const Json& j) const;

  models::Qwen2ForCausalLM model_;
  QatModel& qat_;
  BlockwiseOptions options_;
  std::filesystem::path metrics_file_;
  std::vector<Calib> calib_;
  int64_t block_ = -1;  // the block between begin_block and end_block (-1: none)
  int64_t next_block_ = 0;
  int64_t block_step_ = 0;
  ScheduledAdamW optimizer_;
  std::vector<torch::Tensor> block_params_;  // the block's weights and scales
  double mse_before_ = 0;
  Stopwatch block_clock_;  // since begin_block()
};

}  // namespace qwenqat::qat
