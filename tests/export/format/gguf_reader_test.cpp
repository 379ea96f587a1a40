// Tests for export/format/gguf_reader.h: the shared llama.cpp-written files
// (metadata, tensors equal to the safetensors checkpoint, and Q8_0/Q4_0 blocks
// byte-identical to llama.cpp's reference quantizers) and bad input of every
// kind (truncation at every byte, bad magic/version, huge counts, tensors past
// the end, unknown and unsupported types, random corruption).
#include "export/format/gguf_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "../../util/test_util.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "export/format/gguf_model.h"
#include "export/format/gguf_writer.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::format {
namespace {

using testing::TempDir;

std::filesystem::path tiny_dir(const std::filesystem::path& shared) {
  return shared / "reference" / "tiny-qwen2-f32";
}

// HF name of each GGUF tensor of the tiny model.
std::map<std::string, std::string> hf_names(const models::Checkpoint& ckpt) {
  std::map<std::string, std::string> m;
  for (const auto& n : ckpt.names()) m[gguf_tensor_name(n)] = n;
  return m;
}

TEST(GgufReaderShared, ReadsMetadataOfLlamaCppFiles) {
  QWENQAT_REQUIRE_SHARED(shared);
  for (const char* f : {"model-f32.gguf", "model-q8_0.gguf", "model-q4_0.gguf"}) {
    const GgufFile g(tiny_dir(shared) / f);
    EXPECT_EQ(g.version(), 3u);
    EXPECT_EQ(g.alignment(), 32u);
    EXPECT_EQ(g.data_offset() % 32, 0u);
    EXPECT_EQ(g.get("general.architecture").as_string("a"), "qwen2");
    EXPECT_EQ(g.get("tokenizer.ggml.model").as_string("m"), "gpt2");
    EXPECT_EQ(g.get("tokenizer.ggml.pre").as_string("p"), "deepseek-r1-qwen");
    const auto tokens = g.get("tokenizer.ggml.tokens").as_strings("t");
    ASSERT_EQ(tokens.size(), 2048u);
    EXPECT_EQ(tokens[0], "!");
    EXPECT_EQ(g.get("tokenizer.ggml.token_type").as_ints("tt").size(), 2048u);
    EXPECT_EQ(g.get("tokenizer.ggml.merges").as_strings("m")[0], "\xC4\xA0 \xC4\xA0");  // "Ġ Ġ"
    EXPECT_EQ(g.get("qwen2.block_count").as_int("b"), 2);
    EXPECT_EQ(g.get("qwen2.embedding_length").as_int("e"), 64);
    EXPECT_EQ(g.get("qwen2.attention.head_count_kv").as_int("h"), 2);
    EXPECT_FLOAT_EQ(float(g.get("qwen2.rope.freq_base").as_float("r")), 10000.0f);
    EXPECT_EQ(g.get("tokenizer.ggml.eos_token_id").as_int("e"), 151643);
    EXPECT_THROW(g.get("general.architecture").as_int("general.architecture"), Error);
    EXPECT_THROW(g.get("no.such.key"), Error);
    ASSERT_EQ(g.tensors().size(), 27u);
    EXPECT_EQ(g.tensors()[0].name, "token_embd.weight");
    EXPECT_EQ(g.tensors()[0].dims, (std::vector<int64_t>{64, 2048}));
    EXPECT_EQ(g.tensors()[0].shape(), (std::vector<int64_t>{2048, 64}));
    EXPECT_EQ(g.get_tensor("blk.1.ffn_down.weight").shape(), (std::vector<int64_t>{64, 128}));
    EXPECT_EQ(g.get_tensor("blk.0.attn_k.bias").shape(), (std::vector<int64_t>{32}));
    EXPECT_EQ(g.tensors().back().name, "output.weight");
  }
}

TEST(GgufReaderShared, F32TensorsEqualTheSafetensorsCheckpoint) {
  QWENQAT_REQUIRE_SHARED(shared);
  const models::Checkpoint ckpt(tiny_dir(shared) / "model.safetensors");
  const GgufFile g(tiny_dir(shared) / "model-f32.gguf");
  const auto names = hf_names(ckpt);
  ASSERT_EQ(names.size(), g.tensors().size());
  for (const auto& t : g.tensors()) {
    ASSERT_TRUE(names.count(t.name)) << t.name;
    const models::TensorView& v = ckpt.get(names.at(t.name));
    EXPECT_EQ(t.type, GgmlType::kF32);
    EXPECT_EQ(t.shape(), v.shape) << t.name;
    EXPECT_EQ(g.to_f32(t), models::to_f32(v)) << t.name;
  }
}

TEST(GgufReaderShared, ReferenceQuantizersReproduceLlamaCppBlocks) {
  QWENQAT_REQUIRE_SHARED(shared);
  const models::Checkpoint ckpt(tiny_dir(shared) / "model.safetensors");
  const auto names = hf_names(ckpt);
  for (const char* f : {"model-q8_0.gguf", "model-q4_0.gguf"}) {
    const GgufFile g(tiny_dir(shared) / f);
    int quantized = 0;
    for (const auto& t : g.tensors()) {
      const std::vector<float> x = models::to_f32(ckpt.get(names.at(t.name)));
      std::vector<uint8_t> ours;
      if (t.type == GgmlType::kQ8_0) {
        const auto b = quantize_q8_0_ref(x.data(), int64_t(x.size()));
        ours.assign(reinterpret_cast<const uint8_t*>(b.data()),
                    reinterpret_cast<const uint8_t*>(b.data() + b.size()));
      } else if (t.type == GgmlType::kQ4_0) {
        const auto b = quantize_q4_0_ref(x.data(), int64_t(x.size()));
        ours.assign(reinterpret_cast<const uint8_t*>(b.data()),
                    reinterpret_cast<const uint8_t*>(b.data() + b.size()));
      } else {
        EXPECT_EQ(t.type, GgmlType::kF32) << t.name;
        EXPECT_EQ(g.to_f32(t), x) << t.name;
        continue;
      }
      ++quantized;
      ASSERT_EQ(ours.size(), t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(ours.data(), t.data, t.nbytes), 0) << f << " " << t.name;
      // llama.cpp's dequantization of the file
      std::vector<float> deq(x.size());
      dequantize_blocks(t.type, ours.data(), int64_t(x.size()), deq.data());
      EXPECT_EQ(g.to_f32(t), deq) << t.name;
    }
    EXPECT_EQ(quantized, 16) << f;  // 2 embeddings + 7 matrices per layer
  }
}

// A small valid file: keys of several types, an F32 [4, 64] tensor "a" and a
// Q8_0 [2, 32] tensor "b".
std::string small_file(const TempDir& dir) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("qwen2"));
  w.set("list", GgufValue::strings({"x", "yy", ""}));
  w.set("n", GgufValue::uint32(7));
  std::vector<float> a(256);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i) * 0.5f;
  w.add_float_tensor("a", {4, 64}, a.data(), GgmlType::kF32);
  const auto q = quantize_q8_0_ref(a.data(), 64);
  std::vector<uint8_t> bytes(q.size() * sizeof(BlockQ8_0));
  std::memcpy(bytes.data(), q.data(), bytes.size());
  w.add_tensor("b", {2, 32}, GgmlType::kQ8_0, bytes);
  w.write(dir / "small.gguf");
  return read_file(dir / "small.gguf");
}

