// Tests of inspect_model_file / inspect_table: tensor classes, bytes and bits
// per weight including scales and offsets, per-class totals, the file size and
// the bf16 comparison, computed independently from the synthetic model.
#include "export/format/h5_inspect.h"

#include <gtest/gtest.h>

#include <map>

#include "data/util/check.h"
#include "tests/export/format/h5_test_model.h"
#include "tests/util/test_util.h"

namespace qwenqat::format {
namespace {

using testing::TempDir;

TEST(H5Inspect, TensorClasses) {
  EXPECT_EQ(tensor_class("model.embed_tokens.weight"), "embeddings");
  EXPECT_EQ(tensor_class("lm_head.weight"), "head");
  EXPECT_EQ(tensor_class("model.layers.3.self_attn.q_proj.bias"), "attention");
  EXPECT_EQ(tensor_class("model.layers.3.mlp.down_proj.weight"), "mlp");
  EXPECT_EQ(tensor_class("model.layers.3.input_layernorm.weight"), "other");
  EXPECT_EQ(tensor_class("model.norm.weight"), "other");
}

TEST(H5Inspect, ReportMatchesTheWrittenModel) {
  TempDir dir;
  const auto m = testing::make_tiny_model();
  testing::write_tiny_model(m, dir / "m.h5");
  const Json r = inspect_model_file(dir / "m.h5");

  // Expected bytes and params per tensor, from the original data.
  std::map<std::string, std::pair<int64_t, int64_t>> want;  // name -> (bytes, params)
  for (const auto& [name, f] : m.floats) {
    int64_t n = 1;
    for (int64_t d : f.shape) n *= d;
    want[name] = {int64_t(f.bytes.size()), n};
  }
  for (const auto& [name, p] : m.packed) {
    want[name] = {int64_t(p.data.size() + 2 * p.scales.size() + 2 * p.offsets.size()),
                  p.rows * p.cols};
  }
  ASSERT_EQ(r["tensors"].size(), want.size());
  std::map<std::string, std::pair<int64_t, int64_t>> by_class;
  int64_t total_bytes = 0, total_params = 0;
  for (const Json& t : r["tensors"]) {
    const std::string name = t["name"];
    SCOPED_TRACE(name);
    ASSERT_TRUE(want.count(name));
    EXPECT_EQ(t["bytes"].get<int64_t>(), want[name].first);
    EXPECT_EQ(t["params"].get<int64_t>(), want[name].second);
    EXPECT_EQ(t["bf16_bytes"].get<int64_t>(), 2 * want[name].second);
    EXPECT_DOUBLE_EQ(t["bits_per_weight"].get<double>(),
                     8.0 * double(want[name].first) / double(want[name].second));
    EXPECT_EQ(t["class"], tensor_class(name));
    by_class[t["class"]].first += want[name].first;
    by_class[t["class"]].second += want[name].second;
    total_bytes += want[name].first;
    total_params += want[name].second;
  }
  // Known bits per weight of a few schemes (scales/offsets included).
  auto bpw = [&](const std::string& name) {
    for (const Json& t : r["tensors"]) {
      if (t["name"] == name) return t["bits_per_weight"].get<double>();
    }
    return -1.0;
  };
  EXPECT_DOUBLE_EQ(bpw("model.layers.0.self_attn.q_proj.weight"), 4.5);  // w4g32: 4 + 16/32
  EXPECT_DOUBLE_EQ(bpw("model.layers.0.self_attn.k_proj.weight"), 6.0);  // w4g16a: 4 + 32/16
  EXPECT_DOUBLE_EQ(bpw("model.embed_tokens.weight"), 8.25);              // w8c, 64 cols
  EXPECT_DOUBLE_EQ(bpw("model.layers.0.self_attn.v_proj.weight"),        // w4g8, 40 cols:
                   (32.0 * 8 + 5 * 16) / 40.0);                          // padded chunks
  EXPECT_DOUBLE_EQ(bpw("model.norm.weight"), 32.0);

  const std::vector<std::string> order = {"embeddings", "attention", "mlp", "head", "other"};
  ASSERT_EQ(r["classes"].size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const Json& c = r["classes"][i];
    EXPECT_EQ(c["class"], order[i]);
    EXPECT_EQ(c["bytes"].get<int64_t>(), by_class[order[i]].first);
    EXPECT_EQ(c["params"].get<int64_t>(), by_class[order[i]].second);
    EXPECT_EQ(c["bf16_bytes"].get<int64_t>(), 2 * by_class[order[i]].second);
  }
  const Json& tot = r["totals"];
  const int64_t file_bytes = int64_t(std::filesystem::file_size(dir / "m.h5"));
  EXPECT_EQ(tot["tensor_bytes"].get<int64_t>(), total_bytes);
  EXPECT_EQ(tot["params"].get<int64_t>(), total_params);
  EXPECT_EQ(tot["bf16_bytes"].get<int64_t>(), 2 * total_params);
  EXPECT_EQ(tot["file_bytes"].get<int64_t>(), file_bytes);
  EXPECT_EQ(tot["metadata_bytes"].get<int64_t>(), file_bytes - total_bytes);
  EXPECT_DOUBLE_EQ(tot["file_to_bf16_ratio"].get<double>(),
                   double(file_bytes) / double(2 * total_params));
  EXPECT_EQ(r["model"]["hidden_size"], 64);
  EXPECT_EQ(r["prompt_template"], "deepseek-r1");
  EXPECT_EQ(r["format_version"], "1." + std::to_string(kH5FormatVersionMinor));
  EXPECT_EQ(r["quantization_config"]["default"], "w4g32");
}

TEST(H5Inspect, TableNamesEveryTensorAndClass) {
  TempDir dir;
  testing::write_tiny_model(testing::make_tiny_model(), dir / "m.h5");
  const Json r = inspect_model_file(dir / "m.h5");
  const std::string table = inspect_table(r);
  for (const Json& t : r["tensors"]) {
    EXPECT_NE(table.find(t["name"].get<std::string>()), std::string::npos) << t["name"];
  }
  for (const char* s : {"embeddings", "attention", "MLP", "head", "norms/other", "total",
                        "bf16 size", "w4g16a", "w3g32a", "bf16", "f16", "4.500"}) {
    EXPECT_NE(table.find(s), std::string::npos) << s << "\n" << table;
  }
  EXPECT_THROW(inspect_table(Json::object()), Error);
}

TEST(H5Inspect, BadFilesThrow) {
  TempDir dir;
  EXPECT_THROW(inspect_model_file(dir / "absent.h5"), Error);
}

}  // namespace
}  // namespace qwenqat::format
