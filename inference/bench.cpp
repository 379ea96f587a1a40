// The engine benchmark: random or loaded weights; per configuration one
// batched prefill, then gen_tokens batched decode steps, timed with
// steady_clock; the configurations run in rounds (BenchOptions).
#include "inference/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "data/util/check.h"
#include "data/util/process_stats.h"
#include "data/util/progress.h"
#include "inference/kernels/prefetch.h"
#include "inference/model.h"
#include "inference/random_weights.h"
#include "inference/sampler.h"

namespace qwenqat::engine {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One configuration: the settings and sizes of a prefill + decode run.
struct BenchPoint {
  int threads = 1;
  ActQuant act = ActQuant::kAuto;
  KvDtype kv = KvDtype::kF32;
  std::string kv_name;
  int64_t batch = 1, prompt_tokens = 1, gen_tokens = 1;
};

// The figures of one run of a configuration.
struct RunFigures {
  double prefill_s = 0.0, decode_s = 0.0, prefill_cpu_s = 0.0, decode_cpu_s = 0.0;
};

// Every combination of the option lists, validated, in the documented order.
std::vector<BenchPoint> bench_points(const BenchOptions& o) {
  const auto check_list = [](const auto& list, const char* flag, const std::string& hint = "") {
    QWENQAT_CHECK(!list.empty(), flag, " needs at least one value");
    for (const auto v : list) QWENQAT_CHECK(v >= 1, flag, " must be >= 1, got ", v, hint);
  };
  check_list(
      o.threads, "--threads",
      "; this machine has " + std::to_string(ThreadPool::hardware_threads()) + " hardware threads");
  check_list(o.batch, "--batch");
  check_list(o.prompt_tokens, "--prompt-tokens");
  check_list(o.gen_tokens, "--gen-tokens");
  QWENQAT_CHECK(!o.act_quant.empty(), "--act-quant needs at least one value");
  QWENQAT_CHECK(!o.kv_cache.empty(), "--kv-cache needs at least one value");
  std::vector<BenchPoint> points;
  for (const int t : o.threads)
    for (const std::string& a : o.act_quant)
      for (const std::string& kv : o.kv_cache)
        for (const int64_t b : o.batch)
          for (const int64_t p : o.prompt_tokens)
            for (const int64_t g : o.gen_tokens)
              points.push_back({t, parse_act_quant(a, "--act-quant"),
                                parse_kv_dtype(kv, "--kv-cache"), kv, b, p, g});
  return points;
}

// One batched prefill of random prompts, then the decode steps, each step's
// tokens picked as generate() picks them (on the pool, one Rng per sequence).
RunFigures run_point(Model& model, ThreadPool& pool, const BenchPoint& p,
                     const SamplingOptions& sampling, KernelIsa isa) {
  model.set_act_quant(p.act);
  const auto& cfg = model.config();
  KvCache cache(cfg, p.batch, p.prompt_tokens + p.gen_tokens, p.kv);
  Rng rng(7);
  std::vector<std::vector<int32_t>> prompts(p.batch);
  for (auto& prompt : prompts)
    for (int64_t i = 0; i < p.prompt_tokens; ++i)
      prompt.push_back(static_cast<int32_t>(rng.next() % static_cast<uint64_t>(cfg.vocab_size)));
  std::vector<SequenceStep> steps;
  for (int64_t b = 0; b < p.batch; ++b) steps.push_back({b, prompts[b]});
  std::vector<float> logits;  // [batch, vocab]
  RunFigures f;
  const auto t_prefill = Clock::now();
  const double cpu0 = process_cpu_seconds();
  model.forward(steps, cache, pool, logits);
  f.prefill_s = seconds_since(t_prefill);
  const double cpu1 = process_cpu_seconds();
  std::vector<int32_t> next(p.batch);
  std::vector<Rng> rngs;
  for (int64_t b = 0; b < p.batch; ++b) rngs.emplace_back(sampling.seed + b);
  const auto t_decode = Clock::now();
  for (int64_t g = 0; g < p.gen_tokens; ++g) {
    pool.parallel_for(p.batch, [&](int64_t b) {
      next[b] = sample(&logits[b * cfg.vocab_size], cfg.vocab_size, sampling, rngs[b], isa);
    });
    for (int64_t b = 0; b < p.batch; ++b) steps[b] = {b, std::span<const int32_t>(&next[b], 1)};
    model.forward(steps, cache, pool, logits);
  }
  f.decode_s = seconds_since(t_decode);
  f.prefill_cpu_s = cpu1 - cpu0;
  f.decode_cpu_s = process_cpu_seconds() - cpu1;
  return f;
}

struct Stats {
  double mean = 0.0, sd = 0.0;  // sd: sample standard deviation, 0 for one value
};
Stats stats_of(const std::vector<double>& v) {
  Stats s;
  for (const double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0.0;
  for (const double x : v) ss += (x - s.mean) * (x - s.mean);
  s.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  return s;
}

// The "runs" entry of configuration p from its rounds' figures.
Json run_json(const BenchPoint& p, const std::vector<RunFigures>& rounds, double bytes_per_step) {
  std::vector<double> prefill, decode;  // tokens/s of each round
  Json per_round = Json::array();
  for (const RunFigures& f : rounds) {
    prefill.push_back(static_cast<double>(p.batch * p.prompt_tokens) / f.prefill_s);
    decode.push_back(static_cast<double>(p.batch * p.gen_tokens) / f.decode_s);
    per_round.push_back(
        {{"prefill_tokens_per_s", prefill.back()}, {"decode_tokens_per_s", decode.back()}});
  }
  const auto mean_of = [&](double RunFigures::*field) {
    double sum = 0.0;
    for (const RunFigures& f : rounds) sum += f.*field;
    return sum / static_cast<double>(rounds.size());
  };
  const Stats pf = stats_of(prefill), dc = stats_of(decode);
  const double decode_s = mean_of(&RunFigures::decode_s);
  Json r;
  r["threads"] = p.threads;
  r["act_quant"] = act_quant_name(p.act);
  r["kv_cache"] = p.kv_name;
  r["batch"] = p.batch;
  r["prompt_tokens"] = p.prompt_tokens;
  r["gen_tokens"] = p.gen_tokens;
  r["prefill_seconds"] = mean_of(&RunFigures::prefill_s);
  r["prefill_tokens_per_s"] = pf.mean;
  r["prefill_tokens_per_s_sd"] = pf.sd;
  r["decode_seconds"] = decode_s;
  r["decode_tokens_per_s"] = dc.mean;
  r["decode_tokens_per_s_sd"] = dc.sd;
  r["decode_steps_per_s"] = dc.mean / static_cast<double>(p.batch);
  // Weight bytes each step reads over the mean decode time of a round.
  r["decode_weight_bandwidth_gbs"] =
      bytes_per_step * static_cast<double>(p.gen_tokens) / decode_s / 1e9;
  // CPU seconds (all threads, spin-waiting included): with a loaded machine
  // wall time / CPU time shows how much of the cores the benchmark got.
  r["prefill_cpu_seconds"] = mean_of(&RunFigures::prefill_cpu_s);
  r["decode_cpu_seconds"] = mean_of(&RunFigures::decode_cpu_s);
  r["rounds"] = per_round;
  return r;
}

// decode_vs_batch1 of every run that has a batch-1 run of the same threads,
// settings and sizes: the mean over the rounds of the ratio within each round.
void add_batch1_ratios(Json& runs) {
  for (Json& r : runs) {
    for (const Json& one : runs) {
      bool same = one["batch"] == 1;
      for (const char* key : {"threads", "act_quant", "kv_cache", "prompt_tokens", "gen_tokens"})
        same = same && one[key] == r[key];
      if (!same) continue;
      std::vector<double> ratios;
      for (size_t i = 0; i < r["rounds"].size(); ++i)
        ratios.push_back(r["rounds"][i]["decode_tokens_per_s"].get<double>() /
                         one["rounds"][i]["decode_tokens_per_s"].get<double>());
      r["decode_vs_batch1"] = stats_of(ratios).mean;
    }
  }
}

}  // namespace

double measure_read_bandwidth(int64_t bytes, int threads) {
  // One cache line per iteration, prefetched into L1 2 KB ahead and into L2
  // 16 KB ahead (kernels::prefetch_l1_l2, as the decode kernels stream their
  // weights; past the buffer's end a harmless miss): a plain loop is
  // held to the lines the hardware prefetcher keeps in flight and read 17-18
  // GB/s on the Emerald Rapids VM where decode streamed 26-30, so decode
  // read as more than the machine's bandwidth (standalone copy of this loop
  // there, best of 3, two runs each: the L2 prefetch alone 27-28 GB/s at any
  // distance from 4 to 64 KB, with the L1 one 28.6-29.4 as T0, 29.1-29.2 as
  // NTA).
  constexpr int64_t kLineWords = 8, kNearBytes = 2 << 10, kFarBytes = 16 << 10;
  const int64_t words = std::max<int64_t>(bytes / 8, 1 << 16);
  std::vector<uint64_t> buf(static_cast<size_t>(words));
  for (int64_t i = 0; i < words; ++i) buf[i] = static_cast<uint64_t>(i);
  ThreadPool pool(threads);
  const int64_t chunks = 256;  // dynamic balance; each chunk is a contiguous stretch
  std::vector<uint64_t> sums(chunks);
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    pool.parallel_for(chunks, [&](int64_t c) {
      const int64_t b = words * c / chunks, e = words * (c + 1) / chunks;
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t i = b;
      for (; i + kLineWords <= e; i += kLineWords) {
        kernels::prefetch_l1_l2<1>(buf.data() + i, kNearBytes, kFarBytes);
        s0 += buf[i] + buf[i + 4];
        s1 += buf[i + 1] + buf[i + 5];
        s2 += buf[i + 2] + buf[i + 6];
        s3 += buf[i + 3] + buf[i + 7];
      }
      for (; i < e; ++i) s0 += buf[i];
      sums[c] = s0 + s1 + s2 + s3;
    });
    const double t = seconds_since(t0);
    best = std::max(best, static_cast<double>(words * 8) / t / 1e9);
  }
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  QWENQAT_CHECK(total == static_cast<uint64_t>(words) * static_cast<uint64_t>(words - 1) / 2,
                "memory bandwidth probe: wrong checksum (memory error?)");
  return best;
}

