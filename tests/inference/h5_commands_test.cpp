// The engine on a .h5 export (zero-copy packed weights give the same logits as
// the in-memory model), logits_json, and the commands' bad-input errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "data/util/check.h"
#include "data/util/process_stats.h"
#include "export/format/h5_model_writer.h"
#include "inference/bench.h"
#include "inference/commands.h"
#include "inference/model.h"
#include "tests/inference/engine_test_util.h"
#include "tests/util/test_util.h"

namespace qwenqat::engine {
namespace {

using qwenqat::testing::error_of;

// Writes every tensor of `src` (packed or float32) into an .h5 file.
void write_h5(const MemorySource& src, const models::Qwen2Config& cfg,
              const std::filesystem::path& path) {
  format::H5ModelWriter w(path);
  w.set_config_json(cfg.to_json().dump());
  std::vector<std::string> names = {"model.embed_tokens.weight", "model.norm.weight"};
  for (auto& [n, shape] : testing::linear_shapes(cfg)) names.push_back(n);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* s :
         {"input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.bias",
          "self_attn.k_proj.bias", "self_attn.v_proj.bias"})
      names.push_back(p + s);
  }
  for (const auto& n : names) {
    const auto t = src.get(n);
    if (t.quantized) {
      w.add_packed_tensor(n, t.packed);
    } else {
      w.add_float_tensor(n, t.view.dtype, t.shape, {t.view.data, t.view.nbytes});
    }
  }
  w.commit();
}

TEST(H5Source, PackedExportGivesTheInMemoryLogits) {
  qwenqat::testing::TempDir dir;
  const auto cfg = testing::tiny_config();
  const quant::QuantSpec spec{4, 32, true};
  auto mem = testing::random_model(cfg, 21, &spec, true);
  const auto path = dir / "tiny.h5";
  write_h5(*mem, cfg, path);
  auto src = open_weight_source(path);
  Model a(mem), b(src);
  EXPECT_EQ(b.describe_schemes(), "w4g32");
  EXPECT_EQ(a.weight_bytes_per_step(), b.weight_bytes_per_step());
  const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6};
  ThreadPool pool(2);
  KvCache ca(cfg, 1, 8, KvDtype::kF32), cb(cfg, 1, 8, KvDtype::kF32);
  std::vector<float> la, lb;
  a.forward({{0, ids}}, ca, pool, la, true);
  b.forward({{0, ids}}, cb, pool, lb, true);
  ASSERT_EQ(la.size(), lb.size());
  EXPECT_EQ(0, std::memcmp(la.data(), lb.data(), la.size() * 4));
  // The file copied into memory (the CLI's default) gives the same bits.
  Model c(open_weight_source(path, MapMode::kCopy));
  KvCache cc(cfg, 1, 8, KvDtype::kF32);
  std::vector<float> lc;
  c.forward({{0, ids}}, cc, pool, lc, true);
  ASSERT_EQ(lc.size(), lb.size());
  EXPECT_EQ(0, std::memcmp(lc.data(), lb.data(), lc.size() * 4));
  // logits_json: same numbers, the LibTorch command's layout.
  const Json j = logits_json(path, ids, 1);
  ASSERT_EQ(j.at("logits").size(), ids.size());
  EXPECT_EQ(j["logits"][7].size(), static_cast<size_t>(cfg.vocab_size));
  EXPECT_EQ(j["logits"][7][5].get<float>(), lb[7 * cfg.vocab_size + 5]);
}

TEST(H5Source, TruncatedOrForeignFilesAreClearErrors) {
  qwenqat::testing::TempDir dir;
  const auto cfg = testing::tiny_config();
  auto mem = testing::random_model(cfg, 22);
  const auto good = dir / "good.h5";
  write_h5(*mem, cfg, good);
  const auto size = std::filesystem::file_size(good);
  const auto cut = dir / "cut.h5";
  std::filesystem::copy_file(good, cut);
  std::filesystem::resize_file(cut, size / 2);
  EXPECT_NE(error_of([&] { open_weight_source(cut); }).find("cut.h5"), std::string::npos);
  const auto junk = dir / "junk.h5";
  std::ofstream(junk) << "not an hdf5 file";
  EXPECT_NE(error_of([&] { open_weight_source(junk); }).find("junk.h5"), std::string::npos);
  EXPECT_NE(error_of([&] { open_weight_source(dir / "model.bin"); }).find("does not exist"),
            std::string::npos);
}

