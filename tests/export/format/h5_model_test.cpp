// Round-trip tests of the qwenqat HDF5 model file: float (f32/f16/bf16) and
// packed tensors of several schemes written by H5ModelWriter and read back
// zero-copy by H5ModelFile, dequantization bit for bit against
// quant::dequantize_one, byte-identical files for identical content, and
// readability by the standard HDF5 tools.
#include <gtest/gtest.h>

#include <cstring>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "export/format/h5_model_reader.h"
#include "tests/export/format/h5_test_model.h"
#include "tests/util/test_util.h"

namespace qwenqat::format {
namespace {

using testing::TempDir;

TEST(H5Model, RoundTripTextsAndAttributes) {
  TempDir dir;
  const auto m = testing::make_tiny_model();
  testing::write_tiny_model(m, dir / "m.h5");
  const H5ModelFile f(dir / "m.h5");
  EXPECT_EQ(f.format_version_major(), 1);
  EXPECT_EQ(f.format_version_minor(), kH5FormatVersionMinor);
  EXPECT_EQ(f.writer(), "qwenqat 0.1.0");
  EXPECT_FALSE(f.created().has_value());
  EXPECT_EQ(f.prompt_template(), "deepseek-r1");
  EXPECT_EQ(f.config_text(), testing::kTinyConfig);
  EXPECT_EQ(f.tokenizer_json_text(), testing::kTinyTokenizer);
  EXPECT_EQ(f.tokenizer_config_text(), testing::kTinyTokenizerConfig);
  EXPECT_EQ(f.quantization_config_text(), testing::kTinyQuantConfig);
  EXPECT_EQ(f.quantization_config()["lm_head"], "w8c");
  const auto cfg = f.config();
  EXPECT_EQ(cfg.hidden_size, 64);
  EXPECT_EQ(cfg.num_key_value_heads, 2);
  EXPECT_EQ(f.tensors().size(), m.floats.size() + m.packed.size());
  for (size_t i = 1; i < f.tensors().size(); ++i) {
    EXPECT_LT(f.tensors()[i - 1].name, f.tensors()[i].name);
  }
  EXPECT_EQ(f.find("no.such.tensor"), nullptr);
  EXPECT_THROW(f.get("no.such.tensor"), Error);
}

TEST(H5Model, FloatTensorsAreZeroCopyAndExact) {
  TempDir dir;
  const auto m = testing::make_tiny_model();
  testing::write_tiny_model(m, dir / "m.h5");
  const H5ModelFile f(dir / "m.h5");
  const uint8_t* begin = f.mapped().data();
  for (const auto& [name, c] : m.floats) {
    SCOPED_TRACE(name);
    const H5Tensor& t = f.get(name);
    ASSERT_FALSE(t.quantized);
    EXPECT_EQ(t.data.dtype, c.dtype);
    EXPECT_EQ(t.shape, c.shape);
    EXPECT_EQ(t.data.shape, c.shape);
    ASSERT_EQ(t.data.nbytes, c.bytes.size());
    EXPECT_EQ(t.file_bytes, c.bytes.size());
    // Zero copy: the pointer lies inside the map, aligned as documented.
    EXPECT_GE(t.data.data, begin);
    EXPECT_LE(t.data.data + t.data.nbytes, begin + f.mapped().size());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data.data) % kH5Alignment, 0u);
    EXPECT_EQ(std::memcmp(t.data.data, c.bytes.data(), c.bytes.size()), 0);
    const auto values = f.to_f32(name);
    ASSERT_EQ(values.size() * models::dtype_size(c.dtype), c.bytes.size());
    for (size_t i = 0; i < values.size(); ++i) {
      float want;
      if (c.dtype == models::DType::kF32) {
        std::memcpy(&want, c.bytes.data() + 4 * i, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, c.bytes.data() + 2 * i, 2);
        want = c.dtype == models::DType::kF16 ? fp16_to_f32(h) : bf16_to_f32(h);
      }
      ASSERT_EQ(f32_bits(values[i]), f32_bits(want)) << "element " << i;
    }
    EXPECT_THROW(f.quantized_matrix(name), Error);
  }
}

