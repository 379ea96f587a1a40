// Tests of `qwenqat eval`'s runs over the native engine (engine_adapters.h,
// eval_commands.h) with a tiny random Qwen2 checkpoint (hidden 32, 2 layers)
// and the byte-level tokenizer the toolkit writes: greedy generation records
// and summary, generation equal to a step-by-step argmax over the engine's
// logits, resume after losing the last record, KL of a model against itself,
// perplexity against exp(mean NLL) computed here, and bad input.
#include "experiments/eval/eval_commands.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "data/gsm8k/split.h"
#include "data/gsm8k/targets.h"
#include "data/tokenizer/write_tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "experiments/eval/engine_adapters.h"
#include "experiments/eval/jsonl.h"
#include "models/checkpoint/qwen2_config.h"
#include "models/checkpoint/safetensors.h"
#include "tests/util/test_util.h"

namespace qwenqat::experiments {
namespace {

namespace fs = std::filesystem;

// Writes a random float32 Qwen2 checkpoint (config.json, model.safetensors)
// plus tokenizer.json / tokenizer_config.json (256 bytes + 5 added tokens).
void write_tiny_checkpoint(const fs::path& dir, uint32_t seed, int64_t vocab = 261) {
  data::write_byte_level_tokenizer(dir);
  models::Qwen2Config c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 2048;
  c.eos_token_id = 256;  // <|endoftext|>
  write_json_file(dir / "config.json", c.to_json());
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  std::vector<std::vector<float>> values;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float mean) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = mean + scale * normal(rng);
    shapes.push_back({name, std::move(shape)});
    values.push_back(std::move(v));
  };
  const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), K = c.kv_dim();
  add("model.embed_tokens.weight", {vocab, H}, 0.5f, 0.0f);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {H}, 0.1f, 1.0f);
    add(p + "post_attention_layernorm.weight", {H}, 0.1f, 1.0f);
    add(p + "self_attn.q_proj.weight", {Q, H}, 0.2f, 0.0f);
    add(p + "self_attn.q_proj.bias", {Q}, 0.1f, 0.0f);
    add(p + "self_attn.k_proj.weight", {K, H}, 0.2f, 0.0f);
    add(p + "self_attn.k_proj.bias", {K}, 0.1f, 0.0f);
    add(p + "self_attn.v_proj.weight", {K, H}, 0.2f, 0.0f);
    add(p + "self_attn.v_proj.bias", {K}, 0.1f, 0.0f);
    add(p + "self_attn.o_proj.weight", {H, Q}, 0.2f, 0.0f);
    add(p + "mlp.gate_proj.weight", {I, H}, 0.2f, 0.0f);
    add(p + "mlp.up_proj.weight", {I, H}, 0.2f, 0.0f);
    add(p + "mlp.down_proj.weight", {H, I}, 0.2f, 0.0f);
  }
  add("model.norm.weight", {H}, 0.1f, 1.0f);
  add("lm_head.weight", {vocab, H}, 0.3f, 0.0f);
  std::vector<models::TensorToWrite> tensors;
  for (size_t i = 0; i < shapes.size(); ++i) {
    tensors.push_back({shapes[i].first, models::DType::kF32, shapes[i].second,
                       {reinterpret_cast<const uint8_t*>(values[i].data()),
                        values[i].size() * sizeof(float)}});
  }
  models::write_safetensors(dir / "model.safetensors", tensors);
}

class EngineEval : public ::testing::Test {
 protected:
  void SetUp() override { write_tiny_checkpoint(dir_ / "model", 7); }
  EvalOptions options() const {
    EvalOptions o;
    o.model = (dir_ / "model").string();
    o.data = "embedded";
    o.limit = 3;
    o.temperature = 0;
    o.max_new_tokens = 6;
    o.batch = 2;
    o.threads = 2;
    o.out = (dir_ / "out").string();
    o.progress = false;
    return o;
  }
  std::vector<Json> read_records() const {
    std::vector<Json> out;
    std::ifstream in(dir_ / "out" / "eval.jsonl");
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(Json::parse(line));
    }
    return out;
  }
  testing::TempDir dir_;
};

using qwenqat::testing::error_of;