TEST(Commands, BadInputIsAClearError) {
  qwenqat::testing::TempDir dir;
  const auto cfg = testing::tiny_config();
  write_h5(*testing::random_model(cfg, 23), cfg, dir / "m.h5");
  GenerateCommandOptions o;
  o.model = (dir / "m.h5").string();
  o.ids = "1,2,3";
  o.max_new_tokens = 2;
  o.threads = 1;
  o.json = true;
  ::testing::internal::CaptureStdout();
  EXPECT_NO_THROW(run_generate(o));
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("\"tokens\""), std::string::npos) << out;

  auto bad = o;
  bad.threads = 0;
  EXPECT_NE(error_of([&] { run_generate(bad); }).find("--threads"), std::string::npos);
  bad = o;
  bad.templ = "chatml-unknown";
  EXPECT_NE(error_of([&] { run_generate(bad); }).find("chatml-unknown"), std::string::npos);
  bad = o;
  bad.max_context = 2;
  EXPECT_NE(error_of([&] { run_generate(bad); }).find("context limit"), std::string::npos);
  bad = o;
  bad.ids = "1,x";
  EXPECT_NE(error_of([&] { run_generate(bad); }).find("--ids"), std::string::npos);
  bad = o;
  bad.ids = "";
  bad.prompt = "hello";  // the file has no tokenizer
  EXPECT_NE(error_of([&] { run_generate(bad); }).find("tokenizer"), std::string::npos);
  bad = o;
  bad.kv_cache = "int8";
  EXPECT_NE(error_of([&] { run_generate(bad); }).find("--kv-cache"), std::string::npos);
  bad = o;
  bad.act_quant = "q4";
  EXPECT_NE(error_of([&] { run_generate(bad); }).find("--act-quant"), std::string::npos);
  BenchOptions bo;
  bo.model = o.model;
  bo.threads = {0};
  bo.bandwidth_mb = 0;
  EXPECT_NE(error_of([&] { run_bench(bo); }).find("--threads"), std::string::npos);
  bo.threads = {1};
  bo.prompt_tokens = {4};
  bo.gen_tokens = {2};
  bo.batch = {2};
  const Json r = run_bench(bo);
  EXPECT_EQ(r.at("weight_bytes_per_step").get<uint64_t>(),
            Model(open_weight_source(o.model)).weight_bytes_per_step());
  EXPECT_GT(r.at("decode_tokens_per_s").get<double>(), 0.0);
  EXPECT_EQ(r.at("act_quant").get<std::string>(), "auto");  // the default
  EXPECT_GT(r.at("warmup_seconds").get<double>(), 0.0);     // an untimed token first
  EXPECT_EQ(r.at("load").get<std::string>(), "copy");       // the default: MapMode::kCopy
  bo.act_quant = {"q8"};
  bo.warmup = false;  // --no-warmup
  bo.mmap = true;     // --mmap
  const Json rq = run_bench(bo);
  EXPECT_EQ(rq.at("act_quant").get<std::string>(), "q8");
  EXPECT_EQ(rq.at("load").get<std::string>(), "mmap");
  EXPECT_FALSE(rq.contains("warmup_seconds"));
  // The bandwidth probe runs before load and after decode; the fraction is
  // against the higher figure, and the probe's buffer stays out of the peak RSS.
  bo.bandwidth_mb = 256;
  if (reset_peak_rss()) {
    const uint64_t rss0 = peak_rss_bytes();  // the current RSS, just reset
    const Json rb = run_bench(bo);
    const double before = rb.at("memory_read_bandwidth_before_gbs").get<double>();
    const double after = rb.at("memory_read_bandwidth_after_gbs").get<double>();
    EXPECT_GT(std::min(before, after), 0.0);
    EXPECT_EQ(rb.at("memory_read_bandwidth_gbs").get<double>(), std::max(before, after));
    EXPECT_DOUBLE_EQ(rb.at("decode_bandwidth_fraction").get<double>(),
                     rb.at("decode_weight_bandwidth_gbs").get<double>() / std::max(before, after));
    EXPECT_TRUE(rb.at("peak_rss_excludes_probe").get<bool>());
    EXPECT_LT(rb.at("peak_rss_bytes").get<uint64_t>(), rss0 + (uint64_t(128) << 20));
  }
  bo.bandwidth_mb = 0;
  EXPECT_EQ(rq.at("temperature").get<double>(), 0.0);  // greedy picks by default
  bo.sampling.temperature = 0.6f;                      // --temperature: the sampler timed too
  bo.sampling.top_p = 0.9f;
  const Json rs = run_bench(bo);
  EXPECT_FLOAT_EQ(rs.at("temperature").get<float>(), 0.6f);
  EXPECT_FLOAT_EQ(rs.at("top_p").get<float>(), 0.9f);
  bo.sampling.top_p = 2.0f;
  EXPECT_NE(error_of([&] { run_bench(bo); }).find("--top-p"), std::string::npos);
  bo.sampling = {0.0f, 1.0f, 0, 0};
  bo.act_quant = {"int4"};
  EXPECT_NE(error_of([&] { run_bench(bo); }).find("--act-quant"), std::string::npos);
  EXPECT_THROW(parse_id_list("", "--ids"), Error);
  EXPECT_THROW(parse_id_list("-1", "--ids"), Error);
  EXPECT_EQ(parse_id_list(" 7, 8 ,9", "--ids"), (std::vector<int32_t>{7, 8, 9}));
}

