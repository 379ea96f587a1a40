// Numerics of the LibTorch Qwen2 model (models/qwen2_model.h): logits vs the
// shared float64 references, other shapes vs an independent float64 forward,
// KV-cache decoding == full forward, padding invariance, parameter names and
// counts, quantizer hooks, and the CUDA path when a GPU exists.
#include "models/qwen2_model.h"

#include <gtest/gtest.h>

#include <set>

#include "data/util/json_io.h"
#include "models/checkpoint_io.h"
#include "tests/models/model_test_util.h"
#include "tests/util/test_util.h"

namespace qwenqat::models {
namespace {

using testing::reference_logits;
using testing::relative_max_diff;
using testing::tiny_config;

torch::Tensor run(Qwen2ForCausalLMImpl& m, const std::vector<int64_t>& ids) {
  torch::NoGradGuard g;
  const int64_t T = ids.size();
  auto input = torch::tensor(ids, torch::kInt64).view({1, T});
  return m.forward(input, torch::arange(T, torch::kInt64).view({1, T}))[0];  // [T, V]
}

torch::Tensor row(const Json& j) { return torch::tensor(j.get<std::vector<double>>(), torch::kFloat64); }

// Compares with a shared reference.json: logits of every given position (or
// the last), argmax everywhere; tolerance relative to max |logit|.
void check_reference(const std::string& fixture, torch::Dtype dtype, double tol, bool argmax) {
  QWENQAT_REQUIRE_SHARED(shared);
  const auto dir = shared / "reference" / fixture;
  auto model = load_model(dir, {dtype});
  const Json ref = read_json_file(dir / "reference.json");
  ASSERT_GE(ref["cases"].size(), 1u);
  for (const auto& cs : ref["cases"]) {
    const auto ids = cs["ids"].get<std::vector<int64_t>>();
    auto logits = run(*model, ids);
    const int64_t T = ids.size();
    auto last = row(cs["logits_last"]);
    EXPECT_LE(relative_max_diff(logits[T - 1], last), tol) << fixture << " T=" << T;
    if (cs.contains("logits")) {
      for (int64_t t = 0; t < T; ++t) {
        EXPECT_LE(relative_max_diff(logits[t], row(cs["logits"][t])), tol) << "pos " << t;
      }
    }
    if (argmax) {
      auto am = logits.argmax(-1);
      const auto expect = cs["argmax"].get<std::vector<int64_t>>();
      for (int64_t t = 0; t < T; ++t) EXPECT_EQ(am[t].item<int64_t>(), expect[t]) << "pos " << t;
    }
  }
}

TEST(Qwen2Reference, TinyF32MatchesInFloat32) { check_reference("tiny-qwen2-f32", torch::kFloat32, 1e-4, true); }
TEST(Qwen2Reference, TinyBf16TiedMatchesInFloat32) {
  check_reference("tiny-qwen2-bf16-tied", torch::kFloat32, 1e-4, true);
}
// bfloat16 compute: only close (bf16 has 8 bits of mantissa).
TEST(Qwen2Reference, TinyBf16TiedCloseInBfloat16) {
  check_reference("tiny-qwen2-bf16-tied", torch::kBFloat16, 5e-2, false);
}

struct Shape {
  int64_t heads, kv_heads;
  bool tied;
  DType file_dtype;
};

class Qwen2Shapes : public ::testing::TestWithParam<Shape> {};

// init_checkpoint -> load_model (f32 compute) vs the independent float64 forward.
TEST_P(Qwen2Shapes, LoadedLogitsMatchDirectComputation) {
  const Shape s = GetParam();
  qwenqat::testing::TempDir dir;
  auto config = tiny_config(s.heads, s.kv_heads, s.tied, 2, 8);
  init_checkpoint(config, dir.path(), s.file_dtype, 7);
  auto model = load_model(dir.path(), {torch::kFloat32});
  Checkpoint ck(dir.path());
  std::vector<int64_t> ids;
  for (int i = 0; i < 37; ++i) ids.push_back((i * 31 + 5) % config.vocab_size);
  auto ref = reference_logits(ck, config, ids);
  auto got = run(*model, ids);
  EXPECT_LE(relative_max_diff(got, ref), 1e-4);
  EXPECT_TRUE(got.argmax(-1).equal(ref.argmax(-1)));
}

INSTANTIATE_TEST_SUITE_P(HeadsGqaTiedDtype, Qwen2Shapes,
                         ::testing::Values(Shape{4, 2, false, DType::kF32},
                                           Shape{6, 3, true, DType::kBF16},
                                           Shape{4, 1, false, DType::kF16},
                                           Shape{3, 3, true, DType::kF32},
                                           Shape{8, 2, true, DType::kF16}));

Qwen2ForCausalLM random_model(const Qwen2Config& c, torch::Dtype dtype = torch::kFloat32) {
  Qwen2ForCausalLM m(c, ModuleOptions{dtype});
  init_weights(*m, 3);
  // Larger norms make attention less uniform, so cache/mask bugs show.
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters()) {
    if (p.key().find("layernorm") != std::string::npos) p.value().fill_(4.0);
  }
  return m;
}

TEST(Qwen2Model, KVCacheDecodingEqualsFullForward) {
  auto c = tiny_config(4, 2, false, 3);
  auto m = random_model(c);
  std::vector<int64_t> ids = {5, 17, 3, 90, 44, 12, 8, 61, 2, 33};
  auto full = run(*m, ids);  // [10, V]
  torch::NoGradGuard g;
  auto cache = m->make_cache(1, 16);
  auto all = torch::tensor(ids, torch::kInt64).view({1, 10});
  std::vector<torch::Tensor> parts;
  parts.push_back(m->forward(all.narrow(1, 0, 4), torch::arange(4, torch::kInt64).view({1, 4}),
                             {}, &cache)[0]);
  for (int64_t t = 4; t < 10; ++t) {
    parts.push_back(m->forward(all.narrow(1, t, 1), torch::full({1, 1}, t, torch::kInt64),
                               torch::ones({1, t + 1}, torch::kInt64), &cache)[0]);
  }
  EXPECT_EQ(cache.length, 10);
  EXPECT_LE(relative_max_diff(torch::cat(parts, 0), full), 1e-5);
  // The checked context limit.
  auto more = torch::zeros({1, 7}, torch::kInt64);
  EXPECT_THROW(m->forward(more, more, {}, &cache), c10::Error);
}

TEST(Qwen2Model, PaddedBatchEqualsSingleSequences) {
  auto c = tiny_config(4, 2, true, 2);
  auto m = random_model(c);
  const std::vector<int64_t> a = {4, 8, 15, 16, 23}, b = {42, 7, 1, 9, 60, 70, 11, 3};
  auto la = run(*m, a), lb = run(*m, b);
  torch::NoGradGuard g;
  for (bool left : {true, false}) {
    std::vector<int64_t> ids(16, 0), mask(16, 0);
    const int64_t off = left ? 3 : 0;
    for (int i = 0; i < 5; ++i) ids[off + i] = a[i], mask[off + i] = 1;
    for (int i = 0; i < 8; ++i) ids[8 + i] = b[i], mask[8 + i] = 1;
    auto input = torch::tensor(ids, torch::kInt64).view({2, 8});
    auto attn = torch::tensor(mask, torch::kInt64).view({2, 8});
    auto out = m->forward(input, positions_from_mask(attn), attn);  // [2, 8, V]
    EXPECT_FALSE(out.isnan().any().item<bool>());
    EXPECT_LE(relative_max_diff(out[0].narrow(0, off, 5), la), 1e-5) << "left=" << left;
    EXPECT_LE(relative_max_diff(out[1], lb), 1e-5) << "left=" << left;
  }
}

TEST(Qwen2Model, BadInputsThrow) {
  auto m = random_model(tiny_config(2, 1, true, 1));
  auto ids = torch::zeros({1, 3}, torch::kInt64);
  EXPECT_THROW(m->forward(ids, torch::zeros({1, 2}, torch::kInt64)), c10::Error);
  EXPECT_THROW(m->forward(torch::full({1, 3}, 97, torch::kInt64), ids), c10::Error);
  EXPECT_THROW(m->forward(ids, ids, torch::ones({1, 4}, torch::kInt64)), c10::Error);
  EXPECT_THROW(m->forward(ids.to(torch::kInt32), ids), c10::Error);
}

TEST(Qwen2Model, NamedParametersAreTheCheckpointKeys) {
  for (bool tied : {false, true}) {
    auto c = tiny_config(4, 2, tied, 2);
    Qwen2ForCausalLM m(c, ModuleOptions{torch::kFloat32, torch::kMeta});
    std::set<std::string> names, expected;
    for (const auto& p : m->named_parameters()) names.insert(p.key());
    for (const auto& [n, shape] : expected_tensors(c)) {
      expected.insert(n);
      ASSERT_NE(m->named_parameters().find(n), nullptr) << n;
      EXPECT_EQ(m->named_parameters()[n].sizes().vec(), shape) << n;
    }
    EXPECT_EQ(names, expected);
    EXPECT_EQ(names.count("lm_head.weight"), tied ? 0u : 1u);
    EXPECT_EQ(names.count("model.layers.1.self_attn.k_proj.bias"), 1u);
  }
}

TEST(Qwen2Model, RealConfigParameterCount) {
  // The real model's shapes (shared/models/deepseek-r1-distill-qwen-1.5b), on
  // the meta device: no memory is allocated.
  const Json j = {{"model_type", "qwen2"},        {"vocab_size", 151936},
                  {"hidden_size", 1536},          {"intermediate_size", 8960},
                  {"num_hidden_layers", 28},      {"num_attention_heads", 12},
                  {"num_key_value_heads", 2},     {"tie_word_embeddings", false}};
  const auto c = Qwen2Config::from_json(j);
  Qwen2ForCausalLM m(c, ModuleOptions{torch::kBFloat16, torch::kMeta});
  EXPECT_EQ(count_parameters(*m), 1777088000);
  EXPECT_EQ(c.num_parameters(), 1777088000);
  int64_t linear = 0;
  for (const auto& [name, layer] : m->quantizable_layers()) {
    if (name != "model.embed_tokens" && name != "lm_head") ++linear;
  }
  EXPECT_EQ(linear, 196);
}

// A quantizer that scales its input by a learnable factor (for the hook test).
class ScaleQuantizer : public QuantizerImpl {
 public:
  explicit ScaleQuantizer(double s) { scale = register_parameter("scale", torch::full({1}, s)); }
  torch::Tensor forward(const torch::Tensor& x) override { return x * scale.to(x.scalar_type()); }
  torch::Tensor scale;
};

TEST(Qwen2Model, QuantizerHooks) {
  auto c = tiny_config(2, 1, false, 1);
  auto m = random_model(c);
  auto layers = m->quantizable_layers();
  ASSERT_EQ(layers.size(), 9u);
  EXPECT_EQ(layers.front().first, "model.embed_tokens");
  EXPECT_EQ(layers[1].first, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(layers.back().first, "lm_head");
  const std::vector<int64_t> ids = {1, 2, 3};
  auto base = run(*m, ids);
  // lm_head weight x2 -> logits x2.
  auto& lm = layers.back().second;
  auto q = std::make_shared<ScaleQuantizer>(2.0);
  lm->set_weight_quantizer(q);
  EXPECT_NE(m->named_parameters().find("lm_head.weight_fake_quant.scale"), nullptr);
  EXPECT_LE(relative_max_diff(run(*m, ids), base * 2), 1e-6);
  q->set_enabled(false);
  EXPECT_LE(relative_max_diff(run(*m, ids), base), 1e-7);
  // Input quantizer x3 on lm_head -> logits x3; replacing keeps one submodule.
  lm->set_weight_quantizer(std::make_shared<ScaleQuantizer>(1.0));
  lm->set_input_quantizer(std::make_shared<ScaleQuantizer>(3.0));
  EXPECT_LE(relative_max_diff(run(*m, ids), base * 3), 1e-6);
  EXPECT_EQ(count_parameters(*m), c.num_parameters());  // quantizer params excluded
  lm->set_input_quantizer(nullptr);
  EXPECT_EQ(m->named_parameters().find("lm_head.input_fake_quant.scale"), nullptr);
  EXPECT_THROW(layers.front().second->set_input_quantizer(std::make_shared<ScaleQuantizer>(1.0)),
               c10::Error);
}

TEST(Qwen2Model, TiedLmHeadUsesQuantizedEmbedding) {
  auto m = random_model(tiny_config(2, 1, true, 1));
  const std::vector<int64_t> ids = {5, 6};
  auto base = run(*m, ids);
  m->quantizable_layers().front().second->set_weight_quantizer(
      std::make_shared<ScaleQuantizer>(0.0));
  // Zero embedding: the hidden state is 0 -> the norms give 0 -> logits 0.
  EXPECT_EQ(run(*m, ids).abs().max().item<double>(), 0.0);
  EXPECT_GT(base.abs().max().item<double>(), 0.0);
}

TEST(Qwen2Model, ForwardOnCuda_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto c = tiny_config(4, 2, false, 2);
  auto cpu = random_model(c);
  Qwen2ForCausalLM gpu(c, ModuleOptions{torch::kFloat32, torch::kCUDA});
  {
    torch::NoGradGuard g;
    auto src = cpu->named_parameters();
    for (auto& p : gpu->named_parameters()) p.value().copy_(src[p.key()]);
  }
  auto ids = torch::tensor(std::vector<int64_t>{1, 2, 3, 4}, torch::kInt64).view({1, 4});
  auto pos = torch::arange(4, torch::kInt64).view({1, 4});
  torch::NoGradGuard g;
  auto a = cpu->forward(ids, pos), b = gpu->forward(ids.cuda(), pos.cuda()).cpu();
  EXPECT_LE(relative_max_diff(b, a), 1e-4);
}

}  // namespace
}  // namespace qwenqat::models
