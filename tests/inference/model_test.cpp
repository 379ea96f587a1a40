// The engine's Qwen2 forward: the float path against the independent float64
// references in ../shared, packed weights against the fake-quant float model,
// batching, KV cache, thread count, and bad input.
#include "inference/model.h"

#include <gtest/gtest.h>

#include <cstring>

#include "data/util/check.h"
#include "data/util/json_io.h"
#include "inference/generate.h"
#include "tests/inference/engine_test_util.h"
#include "tests/util/test_util.h"

namespace qwenqat::engine {
namespace {

using testing::expect_close_rel;

std::vector<float> forward_all(Model& m, const std::vector<int32_t>& ids, int threads = 2,
                               KvDtype kv = KvDtype::kF32) {
  KvCache cache(m.config(), 1, static_cast<int64_t>(ids.size()), kv);
  ThreadPool pool(threads);
  std::vector<float> logits;
  m.forward({{0, ids}}, cache, pool, logits, true);
  return logits;
}

void check_reference(const std::string& fixture, KernelIsa isa) {
  QWENQAT_REQUIRE_SHARED(shared);
  const auto dir = shared / "reference" / fixture;
  Model m(open_weight_source(dir));
  m.set_isa(isa);
  const Json ref = read_json_file(dir / "reference.json");
  const int64_t V = m.config().vocab_size;
  for (const auto& c : ref.at("cases")) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const auto logits = forward_all(m, ids);
    const int64_t T = static_cast<int64_t>(ids.size());
    const auto argmax = c.at("argmax").get<std::vector<int32_t>>();
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(engine::argmax(&logits[t * V], V), argmax[t]) << fixture << " position " << t;
    }
    const auto last = c.at("logits_last").get<std::vector<float>>();
    expect_close_rel(&logits[(T - 1) * V], last.data(), V, 1e-4, fixture + " logits_last");
    if (c.contains("logits")) {
      const auto all = c.at("logits").get<std::vector<std::vector<float>>>();
      for (int64_t t = 0; t < T; ++t)
        expect_close_rel(&logits[t * V], all[t].data(), V, 1e-4, fixture + " logits");
    }
  }
}

TEST(ModelReference, TinyF32Scalar) { check_reference("tiny-qwen2-f32", KernelIsa::kScalar); }
TEST(ModelReference, TinyF32Avx2) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  check_reference("tiny-qwen2-f32", KernelIsa::kAvx2);
}
TEST(ModelReference, TinyBf16Tied) { check_reference("tiny-qwen2-bf16-tied", active_isa()); }

std::vector<int32_t> some_ids(int64_t n, int32_t vocab, int32_t seed) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i)
    ids.push_back(static_cast<int32_t>((i * 37 + seed * 11 + 5) % vocab));
  return ids;
}

// Packed weights give the fake-quant float model's logits (1e-4 relative)
// and the same 64 greedy tokens, for every scheme and both kernel sets.
TEST(ModelPacked, MatchesFakeQuantFloatModel) {
  const auto cfg = testing::tiny_config();
  const std::vector<quant::QuantSpec> specs = {{4, 32, true}, {8, 32, true}, {4, 32, false},
                                               {8, 0, true},  {4, 0, false}, {3, 32, true}};
  std::vector<KernelIsa> isas = {KernelIsa::kScalar};
  if (cpu_has_avx2()) isas.push_back(KernelIsa::kAvx2);
  const auto prompt = some_ids(9, 300, 1);
  for (const auto& spec : specs) {
    Model fq(testing::random_model(cfg, 7, &spec, false));
    fq.set_isa(KernelIsa::kScalar);
    const auto ref = forward_all(fq, prompt);
    GenerateOptions opt;
    opt.max_new_tokens = 64;
    opt.sampling.temperature = 0.0f;
    ThreadPool pool(2);
    const auto ref_gen = generate(fq, {prompt}, opt, pool);
    for (KernelIsa isa : isas) {
      Model pk(testing::random_model(cfg, 7, &spec, true));
      pk.set_isa(isa);
      EXPECT_EQ(pk.describe_schemes(), spec.name());
      const auto got = forward_all(pk, prompt);
      expect_close_rel(got.data(), ref.data(), static_cast<int64_t>(ref.size()), 1e-4,
                       spec.name() + " " + isa_name(isa));
      const auto gen = generate(pk, {prompt}, opt, pool);
      EXPECT_EQ(gen[0].tokens, ref_gen[0].tokens) << spec.name() << " " << isa_name(isa);
    }
  }
}

