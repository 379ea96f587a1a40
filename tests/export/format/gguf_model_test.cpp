// Tests for export/format/gguf_model.h: the tiny Qwen2 checkpoint written by
// this project compared with llama.cpp's own GGUF files of it (metadata keys
// and types, tokenizer arrays, tensor names/order/types/shapes, tensor bytes),
// QAT-quantized tensors (Q8_0/Q4_0/Q4_1) reading back equal to
// quant::dequantize_matrix, the tokenizer rules, and refused inputs.
#include "export/format/gguf_model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>

#include "../../util/test_util.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/half.h"
#include "export/format/gguf_reader.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::format {
namespace {

using testing::TempDir;

struct Tiny {
  models::Qwen2Config config;
  Json tokenizer;
  Json tokenizer_config;
  std::unique_ptr<models::Checkpoint> ckpt;
};

// Loaded once: parsing the real tokenizer.json takes about a second.
const Tiny& load_tiny(const std::filesystem::path& shared) {
  static Tiny t;
  if (t.ckpt) return t;
  const auto dir = shared / "reference" / "tiny-qwen2-f32";
  const auto tok_dir = shared / "models" / "deepseek-r1-distill-qwen-1.5b";
  t.config = models::Qwen2Config::load(dir / "config.json");
  t.tokenizer = read_json_file(tok_dir / "tokenizer.json");
  t.tokenizer_config = read_json_file(tok_dir / "tokenizer_config.json");
  t.ckpt = std::make_unique<models::Checkpoint>(dir / "model.safetensors");
  return t;
}

// Float tensors of the checkpoint; those whose llama.cpp name is in `raw`
// (gguf name -> type) are given as raw blocks from the reference quantizers.
std::vector<GgufModelTensor> tiny_tensors(const Tiny& t, const GgufFile* like = nullptr) {
  std::vector<GgufModelTensor> out;
  for (const auto& name : t.ckpt->names()) {
    const models::TensorView& v = t.ckpt->get(name);
    GgufModelTensor m;
    m.name = name;
    m.shape = v.shape;
    m.values = models::to_f32(v);
    const GgufTensorInfo* ref = like ? like->find_tensor(gguf_tensor_name(name)) : nullptr;
    if (ref && (ref->type == GgmlType::kQ8_0 || ref->type == GgmlType::kQ4_0)) {
      const int64_t n = int64_t(m.values.size());
      if (ref->type == GgmlType::kQ8_0) {
        const auto b = quantize_q8_0_ref(m.values.data(), n);
        m.raw.assign(reinterpret_cast<const uint8_t*>(b.data()),
                     reinterpret_cast<const uint8_t*>(b.data() + b.size()));
      } else {
        const auto b = quantize_q4_0_ref(m.values.data(), n);
        m.raw.assign(reinterpret_cast<const uint8_t*>(b.data()),
                     reinterpret_cast<const uint8_t*>(b.data() + b.size()));
      }
      m.raw_type = ref->type;
      m.values.clear();
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Keys our writer adds beyond llama.cpp's reference files.
const std::set<std::string> kExtraKeys = {"general.alignment", "tokenizer.ggml.padding_token_id"};

void expect_like_reference(const GgufFile& ours, const GgufFile& ref) {
  for (const auto& [key, v] : ref.metadata()) {
    const GgufValue* o = ours.find(key);
    ASSERT_NE(o, nullptr) << "missing key " << key;
    EXPECT_EQ(o->type_string(), v.type_string()) << key;
    if (key == "tokenizer.ggml.add_bos_token") continue;  // ours follows tokenizer_config
    if (v.type == GgufType::kArray) {
      ASSERT_EQ(o->array.size(), v.array.size()) << key;
      for (size_t i = 0; i < v.array.size(); ++i) {
        ASSERT_TRUE(o->array[i].s == v.array[i].s && o->array[i].i == v.array[i].i &&
                    o->array[i].u == v.array[i].u)
            << key << "[" << i << "]";
      }
    } else {
      EXPECT_TRUE(o->s == v.s && o->u == v.u && o->i == v.i && o->f == v.f) << key;
    }
  }
  for (const auto& [key, v] : ours.metadata()) {
    EXPECT_TRUE(ref.find(key) || kExtraKeys.count(key)) << "unexpected key " << key;
  }
  ASSERT_EQ(ours.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const auto &a = ours.tensors()[i], &b = ref.tensors()[i];
    EXPECT_EQ(a.name, b.name) << i;
    EXPECT_EQ(a.type, b.type) << b.name;
    EXPECT_EQ(a.dims, b.dims) << b.name;
    ASSERT_EQ(a.nbytes, b.nbytes) << b.name;
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << b.name;
  }
}

TEST(GgufModelShared, F32FileMatchesLlamaCpp) {
  QWENQAT_REQUIRE_SHARED(shared);
  TempDir dir;
  const Tiny& t = load_tiny(shared);
  GgufModelOptions opt;
  opt.name = "tiny-qwen2-ref";
  write_qwen2_gguf(dir / "m.gguf", t.config, t.tokenizer, t.tokenizer_config, tiny_tensors(t), opt);
  const GgufFile ours(dir / "m.gguf");
  const GgufFile ref(shared / "reference" / "tiny-qwen2-f32" / "model-f32.gguf");
  expect_like_reference(ours, ref);
  EXPECT_EQ(ours.get("tokenizer.ggml.padding_token_id").as_int("p"), 151643);
  EXPECT_TRUE(ours.get("tokenizer.ggml.add_bos_token").as_bool("b"));
  for (const auto& name : t.ckpt->names()) {
    EXPECT_EQ(ours.to_f32(ours.get_tensor(gguf_tensor_name(name))),
              models::to_f32(t.ckpt->get(name)));
  }
}

TEST(GgufModelShared, ReferenceQuantizedFilesMatchLlamaCpp) {
  QWENQAT_REQUIRE_SHARED(shared);
  TempDir dir;
  const Tiny& t = load_tiny(shared);
  for (const char* f : {"model-q8_0.gguf", "model-q4_0.gguf"}) {
    const GgufFile ref(shared / "reference" / "tiny-qwen2-f32" / f);
    GgufModelOptions opt;
    opt.name = "tiny-qwen2-ref";
    write_qwen2_gguf(dir / f, t.config, t.tokenizer, t.tokenizer_config, tiny_tensors(t, &ref),
                     opt);
    expect_like_reference(GgufFile(dir / f), ref);
  }
}

// A synthetic one-layer model (no shared data needed).
models::Qwen2Config small_config() {
  models::Qwen2Config c;
  c.vocab_size = 40;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = true;
  c.bos_token_id = -1;
  c.eos_token_id = 30;
  return c;
}

Json small_tokenizer() {
  Json t;
  t["model"]["type"] = "BPE";
  for (int i = 0; i < 30; ++i) t["model"]["vocab"][std::string("t").append(std::to_string(i))] = i;
  t["model"]["merges"] = Json::array({"t1 t2", Json::array({"t3", "t4"})});
  t["added_tokens"] = Json::array(
      {Json{{"id", 30}, {"content", "<|endoftext|>"}, {"special", true}},
       Json{{"id", 31}, {"content", "<tool>"}, {"special", false}},
       // not special, but spelled like control tokens (llama.cpp's converter
       // makes them CONTROL), and a user-defined token with U+2581
       Json{{"id", 32}, {"content", "<|fim_pad|>"}, {"special", false}},
       Json{{"id", 33}, {"content", "<\xEF\xBD\x9CUser\xEF\xBD\x9C>"}, {"special", false}},
       Json{{"id", 34}, {"content", "a\xE2\x96\x81" "b"}, {"special", false}},
       Json{{"id", 45}, {"content", "<beyond>"}, {"special", true}}});
  return t;
}

std::vector<GgufModelTensor> small_tensors(const models::Qwen2Config& c,
                                           const std::vector<quant::QuantSpec>& specs) {
  std::vector<GgufModelTensor> out;
  uint32_t seed = 1;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool linear) {
    GgufModelTensor t;
    t.name = name;
    t.shape = shape;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      w[size_t(i)] = float((i * 37 + seed * 11) % 101) / 101.0f - 0.4f;
    if (linear) {
      const auto& spec = specs[seed % specs.size()];
      t.quantized = quant::quantize_matrix(w.data(), shape[0], shape[1], spec);
    } else {
      t.values = std::move(w);
    }
    ++seed;
    out.push_back(std::move(t));
  };
  const std::string p = "model.layers.0.";
  add(p + "mlp.down_proj.weight", {c.hidden_size, c.intermediate_size}, true);
  add("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, false);
  add("model.norm.weight", {c.hidden_size}, false);
  add(p + "input_layernorm.weight", {c.hidden_size}, false);
  add(p + "post_attention_layernorm.weight", {c.hidden_size}, false);
  for (const char* x : {"q", "k", "v"}) {
    const int64_t rows = std::string(x) == "q" ? c.q_dim() : c.kv_dim();
    add(p + "self_attn." + x + "_proj.weight", {rows, c.hidden_size}, true);
    add(p + "self_attn." + x + "_proj.bias", {rows}, false);
  }
  add(p + "self_attn.o_proj.weight", {c.hidden_size, c.q_dim()}, true);
  add(p + "mlp.gate_proj.weight", {c.intermediate_size, c.hidden_size}, true);
  add(p + "mlp.up_proj.weight", {c.intermediate_size, c.hidden_size}, true);
  return out;
}

TEST(GgufModel, QuantizedTensorsReadBackExactly) {
  TempDir dir;
  const auto c = small_config();
  const std::vector<quant::QuantSpec> specs = {{4, 32, true}, {8, 32, true}, {4, 32, false}};
  auto tensors = small_tensors(c, specs);
  const auto copy = tensors;
  GgufModelOptions opt;
  opt.float_type = GgmlType::kF16;
  write_qwen2_gguf(dir / "q.gguf", c, small_tokenizer(), Json(), std::move(tensors), opt);
  const GgufFile g(dir / "q.gguf");
  EXPECT_EQ(g.tensors().size(), 14u);  // tied: no output.weight
  EXPECT_EQ(g.tensors()[0].name, "token_embd.weight");
  EXPECT_EQ(g.tensors()[1].name, "blk.0.attn_norm.weight");
  EXPECT_EQ(g.tensors().back().name, "output_norm.weight");
  std::set<GgmlType> seen;
  for (const auto& t : copy) {
    const GgufTensorInfo& info = g.get_tensor(gguf_tensor_name(t.name));
    EXPECT_EQ(info.shape(), t.shape) << t.name;
    const std::vector<float> got = g.to_f32(info);
    if (t.quantized) {
      seen.insert(info.type);
      EXPECT_EQ(info.type, ggml_type_for(t.quantized->spec, t.name));
      std::vector<float> want(got.size());
      quant::dequantize_matrix(*t.quantized, want.data());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0) << t.name;
    } else if (t.shape.size() == 1) {
      EXPECT_EQ(info.type, GgmlType::kF32);
      EXPECT_EQ(got, t.values);
    } else {
      EXPECT_EQ(info.type, GgmlType::kF16);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], round_to_fp16(t.values[i]));
    }
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(g.get("qwen2.feed_forward_length").as_int("f"), 96);
  EXPECT_EQ(g.get("qwen2.attention.head_count_kv").as_int("h"), 1);
  EXPECT_FLOAT_EQ(float(g.get("qwen2.attention.layer_norm_rms_epsilon").as_float("e")), 1e-6f);
}

TEST(GgufModel, TokenizerRules) {
  TempDir dir;
  const auto c = small_config();
  Json cfg = {
      {"add_bos_token", false}, {"pad_token", {{"content", "<tool>"}}}, {"bos_token", "t5"}};
  write_qwen2_gguf(dir / "t.gguf", c, small_tokenizer(), cfg, small_tensors(c, {{8, 32, true}}));
  const GgufFile g(dir / "t.gguf");
  EXPECT_EQ(g.get("tokenizer.ggml.pre").as_string("p"), "qwen2");
  const auto tokens = g.get("tokenizer.ggml.tokens").as_strings("t");
  const auto types = g.get("tokenizer.ggml.token_type").as_ints("tt");
  ASSERT_EQ(tokens.size(), 40u);  // padded to vocab_size; id 45 cut
  EXPECT_EQ(tokens[7], "t7");
  EXPECT_EQ(types[7], 1);
  EXPECT_EQ(tokens[30], "<|endoftext|>");
  EXPECT_EQ(types[30], 3);
  EXPECT_EQ(types[31], 4);
  EXPECT_EQ(types[32], 3);
  EXPECT_EQ(types[33], 3);
  EXPECT_EQ(tokens[34], "a b");
  EXPECT_EQ(types[34], 4);
  EXPECT_EQ(tokens[39], "[PAD39]");
  EXPECT_EQ(types[39], 5);
  EXPECT_EQ(g.get("tokenizer.ggml.merges").as_strings("m"),
            (std::vector<std::string>{"t1 t2", "t3 t4"}));
  EXPECT_EQ(g.get("tokenizer.ggml.bos_token_id").as_int("b"), 5);   // from tokenizer_config
  EXPECT_EQ(g.get("tokenizer.ggml.eos_token_id").as_int("e"), 30);  // from config
  EXPECT_EQ(g.get("tokenizer.ggml.padding_token_id").as_int("p"), 31);
  EXPECT_FALSE(g.get("tokenizer.ggml.add_bos_token").as_bool("a"));
  EXPECT_EQ(g.get("general.file_type").as_int("f"), 7);  // mostly Q8_0
  // a tokenizer that is not BPE, or has a bad vocab entry, is refused
  Json bad = small_tokenizer();
  bad["model"]["type"] = "Unigram";
  EXPECT_THROW(write_qwen2_gguf(dir / "b.gguf", c, bad, Json(), small_tensors(c, {{8, 32, true}})),
               Error);
  bad = small_tokenizer();
  bad["model"]["vocab"]["x"] = "seven";
  EXPECT_THROW(write_qwen2_gguf(dir / "b.gguf", c, bad, Json(), small_tensors(c, {{8, 32, true}})),
               Error);
  EXPECT_THROW(write_qwen2_gguf(dir / "b.gguf", c, std::string_view("{not json"), Json(),
                                small_tensors(c, {{8, 32, true}})),
               Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "b.gguf"));
}

void expect_refused(std::vector<GgufModelTensor> tensors, const std::string& part,
                    models::Qwen2Config c = small_config()) {
  TempDir dir;
  try {
    write_qwen2_gguf(dir / "x.gguf", c, small_tokenizer(), Json(), std::move(tensors));
    ADD_FAILURE() << "no error, expected: " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf"));
}

TEST(GgufModel, RefusesBadModels) {
  const auto c = small_config();
  expect_refused(small_tensors(c, {{4, 0, true}}),
                 "w4c has no exact llama.cpp tensor type; GGUF export supports w8g32 -> Q8_0, "
                 "w4g32 -> Q4_0, w4g32a -> Q4_1 and unquantized -> F32/F16");
  auto t = small_tensors(c, {{4, 32, true}});
  t.pop_back();
  expect_refused(t, "tensor model.layers.0.mlp.up_proj.weight is missing");
  t = small_tensors(c, {{4, 32, true}});
  t.push_back(t[2]);
  expect_refused(t, "given twice");
  t = small_tensors(c, {{4, 32, true}});
  t[2].name = "model.layers.1.input_layernorm.weight";
  expect_refused(t, "unexpected tensor model.layers.1.input_layernorm.weight");
  t = small_tensors(c, {{4, 32, true}});
  t[1].shape = {41, 64};
  expect_refused(t, "has shape [41, 64], the config implies [40, 64]");
  t = small_tensors(c, {{4, 32, true}});
  t[2].values.pop_back();
  expect_refused(t, "63 values");
  t = small_tensors(c, {{4, 32, true}});
  t[2].raw_type = GgmlType::kF32;
  expect_refused(t, "exactly one of");
  auto untied = c;
  untied.tie_word_embeddings = false;
  expect_refused(small_tensors(c, {{4, 32, true}}), "lm_head.weight is missing", untied);
}

}  // namespace
}  // namespace qwenqat::format
