// Tests for cli/shared_commands.cpp through the qwenqat binary: `logits`
// with both backends on the shared tiny checkpoint (they must agree, and
// agree with the independent reference), `inspect` on a checkpoint and on a
// GGUF file, and the errors of bad flags and paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "tests/util/test_util.h"

namespace qwenqat {
namespace {

using testing::run_qwenqat;

// Same bound as the model tests: float32 logits vs the float64 reference.
constexpr double kLogitsRelTol = 1e-4;

Json logits_of(const std::string& model, const std::string& ids, const std::string& backend) {
  testing::TempDir dir;
  const auto out = dir / "logits.json";
  std::string log;
  const int rc = run_qwenqat("logits --model " + model + " --ids " + ids + " --backend " +
                                 backend + " --out " + out.string(),
                             &log);
  EXPECT_EQ(rc, 0) << log;
  return rc == 0 ? read_json_file(out) : Json();
}

double rel_max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

TEST(SharedCommands, LogitsBackendsAgreeWithReference) {
  QWENQAT_REQUIRE_SHARED(shared);
  const auto dir = shared / "reference" / "tiny-qwen2-f32";
  const Json ref = read_json_file(dir / "reference.json");
  const Json& c = ref.at("cases").at(0);
  std::string ids;
  for (const auto& id : c.at("ids")) ids += (ids.empty() ? "" : ",") + std::to_string(int(id));
  const Json torch = logits_of(dir.string(), ids, "torch");
  const Json engine = logits_of(dir.string(), ids, "engine");
  ASSERT_TRUE(torch.contains("logits") && engine.contains("logits"));
  const size_t T = c.at("ids").size();
  ASSERT_EQ(torch["logits"].size(), T);
  ASSERT_EQ(engine["logits"].size(), T);
  const auto ref_last = c.at("logits_last").get<std::vector<float>>();
  const auto t_last = torch["logits"][T - 1].get<std::vector<float>>();
  const auto e_last = engine["logits"][T - 1].get<std::vector<float>>();
  EXPECT_LE(rel_max_diff(t_last, ref_last), kLogitsRelTol);
  EXPECT_LE(rel_max_diff(e_last, ref_last), kLogitsRelTol);
  for (size_t t = 0; t < T; ++t) {
    EXPECT_LE(rel_max_diff(engine["logits"][t].get<std::vector<float>>(),
                           torch["logits"][t].get<std::vector<float>>()),
              kLogitsRelTol)
        << "position " << t;
  }
}

TEST(SharedCommands, InspectCheckpointAndGguf) {
  QWENQAT_REQUIRE_SHARED(shared);
  const auto dir = shared / "reference" / "tiny-qwen2-f32";
  std::string out;
  ASSERT_EQ(run_qwenqat("inspect " + dir.string() + " --json 2>/dev/null", &out), 0) << out;
  const Json j = Json::parse(out);
  EXPECT_GT(j.at("tensor_count").get<int64_t>(), 0);
  EXPECT_TRUE(j.at("config_parameter_count_matches").get<bool>());
  ASSERT_EQ(run_qwenqat("inspect " + (dir / "model-q4_0.gguf").string(), &out), 0) << out;
  EXPECT_NE(out.find("qwen2"), std::string::npos) << out;
}

TEST(SharedCommands, BadInputNamesTheProblem) {
  std::string out;
  EXPECT_NE(run_qwenqat("inspect /nonexistent/model.h5", &out), 0);
  EXPECT_NE(out.find("/nonexistent/model.h5"), std::string::npos) << out;
  testing::TempDir dir;
  write_file_atomic(dir / "junk.h5", "not an HDF5 file");
  EXPECT_NE(run_qwenqat("inspect " + (dir / "junk.h5").string(), &out), 0);
  EXPECT_NE(out.find("junk.h5"), std::string::npos) << out;
  EXPECT_NE(run_qwenqat("logits --model " + dir.path().string() + " --ids 1 --backend onnx", &out),
            0);
  EXPECT_NE(out.find("--backend"), std::string::npos) << out;
  EXPECT_NE(run_qwenqat("logits --model x --ids 1 --backend engine --threads 0", &out), 0);
  EXPECT_NE(out.find("--threads"), std::string::npos) << out;
}

}  // namespace
}  // namespace qwenqat
