// Tests for export/exporter.h: a QAT checkpoint (weights + learned scales +
// quantization.json) exported to HDF5, GGUF and safetensors reproduces the
// fake-quantized weights bit for bit; refusals and bad input are clear.
#include "export/exporter.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "data/tokenizer/write_tokenizer.h"
#include "data/util/check.h"
#include "data/util/half.h"
#include "export/format/gguf_reader.h"
#include "export/format/h5_model_reader.h"
#include "models/checkpoint/qwen2_config.h"
#include "qat/qat_config.h"
#include "tests/util/test_util.h"

namespace qwenqat::exporter {
namespace {
namespace fs = std::filesystem;

models::Qwen2Config tiny_config(bool tied) {
  models::Qwen2Config c;
  c.vocab_size = 261;
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  return c;
}

// Writes a QAT-style checkpoint: random weights, scales (and offsets) as the
// quantizers would hold them after some training (init params, perturbed).
void write_qat_checkpoint(const fs::path& dir, const models::Qwen2Config& c,
                          const qat::QatConfig& qc) {
  fs::create_directories(dir);
  write_json_file(dir / "config.json", c.to_json());
  data::write_byte_level_tokenizer(dir, {});
  write_json_file(dir / "quantization.json", Json{{"config", qc.to_json()}});
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<std::vector<float>> store;
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
    store.push_back(std::move(v));
    shapes.emplace_back(name, std::move(shape));
  };
  const int64_t h = c.hidden_size;
  for (const auto& name : qwen2_tensor_names(c.num_hidden_layers, c.tie_word_embeddings)) {
    std::vector<int64_t> shape;
    if (name.ends_with("layernorm.weight") || name == "model.norm.weight")
      shape = {h};
    else if (name == "model.embed_tokens.weight" || name == "lm_head.weight")
      shape = {c.vocab_size, h};
    else if (name.find("q_proj.weight") != std::string::npos)
      shape = {c.q_dim(), h};
    else if (name.find("q_proj.bias") != std::string::npos)
      shape = {c.q_dim()};
    else if (name.find("_proj.bias") != std::string::npos)
      shape = {c.kv_dim()};
    else if (name.find("k_proj.weight") != std::string::npos ||
             name.find("v_proj.weight") != std::string::npos)
      shape = {c.kv_dim(), h};
    else if (name.find("o_proj") != std::string::npos)
      shape = {h, c.q_dim()};
    else if (name.find("down_proj") != std::string::npos)
      shape = {h, c.intermediate_size};
    else
      shape = {c.intermediate_size, h};
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = nd(rng);
    if (shape.size() == 2) {
      const auto scheme = qc.scheme_for(name.substr(0, name.size() - 7));
      if (scheme.quantize) {
        const auto& s = scheme.weight;
        const int64_t g = s.group_len(shape[1]), groups = s.groups_per_row(shape[1]);
        std::vector<float> scale, offset;
        for (int64_t r = 0; r < shape[0]; ++r)
          for (int64_t k = 0; k < groups; ++k) {
            auto p = quant::choose_qparams(v.data() + r * shape[1] + k * g, g, s);
            scale.push_back(p.scale * 1.013f);  // "learned": off the fp16 grid
            offset.push_back(p.offset);
          }
        const std::string layer = name.substr(0, name.size() - 7);
        add(layer + ".weight_fake_quant.scale", {shape[0], groups}, scale);
        if (!s.symmetric) add(layer + ".weight_fake_quant.offset", {shape[0], groups}, offset);
      }
    }
    add(name, shape, std::move(v));
  }
  std::vector<models::TensorToWrite> list;
  for (size_t i = 0; i < store.size(); ++i)
    list.push_back({shapes[i].first,
                    models::DType::kF32,
                    shapes[i].second,
                    {reinterpret_cast<const uint8_t*>(store[i].data()), store[i].size() * 4}});
  models::write_safetensors(dir / "model.safetensors", list);
}

// fake_quant(w) with the checkpoint's scales, computed with the torch-free
// primitives (what the LibTorch fake-quant forward is tested to equal).
std::vector<float> fake_quant_reference(const models::Checkpoint& ck, const std::string& layer,
                                        const quant::QuantSpec& s) {
  const auto& wt = ck.get(layer + ".weight");
  const auto w = models::to_f32(wt);
  const auto scale = models::to_f32(ck.get(layer + ".weight_fake_quant.scale"));
  std::vector<float> offset;
  if (!s.symmetric) offset = models::to_f32(ck.get(layer + ".weight_fake_quant.offset"));
  const int64_t cols = wt.shape[1], g = s.group_len(cols), groups = s.groups_per_row(cols);
  std::vector<float> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const int64_t r = int64_t(i) / cols, k = (int64_t(i) % cols) / g;
    quant::GroupParams p;
    p.scale = round_to_fp16(std::clamp(scale[r * groups + k], quant::kMinScale, quant::kMaxHalf));
    p.offset = s.symmetric ? 0.0f : round_to_fp16(offset[r * groups + k]);
    out[i] = quant::fake_quantize_one(w[i], p, s);
  }
  return out;
}

