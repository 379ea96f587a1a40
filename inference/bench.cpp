// The engine benchmark: random or loaded weights, one batched prefill, then
// gen_tokens batched greedy decode steps, timed with steady_clock.
#include "inference/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "data/util/check.h"
#include "data/util/half.h"
#include "inference/kernels/prefetch.h"
#include "inference/model.h"
#include "inference/sampler.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::engine {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

format::PackedMatrix random_packed(int64_t rows, int64_t cols, const quant::QuantSpec& spec,
                                   Rng& rng) {
  format::PackedMatrix m;
  m.spec = spec;
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = format::packed_row_bytes(cols, spec.bits);
  m.data.resize(static_cast<size_t>(rows * m.row_bytes));
  size_t i = 0;
  for (; i + 8 <= m.data.size(); i += 8) {
    const uint64_t r = rng.next();
    std::memcpy(&m.data[i], &r, 8);
  }
  for (; i < m.data.size(); ++i) m.data[i] = static_cast<uint8_t>(rng.next());
  const int64_t groups = rows * spec.groups_per_row(cols);
  const float base = 0.04f / static_cast<float>(spec.levels());
  m.scales.resize(static_cast<size_t>(groups));
  for (auto& s : m.scales) s = f32_to_fp16(base * (0.5f + rng.uniform()));
  if (!spec.symmetric) {
    m.offsets.resize(static_cast<size_t>(groups));
    for (auto& o : m.offsets) o = f32_to_fp16(-0.02f * (0.5f + rng.uniform()));
  }
  return m;
}

std::vector<float> random_floats(int64_t n, float scale, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = (rng.uniform() * 2.0f - 1.0f) * scale;
  return v;
}

}  // namespace

std::shared_ptr<MemorySource> random_weight_source(const models::Qwen2Config& c,
                                                   const std::string& quant, uint64_t seed) {
  auto src = std::make_shared<MemorySource>(c, "random weights (" + quant + ")");
  Rng rng(seed);
  const bool f32 = quant == "f32", bf16 = quant == "bf16";
  quant::QuantSpec spec;
  if (!f32 && !bf16) spec = quant::parse_spec(quant);
  auto add_matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    if (f32) {
      src->add_float(name, {rows, cols}, random_floats(rows * cols, 0.03f, rng));
    } else if (bf16) {
      std::vector<uint16_t> b(static_cast<size_t>(rows * cols));
      for (auto& x : b) x = f32_to_bf16((rng.uniform() * 2.0f - 1.0f) * 0.03f);
      src->add_bf16(name, {rows, cols}, std::move(b));
    } else {
      spec.validate(cols, name);
      src->add_packed(name, random_packed(rows, cols, spec, rng));
    }
  };
  const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), K = c.kv_dim();
  add_matrix("model.embed_tokens.weight", c.vocab_size, H);
  if (!c.tie_word_embeddings) add_matrix("lm_head.weight", c.vocab_size, H);
  src->add_float("model.norm.weight", {H}, std::vector<float>(H, 1.0f));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add_matrix(p + "self_attn.q_proj.weight", Q, H);
    add_matrix(p + "self_attn.k_proj.weight", K, H);
    add_matrix(p + "self_attn.v_proj.weight", K, H);
    add_matrix(p + "self_attn.o_proj.weight", H, Q);
    add_matrix(p + "mlp.gate_proj.weight", I, H);
    add_matrix(p + "mlp.up_proj.weight", I, H);
    add_matrix(p + "mlp.down_proj.weight", H, I);
    src->add_float(p + "input_layernorm.weight", {H}, std::vector<float>(H, 1.0f));
    src->add_float(p + "post_attention_layernorm.weight", {H}, std::vector<float>(H, 1.0f));
    src->add_float(p + "self_attn.q_proj.bias", {Q}, random_floats(Q, 0.1f, rng));
    src->add_float(p + "self_attn.k_proj.bias", {K}, random_floats(K, 0.1f, rng));
    src->add_float(p + "self_attn.v_proj.bias", {K}, random_floats(K, 0.1f, rng));
  }
  return src;
}

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

// User + system CPU seconds of this process so far (all threads).
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";  // Linux >= 4.0: the peak RSS (VmHWM) restarts from the current RSS
  f.flush();
  return f.good();
}

uint64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // kB
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

