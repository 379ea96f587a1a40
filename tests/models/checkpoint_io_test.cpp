// Tests for models/checkpoint_io.h, models/inspect.h and the models commands:
// mismatches reported by name, dtype conversion, tied embeddings both ways,
// save/load round trips, deterministic init, and the CLI (init, logits,
// inspect helpers) including bad input.
#include "models/checkpoint_io.h"

#include <gtest/gtest.h>

#include "data/util/check.h"
#include "data/util/json_io.h"
#include "models/commands.h"
#include "models/inspect.h"
#include "tests/models/model_test_util.h"
#include "tests/util/test_util.h"

namespace qwenqat::models {
namespace {

namespace fs = std::filesystem;
using qwenqat::testing::TempDir;
using testing::relative_max_diff;
using testing::tiny_config;

// Rewrites dir/model.safetensors keeping, renaming or reshaping tensors.
void rewrite(const fs::path& dir, const std::string& drop, const std::string& add,
             const std::string& reshape) {
  Checkpoint ck(dir);
  std::vector<TensorToWrite> ts;
  std::vector<std::vector<uint8_t>> keep;
  for (const auto& n : ck.names()) {
    if (n == drop) continue;
    const auto& t = ck.get(n);
    TensorToWrite w{n, t.dtype, t.shape, {t.data, t.nbytes}};
    if (n == reshape) w.shape = {t.shape[0] / 2, t.shape[1] * 2};
    ts.push_back(w);
  }
  std::vector<float> extra(6, 1.0f);
  if (!add.empty()) {
    ts.push_back({add, DType::kF32, {6}, {reinterpret_cast<uint8_t*>(extra.data()), 24}});
  }
  const fs::path tmp = dir / "new.safetensors";
  write_safetensors(tmp, ts);
  fs::rename(tmp, dir / "model.safetensors");
}

std::string load_error(const fs::path& dir) {
  try {
    load_model(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointIO, MismatchesAreReportedByNameInOneMessage) {
  TempDir dir;
  init_checkpoint(tiny_config(4, 2, false), dir.path(), DType::kF32, 1);
  rewrite(dir.path(), "model.layers.1.mlp.up_proj.weight", "model.layers.0.extra.weight",
          "model.layers.0.self_attn.o_proj.weight");
  const std::string e = load_error(dir.path());
  EXPECT_NE(e.find("missing tensors (1): model.layers.1.mlp.up_proj.weight"), std::string::npos)
      << e;
  EXPECT_NE(e.find("unexpected tensors (1): model.layers.0.extra.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.0.self_attn.o_proj.weight (file [16, 64], config [32, 32])"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find(dir.path().string()), std::string::npos) << e;
}

TEST(CheckpointIO, MissingLmHeadWhenUntiedIsNamed) {
  TempDir dir;
  init_checkpoint(tiny_config(2, 1, false), dir.path(), DType::kBF16, 1);
  rewrite(dir.path(), "lm_head.weight", "", "");
  EXPECT_NE(load_error(dir.path()).find("missing tensors (1): lm_head.weight"), std::string::npos);
}

TEST(CheckpointIO, TiedEmbeddingsBothWays) {
  TempDir dir;
  auto c = tiny_config(2, 1, true);
  init_checkpoint(c, dir.path(), DType::kF32, 1);
  Checkpoint ck(dir.path());
  EXPECT_EQ(ck.find("lm_head.weight"), nullptr);  // written without lm_head
  auto m = load_model(dir.path());
  EXPECT_FALSE(m->lm_head);
  // A tied model's file may carry lm_head.weight: ignored, as in HF.
  {
    Checkpoint ck2(dir.path());
    std::vector<TensorToWrite> ts;
    for (const auto& n : ck2.names()) {
      const auto& t = ck2.get(n);
      ts.push_back({n, t.dtype, t.shape, {t.data, t.nbytes}});
    }
    const auto& e = ck2.get("model.embed_tokens.weight");
    ts.push_back({"lm_head.weight", e.dtype, e.shape, {e.data, e.nbytes}});
    write_safetensors(dir / "extra.safetensors", ts);
  }
  EXPECT_NO_THROW(load_model(dir / "extra.safetensors"));
  // Saving a tied model writes no lm_head.weight.
  TempDir out;
  save_model(*m, out.path(), DType::kF32);
  EXPECT_EQ(Checkpoint(out.path()).find("lm_head.weight"), nullptr);
}

TEST(CheckpointIO, SaveLoadRoundTripAndDtypes) {
  TempDir a, b, c16;
  auto c = tiny_config(4, 2, false);
  Qwen2ForCausalLM m(c);
  init_weights(*m, 11);
  std::ofstream(a / "tokenizer.json") << "{\"model\": {}}";
  save_model(*m, b.path(), DType::kF32, a.path());
  EXPECT_TRUE(fs::exists(b / "tokenizer.json"));
  const Json cfg = read_json_file(b / "config.json");
  EXPECT_EQ(cfg["torch_dtype"], "float32");
  EXPECT_EQ(cfg["architectures"][0], "Qwen2ForCausalLM");
  auto m2 = load_model(b.path());
  auto p1 = m->named_parameters(), p2 = m2->named_parameters();
  for (const auto& p : p1) EXPECT_TRUE(p.value().equal(p2[p.key()])) << p.key();
  // bf16 file -> f32 compute: exactly the bf16-rounded weights; -> bf16 compute: same bits.
  save_model(*m, c16.path(), DType::kBF16);
  auto m3 = load_model(c16.path(), {torch::kFloat32});
  auto m4 = load_model(c16.path(), {torch::kBFloat16});
  for (const auto& p : p1) {
    auto rounded = p.value().to(torch::kBFloat16);
    EXPECT_TRUE(m3->named_parameters()[p.key()].equal(rounded.to(torch::kFloat32))) << p.key();
    EXPECT_TRUE(m4->named_parameters()[p.key()].equal(rounded)) << p.key();
  }
  EXPECT_EQ(Checkpoint(c16.path()).get("lm_head.weight").dtype, DType::kBF16);
}

TEST(CheckpointIO, InitIsDeterministicAndMatchesInitWeights) {
  TempDir a, b;
  auto c = tiny_config(4, 2, false);
  init_checkpoint(c, a.path(), DType::kF32, 5);
  init_checkpoint(c, b.path(), DType::kF32, 5);
  EXPECT_EQ(read_file(a / "model.safetensors"), read_file(b / "model.safetensors"));
  Qwen2ForCausalLM m(c);
  init_weights(*m, 5);
  auto loaded = load_model(a.path());
  for (const auto& p : m->named_parameters()) {
    EXPECT_TRUE(p.value().equal(loaded->named_parameters()[p.key()])) << p.key();
  }
  auto w = m->named_parameters()["model.layers.0.mlp.up_proj.weight"];
  EXPECT_NEAR(w.std().item<double>(), kInitializerRange, 0.002);
  EXPECT_TRUE(m->named_parameters()["model.norm.weight"].eq(1).all().item<bool>());
  EXPECT_TRUE(m->named_parameters()["model.layers.1.self_attn.q_proj.bias"].eq(0).all().item<bool>());
}

TEST(CheckpointIO, InspectSummary) {
  TempDir dir;
  auto c = tiny_config(4, 2, true);
  init_checkpoint(c, dir.path(), DType::kBF16, 1);
  const Json info = inspect_checkpoint(dir.path());
  EXPECT_EQ(info["tensor_count"], expected_tensors(c).size());
  EXPECT_EQ(info["parameter_count"], c.num_parameters());
  EXPECT_EQ(info["bytes_by_dtype"]["BF16"], 2 * c.num_parameters());
  EXPECT_TRUE(info["config_parameter_count_matches"].get<bool>());
  EXPECT_EQ(info["config"]["num_key_value_heads"], 2);
  const std::string table = inspect_checkpoint_table(info);
  EXPECT_NE(table.find("bytes.BF16"), std::string::npos) << table;
  EXPECT_THROW(inspect_checkpoint(dir / "nothing"), Error);
}

TEST(CheckpointIO, BadOptionsAreNamed) {
  EXPECT_THROW(parse_torch_dtype("f8", "--dtype"), Error);
  EXPECT_THROW(parse_device("tpu"), Error);
  EXPECT_EQ(parse_ids(" 1, 2,3"), (std::vector<int64_t>{1, 2, 3}));
  for (const char* bad : {"", "1,,2", "1,x", "-1", "1.5", "2,"}) {
    try {
      parse_ids(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--ids"), std::string::npos);
    }
  }
}

TEST(ModelsCommands, InitThenLogitsMatchesInProcess) {
  TempDir dir;
  auto c = tiny_config(4, 2, false);
  write_json_file(dir / "config.json", c.to_json());
  std::ofstream(dir / "tokenizer_config.json") << "{}";
  std::string out;
  ASSERT_EQ(qwenqat::testing::run_qwenqat("init --config " + (dir / "config.json").string() +
                                              " --out " + (dir / "m").string() +
                                              " --dtype f16 --seed 9",
                                          &out),
            0)
      << out;
  EXPECT_TRUE(fs::exists(dir / "m" / "tokenizer_config.json"));
  ASSERT_EQ(qwenqat::testing::run_qwenqat("logits --model " + (dir / "m").string() +
                                              " --ids 3,1,4,1,5 --out " +
                                              (dir / "l.json").string(),
                                          &out),
            0)
      << out;
  const Json j = read_json_file(dir / "l.json");
  ASSERT_EQ(j["logits"].size(), 5u);
  auto m = load_model(dir / "m");
  torch::NoGradGuard g;
  auto ids = torch::tensor(std::vector<int64_t>{3, 1, 4, 1, 5}).view({1, 5});
  auto ref = m->forward(ids, torch::arange(5, torch::kInt64).view({1, 5}))[0];
  for (int t = 0; t < 5; ++t) {
    auto got = torch::tensor(j["logits"][t].get<std::vector<float>>());
    EXPECT_TRUE(got.equal(ref[t])) << "pos " << t;
  }
  // Bad input: a clear error naming the flag, exit code 1.
  EXPECT_EQ(qwenqat::testing::run_qwenqat("logits --model " + (dir / "m").string() +
                                              " --ids 1,999",
                                          &out),
            1);
  EXPECT_NE(out.find("token id 999 is out of range"), std::string::npos) << out;
  EXPECT_EQ(qwenqat::testing::run_qwenqat("init --config " + (dir / "config.json").string() +
                                              " --out " + (dir / "x").string() + " --dtype int4",
                                          &out),
            1);
  EXPECT_NE(out.find("--dtype"), std::string::npos) << out;
}

}  // namespace
}  // namespace qwenqat::models
