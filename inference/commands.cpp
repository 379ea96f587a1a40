// generate / bench subcommands and logits_json.
#include "inference/commands.h"

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "data/prompts/templates.h"
#include "data/tokenizer/decoder.h"
#include "data/tokenizer/tokenizer.h"
#include "data/util/check.h"
#include "inference/bench.h"
#include "inference/generate.h"
#include "inference/model.h"

namespace qwenqat::engine {
namespace {

// The tokenizer for a model: --tokenizer if given, else the one stored with
// the model; nullopt when neither exists.
std::optional<data::Tokenizer> load_tokenizer(const WeightSource& src, const std::string& path) {
  if (!path.empty()) return data::Tokenizer::load(path);
  const std::string tok = src.tokenizer_json();
  if (tok.empty()) return std::nullopt;
  const std::string cfg = src.tokenizer_config_json();
  return data::Tokenizer::from_json(
      parse_json(tok, src.origin() + ": tokenizer.json"),
      cfg.empty() ? Json() : parse_json(cfg, src.origin() + ": tokenizer_config.json"),
      src.origin());
}

std::string pick_template(const std::string& requested, const WeightSource& src,
                          const data::Tokenizer& tok) {
  if (requested != "auto") return requested;
  if (const auto* h5 = dynamic_cast<const H5Source*>(&src)) {
    for (const auto& n : data::template_names())
      if (n == h5->prompt_template()) return n;
  }
  return data::default_template_name(tok);
}

}  // namespace

const char* const kActQuantHelp =
    "Activations of the linear layers: auto (as trained: per-token int8 for the layers the "
    "export records activation_bits for, e.g. preset w4g32a8; float elsewhere), none (float "
    "everywhere), or q8 (int8 per 32-block for every packed layer, as llama.cpp's Q4_0/Q8_0: "
    "the fastest decode and prefill with AVX-512 VNNI or AMX; changes the numerics)";

const char* const kMmapHelp =
    "Use a .h5 export's pages in place (memory-mapped: opens at once, pages shared with other "
    "processes) instead of reading it into private memory on transparent huge pages (the "
    "default: one read of the file at load, then up to 15% faster decode; docs/PERFORMANCE.md)";

const char* const kKernelsHelp =
    "Kernel set: auto (the fastest this CPU has), avx2 (the vector kernels: AVX2, with their "
    "AVX-512 / AVX-VNNI forms and AMX tiles for int8 activations of 8 or more sequences where "
    "the CPU has them; QWENQAT_ENGINE_AMX=0, QWENQAT_ENGINE_AVX512=0 and QWENQAT_ENGINE_VNNI=0 "
    "turn those off) or scalar (the reference)";

std::vector<int32_t> parse_id_list(const std::string& s, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    QWENQAT_CHECK(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos &&
                      item.size() <= 9,
                  flag, ": '", item, "' is not a token id; give non-negative integers like 1,2,3");
    ids.push_back(static_cast<int32_t>(std::stol(item)));
    i = j + 1;
  }
  QWENQAT_CHECK(!ids.empty(), flag, ": no token ids given; use e.g. 1,2,3");
  return ids;
}

