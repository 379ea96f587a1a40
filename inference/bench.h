// `qwenqat bench`: prefill and decode throughput of the engine, effective
// weight bandwidth, peak RSS, and the machine's measured memory read
// bandwidth, on a model file or on random weights of a given config (real
// shapes without the real weights).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/util/json_io.h"
#include "inference/sampler.h"
#include "inference/weights.h"

namespace qwenqat::engine {

struct BenchOptions {
  std::string model;                   // checkpoint dir or .h5; or empty with random_config
  std::string random_config;           // config.json: random weights of these shapes
  std::string random_quant = "w4g32";  // scheme of the random linears/embedding, "f32" or "bf16"
  int64_t prompt_tokens = 128;
  int64_t gen_tokens = 64;
  int64_t batch = 1;
  int threads = 0;  // 0: hardware threads
  std::string kv_cache = "f32";
  std::string kernels = "auto";
  std::string act_quant = "auto";  // auto | none | q8 (kernels/act_quant.h)
  bool mmap = false;               // --model .h5 used in place (MapMode::kMap)
  int64_t bandwidth_mb = 1024;     // buffer of the read-bandwidth probe; 0 skips it
  bool warmup = true;              // one untimed token first (pages in the weights, as llama-bench)
  // How each decode step's tokens are picked: greedy by default (as
  // llama-bench measures); a temperature > 0 times the sampler too.
  SamplingOptions sampling{0.0f, 1.0f, 0, 0};
  bool json = false;
};

// Random weights of `config`'s shapes: every linear, lm_head and the
// embedding packed with `quant` (random codes, scales ~ N(0, 0.02)-like), or
// float32 / bf16 (as a bf16 checkpoint) when quant is "f32" / "bf16"; norms 1,
// biases small. Fast (no quantization
// search): for speed and memory measurements only.
std::shared_ptr<MemorySource> random_weight_source(const models::Qwen2Config& config,
                                                   const std::string& quant, uint64_t seed);

// Multi-threaded sequential read of a `bytes` buffer (best of 3), GB/s, with
// a software prefetch ahead of the reads (what the decode kernels get).
double measure_read_bandwidth(int64_t bytes, int threads);

// User + system CPU seconds of this process so far.
double process_cpu_seconds();

// Peak resident set size of this process, bytes (VmHWM; getrusage where
// /proc is missing).
uint64_t peak_rss_bytes();

// Restarts the peak RSS from the current RSS (Linux /proc/self/clear_refs);
// false where that is not possible (peak_rss_bytes then keeps the old peak).
bool reset_peak_rss();

// Runs the benchmark; returns the figures (also used for --json).
Json run_bench(const BenchOptions& options);

}  // namespace qwenqat::engine
