// `qwenqat bench`: prefill and decode throughput of the engine, effective
// weight bandwidth, peak RSS, and the machine's measured memory read
// bandwidth, on a model file or on random weights of a given config (real
// shapes without the real weights). As llama-bench, the sizes take lists and
// every combination runs on one loaded model, `repetitions` times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "inference/sampler.h"
#include "inference/thread_pool.h"

namespace qwenqat::engine {

struct BenchOptions {
  std::string model;                   // checkpoint dir or .h5; or empty with random_config
  std::string random_config;           // config.json: random weights of these shapes
  std::string random_quant = "w4g32";  // scheme of the random linears/embedding, "f32" or "bf16"
  // Every combination threads x act_quant x kv_cache x batch x prompt_tokens
  // x gen_tokens is one configuration (in that nesting order); each list
  // non-empty.
  std::vector<int64_t> prompt_tokens{128};
  std::vector<int64_t> gen_tokens{64};
  std::vector<int64_t> batch{1};
  std::vector<int> threads{ThreadPool::hardware_threads()};
  std::vector<std::string> kv_cache{"f32"};
  std::vector<std::string> act_quant{"auto"};  // auto | none | q8 (kernels/act_quant.h)
  // Rounds: each runs every configuration once, in order, so that a ratio of
  // two configurations (e.g. batch 16 / batch 1) is taken within a round,
  // minutes apart at most, on machines whose speed drifts.
  int repetitions = 1;
  std::string kernels = "auto";
  bool mmap = false;            // --model .h5 used in place (MapMode::kMap)
  int64_t bandwidth_mb = 1024;  // buffer of the read-bandwidth probe; 0 skips it
  bool warmup = true;           // one untimed token first (pages in the weights, as llama-bench)
  // How each decode step's tokens are picked: greedy by default (as
  // llama-bench measures); a temperature > 0 times the sampler too.
  SamplingOptions sampling{0.0f, 1.0f, 0, 0};
  bool json = false;
  bool csv = false;
};

// Multi-threaded sequential read of a `bytes` buffer (best of 3), GB/s, with
// a software prefetch ahead of the reads (what the decode kernels get).
double measure_read_bandwidth(int64_t bytes, int threads);

// Runs the benchmark and returns its figures: the shared ones (model,
// kernels, load, probe, peak RSS) at the top level and one object per
// configuration in "runs" (means over the rounds, their sample standard
// deviations as *_sd, every round's figures in "rounds", and "decode_vs_batch1",
// the mean over the rounds of decode tokens/s over that of batch 1 with the
// same threads, settings and sizes, where batch 1 is among the configurations). With a
// single configuration its fields are also at the top level. Throws
// qwenqat::Error naming the flag for bad options.
Json run_bench(const BenchOptions& options);

// The figures of run_bench as text: the single-configuration report, or a
// Markdown table of the configurations (mean +- sd with several rounds).
std::string bench_text(const Json& result);

// One CSV line per configuration after a header line (means, sds, ratio).
std::string bench_csv(const Json& result);

}  // namespace qwenqat::engine