void run_generate(const GenerateCommandOptions& o) {
  QWENQAT_CHECK(o.prompt.empty() != o.ids.empty(),
                "generate: give exactly one of --prompt and --ids");
  ThreadPool pool(o.threads);  // validates --threads first
  set_kernel_isa(parse_isa(o.kernels, "--kernels"));
  const ActQuant act = parse_act_quant(o.act_quant, "--act-quant");
  GenerateOptions g;
  g.kv_dtype = parse_kv_dtype(o.kv_cache, "--kv-cache");
  g.max_new_tokens = o.max_new_tokens;
  g.max_context = o.max_context;
  g.sampling = {o.temperature, o.top_p, o.top_k, o.seed};
  g.sampling.validate();
  g.stop_strings = o.stop;
  if (!o.templ.empty() && o.templ != "auto" && o.templ != "none") data::get_template(o.templ);

  auto src = open_weight_source(o.model, map_mode(o.mmap));
  const auto tok = load_tokenizer(*src, o.tokenizer);
  std::vector<int32_t> prompt;
  if (!o.ids.empty()) {
    prompt = parse_id_list(o.ids, "--ids");
  } else {
    QWENQAT_CHECK(tok.has_value(), "--prompt needs a tokenizer but ", src->origin(),
                  " has none; pass --tokenizer PATH or use --ids");
    std::string text = o.prompt;
    if (o.templ != "none") {
      const auto& t = data::get_template(pick_template(o.templ, *src, *tok));
      data::check_template_tokens(t, *tok);
      text = t.render_prompt(o.prompt);
      const std::string eot = data::end_of_turn_text(t, *tok);
      if (auto id = tok->token_to_id(eot)) g.eos_ids.push_back(*id);
    }
    prompt = tok->encode(text);
  }
  Model model(src);
  model.set_act_quant(act);
  const auto& cfg = model.config();
  if (cfg.eos_token_id >= 0) g.eos_ids.push_back(static_cast<int32_t>(cfg.eos_token_id));
  if (tok && tok->eos_id()) g.eos_ids.push_back(*tok->eos_id());
  std::unique_ptr<data::IncrementalDecoder> stream;
  if (tok) {
    stream = std::make_unique<data::IncrementalDecoder>(*tok);
    g.decode = [&](int32_t id) {
      std::string s;
      tok->append_token_bytes(id, false, s);
      return s;
    };
  }
  QWENQAT_CHECK(o.stop.empty() || tok, "--stop needs a tokenizer");
  bool first = true;
  auto on_token = [&](size_t, int32_t id) {
    if (o.json) return;
    if (stream) {
      std::cout << stream->push(id);
    } else {
      std::cout << (first ? "" : ",") << id;
    }
    first = false;
    std::cout.flush();
  };
  GenerateTiming t;
  const auto result = generate(model, {prompt}, g, pool, on_token, &t);
  const auto rate = [](int64_t n, double s) { return s > 0.0 ? static_cast<double>(n) / s : 0.0; };
  if (o.json) {
    Json j{{"prompt_ids", prompt},
           {"tokens", result[0].tokens},
           {"stop_reason", result[0].stop_reason},
           {"timing",
            {{"prefill_seconds", t.prefill_seconds},
             {"prefill_tokens_per_second", rate(t.prompt_tokens, t.prefill_seconds)},
             {"decode_seconds", t.decode_seconds},
             {"decode_tokens_per_second", rate(t.generated_tokens, t.decode_seconds)}}}};
    if (tok) j["text"] = tok->decode(result[0].tokens);
    std::cout << j.dump() << "\n";
    return;
  }
  if (stream) std::cout << stream->finish();
  std::cout << "\n";
  char line[160];
  std::snprintf(line, sizeof line,
                "prompt %lld tokens in %.2f s (%.1f tokens/s), %lld in %.2f s (%.1f tokens/s)",
                static_cast<long long>(t.prompt_tokens), t.prefill_seconds,
                rate(t.prompt_tokens, t.prefill_seconds),
                static_cast<long long>(t.generated_tokens), t.decode_seconds,
                rate(t.generated_tokens, t.decode_seconds));
  std::cerr << "[" << result[0].tokens.size() << " tokens, stop: " << result[0].stop_reason << "; "
            << line << "]\n";
}

Json logits_json(const std::filesystem::path& model_path, const std::vector<int32_t>& ids,
                 int threads) {
  Model model(open_weight_source(model_path));
  ThreadPool pool(threads);
  QWENQAT_CHECK(!ids.empty(), "--ids: no token ids given");
  KvCache cache(model.config(), 1, static_cast<int64_t>(ids.size()), KvDtype::kF32);
  std::vector<float> logits;
  model.forward({{0, ids}}, cache, pool, logits, true);
  const int64_t V = model.config().vocab_size;
  Json rows = Json::array();
  for (size_t t = 0; t < ids.size(); ++t)
    rows.push_back(std::vector<float>(logits.begin() + t * V, logits.begin() + (t + 1) * V));
  return Json{{"logits", std::move(rows)}};
}

