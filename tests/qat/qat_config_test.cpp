// Tests of QatConfig: presets, override resolution (first match wins), the
// default policy for embed_tokens / lm_head, the JSON form and bad input.
#include <gtest/gtest.h>

#include <string>

#include "data/util/check.h"
#include "qat/qat_config.h"

namespace qwenqat::qat {
namespace {

constexpr const char* kQ = "model.layers.0.self_attn.q_proj";
constexpr const char* kDown = "model.layers.1.mlp.down_proj";

TEST(QatConfig, EveryPresetBuildsAndRoundTripsThroughJson) {
  for (const auto& name : QatConfig::preset_names()) {
    SCOPED_TRACE(name);
    const auto c = QatConfig::from_preset(name);
    EXPECT_EQ(c.preset, name);
    const auto back = QatConfig::from_json(c.to_json());
    EXPECT_EQ(back.to_json(), c.to_json());
    for (const char* layer : {kQ, kDown, "lm_head", "model.embed_tokens"}) {
      EXPECT_EQ(back.scheme_for(layer), c.scheme_for(layer)) << layer;
    }
  }
}

TEST(QatConfig, PresetsMeanWhatTheirNamesSay) {
  auto s = QatConfig::from_preset("w4g32").scheme_for(kQ);
  EXPECT_TRUE(s.quantize);
  EXPECT_EQ(s.weight, (quant::QuantSpec{4, 32, true}));
  EXPECT_EQ(s.activation_bits, 0);
  s = QatConfig::from_preset("w4g32a8").scheme_for(kQ);
  EXPECT_EQ(s.name(), "w4g32+a8");
  EXPECT_EQ(QatConfig::from_preset("w4g32a").scheme_for(kQ).name(), "w4g32a");
  EXPECT_EQ(QatConfig::from_preset("w8c").scheme_for(kQ).name(), "w8c");
  EXPECT_EQ(QatConfig::from_preset("w2g32").scheme_for(kQ).name(), "w2g32");
  EXPECT_EQ(QatConfig::from_preset("w5g64").scheme_for(kQ).name(), "w5g64");  // any spec
}

TEST(QatConfig, EmbeddingsAndLmHeadStayFloatByDefault) {
  const auto c = QatConfig::from_preset("w4g32a8");
  EXPECT_FALSE(c.scheme_for("lm_head").quantize);
  EXPECT_EQ(c.scheme_for("lm_head").activation_bits, 0);
  EXPECT_FALSE(c.scheme_for("model.embed_tokens").quantize);
  auto q = c;
  q.quantize_lm_head = q.quantize_embed_tokens = true;
  EXPECT_EQ(q.scheme_for("lm_head").name(), "w4g32+a8");
  EXPECT_EQ(q.scheme_for("model.embed_tokens").name(), "w4g32");  // ids: no activation quant
}

TEST(QatConfig, MixedPresetAndFirstMatchingOverrideWins) {
  const auto c = QatConfig::from_preset("w4g32-mixed");
  EXPECT_EQ(c.scheme_for("lm_head").name(), "w8c");
  EXPECT_EQ(c.scheme_for("model.embed_tokens").name(), "w8c");
  EXPECT_EQ(c.scheme_for(kDown).name(), "w8g32");
  EXPECT_EQ(c.scheme_for(kQ).name(), "w4g32");

  const auto j = parse_json(R"({"weight": "w4g32", "overrides": [
      {"name": "model.layers.1.mlp.down_proj", "weight": "none"},
      {"regex": "down_proj$", "weight": "w8g32", "activation_bits": 8},
      {"regex": "mlp", "weight": "w2g32"}]})", "test");
  const auto o = QatConfig::from_json(j);
  EXPECT_FALSE(o.scheme_for(kDown).quantize);                              // rule 0
  EXPECT_EQ(o.scheme_for("model.layers.0.mlp.down_proj").name(), "w8g32+a8");  // rule 1
  EXPECT_EQ(o.scheme_for("model.layers.0.mlp.up_proj").name(), "w2g32");      // rule 2
  EXPECT_EQ(o.scheme_for(kQ).name(), "w4g32");                                // default
}

TEST(QatConfig, UnknownPresetListsThePresets) {
  try {
    QatConfig::from_preset("w4g32x");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown quantization preset 'w4g32x'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("w4g32-mixed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("w8c"), std::string::npos) << msg;
  }
  EXPECT_THROW(QatConfig::from_preset(""), Error);
  EXPECT_THROW(QatConfig::from_preset("w9g32"), Error);   // bits out of range
  EXPECT_THROW(QatConfig::from_preset("w1g32"), Error);
  EXPECT_THROW(QatConfig::from_preset("w4g0"), Error);
}

TEST(QatConfig, BadJsonIsRejectedWithTheKeyNamed) {
  auto bad = [](const char* text, const char* needle) {
    try {
      QatConfig::from_json(parse_json(text, "t"), "q.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  bad(R"([1])", "JSON object");
  bad(R"({"wieght": "w4g32"})", "unknown key \"wieght\"");
  bad(R"({"weight": "w9g32"})", "w9g32");
  bad(R"({"weight": "none"})", "cannot be \"none\"");
  bad(R"({"weight": 4})", "must be a string");
  bad(R"({"activation_bits": 1})", "activation bits");
  bad(R"({"activation_bits": 16})", "activation bits");
  bad(R"({"activation_bits": "8"})", "integer");
  bad(R"({"scale_init": "max"})", "scale initialization");
  bad(R"({"learnable_scales": 1})", "true or false");
  bad(R"({"overrides": {}})", "array");
  bad(R"({"overrides": [{"weight": "w8c"}]})", "exactly one of");
  bad(R"({"overrides": [{"name": "lm_head", "regex": "x", "weight": "w8c"}]})", "exactly one of");
  bad(R"({"overrides": [{"regex": "(", "weight": "w8c"}]})", "does not compile");
  bad(R"({"overrides": [{"name": "lm_head"}]})", "missing \"weight\"");
  bad(R"({"overrides": [{"name": "lm_head", "weight": "w8c", "bits": 8}]})", "unknown key");
}

TEST(QatConfig, ScaleInitNames) {
  EXPECT_EQ(parse_scale_init("mse"), quant::ScaleInit::kMseClip);
  EXPECT_EQ(parse_scale_init("minmax"), quant::ScaleInit::kMinMax);
  EXPECT_EQ(scale_init_name(quant::ScaleInit::kMseClip), "mse");
  EXPECT_THROW(parse_scale_init("MSE"), Error);
}

}  // namespace
}  // namespace qwenqat::qat
