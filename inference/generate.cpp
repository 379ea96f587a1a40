// generate(): prefill all prompts in one forward call, then step.
#include "inference/generate.h"

#include <algorithm>
#include <chrono>

#include "data/util/check.h"

namespace qwenqat::engine {

std::vector<Generation> generate(Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerateOptions& options, ThreadPool& pool,
                                 const TokenCallback& on_token, GenerateTiming* timing) {
  options.sampling.validate();
  QWENQAT_CHECK(!prompts.empty(), "generate: no prompts given");
  QWENQAT_CHECK(options.max_new_tokens >= 0, "--max-new-tokens must be >= 0, got ",
                options.max_new_tokens);
  QWENQAT_CHECK(options.stop_strings.empty() || options.decode,
                "stop strings need a tokenizer to decode the generated tokens");
  const auto& cfg = model.config();
  const int64_t limit = options.max_context > 0 ? options.max_context : cfg.max_position_embeddings;
  QWENQAT_CHECK(limit <= cfg.max_position_embeddings, "context limit ", limit,
                " exceeds the model's max_position_embeddings (", cfg.max_position_embeddings, ")");
  int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t n = static_cast<int64_t>(prompts[i].size());
    QWENQAT_CHECK(n > 0, "prompt ", i, " is empty; give at least one token");
    QWENQAT_CHECK(n <= limit, "prompt ", i, " has ", n, " tokens but the context limit is ", limit,
                  " tokens; shorten the prompt");
    longest = std::max(longest, n);
  }
  const int64_t ctx = std::min(limit, longest + std::max<int64_t>(options.max_new_tokens, 1));
  KvCache cache(cfg, static_cast<int64_t>(prompts.size()), ctx, options.kv_dtype);

  std::vector<Generation> out(prompts.size());
  std::vector<Rng> rngs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    rngs.emplace_back(options.sampling.seed + i);
    out[i].prompt_tokens = static_cast<int64_t>(prompts[i].size());
  }
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto t_prefill = t0;
  const auto report = [&] {
    if (!timing) return;
    const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    *timing = {};
    for (const auto& g : out) {
      timing->prompt_tokens += g.prompt_tokens;
      timing->generated_tokens += static_cast<int64_t>(g.tokens.size());
    }
    timing->prefill_seconds = seconds(t_prefill - t0);
    timing->decode_seconds = seconds(Clock::now() - t_prefill);
  };
  if (options.max_new_tokens == 0) {
    for (auto& g : out) g.stop_reason = "length";
    report();
    return out;
  }
  std::vector<SequenceStep> steps;
  std::vector<size_t> seq_of_step;
  for (size_t i = 0; i < prompts.size(); ++i) {
    steps.push_back({static_cast<int64_t>(i), prompts[i]});
    seq_of_step.push_back(i);
  }
  std::vector<float> logits;
  std::vector<int32_t> next(prompts.size());
  const int64_t vocab = cfg.vocab_size;
  for (bool first = true;; first = false) {
    model.forward(steps, cache, pool, logits);
    if (first) t_prefill = Clock::now();
    // Each sequence draws with its own generator, so on any thread.
    std::vector<int32_t> drawn(steps.size());
    pool.parallel_for(static_cast<int64_t>(steps.size()), [&](int64_t s) {
      drawn[s] =
          sample(&logits[s * vocab], vocab, options.sampling, rngs[seq_of_step[s]], model.isa());
    });
    std::vector<SequenceStep> more;
    std::vector<size_t> more_seq;
    for (size_t s = 0; s < steps.size(); ++s) {
      const size_t i = seq_of_step[s];
      Generation& g = out[i];
      const int32_t tok = drawn[s];
      g.tokens.push_back(tok);
      const size_t before = g.text.size();  // the text held no stop string up to here
      if (options.decode) g.text += options.decode(tok);
      if (on_token) on_token(i, tok);
      if (std::find(options.eos_ids.begin(), options.eos_ids.end(), tok) != options.eos_ids.end()) {
        g.stop_reason = "eos";
      } else if (std::any_of(options.stop_strings.begin(), options.stop_strings.end(),
                             [&](const std::string& st) {
                               // A new match ends in the new piece: search from
                               // st.size() - 1 bytes before it, not the whole text.
                               const size_t from = before >= st.size() ? before - st.size() + 1 : 0;
                               return !st.empty() && g.text.find(st, from) != std::string::npos;
                             })) {
        g.stop_reason = "stop_string";
      } else if (static_cast<int64_t>(g.tokens.size()) >= options.max_new_tokens) {
        g.stop_reason = "length";
      } else if (cache.length(steps[s].slot) >= ctx) {
        g.stop_reason = "context";
      } else {
        next[i] = tok;
        more.push_back({steps[s].slot, std::span<const int32_t>(&next[i], 1)});
        more_seq.push_back(i);
      }
    }
    if (more.empty()) break;
    steps = std::move(more);
    seq_of_step = std::move(more_seq);
  }
  report();
  return out;
}

}  // namespace qwenqat::engine