void register_commands(CLI::App& app) {
  auto go = std::make_shared<GenerateCommandOptions>();
  go->threads = ThreadPool::hardware_threads();
  auto* gen = app.add_subcommand(
      "generate", "Generate text with the native engine (Hugging Face checkpoint or .h5 export)");
  gen->add_option("--model", go->model, "Model: checkpoint directory or .h5 export")->required();
  gen->add_option("--prompt", go->prompt, "Prompt text (rendered with --template)");
  gen->add_option("--ids", go->ids, "Prompt as token ids, e.g. 1,2,3 (no template)");
  gen->add_option("--template", go->templ,
                  "Prompt template: auto (the model's), r1, qwen, plain or none")
      ->capture_default_str();
  gen->add_option("--tokenizer", go->tokenizer,
                  "tokenizer.json (or its directory) to use instead of the model's");
  gen->add_option("--max-new-tokens", go->max_new_tokens, "Most tokens to generate")
      ->capture_default_str();
  gen->add_option("--temperature", go->temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str();
  gen->add_option("--top-p", go->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  gen->add_option("--top-k", go->top_k, "Sample among the k most likely tokens (0 = off)")
      ->capture_default_str();
  gen->add_option("--seed", go->seed, "Sampling seed")->capture_default_str();
  gen->add_option("--threads", go->threads, "Worker threads (>= 1; default: the hardware threads)")
      ->capture_default_str();
  gen->add_option("--kv-cache", go->kv_cache, "KV cache element type: f32 or f16")
      ->capture_default_str();
  gen->add_option("--kernels", go->kernels, kKernelsHelp)->capture_default_str();
  gen->add_option("--act-quant", go->act_quant, kActQuantHelp)->capture_default_str();
  gen->add_flag("--mmap", go->mmap, kMmapHelp)->capture_default_str();
  gen->add_option("--max-context", go->max_context,
                  "Context limit in tokens (0 = the model's max_position_embeddings)")
      ->capture_default_str();
  gen->add_option("--stop", go->stop, "Stop when the text contains this string (repeatable)");
  gen->add_flag("--json", go->json, "Print one JSON object at the end instead of streaming")
      ->capture_default_str();
  gen->callback([go] { run_generate(*go); });

  auto bo = std::make_shared<BenchOptions>();
  auto* bench = app.add_subcommand(
      "bench",
      "Benchmark the native engine: prefill/decode tokens/s, weight GB/s, peak RSS. The sizes "
      "take comma-separated lists (as llama-bench's): every combination runs on one loaded "
      "model, in rounds (--repetitions), and the table gives each batch's decode against batch 1");
  bench->add_option("--model", bo->model, "Model: checkpoint directory or .h5 export");
  bench->add_option("--random-config", bo->random_config,
                    "Instead of --model: random weights with this config.json's shapes");
  bench
      ->add_option("--random-quant", bo->random_quant,
                   "Scheme of the random weights (e.g. w4g32, w8g32, f32, bf16)")
      ->capture_default_str();
  bench
      ->add_option("--prompt-tokens", bo->prompt_tokens,
                   "Prompt length per sequence (a list: 128,2000)")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("--gen-tokens", bo->gen_tokens, "Decode steps (a list)")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("--batch", bo->batch, "Sequences decoded together (a list: 1,16)")
      ->delimiter(',')
      ->capture_default_str();
  bench
      ->add_option("--threads", bo->threads,
                   "Worker threads, >= 1 (a list; default: the hardware threads)")
      ->delimiter(',')
      ->capture_default_str();
  bench
      ->add_option("--repetitions", bo->repetitions,
                   "Rounds, each running every configuration once in order (ratios are taken "
                   "within a round); the table gives mean ± sample sd")
      ->capture_default_str();
  bench->add_option("--kv-cache", bo->kv_cache, "KV cache element type: f32 or f16 (a list)")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("--kernels", bo->kernels, kKernelsHelp)->capture_default_str();
  bench->add_option("--act-quant", bo->act_quant, std::string(kActQuantHelp) + " (a list)")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_flag("--mmap", bo->mmap, kMmapHelp)->capture_default_str();
  bench
      ->add_option(
          "--bandwidth-mb", bo->bandwidth_mb,
          "Buffer size (MiB) of the memory read-bandwidth probe (a sequential read on the most "
          "threads of --threads with the decode kernels' software prefetch), run before the "
          "model is loaded and again after the last run (the decode fraction uses the higher); "
          "0 skips it")
      ->capture_default_str();
  bench->add_flag("!--no-warmup", bo->warmup,
                  "Skip the untimed one-token forward that first reads every weight (pages in a "
                  "memory-mapped model, as llama-bench's warm-up run); without it the first "
                  "prefill figure includes that first read (default: warm-up on)");
  bench
      ->add_option("--temperature", bo->sampling.temperature,
                   "Sampling temperature of the decode steps' picks (0 = greedy, as llama-bench; "
                   "> 0 includes the sampler's time in the decode figure)")
      ->capture_default_str();
  bench->add_option("--top-p", bo->sampling.top_p, "Nucleus sampling mass (1 = off)")
      ->capture_default_str();
  bench
      ->add_option("--top-k", bo->sampling.top_k, "Sample among the k most likely tokens (0 = off)")
      ->capture_default_str();
  auto* json =
      bench->add_flag("--json", bo->json, "Print the figures as JSON")->capture_default_str();
  bench
      ->add_flag("--csv", bo->csv,
                 "Print one CSV line per configuration (means, sds, fraction, ratio to batch 1)")
      ->capture_default_str()
      ->excludes(json);
  bench->callback([bo] {
    const Json r = run_bench(*bo);
    std::cout << (bo->json ? r.dump(2) + "\n" : bo->csv ? bench_csv(r) : bench_text(r));
  });
}

}  // namespace qwenqat::engine