TEST_F(EngineEval, GreedyRecordsAndSummary) {
  const Json s = generation_eval(options());
  const auto records = read_records();
  ASSERT_EQ(records.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(records[size_t(i)]["id"], "embedded-" + std::to_string(i));
    EXPECT_EQ(records[size_t(i)]["sample"], 0);
    const int64_t tokens = records[size_t(i)]["tokens"];
    const bool finished = records[size_t(i)]["finished"];
    EXPECT_LE(tokens, 6);
    EXPECT_EQ(records[size_t(i)]["cut_off"], !finished);
    if (!finished) {
      EXPECT_EQ(tokens, 6);
    }
  }
  EXPECT_EQ(s["problems"], 3);
  EXPECT_EQ(s["samples"], 3);
  EXPECT_TRUE(s["complete"].get<bool>());
  for (const char* k : {"accuracy", "maj_at_k", "mean_generated_tokens", "cut_off_share",
                        "tokens_per_second", "wall_seconds", "settings"}) {
    EXPECT_TRUE(s.contains(k)) << k;
  }
  EXPECT_EQ(s["settings"]["temperature"], 0.0);
  EXPECT_EQ(s["settings"]["max_new_tokens"], 6);
  EXPECT_EQ(s["settings"]["description"]["template"], "qwen");
  EXPECT_EQ(s["settings"]["description"]["model"], options().model);
  // The summary file beside the results holds the same.
  EXPECT_EQ(read_json_file(dir_ / "out" / "eval.summary.json")["samples"], 3);
}

TEST_F(EngineEval, GreedyGenerationMatchesArgmaxOverLogits) {
  EngineModelOptions mo;
  mo.model = dir_ / "model";
  mo.threads = 1;
  EngineModel m = load_engine_model(mo);
  const auto& t = data::get_template(m.template_name);
  const std::string prompt = t.render_prompt(data::embedded_gsm8k()[1].question);
  std::vector<int32_t> ids = data::encode_prompt(*m.tokenizer, prompt);
  EngineLogitsSource logits(m.model, m.pool);
  std::vector<int32_t> generated;
  for (int step = 0; step < 5; ++step) {
    const auto l = logits.logits(ids);
    const int64_t V = logits.vocab_size();
    const float* last = l.data() + (ids.size() - 1) * size_t(V);
    const int32_t next = int32_t(std::max_element(last, last + V) - last);
    ids.push_back(next);
    generated.push_back(next);
    if (next == 256 || next == *m.tokenizer->token_to_id("<|im_end|>")) break;
  }
  const bool eos = generated.back() == 256 ||
                   generated.back() == *m.tokenizer->token_to_id("<|im_end|>");
  std::vector<int32_t> text_ids = generated;
  if (eos) text_ids.pop_back();
  EngineGenerator gen(std::move(m));
  // The prompt in a batch with another one: batching must not change it.
  const auto out = gen.generate({t.render_prompt("What is 2 + 2?"), prompt}, {0.0, 1.0, 5}, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].finished, eos);
  EXPECT_EQ(out[1].tokens, int64_t(text_ids.size()));
  EXPECT_EQ(out[1].text, data::Tokenizer::load(dir_ / "model").decode(text_ids));
}

TEST_F(EngineEval, ResumeRedoesOnlyTheLostRecord) {
  generation_eval(options());
  const auto before = read_records();
  ASSERT_EQ(before.size(), 3u);
  // Drop the last record, as if the run died before writing it.
  std::string kept = before[0].dump() + "\n" + before[1].dump() + "\n";
  write_file_atomic(dir_ / "out" / "eval.jsonl", kept);
  // Without --resume the existing results are not overwritten.
  EXPECT_NE(error_of([&] { generation_eval(options()); }).find("--resume"), std::string::npos);
  EvalOptions o = options();
  o.resume = true;
  const Json s = generation_eval(o);
  EXPECT_EQ(s["resumed_records"], 2);
  EXPECT_EQ(s["new_records"], 1);
  EXPECT_EQ(s["samples"], 3);
  const auto after = read_records();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[2]["id"], before[2]["id"]);
  EXPECT_EQ(after[2]["generated"], before[2]["generated"]);  // greedy: the same text
}

TEST_F(EngineEval, TeacherForcedAgainstItselfHasZeroKl) {
  EvalOptions o = options();
  o.teacher_forced = true;
  o.reference = o.model;
  const Json j = teacher_forced_eval(o);
  EXPECT_EQ(j["sequences"], 3);
  EXPECT_NEAR(j["kl"]["mean"].get<double>(), 0.0, 1e-9);
  EXPECT_NEAR(j["kl"]["max"].get<double>(), 0.0, 1e-9);
  EXPECT_EQ(j["top1_agreement"]["value"], 1.0);
  EXPECT_NEAR(j["reference_perplexity"].get<double>(), j["perplexity"].get<double>(), 1e-9);
  EXPECT_TRUE(fs::exists(dir_ / "out" / "teacher_forced.json"));
}