void expect_bits_equal(const std::vector<float>& a, const std::vector<float>& b,
                       const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << what;
}

class ExporterSchemes : public ::testing::TestWithParam<std::string> {};

TEST_P(ExporterSchemes, H5DequantizesToFakeQuantExactly) {
  testing::TempDir dir;
  auto qc = qat::QatConfig::from_preset(GetParam());
  const auto c = tiny_config(false);
  write_qat_checkpoint(dir / "ckpt", c, qc);
  ExportOptions o;
  o.model = dir / "ckpt";
  o.out_h5 = dir / "m.h5";
  o.progress = false;
  run_export(o);
  format::H5ModelFile f(o.out_h5);
  models::Checkpoint ck(o.model);
  int quantized = 0;
  for (const auto& name : qwen2_tensor_names(c.num_hidden_layers, false)) {
    const std::string layer = name.substr(0, name.size() - 7);
    const auto scheme = name.ends_with(".weight") && ck.get(name).shape.size() == 2
                            ? qc.scheme_for(layer)
                            : qat::LayerScheme{false, {}, 0};
    if (scheme.quantize) {
      ++quantized;
      expect_bits_equal(f.to_f32(name), fake_quant_reference(ck, layer, scheme.weight), name);
    } else {
      expect_bits_equal(f.to_f32(name), models::to_f32(ck.get(name)), name);
    }
  }
  EXPECT_GE(quantized, 14);
}

INSTANTIATE_TEST_SUITE_P(Presets, ExporterSchemes,
                         ::testing::Values("w4g32", "w4g128", "w8c", "w4g32a", "w2g32", "w3g32",
                                           "w4g32-mixed"));

TEST(Exporter, DeterministicBytes) {
  testing::TempDir dir;
  write_qat_checkpoint(dir / "ckpt", tiny_config(true), qat::QatConfig::from_preset("w4g32"));
  ExportOptions o;
  o.model = dir / "ckpt";
  o.progress = false;
  o.out_h5 = dir / "a.h5";
  run_export(o);
  o.out_h5 = dir / "b.h5";
  run_export(o);
  EXPECT_EQ(read_file(dir / "a.h5"), read_file(dir / "b.h5"));
}

