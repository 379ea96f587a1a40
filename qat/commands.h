// `qwenqat train`: quantization-aware training (or, with --steps 0, plain
// round-to-nearest post-training quantization) of a Hugging Face Qwen2
// checkpoint; writes a run directory (docs/QAT.md). --mode full (default)
// fine-tunes weights and scales end to end; --mode blockwise trains each
// decoder layer in turn (qat/blockwise.h), then only the scales end to end.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "qat/blockwise.h"
#include "qat/train_data.h"
#include "qat/trainer.h"

namespace qwenqat::qat {

struct TrainCommandOptions {
  std::string model;        // Hugging Face model directory
  std::string out;          // run directory
  std::string preset = "w4g32";
  std::string qconfig;      // QatConfig JSON file (overrides --preset)
  std::string scale_init;   // "" = the config's; minmax | mse
  bool freeze_scales = false;
  std::string dtype = "f32";
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string resume;       // run directory or checkpoint-<step> directory
  // KD teacher (a Hugging Face model dir). "" = --model when the weights
  // train (recorded in the run dir for --resume); the student itself with
  // quantizers off when only the scales train.
  std::string teacher;
  int64_t batch_size = 4;
  int64_t max_length = 512;
  bool json = false;
  std::string mode = "full";  // full | blockwise
  DataOptions data;
  TrainOptions train;          // blockwise: the E2E scales-only phase (train_weights forced false)
  BlockwiseOptions blockwise;  // blockwise: the block phase (weight decay, clip, min lr ratio
                               // are taken from `train`)
};

// Runs the command; returns the JSON summary it prints.
Json run_train(const TrainCommandOptions& o);

void register_commands(CLI::App& app);

}  // namespace qwenqat::qat