TEST_F(EngineEval, PerplexityIsExpMeanNllOfTheCompletionTokens) {
  EvalOptions o = options();
  o.teacher_forced = true;
  const Json j = teacher_forced_eval(o);
  ASSERT_FALSE(j.contains("kl"));

  EngineModelOptions mo;
  mo.model = o.model;
  mo.threads = 1;
  EngineModel m = load_engine_model(mo);
  const auto& t = data::get_template("qwen");
  EngineLogitsSource src(m.model, m.pool);
  const int64_t V = src.vocab_size();
  double nll = 0;
  int64_t count = 0;
  for (int i = 0; i < 3; ++i) {
    const auto pc = data::gsm8k_prompt_completion(data::embedded_gsm8k()[size_t(i)], t,
                                                  "<|im_end|>");
    const auto prompt_ids = data::encode_prompt(*m.tokenizer, pc.prompt);
    std::vector<int32_t> ids = prompt_ids;
    m.tokenizer->encode_append(pc.completion, ids);
    const auto l = src.logits(ids);
    for (size_t p = prompt_ids.size(); p < ids.size(); ++p) {
      const float* row = l.data() + (p - 1) * size_t(V);
      const double mx = *std::max_element(row, row + V);
      double z = 0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
      nll += -(double(row[ids[p]]) - mx - std::log(z));
      ++count;
    }
  }
  EXPECT_EQ(j["tokens"], count);
  EXPECT_NEAR(j["nll_sum"].get<double>(), nll, 1e-6 * nll);
  EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(nll / double(count)),
              1e-6 * std::exp(nll / double(count)));
  EXPECT_GT(j["perplexity"].get<double>(), 1.0);
}

TEST_F(EngineEval, BadInputIsRejectedWithTheFlagNamed) {
  EvalOptions o = options();
  o.part = "test";
  EXPECT_NE(error_of([&] { load_eval_problems(o); }).find("--part"), std::string::npos);
  o = options();
  o.limit = -1;
  EXPECT_NE(error_of([&] { load_eval_problems(o); }).find("--limit"), std::string::npos);
  o = options();
  o.split = (dir_ / "split.json").string();
  data::write_split(o.split, data::make_split(5, 0.2, 1));  // embedded has more than 5
  EXPECT_NE(error_of([&] { load_eval_problems(o); }).find("--split"), std::string::npos);
  o = options();
  o.model = (dir_ / "missing").string();
  EXPECT_NE(error_of([&] { generation_eval(o); }).find("missing"), std::string::npos);
  o = options();
  o.batch = 0;
  EXPECT_NE(error_of([&] { generation_eval(o); }).find("--batch"), std::string::npos);
  o = options();
  o.templ = "chatml";
  EXPECT_NE(error_of([&] { generation_eval(o); }).find("chatml"), std::string::npos);
  // A reference with another vocabulary cannot be compared.
  write_tiny_checkpoint(dir_ / "other", 8, 300);
  o = options();
  o.teacher_forced = true;
  o.reference = (dir_ / "other").string();
  EXPECT_NE(error_of([&] { teacher_forced_eval(o); }).find("vocabulary"), std::string::npos);
}

TEST_F(EngineEval, SplitPartSelectsProblemsWithStableIds) {
  EvalOptions o = options();
  o.limit = 0;
  const size_t n = data::embedded_gsm8k().size();
  o.split = (dir_ / "split.json").string();
  const data::DataSplit split = data::make_split(int64_t(n), 0.3, 4);
  data::write_split(o.split, split);
  const auto held = load_eval_problems(o);
  ASSERT_EQ(held.size(), split.heldout.size());
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(held[i].id, "embedded-" + std::to_string(split.heldout[i]));
    EXPECT_EQ(held[i].problem.question, data::embedded_gsm8k()[size_t(split.heldout[i])].question);
  }
  o.part = "train";
  EXPECT_EQ(load_eval_problems(o).size(), split.train.size());
}

}  // namespace
}  // namespace qwenqat::experiments