// --float-dtype auto keeps a bf16 checkpoint's float tensors in bf16 (exact,
// half the bytes) and a f32 one's in f32; an explicit dtype wins.
TEST(Exporter, FloatDtypeFollowsTheCheckpoint) {
  testing::TempDir dir;
  const auto c = tiny_config(false);
  write_qat_checkpoint(dir / "ckpt", c, qat::QatConfig::from_preset("w4g32"));
  // The same checkpoint with bf16 weights (scales stay f32, as training saves them).
  fs::create_directories(dir / "bf16");
  for (const char* f : {"config.json", "quantization.json", "tokenizer.json"})
    fs::copy_file(dir / "ckpt" / f, dir / "bf16" / f);
  std::vector<std::vector<uint16_t>> halves;
  std::vector<std::vector<float>> floats;
  std::vector<models::TensorToWrite> list;
  {
    const models::Checkpoint ck(dir / "ckpt");
    for (const auto& name : ck.names()) {
      const auto& t = ck.get(name);
      auto v = models::to_f32(t);
      if (name.find("fake_quant") != std::string::npos) {
        floats.push_back(std::move(v));
        list.push_back(
            {name,
             models::DType::kF32,
             t.shape,
             {reinterpret_cast<const uint8_t*>(floats.back().data()), floats.back().size() * 4}});
      } else {
        std::vector<uint16_t> h(v.size());
        for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_bf16(v[i]);
        halves.push_back(std::move(h));
        list.push_back(
            {name,
             models::DType::kBF16,
             t.shape,
             {reinterpret_cast<const uint8_t*>(halves.back().data()), halves.back().size() * 2}});
      }
    }
  }
  models::write_safetensors(dir / "bf16" / "model.safetensors", list);
  ExportOptions o;
  o.progress = false;
  o.model = dir / "bf16";
  o.out_h5 = dir / "bf16.h5";
  EXPECT_EQ(run_export(o).at("float_dtype"), "BF16");
  const format::H5ModelFile h5(dir / "bf16.h5");
  EXPECT_EQ(h5.get("model.embed_tokens.weight").scheme(), "bf16");
  const models::Checkpoint ck(dir / "bf16");
  expect_bits_equal(h5.to_f32("lm_head.weight"), models::to_f32(ck.get("lm_head.weight")),
                    "lm_head");
  o.model = dir / "ckpt";
  o.out_h5 = dir / "f32.h5";
  EXPECT_EQ(run_export(o).at("float_dtype"), "F32");
  o.float_dtype = models::DType::kF16;
  o.out_h5 = dir / "f16.h5";
  EXPECT_EQ(run_export(o).at("float_dtype"), "F16");
}

