// tokenizer_bench: single-threaded tokenizer speed on GSM8K train (question +
// answer text, ~3.9 MB) with the real Qwen2 tokenizer, and batch-building
// throughput (r1 targets -> tokenized examples -> length-bucketed batches).
// Usage: tokenizer_bench [TOKENIZER_DIR_OR_JSON] [GSM8K_TRAIN_JSONL] [--json]
// Defaults point at ../shared beside the source tree. Prints MB/s.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "data/batching.h"
#include "data/gsm8k/gsm8k.h"
#include "data/gsm8k/targets.h"
#include "data/prompts/templates.h"
#include "data/tokenizer/tokenizer.h"
#include "data/util/json_io.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int run(int argc, char** argv) {
  using namespace qwenqat::data;
  std::string tokenizer_path = QWENQAT_SHARED_DIR "/models/deepseek-r1-distill-qwen-1.5b";
  std::string data_path = QWENQAT_SHARED_DIR "/data/gsm8k/train.jsonl";
  bool json = false;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: tokenizer_bench [TOKENIZER] [GSM8K_JSONL] [--json]\n"
          "defaults: %s %s\n",
          tokenizer_path.c_str(), data_path.c_str());
      return 0;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() > 0) tokenizer_path = positional[0];
  if (positional.size() > 1) data_path = positional[1];

  auto t0 = Clock::now();
  const Tokenizer tok = Tokenizer::load(tokenizer_path);
  const double load_s = seconds_since(t0);
  const auto problems = read_gsm8k(data_path, false);
  std::vector<const std::string*> texts;
  size_t bytes = 0;
  for (const auto& p : problems) {
    texts.push_back(&p.question);
    texts.push_back(&p.answer);
    bytes += p.question.size() + p.answer.size();
  }
  // Pass 1 starts with an empty BPE word cache; pass 2 is the steady state.
  double pass_s[2];
  size_t tokens = 0;
  std::vector<int32_t> ids;
  for (int pass = 0; pass < 2; ++pass) {
    tokens = 0;
    t0 = Clock::now();
    for (const std::string* t : texts) {
      ids.clear();
      tok.encode_append(*t, ids);
      tokens += ids.size();
    }
    pass_s[pass] = seconds_since(t0);
  }
  const double mb = static_cast<double>(bytes) / 1e6;

  // Batch building: r1 targets, tokenization, bucketing, one epoch of batches.
  t0 = Clock::now();
  const PromptTemplate& tpl = get_template(default_template_name(tok));
  const std::string eos = end_of_turn_text(tpl, tok);
  std::vector<Example> examples;
  examples.reserve(problems.size());
  for (const auto& p : problems) {
    examples.push_back(tokenize_example(tok, gsm8k_prompt_completion(p, tpl, eos)));
  }
  const double tokenize_s = seconds_since(t0);
  t0 = Clock::now();
  BatcherOptions bo;
  bo.batch_size = 16;
  bo.max_length = 512;
  bo.pad_id = tok.pad_id().value_or(0);
  Batcher batcher(std::move(examples), bo);
  const auto batches = batcher.epoch(0);
  const double batch_s = seconds_since(t0);
  const double ex = static_cast<double>(problems.size());

  if (json) {
    const qwenqat::Json j = {{"tokenizer_load_s", load_s},
                             {"bytes", bytes},
                             {"tokens", tokens},
                             {"cold_mb_per_s", mb / pass_s[0]},
                             {"warm_mb_per_s", mb / pass_s[1]},
                             {"examples", problems.size()},
                             {"examples_tokenize_s", tokenize_s},
                             {"batching_s", batch_s},
                             {"examples_per_s", ex / (tokenize_s + batch_s)},
                             {"batches", batches.size()},
                             {"truncated", batcher.stats().truncated}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("tokenizer load: %.2f s (%s)\n", load_s, tokenizer_path.c_str());
  std::printf("GSM8K text: %zu problems, %.2f MB, %zu tokens (%.2f bytes/token)\n", problems.size(),
              mb, tokens, static_cast<double>(bytes) / tokens);
  std::printf("encode, 1 thread, cold word cache: %.3f s = %.2f MB/s\n", pass_s[0], mb / pass_s[0]);
  std::printf("encode, 1 thread, warm word cache: %.3f s = %.2f MB/s\n", pass_s[1], mb / pass_s[1]);
  std::printf("examples (%s targets + tokenize): %.3f s = %.0f examples/s\n", tpl.name.c_str(),
              tokenize_s, ex / tokenize_s);
  std::printf("batching (%zu batches of %lld, max-length %lld, %lld truncated): %.4f s\n",
              batches.size(), static_cast<long long>(bo.batch_size),
              static_cast<long long>(bo.max_length),
              static_cast<long long>(batcher.stats().truncated), batch_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: error: %s\n", e.what());
    return 1;
  }
}
