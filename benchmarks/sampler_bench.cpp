// sampler_bench: time per sampled token of the engine's sampler
// (inference/sampler.h) at the real vocabulary size, one thread, for the
// scalar and the AVX2 kernel sets and a few option sets; also checks that
// both sets drew the same tokens.
// Usage: sampler_bench [--vocab N] [--draws N] [--json]
// Logits: normal(0, 3) with six tokens raised by 14-19 (a peaked
// distribution, as a language model's next-token logits are).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "inference/sampler.h"

namespace {

using namespace qwenqat::engine;
using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  SamplingOptions opt;
};

int run(int argc, char** argv) {
  int64_t vocab = 151936, draws = 300;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if ((a == "--vocab" || a == "--draws") && i + 1 < argc) {
      (a == "--vocab" ? vocab : draws) = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: sampler_bench [--vocab N (151936)] [--draws N (300)] [--json]\n");
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  if (vocab < 8 || draws < 1) {
    std::fprintf(stderr, "sampler_bench: --vocab must be >= 8 and --draws >= 1\n");
    return 2;
  }
  std::mt19937 gen(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<std::vector<float>> logits(8, std::vector<float>(vocab));
  for (auto& l : logits) {
    for (auto& x : l) x = nd(gen);
    for (int i = 0; i < 6; ++i) l[gen() % vocab] += 14.0f + i;
  }
  std::vector<Case> cases(4);
  cases[0].name = "T 0.6, top-p 0.95 (defaults)";
  cases[1] = {"T 1.0, top-p 1", {1.0f, 1.0f, 0, 0}};
  cases[2] = {"T 0.6, top-k 40", {0.6f, 1.0f, 40, 0}};
  cases[3] = {"T 1.5, top-p 0.9", {1.5f, 0.9f, 0, 0}};
  std::vector<KernelIsa> isas = {KernelIsa::kScalar};
  if (cpu_has_avx2()) isas.push_back(KernelIsa::kAvx2);
  if (json) std::printf("[\n");
  bool first = true, same = true;
  for (const Case& c : cases) {
    std::vector<int32_t> tokens[2];
    for (size_t k = 0; k < isas.size(); ++k) {
      Rng rng(1);
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < draws; ++i)
        tokens[k].push_back(sample(logits[i % 8].data(), vocab, c.opt, rng, isas[k]));
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / draws;
      const char* isa = isas[k] == KernelIsa::kAvx2 ? "avx2" : "scalar";
      if (json) {
        std::printf("%s  {\"case\": \"%s\", \"kernels\": \"%s\", \"ms_per_token\": %.4f}",
                    first ? "" : ",\n", c.name, isa, ms);
      } else {
        std::printf("%-30s %-7s %8.3f ms per token\n", c.name, isa, ms);
      }
      first = false;
    }
    same = same && (isas.size() < 2 || tokens[0] == tokens[1]);
  }
  if (json) std::printf("\n]\n");
  if (!same) {
    std::fprintf(stderr, "sampler_bench: the kernel sets drew different tokens\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
