// `qwenqat demo`: the README's main job. For now (issue 2) it creates a small
// random Qwen2 checkpoint from an embedded tiny config, saves it in Hugging
// Face format, loads it back into the LibTorch model, runs a forward pass and
// a short greedy generation with the KV cache, and prints a summary. Later
// issues extend it to the train -> export -> run -> evaluate pipeline.
#pragma once

#include <cstdint>
#include <string>

#include "data/util/json_io.h"

namespace qwenqat::experiments {

struct DemoOptions {
  std::string out = "qwenqat-demo";  // output directory (the checkpoint goes to OUT/checkpoint)
  uint64_t seed = 0;
  int new_tokens = 8;                // greedy tokens generated with the KV cache
  bool json = false;                 // print the summary as JSON
};

// The embedded default model config (Hugging Face config.json fields).
Json demo_config_json();

// Runs the demo; returns the summary (also written to OUT/demo_summary.json):
// {"checkpoint", "parameters", "file_bytes", "input_ids", "logits_shape",
//  "logits_mean", "logits_std", "logits_min", "logits_max", "argmax",
//  "generated", "seconds": {"init", "load", "forward", "generate"}}.
// Throws qwenqat::Error on failure (e.g. an unwritable OUT).
Json run_demo(const DemoOptions& options);

// Prints run_demo()'s summary as aligned text on stdout.
void print_demo_summary(const Json& summary);

}  // namespace qwenqat::experiments