// The probe reads one cache line per iteration and the rest of each chunk
// word by word; its checksum (an error if any word is missed or read twice)
// holds for chunks that are not whole lines: 65552 words in 256 chunks of
// 256 or 257.
TEST(Commands, BandwidthProbeReadsEveryWordOnce) {
  for (int threads : {1, 2}) {
    double gbs = 0.0;
    EXPECT_NO_THROW(gbs = measure_read_bandwidth((int64_t{65552}) * 8, threads));
    EXPECT_GT(gbs, 0.0);
  }
}

TEST(Commands, PromptWithTemplateAndSharedTokenizer) {
  QWENQAT_REQUIRE_SHARED(shared);
  qwenqat::testing::TempDir dir;
  auto cfg = testing::tiny_config();
  cfg.vocab_size = 151936;  // the real tokenizer's ids must fit
  cfg.hidden_size = 32;
  cfg.intermediate_size = 32;
  cfg.num_hidden_layers = 1;
  write_h5(*testing::random_model(cfg, 24), cfg, dir / "m.h5");
  GenerateCommandOptions o;
  o.model = (dir / "m.h5").string();
  o.tokenizer = (shared / "models" / "deepseek-r1-distill-qwen-1.5b").string();
  o.prompt = "What is 2+3?";
  o.templ = "r1";
  o.max_new_tokens = 3;
  o.threads = 2;
  o.json = true;
  ::testing::internal::CaptureStdout();
  run_generate(o);
  const Json j = parse_json(::testing::internal::GetCapturedStdout(), "generate output");
  const auto prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
  ASSERT_GT(prompt.size(), 10u);
  EXPECT_EQ(prompt[0], 151646);  // <｜begin▁of▁sentence｜>
  EXPECT_LE(j.at("tokens").size(), 3u);
  // The speed of the call: the prompt's forward and the generated tokens.
  const Json& t = j.at("timing");
  EXPECT_GT(t.at("prefill_seconds").get<double>(), 0.0);
  EXPECT_GT(t.at("prefill_tokens_per_second").get<double>(), 0.0);
  EXPECT_GT(t.at("decode_seconds").get<double>(), 0.0);
  EXPECT_GT(t.at("decode_tokens_per_second").get<double>(), 0.0);
  o.templ = "nope";
  EXPECT_NE(error_of([&] { run_generate(o); }).find("nope"), std::string::npos);
}

}  // namespace
}  // namespace qwenqat::engine