TEST(ModelCache, IncrementalEqualsFullRecompute) {
  const quant::QuantSpec spec{4, 32, true};
  Model m(testing::random_model(testing::tiny_config(true), 3, &spec, true));
  const auto ids = some_ids(12, 300, 2);
  const auto full = forward_all(m, ids);
  const int64_t V = m.config().vocab_size;
  for (KvDtype kv : {KvDtype::kF32, KvDtype::kF16}) {
    KvCache cache(m.config(), 1, 12, kv);
    ThreadPool pool(2);
    std::vector<float> logits;
    // A 5-token prefill, a 4-token continuation (prompt rows after cached
    // ones), then one token at a time.
    m.forward({{0, std::span<const int32_t>(ids.data(), 5)}}, cache, pool, logits);
    expect_close_rel(logits.data(), &full[4 * V], V, kv == KvDtype::kF32 ? 1e-5 : 1e-2, "prefill");
    m.forward({{0, std::span<const int32_t>(ids.data() + 5, 4)}}, cache, pool, logits);
    expect_close_rel(logits.data(), &full[8 * V], V, kv == KvDtype::kF32 ? 1e-5 : 1e-2,
                     "continuation");
    for (int64_t t = 9; t < 12; ++t) {
      m.forward({{0, std::span<const int32_t>(&ids[t], 1)}}, cache, pool, logits);
      expect_close_rel(logits.data(), &full[t * V], V, kv == KvDtype::kF32 ? 1e-5 : 1e-2,
                       "step " + std::to_string(t));
    }
    EXPECT_EQ(cache.length(0), 12);
  }
}

TEST(ModelBatch, BatchedDecodeEqualsSingleSequence) {
  const quant::QuantSpec spec{4, 32, true};
  Model m(testing::random_model(testing::tiny_config(), 5, &spec, true));
  const std::vector<std::vector<int32_t>> prompts = {some_ids(3, 300, 1), some_ids(11, 300, 2),
                                                     some_ids(6, 300, 3)};
  GenerateOptions opt;
  opt.max_new_tokens = 20;
  opt.sampling.temperature = 0.8f;
  opt.sampling.top_k = 50;
  opt.sampling.seed = 42;
  ThreadPool pool(2);
  const auto batched = generate(m, prompts, opt, pool);
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateOptions one = opt;
    one.sampling.seed = opt.sampling.seed + i;  // sequence i of a batch uses seed + i
    const auto single = generate(m, {prompts[i]}, one, pool);
    EXPECT_EQ(batched[i].tokens, single[0].tokens) << "sequence " << i;
    EXPECT_EQ(batched[i].stop_reason, "length");
  }
  // Logits of a batched step against separate forwards.
  KvCache cache(m.config(), 3, 16, KvDtype::kF32);
  std::vector<float> batch_logits, one_logits;
  m.forward({{0, prompts[0]}, {1, prompts[1]}, {2, prompts[2]}}, cache, pool, batch_logits);
  const int64_t V = m.config().vocab_size;
  for (size_t i = 0; i < prompts.size(); ++i) {
    KvCache c1(m.config(), 1, 16, KvDtype::kF32);
    m.forward({{0, prompts[i]}}, c1, pool, one_logits);
    expect_close_rel(&batch_logits[i * V], one_logits.data(), V, 1e-5, "batched prefill");
  }
}

