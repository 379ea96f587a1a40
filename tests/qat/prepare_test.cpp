// Tests of prepare / convert / save+load on a tiny Qwen2 model: names stay
// Hugging Face's, dequantize(convert) equals the fake-quantized weight bit for
// bit for every scheme, the model's logits with fake quantization equal those
// of the model with dequantized weights, and the quantization state round-trips.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "data/util/check.h"
#include "qat/prepare.h"
#include "tests/qat/tiny_model.h"
#include "tests/util/test_util.h"

namespace qwenqat::qat {
namespace {

using testing::tiny_ids;
using testing::tiny_logits;
using testing::tiny_model;

bool bit_equal(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.contiguous(), y = b.contiguous();
  return x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

void perturb_scales(const QatModel& qat, uint64_t seed) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& [name, t] : qat.quantizer_tensors()) {
    if (name.ends_with(".scale")) {
      t.mul_(torch::rand_like(t) * 0.4 + 0.8);
    } else {
      t.add_(torch::randn_like(t) * 1e-3);
    }
  }
}

torch::Tensor dequantized(const ConvertedLayer& c) {
  auto out = torch::empty({c.matrix.rows, c.matrix.cols});
  quant::dequantize_matrix(c.matrix, out.data_ptr<float>());
  return out;
}

TEST(Prepare, AttachesQuantizersUnderHuggingFaceNames) {
  auto m = tiny_model();
  auto qat = prepare(*m, QatConfig::from_preset("w4g32a8"));
  EXPECT_EQ(qat.layers().size(), 2u * 7 + 2);
  EXPECT_EQ(qat.num_quantized(), 14);
  const auto params = m->named_parameters();
  EXPECT_TRUE(params.contains("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(params.contains("model.layers.0.self_attn.q_proj.weight_fake_quant.scale"));
  EXPECT_TRUE(params.contains("model.layers.1.mlp.down_proj.weight_fake_quant.scale"));
  EXPECT_FALSE(params.contains("lm_head.weight_fake_quant.scale"));
  EXPECT_EQ(qat.find("model.layers.1.mlp.down_proj")->input_quantizer->bits(), 8);
  EXPECT_EQ(params["model.layers.0.mlp.up_proj.weight_fake_quant.scale"].sizes(),
            torch::IntArrayRef({128, 2}));
  EXPECT_EQ(qat.scale_parameters().size(), 14u);
  const auto j = qat.to_json();
  EXPECT_EQ(j["layers"]["lm_head"]["weight"], "none");
  EXPECT_EQ(j["layers"]["model.layers.0.self_attn.k_proj"]["weight"], "w4g32");
}

TEST(Prepare, ConvertThenDequantizeEqualsFakeQuantForEveryScheme) {
  auto m = tiny_model(2);
  for (int bits = 2; bits <= 8; ++bits) {
    for (int group : {0, 32, 64}) {
      for (bool sym : {true, false}) {
        QatConfig c;
        c.weight = {bits, group, sym};
        c.quantize_lm_head = c.quantize_embed_tokens = true;
        SCOPED_TRACE(c.weight.name());
        auto qat = prepare(*m, c);
        perturb_scales(qat, uint64_t(bits * 100 + group));
        const auto converted = convert(qat);
        ASSERT_EQ(converted.size(), 16u);
        for (const auto& cl : converted) {
          const auto* l = qat.find(cl.name);
          torch::NoGradGuard ng;
          EXPECT_TRUE(bit_equal(dequantized(cl), l->weight_quantizer.ptr()->forward(l->layer->weight())))
              << cl.name;
        }
        unprepare(qat);
      }
    }
  }
}

TEST(Prepare, FakeQuantLogitsEqualLogitsOfDequantizedWeights) {
  for (const char* preset : {"w4g32", "w4g32-mixed", "w4g32a8", "w2g32", "w4g32a"}) {
    SCOPED_TRACE(preset);
    auto m = tiny_model(3);
    const auto ids = tiny_ids();
    auto qat = prepare(*m, QatConfig::from_preset(preset));
    perturb_scales(qat, 5);
    const auto fq_logits = tiny_logits(*m, ids);
    const auto plain = tiny_logits(*m, ids);
    EXPECT_TRUE(bit_equal(fq_logits, plain));  // deterministic forward
    // Replace each quantized weight by dequantize(convert) and drop the weight
    // quantizers (activation quantizers stay: they are dynamic).
    for (const auto& cl : convert(qat)) {
      const auto* l = qat.find(cl.name);
      torch::NoGradGuard ng;
      l->layer->weight().copy_(dequantized(cl));
      l->layer->set_weight_quantizer(nullptr);
    }
    EXPECT_TRUE(bit_equal(tiny_logits(*m, ids), fq_logits));
    qat.set_enabled(false);  // the float teacher differs from the quantized student
  }
}

TEST(Prepare, DisablingGivesTheFloatModel) {
  auto m = tiny_model(4);
  const auto ids = tiny_ids();
  const auto float_logits = tiny_logits(*m, ids);
  auto qat = prepare(*m, QatConfig::from_preset("w2g32"));
  const auto q_logits = tiny_logits(*m, ids);
  EXPECT_FALSE(torch::equal(q_logits, float_logits));
  qat.set_enabled(false);
  EXPECT_TRUE(bit_equal(tiny_logits(*m, ids), float_logits));
}

TEST(Prepare, SaveAndLoadRestoresLearnedScales) {
  qwenqat::testing::TempDir dir;
  auto m = tiny_model(5);
  const auto ids = tiny_ids();
  auto qat = prepare(*m, QatConfig::from_preset("w4g32-mixed"));
  perturb_scales(qat, 9);
  const auto logits = tiny_logits(*m, ids);
  models::save_model(*m, dir.path(), models::DType::kF32);
  save_quantization(qat, dir.path());
  ASSERT_TRUE(has_quantization(dir.path()));

  auto m2 = models::load_model(dir.path());
  auto qat2 = load_quantization(*m2, dir.path());
  EXPECT_EQ(qat2.config().to_json(), qat.config().to_json());
  EXPECT_TRUE(bit_equal(tiny_logits(*m2, ids), logits));
}

TEST(Prepare, BadInputIsReported) {
  auto m = tiny_model(6);
  try {  // group 128 does not divide hidden 64
    prepare(*m, QatConfig::from_preset("w4g128"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.self_attn.q_proj"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("does not divide"), std::string::npos) << e.what();
  }
  auto m2 = tiny_model(6);
  QatConfig c;
  c.overrides.push_back({"model.layers.0.mlp.down_prj", "", LayerScheme{}});
  EXPECT_THROW(prepare(*m2, c), Error);

  qwenqat::testing::TempDir dir;
  EXPECT_THROW(load_quantization(*m2, dir.path()), Error);  // no quantization.json
  auto m3 = tiny_model(6);
  auto qat = prepare(*m3, QatConfig::from_preset("w4g32"));
  save_quantization(qat, dir.path());
  std::filesystem::remove(dir / kQuantizersFile);
  auto m4 = tiny_model(6);
  EXPECT_THROW(load_quantization(*m4, dir.path()), Error);  // scales file missing
  write_file_atomic(dir / kQuantizationJson, "{\"format\": \"other\"}");
  auto m5 = tiny_model(6);
  EXPECT_THROW(load_quantization(*m5, dir.path()), Error);
}

}  // namespace
}  // namespace qwenqat::qat