TEST(H5Model, PackedTensorsAreZeroCopyAndDequantizeBitForBit) {
  TempDir dir;
  const auto m = testing::make_tiny_model();
  testing::write_tiny_model(m, dir / "m.h5");
  const H5ModelFile f(dir / "m.h5");
  for (const auto& [name, q] : m.quantized) {
    SCOPED_TRACE(name + " " + q.spec.name());
    const PackedMatrix& p = m.packed.at(name);
    const H5Tensor& t = f.get(name);
    ASSERT_TRUE(t.quantized);
    EXPECT_EQ(t.scheme(), q.spec.name());
    EXPECT_EQ(t.shape, (std::vector<int64_t>{q.rows, q.cols}));
    const PackedView& v = t.packed;
    EXPECT_EQ(v.spec, q.spec);
    EXPECT_EQ(v.rows, p.rows);
    EXPECT_EQ(v.cols, p.cols);
    EXPECT_EQ(v.row_bytes, p.row_bytes);
    EXPECT_EQ(std::memcmp(v.data, p.data.data(), p.data.size()), 0);
    EXPECT_EQ(std::memcmp(v.scales, p.scales.data(), p.scales.size() * 2), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % kH5Alignment, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.scales) % kH5Alignment, 0u);
    if (q.spec.symmetric) {
      EXPECT_EQ(v.offsets, nullptr);
    } else {
      ASSERT_NE(v.offsets, nullptr);
      EXPECT_EQ(std::memcmp(v.offsets, p.offsets.data(), p.offsets.size() * 2), 0);
    }
    EXPECT_EQ(t.file_bytes, p.data.size() + 2 * p.scales.size() + 2 * p.offsets.size());

    const quant::QuantizedMatrix back = f.quantized_matrix(name);
    EXPECT_EQ(back.codes, q.codes);
    EXPECT_EQ(back.scales, q.scales);
    EXPECT_EQ(back.offsets, q.offsets);

    const auto values = f.to_f32(name);
    ASSERT_EQ(int64_t(values.size()), q.rows * q.cols);
    const int64_t g = q.spec.group_len(q.cols);
    for (int64_t r = 0; r < q.rows; ++r) {
      for (int64_t j = 0; j < q.cols; ++j) {
        const size_t i = size_t(r * q.cols + j);
        const float want = quant::dequantize_one(q.codes[i], q.params(r, j / g), q.spec);
        ASSERT_EQ(f32_bits(values[i]), f32_bits(want)) << "row " << r << " col " << j;
      }
    }
  }
}

// Per-token activation bits (format 1.1): recorded on the tensors they are set
// for, 0 (absent) elsewhere; bad calls throw.
TEST(H5Model, ActivationBitsRoundTrip) {
  TempDir dir;
  const auto m = testing::make_tiny_model();
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  {
    H5ModelWriter w(dir / "m.h5");
    w.set_config_json(testing::kTinyConfig);
    for (const auto& [name, p] : m.packed) w.add_packed_tensor(name, view_of(p));
    EXPECT_THROW(w.set_activation_bits("no.such.weight", 8), Error);
    EXPECT_THROW(w.set_activation_bits(q, 1), Error);
    w.set_activation_bits(q, 8);
    w.commit();
  }
  const H5ModelFile f(dir / "m.h5");
  EXPECT_EQ(f.format_version_minor(), kH5FormatVersionMinor);
  for (const auto& [name, p] : m.packed) EXPECT_EQ(f.get(name).activation_bits, name == q ? 8 : 0);
}

TEST(H5Model, ConvertsF32ToHalfTypesOnWrite) {
  TempDir dir;
  const auto v = testing::random_floats(48, 7);
  {
    H5ModelWriter w(dir / "m.h5");
    w.set_config_json(testing::kTinyConfig);
    w.add_float_tensor_f32("a", models::DType::kF16, {6, 8}, v);
    w.add_float_tensor_f32("b", models::DType::kBF16, {48}, v);
    w.add_float_tensor_f32("c", models::DType::kF32, {3, 16}, v);
    w.commit();
  }
  const H5ModelFile f(dir / "m.h5");
  const auto a = f.to_f32("a"), b = f.to_f32("b"), c = f.to_f32("c");
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(f32_bits(a[i]), f32_bits(fp16_to_f32(f32_to_fp16(v[i]))));
    EXPECT_EQ(f32_bits(b[i]), f32_bits(bf16_to_f32(f32_to_bf16(v[i]))));
    EXPECT_EQ(f32_bits(c[i]), f32_bits(v[i]));
  }
  EXPECT_TRUE(f.tokenizer_json_text().empty());
  EXPECT_TRUE(f.prompt_template().empty());
  EXPECT_TRUE(f.quantization_config().is_null());
}