Json run_bench(const BenchOptions& o) {
  QWENQAT_CHECK(o.model.empty() != o.random_config.empty(),
                "bench: give exactly one of --model and --random-config");
  QWENQAT_CHECK(o.prompt_tokens >= 1, "--prompt-tokens must be >= 1, got ", o.prompt_tokens);
  QWENQAT_CHECK(o.gen_tokens >= 1, "--gen-tokens must be >= 1, got ", o.gen_tokens);
  QWENQAT_CHECK(o.batch >= 1, "--batch must be >= 1, got ", o.batch);
  QWENQAT_CHECK(o.bandwidth_mb >= 0, "--bandwidth-mb must be >= 0");
  o.sampling.validate();
  const int threads = o.threads;
  QWENQAT_CHECK(threads >= 1, "--threads must be at least 1 (got ", o.threads,
                "); this machine has ", ThreadPool::hardware_threads(), " hardware threads");
  const KernelIsa isa = parse_isa(o.kernels, "--kernels");
  set_kernel_isa(isa);
  const ActQuant act = parse_act_quant(o.act_quant, "--act-quant");
  const KvDtype kv = parse_kv_dtype(o.kv_cache, "--kv-cache");

  Json out;
  out["threads"] = threads;
  std::string kernels = isa_name(isa);
  if (isa == KernelIsa::kAvx2) {  // the extensions the dispatch uses on this CPU
    kernels += cpu_has_avx512_vnni() ? " + avx512-vnni" : cpu_has_avx512() ? " + avx512" : "";
    kernels += !cpu_has_avx512_vnni() && cpu_has_avx_vnni() ? " + avx-vnni" : "";
    kernels += cpu_has_amx() ? " + amx" : "";
  }
  out["kernels"] = kernels;
  out["act_quant"] = act_quant_name(act);
  out["load"] = o.mmap ? "mmap" : "copy";
  // The probe runs before the model is loaded and again after decode (the
  // machines these figures come from drift by tens of percent within a
  // minute); the decode fraction is taken against the higher of the two.
  // Its buffer is not part of the peak RSS reported.
  const bool probe = o.bandwidth_mb > 0;
  double probe_before = 0.0;
  bool rss_without_probe = true;
  if (probe) {
    probe_before = measure_read_bandwidth(o.bandwidth_mb << 20, threads);
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
  model.set_act_quant(act);
  out["load_seconds"] = seconds_since(t_load);
  out["schemes"] = model.describe_schemes();
  const auto& cfg = model.config();
  const int64_t ctx = o.prompt_tokens + o.gen_tokens;
  QWENQAT_CHECK(ctx <= cfg.max_position_embeddings, "--prompt-tokens + --gen-tokens (", ctx,
                ") exceed the model's context of ", cfg.max_position_embeddings, " tokens");
  KvCache cache(cfg, o.batch, ctx, kv);
  ThreadPool pool(threads);
  if (o.warmup) {  // every weight read once, untimed: a memory-mapped file is paged in
    const auto t_warm = Clock::now();
    KvCache scratch(cfg, 1, 1, kv);
    const int32_t id = 0;
    std::vector<float> scratch_logits;
    model.forward({{0, std::span<const int32_t>(&id, 1)}}, scratch, pool, scratch_logits);
    out["warmup_seconds"] = seconds_since(t_warm);
  }
  Rng rng(7);
  std::vector<std::vector<int32_t>> prompts(o.batch);
  for (auto& p : prompts)
    for (int64_t i = 0; i < o.prompt_tokens; ++i)
      p.push_back(static_cast<int32_t>(rng.next() % static_cast<uint64_t>(cfg.vocab_size)));
  std::vector<SequenceStep> steps;
  for (int64_t b = 0; b < o.batch; ++b) steps.push_back({b, prompts[b]});
  std::vector<float> logits;
  const auto t_prefill = Clock::now();
  const double cpu0 = process_cpu_seconds();
  model.forward(steps, cache, pool, logits);
  const double prefill_s = seconds_since(t_prefill);
  const double cpu1 = process_cpu_seconds();
  std::vector<int32_t> next(o.batch);
  std::vector<Rng> rngs;  // one per sequence, as generate() seeds them
  for (int64_t b = 0; b < o.batch; ++b) rngs.emplace_back(o.sampling.seed + b);
  const auto t_decode = Clock::now();
  for (int64_t g = 0; g < o.gen_tokens; ++g) {
    // The picks on the pool, as generate() samples.
    pool.parallel_for(o.batch, [&](int64_t b) {
      next[b] = sample(&logits[b * cfg.vocab_size], cfg.vocab_size, o.sampling, rngs[b], isa);
    });
    for (int64_t b = 0; b < o.batch; ++b) steps[b] = {b, std::span<const int32_t>(&next[b], 1)};
    model.forward(steps, cache, pool, logits);
  }
  const double decode_s = seconds_since(t_decode);
  const double cpu2 = process_cpu_seconds();
  const double bytes_per_step = static_cast<double>(model.weight_bytes_per_step());
  out["batch"] = o.batch;
  out["temperature"] = o.sampling.temperature;
  out["top_p"] = o.sampling.top_p;
  out["top_k"] = o.sampling.top_k;
  out["prompt_tokens"] = o.prompt_tokens;
  out["gen_tokens"] = o.gen_tokens;
  out["kv_cache"] = o.kv_cache;
  out["weight_bytes_per_step"] = model.weight_bytes_per_step();
  out["prefill_seconds"] = prefill_s;
  out["prefill_tokens_per_s"] = static_cast<double>(o.batch * o.prompt_tokens) / prefill_s;
  out["decode_seconds"] = decode_s;
  out["decode_tokens_per_s"] = static_cast<double>(o.batch * o.gen_tokens) / decode_s;
  out["decode_steps_per_s"] = static_cast<double>(o.gen_tokens) / decode_s;
  out["decode_weight_bandwidth_gbs"] = bytes_per_step * o.gen_tokens / decode_s / 1e9;
  out["peak_rss_bytes"] = peak_rss_bytes();
  // false only where /proc/self/clear_refs is missing: then it also counts
  // the probe's --bandwidth-mb buffer.
  out["peak_rss_excludes_probe"] = rss_without_probe;
  // CPU seconds (all threads, spin-waiting included): with a loaded machine
  // wall time / CPU time shows how much of the cores the benchmark got.
  out["prefill_cpu_seconds"] = cpu1 - cpu0;
  out["decode_cpu_seconds"] = cpu2 - cpu1;
  if (probe) {
    const double probe_after = measure_read_bandwidth(o.bandwidth_mb << 20, threads);
    const double bw = std::max(probe_before, probe_after);
    out["memory_read_bandwidth_before_gbs"] = probe_before;
    out["memory_read_bandwidth_after_gbs"] = probe_after;
    out["memory_read_bandwidth_gbs"] = bw;
    out["decode_bandwidth_fraction"] = out["decode_weight_bandwidth_gbs"].get<double>() / bw;
  }
  return out;
}

}  // namespace qwenqat::engine