// Position just after the first occurrence of the length-prefixed string `s`.
size_t after_string(const std::string& file, const std::string& s) {
  std::string needle(8, '\0');
  const uint64_t n = s.size();
  std::memcpy(needle.data(), &n, 8);
  needle += s;
  const size_t p = file.find(needle);
  EXPECT_NE(p, std::string::npos) << s;
  return p + needle.size();
}

template <class T>
void poke(std::string& file, size_t pos, T v) {
  std::memcpy(file.data() + pos, &v, sizeof v);
}

void expect_error(const TempDir& dir, const std::string& bytes, const std::string& part) {
  write_file_atomic(dir / "bad.gguf", bytes);
  try {
    GgufFile g(dir / "bad.gguf");
    ADD_FAILURE() << "no error, expected one containing: " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(GgufReaderBadInput, SmallFileIsValid) {
  TempDir dir;
  small_file(dir);
  const GgufFile g(dir / "small.gguf");
  EXPECT_EQ(g.get("list").as_strings("list"), (std::vector<std::string>{"x", "yy", ""}));
  EXPECT_EQ(g.get("n").as_int("n"), 7);
  EXPECT_EQ(g.to_f32(g.get_tensor("a"))[255], 127.5f);
  EXPECT_EQ(g.get_tensor("b").nbytes, 68u);
}

TEST(GgufReaderBadInput, EveryTruncationThrows) {
  TempDir dir;
  const std::string file = small_file(dir);
  const size_t end_of_data = file.size() - (96 - 68);  // b's data is padded from 68 to 96 bytes
  const size_t header = after_string(file, "b") + 16;
  for (size_t n = 0; n < end_of_data; n += n < header ? 1 : 5) {
    write_file_atomic(dir / "cut.gguf", std::string_view(file).substr(0, n));
    EXPECT_THROW(GgufFile(dir / "cut.gguf"), Error) << "prefix of " << n << " bytes";
  }
}

TEST(GgufReaderBadInput, HeaderErrorsAreNamed) {
  TempDir dir;
  const std::string good = small_file(dir);
  std::string f = good;
  f[0] = 'X';
  expect_error(dir, f, "magic");
  f = good;
  poke<uint32_t>(f, 4, 1);
  expect_error(dir, f, "unsupported GGUF version 1");
  poke<uint32_t>(f, 4, 0x03000000u);
  expect_error(dir, f, "big-endian");
  f = good;
  poke<uint64_t>(f, 8, uint64_t(1) << 60);
  expect_error(dir, f, "tensor count");
  f = good;
  poke<uint64_t>(f, 16, uint64_t(1) << 40);
  expect_error(dir, f, "metadata count");
  f = good;
  poke<uint64_t>(f, 24, uint64_t(1) << 50);  // length of the first key
  expect_error(dir, f, "string length");
  f = good;
  poke<uint32_t>(f, after_string(good, "list") + 4, 13);  // array element type
  expect_error(dir, f, "unknown array element type");
  f = good;
  poke<uint64_t>(f, after_string(good, "list") + 8, uint64_t(1) << 61);  // array length
  expect_error(dir, f, "array length");
  f = good;
  poke<uint32_t>(f, after_string(good, "n"), 77);  // value type
  expect_error(dir, f, "unknown value type 77");
  f = good;
  poke<uint32_t>(f, after_string(good, "general.alignment") + 4, 24);
  expect_error(dir, f, "not a power of two");
}

TEST(GgufReaderBadInput, TensorInfoErrorsNameTheTensor) {
  TempDir dir;
  const std::string good = small_file(dir);
  const size_t a = after_string(good, "a");  // n_dims, dims[2], type, offset
  std::string f = good;
  poke<uint32_t>(f, a, 5);
  expect_error(dir, f, "tensor a has 5 dimensions");
  f = good;
  poke<uint64_t>(f, a + 4, uint64_t(1) << 45);
  expect_error(dir, f, "tensor a has an invalid or too large dimension");
  f = good;
  poke<uint64_t>(f, a + 4, 0);
  expect_error(dir, f, "tensor a has an invalid");
  f = good;
  poke<uint64_t>(f, a + 4, uint64_t(1) << 40);  // the product exceeds 2^50
  poke<uint64_t>(f, a + 12, uint64_t(1) << 40);
  expect_error(dir, f, "too large");
  f = good;
  poke<uint32_t>(f, a + 20, 99);
  expect_error(dir, f, "tensor a has unknown ggml tensor type id 99");
  f = good;
  poke<uint64_t>(f, a + 24, 3);
  expect_error(dir, f, "not a multiple of the alignment");
  f = good;
  poke<uint64_t>(f, a + 24, 1 << 20);
  expect_error(dir, f, "tensor a (1024 bytes at data offset 1048576) runs past the end");
  f = good;
  poke<uint64_t>(f, a + 12, 5);  // [5, 64] floats overlap b and run past the end
  expect_error(dir, f, "runs past the end");
  f = good;
  poke<uint64_t>(f, a + 4, 40);  // Q8_0 row of 40
  poke<uint32_t>(f, a + 20, 8);
  expect_error(dir, f, "multiple of 32");
  f = good;
  f[after_string(good, "b") - 1] = 'a';  // second tensor also named "a"
  expect_error(dir, f, "duplicate tensor a");
}

TEST(GgufReaderBadInput, UnsupportedTypeIsRefusedOnConversion) {
  TempDir dir;
  std::string f = small_file(dir);
  const size_t a = after_string(f, "a");
  poke<uint64_t>(f, a + 4, 256);  // [1, 256] Q4_K: 144 bytes, inside the file
  poke<uint64_t>(f, a + 12, 1);
  poke<uint32_t>(f, a + 20, 12);
  write_file_atomic(dir / "k.gguf", f);
  const GgufFile g(dir / "k.gguf");
  try {
    g.to_f32(g.get_tensor("a"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor a has type Q4_K"), std::string::npos) << e.what();
  }
  EXPECT_EQ(g.to_f32(g.get_tensor("b")).size(), 64u);
}

TEST(GgufReaderBadInput, RandomCorruptionNeverCrashes) {
  TempDir dir;
  const std::string good = small_file(dir);
  std::mt19937 rng(1234);
  const size_t header = after_string(good, "b") + 16;
  int loaded = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string f = good;
    for (int k = 0; k < 3; ++k) f[rng() % header] = char(rng());
    write_file_atomic(dir / "r.gguf", f);
    try {
      GgufFile g(dir / "r.gguf");
      for (const auto& t : g.tensors()) {
        if (ggml_type_readable(t.type)) g.to_f32(t);
      }
      ++loaded;
    } catch (const Error&) {
    }
  }
  EXPECT_LT(loaded, 400);
}

}  // namespace
}  // namespace qwenqat::format