TEST(Exporter, GgufExactTypesEqualH5) {
  for (const char* preset : {"w4g32", "w8g32", "w4g32a"}) {
    testing::TempDir dir;
    write_qat_checkpoint(dir / "ckpt", tiny_config(false), qat::QatConfig::from_preset(preset));
    ExportOptions o;
    o.model = dir / "ckpt";
    o.progress = false;
    o.out_h5 = dir / "m.h5";
    o.out_gguf = dir / "m.gguf";
    run_export(o);
    format::H5ModelFile h5(o.out_h5);
    format::GgufFile gguf(o.out_gguf);
    EXPECT_EQ(gguf.get_tensor("blk.1.ffn_down.weight").type != format::GgmlType::kF32, true);
    for (const auto& [hf, gg] : std::vector<std::pair<std::string, std::string>>{
             {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
             {"model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"},
             {"lm_head.weight", "output.weight"}})
      expect_bits_equal(gguf.to_f32(gguf.get_tensor(gg)), h5.to_f32(hf),
                        std::string(preset) + " " + hf);
  }
}

// Per-token activation bits: on the .h5 tensors of the layers trained with
// them (not the embedding or lm_head), and a note in the GGUF report, which
// cannot record them.
TEST(Exporter, ActivationBitsAreRecorded) {
  testing::TempDir dir;
  write_qat_checkpoint(dir / "ckpt", tiny_config(false), qat::QatConfig::from_preset("w4g32a8"));
  ExportOptions o;
  o.model = dir / "ckpt";
  o.progress = false;
  o.out_h5 = dir / "m.h5";
  o.out_gguf = dir / "m.gguf";
  const Json s = run_export(o);
  format::H5ModelFile h5(o.out_h5);
  EXPECT_EQ(h5.get("model.layers.0.self_attn.q_proj.weight").activation_bits, 8);
  EXPECT_EQ(h5.get("model.layers.1.mlp.down_proj.weight").activation_bits, 8);
  EXPECT_EQ(h5.get("model.embed_tokens.weight").activation_bits, 0);
  EXPECT_EQ(h5.get("lm_head.weight").activation_bits, 0);
  ASSERT_TRUE(s["gguf"].contains("note")) << s.dump();
  EXPECT_NE(s["gguf"]["note"].get<std::string>().find("per-token activation"), std::string::npos);
}

TEST(Exporter, GgufRefusesInexactSchemeUnlessAllowed) {
  testing::TempDir dir;
  write_qat_checkpoint(dir / "ckpt", tiny_config(false), qat::QatConfig::from_preset("w4g128"));
  ExportOptions o;
  o.model = dir / "ckpt";
  o.progress = false;
  o.out_gguf = dir / "m.gguf";
  try {
    run_export(o);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("w4g32 (Q4_0)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--gguf-allow-requant"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(o.out_gguf));
  o.gguf_allow_requant = true;
  Json s = run_export(o);
  ASSERT_FALSE(s["gguf"]["requantized"].empty());
  const double err = s["gguf"]["requantized"][0]["relative_rms_error"].get<double>();
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 0.2);
  format::GgufFile g(o.out_gguf);
  EXPECT_EQ(g.tensors().size(), 2u + 2 * 12 + 1);
}

TEST(Exporter, SafetensorsHoldTheFakeQuantizedWeights) {
  testing::TempDir dir;
  auto qc = qat::QatConfig::from_preset("w4g32");
  write_qat_checkpoint(dir / "ckpt", tiny_config(true), qc);
  ExportOptions o;
  o.model = dir / "ckpt";
  o.progress = false;
  o.out_safetensors = dir / "fq";
  run_export(o);
  models::Checkpoint out(o.out_safetensors), ck(o.model);
  const std::string layer = "model.layers.1.mlp.up_proj";
  expect_bits_equal(models::to_f32(out.get(layer + ".weight")),
                    fake_quant_reference(ck, layer, qc.weight), layer);
  EXPECT_EQ(out.find(layer + ".weight_fake_quant.scale"), nullptr);
  EXPECT_TRUE(fs::exists(o.out_safetensors / "tokenizer.json"));
  models::Qwen2Config::load(o.out_safetensors);
}

TEST(Exporter, CheckpointWithoutQuantizationStateIsRefused) {
  testing::TempDir dir;
  write_qat_checkpoint(dir / "ckpt", tiny_config(false), qat::QatConfig::from_preset("w4g32"));
  fs::remove(dir / "ckpt/quantization.json");
  ExportOptions o;
  o.model = dir / "ckpt";
  o.out_h5 = dir / "m.h5";
  o.progress = false;
  try {
    run_export(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no quantization state"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(o.out_h5));
}

TEST(Exporter, MissingScaleTensorIsNamed) {
  testing::TempDir dir;
  auto qc = qat::QatConfig::from_preset("w4g32");
  write_qat_checkpoint(dir / "ckpt", tiny_config(false), qc);
  qc.overrides.push_back({"lm_head", "", qat::LayerScheme{true, {8, 0, true}, 0}});
  write_json_file(dir / "ckpt/quantization.json", Json{{"config", qc.to_json()}});
  ExportOptions o;
  o.model = dir / "ckpt";
  o.out_h5 = dir / "m.h5";
  o.progress = false;
  try {
    run_export(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.weight_fake_quant.scale"), std::string::npos)
        << e.what();
  }
}

TEST(Exporter, UnwritableOutputLeavesNothing) {
  testing::TempDir dir;
  write_qat_checkpoint(dir / "ckpt", tiny_config(false), qat::QatConfig::from_preset("w4g32"));
  ExportOptions o;
  o.model = dir / "ckpt";
  o.out_h5 = dir / "no-such-dir/m.h5";
  o.progress = false;
  EXPECT_THROW(run_export(o), Error);
  EXPECT_FALSE(fs::exists(dir / "no-such-dir"));
}

}  // namespace
}  // namespace qwenqat::exporter
