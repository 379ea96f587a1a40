// Tests for models/checkpoint/safetensors.h: round trip, sharded checkpoints,
// and every kind of corrupt file giving one clear error.
#include "models/checkpoint/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "data/util/check.h"
#include "data/util/half.h"
#include "tests/util/test_util.h"

namespace qwenqat::models {
namespace {

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Writes a file with a hand-made header (for corrupt-file tests).
void write_raw(const std::filesystem::path& p, const std::string& header, size_t data_bytes,
               int64_t claimed_len = -1) {
  std::ofstream out(p, std::ios::binary);
  uint64_t n = claimed_len >= 0 ? uint64_t(claimed_len) : header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\0');
}

std::string error_of(const std::filesystem::path& p) {
  try {
    SafetensorsFile f(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, WriteReadRoundTrip) {
  testing::TempDir dir;
  auto a = f32_bytes({1, 2, 3, 4, 5, 6});
  std::vector<uint16_t> h = {f32_to_bf16(1.5f), f32_to_bf16(-2.0f)};
  std::vector<uint16_t> g = {f32_to_fp16(0.25f)};
  write_safetensors(dir / "m.safetensors",
                    {{"a.weight", DType::kF32, {2, 3}, a},
                     {"b", DType::kBF16, {2}, {reinterpret_cast<uint8_t*>(h.data()), 4}},
                     {"c", DType::kF16, {1}, {reinterpret_cast<uint8_t*>(g.data()), 2}}});
  SafetensorsFile f(dir / "m.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorView* t = f.find("a.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(to_f32(*t), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(to_f32(*f.find("b")), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(to_f32(*f.find("c")), (std::vector<float>{0.25f}));
  // Data block starts 8-byte aligned.
  EXPECT_EQ((f.tensors()[0].data - MappedFile(dir / "m.safetensors").data()) % 8, 0);
}

TEST(Safetensors, ShardedCheckpoint) {
  testing::TempDir dir;
  auto a = f32_bytes({1, 2}), b = f32_bytes({3});
  write_safetensors(dir / "model-00001-of-00002.safetensors", {{"x", DType::kF32, {2}, a}});
  write_safetensors(dir / "model-00002-of-00002.safetensors", {{"y", DType::kF32, {1}, b}});
  write_file_atomic(dir / "model.safetensors.index.json",
                    R"({"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors",
                        "y": "model-00002-of-00002.safetensors"}})");
  Checkpoint c(dir.path());
  EXPECT_EQ(c.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(to_f32(c.get("y")), std::vector<float>{3});
  try {
    c.get("z");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor z is missing"), std::string::npos);
  }
}

TEST(Safetensors, TruncatedFile) {
  testing::TempDir dir;
  auto a = f32_bytes({1, 2, 3, 4});
  write_safetensors(dir / "m.safetensors", {{"w", DType::kF32, {4}, a}});
  std::string bytes = read_file(dir / "m.safetensors");
  write_file_atomic(dir / "t.safetensors", bytes.substr(0, bytes.size() - 3));
  std::string e = error_of(dir / "t.safetensors");
  EXPECT_NE(e.find("tensor w"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  write_file_atomic(dir / "tiny.safetensors", "abc");
  EXPECT_NE(error_of(dir / "tiny.safetensors").find("too short"), std::string::npos);
}

TEST(Safetensors, HeaderLengthPastEnd) {
  testing::TempDir dir;
  write_raw(dir / "m.safetensors", "{}", 0, 1000);
  EXPECT_NE(error_of(dir / "m.safetensors").find("past the end"), std::string::npos);
  write_raw(dir / "h.safetensors", "{}", 0, int64_t(1) << 40);
  EXPECT_NE(error_of(dir / "h.safetensors").find("100 MB"), std::string::npos);
}

TEST(Safetensors, OverlappingOffsets) {
  testing::TempDir dir;
  write_raw(dir / "m.safetensors",
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12);
  std::string e = error_of(dir / "m.safetensors");
  EXPECT_NE(e.find("overlaps"), std::string::npos) << e;
}

TEST(Safetensors, WrongDtypeString) {
  testing::TempDir dir;
  write_raw(dir / "m.safetensors", R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})",
            4);
  std::string e = error_of(dir / "m.safetensors");
  EXPECT_NE(e.find("tensor a"), std::string::npos) << e;
  EXPECT_NE(e.find("\"F33\""), std::string::npos) << e;
}

TEST(Safetensors, ShapeDoesNotMatchByteRange) {
  testing::TempDir dir;
  write_raw(dir / "m.safetensors", R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}})",
            4);
  EXPECT_NE(error_of(dir / "m.safetensors").find("does not match"), std::string::npos);
}

TEST(Safetensors, MalformedJson) {
  testing::TempDir dir;
  write_raw(dir / "m.safetensors", R"({"a":{"dtype":)", 0);
  EXPECT_NE(error_of(dir / "m.safetensors").find("invalid JSON"), std::string::npos);
  write_raw(dir / "n.safetensors", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})",
            0);
  EXPECT_NE(error_of(dir / "n.safetensors").find("negative"), std::string::npos);
}

TEST(Safetensors, ReadsSharedReferenceCheckpoints) {
  QWENQAT_REQUIRE_SHARED(shared);
  Checkpoint f32(shared / "reference/tiny-qwen2-f32");
  EXPECT_EQ(f32.get("model.embed_tokens.weight").dtype, DType::kF32);
  EXPECT_EQ(f32.get("model.embed_tokens.weight").shape, (std::vector<int64_t>{2048, 64}));
  Checkpoint bf16(shared / "reference/tiny-qwen2-bf16-tied");
  EXPECT_EQ(bf16.get("model.norm.weight").dtype, DType::kBF16);
  EXPECT_EQ(bf16.find("lm_head.weight"), nullptr);  // tied
}

}  // namespace
}  // namespace qwenqat::models