Json run_bench(const BenchOptions& o) {
  QWENQAT_CHECK(o.model.empty() != o.random_config.empty(),
                "bench: give exactly one of --model and --random-config");
  const std::vector<BenchPoint> points = bench_points(o);
  QWENQAT_CHECK(o.repetitions >= 1, "--repetitions must be >= 1, got ", o.repetitions);
  QWENQAT_CHECK(o.bandwidth_mb >= 0, "--bandwidth-mb must be >= 0");
  QWENQAT_CHECK(!(o.json && o.csv), "bench: give at most one of --json and --csv");
  o.sampling.validate();
  const KernelIsa isa = parse_isa(o.kernels, "--kernels");
  set_kernel_isa(isa);
  const int max_threads = *std::max_element(o.threads.begin(), o.threads.end());

  Json out;
  std::string kernels = isa_name(isa);
  if (isa == KernelIsa::kAvx2) {  // the extensions the dispatch uses on this CPU
    kernels += cpu_has_avx512_vnni() ? " + avx512-vnni" : cpu_has_avx512() ? " + avx512" : "";
    kernels += !cpu_has_avx512_vnni() && cpu_has_avx_vnni() ? " + avx-vnni" : "";
    kernels += cpu_has_amx() ? " + amx" : "";
  }
  out["kernels"] = kernels;
  out["load"] = o.mmap ? "mmap" : "copy";
  out["repetitions"] = o.repetitions;
  // The probe (on the most threads of the list) runs before the model is
  // loaded and again after the last run (the machines these figures come
  // from drift by tens of percent within a minute); the decode fraction is
  // taken against the higher of the two. Its buffer is not part of the peak
  // RSS reported.
  const bool probe = o.bandwidth_mb > 0;
  double probe_before = 0.0;
  bool rss_without_probe = true;
  if (probe) {
    probe_before = measure_read_bandwidth(o.bandwidth_mb << 20, max_threads);
    rss_without_probe = reset_peak_rss();
  }
  const auto t_load = Clock::now();
  std::shared_ptr<const WeightSource> src;
  if (!o.model.empty()) {
    src = open_weight_source(o.model, map_mode(o.mmap));
    out["model"] = o.model;
  } else {
    src = random_weight_source(models::Qwen2Config::load(o.random_config), o.random_quant, 1);
    out["model"] = "random weights, config " + o.random_config;
  }
  Model model(src);
  model.set_isa(isa);
  out["load_seconds"] = seconds_since(t_load);
  out["schemes"] = model.describe_schemes();
  const auto& cfg = model.config();
  for (const BenchPoint& p : points) {
    const int64_t ctx = p.prompt_tokens + p.gen_tokens;
    QWENQAT_CHECK(ctx <= cfg.max_position_embeddings, "--prompt-tokens + --gen-tokens (", ctx,
                  ") exceed the model's context of ", cfg.max_position_embeddings, " tokens");
  }
  std::map<int, std::unique_ptr<ThreadPool>> pools;  // one per thread count
  for (const int t : o.threads)
    if (!pools.count(t)) pools[t] = std::make_unique<ThreadPool>(t);
  if (o.warmup) {  // every weight read once, untimed: a memory-mapped file is paged in
    const auto t_warm = Clock::now();
    KvCache scratch(cfg, 1, 1, points[0].kv);
    const int32_t id = 0;
    std::vector<float> scratch_logits;
    model.forward({{0, std::span<const int32_t>(&id, 1)}}, scratch, *pools.at(max_threads),
                  scratch_logits);
    out["warmup_seconds"] = seconds_since(t_warm);
  }
  // Rounds of every configuration in order (BenchOptions::repetitions).
  std::vector<std::vector<RunFigures>> figures(points.size());
  const int64_t total = static_cast<int64_t>(points.size()) * o.repetitions;
  Progress progress("bench", total, "run", total > 1);
  for (int round = 0; round < o.repetitions; ++round)
    for (size_t i = 0; i < points.size(); ++i) {
      const BenchPoint& p = points[i];
      figures[i].push_back(run_point(model, *pools.at(p.threads), p, o.sampling, isa));
      progress.advance(
          1, "threads " + std::to_string(p.threads) + ", batch " + std::to_string(p.batch));
    }
  progress.finish();
  const double bytes_per_step = static_cast<double>(model.weight_bytes_per_step());
  out["weight_bytes_per_step"] = model.weight_bytes_per_step();
  out["temperature"] = o.sampling.temperature;
  out["top_p"] = o.sampling.top_p;
  out["top_k"] = o.sampling.top_k;
  out["peak_rss_bytes"] = peak_rss_bytes();
  // false only where /proc/self/clear_refs is missing: then it also counts
  // the probe's --bandwidth-mb buffer.
  out["peak_rss_excludes_probe"] = rss_without_probe;
  Json runs = Json::array();
  for (size_t i = 0; i < points.size(); ++i)
    runs.push_back(run_json(points[i], figures[i], bytes_per_step));
  add_batch1_ratios(runs);
  if (probe) {
    const double probe_after = measure_read_bandwidth(o.bandwidth_mb << 20, max_threads);
    const double bw = std::max(probe_before, probe_after);
    out["memory_read_bandwidth_before_gbs"] = probe_before;
    out["memory_read_bandwidth_after_gbs"] = probe_after;
    out["memory_read_bandwidth_gbs"] = bw;
    for (Json& r : runs)
      r["decode_bandwidth_fraction"] = r["decode_weight_bandwidth_gbs"].get<double>() / bw;
  }
  if (runs.size() == 1)  // one configuration: its figures at the top level too
    for (const auto& [key, value] : runs[0].items()) out[key] = value;
  out["runs"] = runs;
  return out;
}

}  // namespace qwenqat::engine