// A bf16 checkpoint's linears and embedding stay bf16 (half the bytes a step
// reads) and give the bits of their float32 values: prompt logits and greedy
// decode, both kernel sets, untied and tied embeddings.
TEST(ModelBf16, WeightsKeptAsBf16GiveTheFloat32Bits) {
  for (bool tied : {false, true}) {
    const auto cfg = testing::tiny_config(tied);
    Model mb(testing::random_bf16_model(cfg, 4, true));
    Model mf(testing::random_bf16_model(cfg, 4, false));
    EXPECT_NE(mb.describe_schemes().find("bf16"), std::string::npos) << mb.describe_schemes();
    EXPECT_LT(mb.weight_bytes_per_step(), mf.weight_bytes_per_step() * 6 / 10);
    std::vector<KernelIsa> isas = {KernelIsa::kScalar};
    if (cpu_has_avx2()) isas.push_back(KernelIsa::kAvx2);
    for (KernelIsa isa : isas) {
      mb.set_isa(isa);
      mf.set_isa(isa);
      const auto ids = some_ids(21, 300, 9);
      const auto lb = forward_all(mb, ids), lf = forward_all(mf, ids);
      EXPECT_EQ(0, std::memcmp(lb.data(), lf.data(), lb.size() * 4)) << isa_name(isa);
      GenerateOptions opt;
      opt.sampling.temperature = 0.0f;
      opt.max_new_tokens = 8;
      ThreadPool pool(2);
      EXPECT_EQ(generate(mb, {ids}, opt, pool)[0].tokens, generate(mf, {ids}, opt, pool)[0].tokens);
    }
  }
}

TEST(ModelThreads, ResultsIndependentOfThreadCount) {
  for (bool packed : {false, true}) {
    const quant::QuantSpec spec{4, 32, false};
    Model m(testing::random_model(testing::tiny_config(), 9, packed ? &spec : nullptr, packed));
    const auto ids = some_ids(10, 300, 4);
    const auto a = forward_all(m, ids, 1);
    const auto b = forward_all(m, ids, 2);
    const auto c = forward_all(m, ids, 3);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * 4));
  }
}

// Attention is split into tasks over the threads: a prompt's blocks of query
// rows, and a decode step's query heads where there are fewer (sequence, kv
// head) pairs than threads. The same bits for any thread count, with either
// cache dtype, one kv head or two, prompts of one block or many.
TEST(ModelThreads, AttentionSplitKeepsTheBits) {
  // The prompt's logits at every position, then those of 3 decode steps.
  const auto run = [](Model& m, const std::vector<int32_t>& ids, int threads, KvDtype kv) {
    const int64_t n = static_cast<int64_t>(ids.size());
    KvCache cache(m.config(), 1, n + 3, kv);
    ThreadPool pool(threads);
    std::vector<float> all, logits;
    m.forward({{0, ids}}, cache, pool, all, true);
    for (int64_t t = 0; t < 3; ++t) {
      m.forward({{0, std::span<const int32_t>(&ids[t], 1)}}, cache, pool, logits);
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  };
  for (int64_t kv_heads : {1, 2}) {
    auto cfg = testing::tiny_config();
    cfg.num_key_value_heads = kv_heads;
    Model m(testing::random_model(cfg, 10 + kv_heads, nullptr, false));
    for (KvDtype kv : {KvDtype::kF32, KvDtype::kF16}) {
      for (int64_t len : {3, 37}) {
        const auto ids = some_ids(len, 300, 5);
        const auto one = run(m, ids, 1, kv);
        for (int threads : {2, 5}) {
          const auto many = run(m, ids, threads, kv);
          ASSERT_EQ(one.size(), many.size());
          EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * 4))
              << kv_heads << " kv heads, " << len << " tokens, " << threads << " threads";
        }
      }
      // Prompts of several lengths in one forward (each with its own rows of
      // converted fp16 keys and values) against each prompt alone.
      const std::vector<std::vector<int32_t>> prompts = {some_ids(3, 300, 6), some_ids(37, 300, 7),
                                                         some_ids(12, 300, 8)};
      KvCache cache(m.config(), 3, 40, kv);
      ThreadPool pool(3);
      std::vector<float> batch;
      m.forward({{0, prompts[0]}, {1, prompts[1]}, {2, prompts[2]}}, cache, pool, batch, true);
      const int64_t V = m.config().vocab_size;
      int64_t row = 0;
      for (const auto& p : prompts) {
        const auto alone = forward_all(m, p, 2, kv);
        expect_close_rel(&batch[row * V], alone.data(), static_cast<int64_t>(alone.size()), 1e-5,
                         "prompt of " + std::to_string(p.size()) + " in a batch");
        row += static_cast<int64_t>(p.size());
      }
    }
  }
}

using qwenqat::testing::error_of;