TEST(H5Model, SameContentGivesByteIdenticalFiles) {
  TempDir dir;
  const auto m = testing::make_tiny_model();
  testing::write_tiny_model(m, dir / "a.h5");
  testing::write_tiny_model(testing::make_tiny_model(), dir / "b.h5");
  const std::string a = read_file(dir / "a.h5"), b = read_file(dir / "b.h5");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "two exports of the same content differ";
  // Different content gives a different file (the comparison can fail).
  testing::write_tiny_model(testing::make_tiny_model(2), dir / "c.h5");
  EXPECT_FALSE(a == read_file(dir / "c.h5"));
}

TEST(H5Model, CreatedTimestampOnlyWhenAsked) {
  TempDir dir;
  testing::write_tiny_model(testing::make_tiny_model(), dir / "m.h5",
                            {.write_created_timestamp = true});
  const H5ModelFile f(dir / "m.h5");
  ASSERT_TRUE(f.created().has_value());
  EXPECT_EQ(f.created()->size(), 20u);  // 2026-01-02T03:04:05Z
  EXPECT_EQ(f.created()->back(), 'Z');
}

TEST(H5Model, NoTempFileLeftAfterCommit) {
  TempDir dir;
  testing::write_tiny_model(testing::make_tiny_model(), dir / "m.h5");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename(), "m.h5");
    ++n;
  }
  EXPECT_EQ(n, 1);
}

TEST(H5Model, StandardHdf5ToolsReadTheFile) {
  if (std::system("command -v h5ls > /dev/null 2>&1") != 0) GTEST_SKIP() << "h5ls is absent";
  TempDir dir;
  testing::write_tiny_model(testing::make_tiny_model(), dir / "m.h5");
  const std::string file = (dir / "m.h5").string();
  const std::string out = (dir / "ls.txt").string();
  ASSERT_EQ(std::system(("h5ls -r " + file + " > " + out + " 2>&1").c_str()), 0);
  const std::string listing = read_file(out);
  EXPECT_NE(listing.find("/tensors/model.layers.0.mlp.up_proj.weight/codes"), std::string::npos)
      << listing;
  EXPECT_NE(listing.find("/config.json"), std::string::npos) << listing;
  if (std::system("command -v h5dump > /dev/null 2>&1") == 0) {
    ASSERT_EQ(std::system(("h5dump -A " + file + " > " + out + " 2>&1").c_str()), 0);
    const std::string dump = read_file(out);
    EXPECT_NE(dump.find("\"qwenqat\""), std::string::npos) << dump.substr(0, 2000);
    EXPECT_NE(dump.find("\"w4g16a\""), std::string::npos);
  }
}

TEST(H5Model, RealConfigAndTokenizerFilesRoundTrip) {
  QWENQAT_REQUIRE_SHARED(shared);
  const auto model_dir = shared / "models/deepseek-r1-distill-qwen-1.5b";
  const std::string config = read_file(model_dir / "config.json");
  const std::string tokenizer = read_file(model_dir / "tokenizer.json");
  const std::string tokenizer_config = read_file(model_dir / "tokenizer_config.json");
  TempDir dir;
  {
    H5ModelWriter w(dir / "m.h5");
    w.set_config_json(config);
    w.set_tokenizer_json(tokenizer);
    w.set_tokenizer_config_json(tokenizer_config);
    w.add_float_tensor_f32("model.norm.weight", models::DType::kBF16, {1536},
                           std::vector<float>(1536, 1.0f));
    w.commit();
  }
  const H5ModelFile f(dir / "m.h5");
  EXPECT_TRUE(f.config_text() == config);
  EXPECT_TRUE(f.tokenizer_json_text() == tokenizer);  // ~7 MB, byte for byte
  EXPECT_TRUE(f.tokenizer_config_text() == tokenizer_config);
  const auto c = f.config();
  EXPECT_EQ(c.hidden_size, 1536);
  EXPECT_EQ(c.num_hidden_layers, 28);
  EXPECT_EQ(c.vocab_size, 151936);
}

}  // namespace
}  // namespace qwenqat::format
