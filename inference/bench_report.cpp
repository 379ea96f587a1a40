// `qwenqat bench`'s text and CSV forms of run_bench's figures (bench.h).
#include <string>
#include <vector>

#include "data/util/text_format.h"
#include "inference/bench.h"

namespace qwenqat::engine {
namespace {

double num(const Json& j, const char* key) { return j.at(key).get<double>(); }
long long whole(const Json& j, const char* key) { return j.at(key).get<long long>(); }

// The lines every form of the text report starts with.
std::string header(const Json& r) {
  std::string s = str_printf("model            %s (%s)\n", r["model"].get<std::string>().c_str(),
                             r["schemes"].get<std::string>().c_str());
  if (r.contains("memory_read_bandwidth_gbs"))
    s += str_printf(
        "memory read bw   %.2f GB/s (machine, measured: %.2f before load, %.2f after the "
        "runs)\n",
        num(r, "memory_read_bandwidth_gbs"), num(r, "memory_read_bandwidth_before_gbs"),
        num(r, "memory_read_bandwidth_after_gbs"));
  std::string warm = ", no warm-up";
  if (r.contains("warmup_seconds"))
    warm = str_printf(", warm-up token %.2f s (untimed)", num(r, "warmup_seconds"));
  s += str_printf("load             %.2f s (%s)%s\n", num(r, "load_seconds"),
                  r["load"].get<std::string>().c_str(), warm.c_str());
  return s;
}

std::string picks(const Json& r) {
  if (num(r, "temperature") <= 0.0) return "greedy";
  return str_printf("sampled: temperature %g, top-p %g, top-k %lld", num(r, "temperature"),
                    num(r, "top_p"), whole(r, "top_k"));
}

std::string rss(const Json& r) {
  return str_printf(
      "peak RSS         %.2f GB%s\n", num(r, "peak_rss_bytes") / 1e9,
      r["peak_rss_excludes_probe"].get<bool>() ? "" : " (with the bandwidth probe's buffer)");
}

// One configuration, one round: the report as a list of figures.
std::string single_text(const Json& r) {
  std::string s = header(r);
  s += str_printf("threads          %lld, kernels %s, act-quant %s, batch %lld\n",
                  whole(r, "threads"), r["kernels"].get<std::string>().c_str(),
                  r["act_quant"].get<std::string>().c_str(), whole(r, "batch"));
  s += str_printf("prefill          %.2f tokens/s (%lld tokens in %.2f s)\n",
                  num(r, "prefill_tokens_per_s"), whole(r, "batch") * whole(r, "prompt_tokens"),
                  num(r, "prefill_seconds"));
  s += str_printf("decode           %.2f tokens/s (%.2f steps/s, %s)\n",
                  num(r, "decode_tokens_per_s"), num(r, "decode_steps_per_s"), picks(r).c_str());
  s += str_printf("weight bandwidth %.2f GB/s (%.3f GB per step)\n",
                  num(r, "decode_weight_bandwidth_gbs"), num(r, "weight_bytes_per_step") / 1e9);
  s += rss(r);
  s += str_printf("cpu seconds      prefill %.2f, decode %.2f (wall %.2f, %.2f)\n",
                  num(r, "prefill_cpu_seconds"), num(r, "decode_cpu_seconds"),
                  num(r, "prefill_seconds"), num(r, "decode_seconds"));
  if (r.contains("decode_bandwidth_fraction"))
    s += str_printf("decode / memory  %.2f of the measured read bandwidth\n",
                    num(r, "decode_bandwidth_fraction"));
  return s;
}

// "mean" or "mean +- sd" with several rounds.
std::string figure(const Json& run, const char* key, int rounds) {
  const double mean = num(run, key);
  if (rounds < 2) return str_printf("%.2f", mean);
  return str_printf("%.2f ± %.2f", mean, num(run, (std::string(key) + "_sd").c_str()));
}

}  // namespace

std::string bench_text(const Json& r) {
  const Json& runs = r.at("runs");
  const int rounds = r.at("repetitions").get<int>();
  if (runs.size() == 1 && rounds == 1) return single_text(r);
  std::string s = header(r);
  s += str_printf("kernels          %s, decode picks %s\n", r["kernels"].get<std::string>().c_str(),
                  picks(r).c_str());
  if (rounds > 1)
    s +=
        str_printf("rounds           %d (each runs every configuration once; mean ± sd)\n", rounds);
  s += str_printf("weight bytes     %.3f GB per decode step\n",
                  num(r, "weight_bytes_per_step") / 1e9);
  std::vector<std::vector<std::string>> rows;
  for (const Json& run : runs) {
    const auto optional = [&](const char* key) {
      return run.contains(key) ? str_printf("%.2f", num(run, key)) : std::string("-");
    };
    rows.push_back(
        {std::to_string(whole(run, "threads")), run["act_quant"].get<std::string>(),
         run["kv_cache"].get<std::string>(), std::to_string(whole(run, "batch")),
         std::to_string(whole(run, "prompt_tokens")), std::to_string(whole(run, "gen_tokens")),
         figure(run, "prefill_tokens_per_s", rounds), figure(run, "decode_tokens_per_s", rounds),
         str_printf("%.2f", num(run, "decode_weight_bandwidth_gbs")),
         optional("decode_bandwidth_fraction"), optional("decode_vs_batch1")});
  }
  s += "\n";
  s += markdown_table({"threads", "act-quant", "kv", "batch", "prompt", "gen", "prefill tok/s",
                       "decode tok/s", "weight GB/s", "of bw", "× batch 1"},
                      rows, {true, false, false, true, true, true, true, true, true, true, true});
  s += "\n";
  s += rss(r);
  return s;
}

std::string bench_csv(const Json& r) {
  std::string s =
      "threads,act_quant,kv_cache,batch,prompt_tokens,gen_tokens,rounds,prefill_tokens_per_s,"
      "prefill_tokens_per_s_sd,decode_tokens_per_s,decode_tokens_per_s_sd,"
      "decode_weight_bandwidth_gbs,decode_bandwidth_fraction,decode_vs_batch1\n";
  const auto optional = [](const Json& run, const char* key) {
    return run.contains(key) ? str_printf("%.6g", num(run, key)) : std::string();
  };
  for (const Json& run : r.at("runs"))
    s += str_printf(
        "%lld,%s,%s,%lld,%lld,%lld,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%s\n", whole(run, "threads"),
        run["act_quant"].get<std::string>().c_str(), run["kv_cache"].get<std::string>().c_str(),
        whole(run, "batch"), whole(run, "prompt_tokens"), whole(run, "gen_tokens"),
        static_cast<long long>(run.at("rounds").size()), num(run, "prefill_tokens_per_s"),
        num(run, "prefill_tokens_per_s_sd"), num(run, "decode_tokens_per_s"),
        num(run, "decode_tokens_per_s_sd"), num(run, "decode_weight_bandwidth_gbs"),
        optional(run, "decode_bandwidth_fraction").c_str(),
        optional(run, "decode_vs_batch1").c_str());
  return s;
}

}  // namespace qwenqat::engine