TEST(ModelBadInput, ClearErrors) {
  Model m(testing::random_model(testing::tiny_config(), 1));
  ThreadPool pool(1);
  std::vector<float> logits;
  KvCache cache(m.config(), 1, 4, KvDtype::kF32);
  const auto five = some_ids(5, 300, 1);
  EXPECT_NE(error_of([&] {
              m.forward({{0, five}}, cache, pool, logits);
            }).find("context limit"),
            std::string::npos);
  EXPECT_EQ(cache.length(0), 0);  // nothing was written
  const std::vector<int32_t> bad = {1, 300};
  EXPECT_NE(error_of([&] {
              m.forward({{0, bad}}, cache, pool, logits);
            }).find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              m.forward({{1, five}}, cache, pool, logits);
            }).find("slot"),
            std::string::npos);
  GenerateOptions opt;
  opt.max_context = 4;
  EXPECT_NE(error_of([&] { generate(m, {five}, opt, pool); }).find("context limit"),
            std::string::npos);
  opt.max_context = 0;
  opt.sampling.top_p = 0.0f;
  EXPECT_NE(error_of([&] { generate(m, {five}, opt, pool); }).find("--top-p"), std::string::npos);
  // A missing tensor is named.
  auto src = std::make_shared<MemorySource>(testing::tiny_config(), "broken");
  EXPECT_NE(error_of([&] { Model broken(src); }).find("model.embed_tokens.weight"),
            std::string::npos);
  EXPECT_NE(error_of([&] { open_weight_source("/nonexistent/model"); }).find("does not exist"),
            std::string::npos);
}

TEST(ModelGenerate, StopsAtEosAndLength) {
  Model m(testing::random_model(testing::tiny_config(), 2));
  ThreadPool pool(2);
  GenerateOptions opt;
  opt.sampling.temperature = 0.0f;
  opt.max_new_tokens = 10;
  const auto prompt = some_ids(4, 300, 3);
  const auto g = generate(m, {prompt}, opt, pool);
  ASSERT_EQ(g[0].tokens.size(), 10u);
  EXPECT_EQ(g[0].stop_reason, "length");
  opt.eos_ids = {g[0].tokens[3]};
  const auto e = generate(m, {prompt}, opt, pool);
  EXPECT_EQ(e[0].stop_reason, "eos");
  EXPECT_LE(e[0].tokens.size(), 4u);
  EXPECT_EQ(e[0].tokens.back(), g[0].tokens[3]);
  opt.eos_ids.clear();
  // (std::string appends rather than "<" + ...: GCC 12 warns falsely there, -Wrestrict.)
  auto bracket = [](int32_t t) { return std::string("<").append(std::to_string(t)).append(">"); };
  opt.decode = bracket;
  opt.stop_strings = {bracket(g[0].tokens[2])};
  const auto s = generate(m, {prompt}, opt, pool);
  EXPECT_EQ(s[0].stop_reason, "stop_string");
  EXPECT_LE(s[0].tokens.size(), 3u);
  // A stop string across three pieces: the end of the first, the second, the
  // start of the third (found by the search from just before the new piece).
  opt.stop_strings = {std::string(">").append(bracket(g[0].tokens[1])).append("<")};
  const auto across = generate(m, {prompt}, opt, pool);
  EXPECT_EQ(across[0].stop_reason, "stop_string");
  EXPECT_EQ(across[0].tokens.size(), 3u);
}

// generate's timing: the prompts' and generated tokens of every sequence,
// prefill and decode times of the call (none to decode without new tokens).
TEST(ModelGenerate, ReportsTokensAndTimes) {
  Model m(testing::random_model(testing::tiny_config(), 2));
  ThreadPool pool(2);
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  GenerateTiming t;
  const auto g = generate(m, {some_ids(4, 300, 3), some_ids(7, 300, 4)}, opt, pool, {}, &t);
  EXPECT_EQ(t.prompt_tokens, 11);
  EXPECT_EQ(t.generated_tokens, static_cast<int64_t>(g[0].tokens.size() + g[1].tokens.size()));
  EXPECT_GT(t.prefill_seconds, 0.0);
  EXPECT_GT(t.decode_seconds, 0.0);
  opt.max_new_tokens = 0;
  generate(m, {some_ids(4, 300, 3)}, opt, pool, {}, &t);
  EXPECT_EQ(t.prompt_tokens, 4);
  EXPECT_EQ(t.generated_tokens, 0);
}

}  // namespace
}  // namespace qwenqat::engine
