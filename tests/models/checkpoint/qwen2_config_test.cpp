// Tests for models/checkpoint/qwen2_config.h: HF defaults, required fields,
// unsupported features named, and the real model's parameter count.
#include "models/checkpoint/qwen2_config.h"

#include <gtest/gtest.h>

#include "data/util/check.h"
#include "tests/util/test_util.h"

namespace qwenqat::models {
namespace {

Json minimal() {
  return Json{{"model_type", "qwen2"},         {"vocab_size", 100},
              {"hidden_size", 32},             {"intermediate_size", 64},
              {"num_hidden_layers", 2},        {"num_attention_heads", 4},
              {"num_key_value_heads", 2}};
}

std::string error_of(const Json& j) {
  try {
    Qwen2Config::from_json(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Qwen2Config, DefaultsFollowHuggingFace) {
  Json j = minimal();
  j.erase("num_key_value_heads");
  auto c = Qwen2Config::from_json(j);
  EXPECT_EQ(c.num_key_value_heads, 4);  // defaults to num_attention_heads
  EXPECT_EQ(c.dim_head(), 8);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(Qwen2Config, UnknownFieldsIgnoredAndRoundTrip) {
  Json j = minimal();
  j["some_future_field"] = {1, 2, 3};
  j["tie_word_embeddings"] = true;
  auto c = Qwen2Config::from_json(j);
  auto c2 = Qwen2Config::from_json(c.to_json());
  EXPECT_EQ(c2.to_json(), c.to_json());
  EXPECT_TRUE(c2.tie_word_embeddings);
}

TEST(Qwen2Config, MissingRequiredFieldIsNamed) {
  Json j = minimal();
  j.erase("hidden_size");
  EXPECT_NE(error_of(j).find("\"hidden_size\" is missing"), std::string::npos) << error_of(j);
  EXPECT_NE(error_of(j).find("cfg.json"), std::string::npos);
}

TEST(Qwen2Config, UnsupportedFeaturesAreNamed) {
  Json j = minimal();
  j["use_sliding_window"] = true;
  EXPECT_NE(error_of(j).find("use_sliding_window"), std::string::npos);
  j = minimal();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(error_of(j).find("rope_scaling"), std::string::npos);
  j = minimal();
  j["rope_scaling"] = nullptr;  // null is fine
  EXPECT_EQ(error_of(j), "");
  j = minimal();
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of(j).find("hidden_act"), std::string::npos);
  j = minimal();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j).find("num_key_value_heads"), std::string::npos);
  j = minimal();
  j["vocab_size"] = "big";
  EXPECT_NE(error_of(j).find("vocab_size"), std::string::npos);
}

TEST(Qwen2Config, RealModelParameterCount) {
  QWENQAT_REQUIRE_SHARED(shared);
  auto c = Qwen2Config::load(shared / "models/deepseek-r1-distill-qwen-1.5b");
  EXPECT_EQ(c.num_parameters(), 1777088000);
  EXPECT_EQ(c.dim_head(), 128);
  EXPECT_EQ(c.num_key_value_heads, 2);
}

}  // namespace
}  // namespace qwenqat::models
