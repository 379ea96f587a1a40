// Tests of YAML sweep files: core-schema scalar typing, a YAML sweep equal to
// its JSON form, and bad input (syntax, duplicate keys, tags, non-JSON
// numbers, several documents, missing file) naming the file and line.
#include "experiments/sweep/yaml_json.h"

#include <gtest/gtest.h>

#include <fstream>

#include "data/util/check.h"
#include "experiments/sweep/sweep_spec.h"
#include "tests/util/test_util.h"

namespace qwenqat::experiments {
namespace {

using testing::TempDir;

// Expects yaml_to_json(text) to throw with every needle in the message.
void expect_error(const std::string& text, std::initializer_list<std::string> needles) {
  try {
    yaml_to_json(text, "s.yaml");
    ADD_FAILURE() << "no error for:\n" << text;
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(YamlJson, ScalarsFollowTheCoreSchema) {
  const Json j = yaml_to_json(R"(
int: 42
neg: -3
float: 1.5e-3
dot: .5
yes: true
no: False
none: ~
empty:
word: hello world
quoted_int: "42"
single: 'true'
list: [1, two, 3.0]
nested: {a: {b: [null]}}
anchor: &shared [4, 2]
alias: *shared
)",
                              "s.yaml");
  EXPECT_EQ(j["int"], 42);
  EXPECT_TRUE(j["int"].is_number_integer());
  EXPECT_EQ(j["neg"], -3);
  EXPECT_DOUBLE_EQ(j["float"].get<double>(), 1.5e-3);
  EXPECT_DOUBLE_EQ(j["dot"].get<double>(), 0.5);
  EXPECT_EQ(j["yes"], true);
  EXPECT_EQ(j["no"], false);
  EXPECT_TRUE(j["none"].is_null());
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_EQ(j["word"], "hello world");
  EXPECT_EQ(j["quoted_int"], "42");
  EXPECT_EQ(j["single"], "true");
  EXPECT_EQ(j["list"], Json::parse(R"([1, "two", 3.0])"));
  EXPECT_EQ(j["nested"], Json::parse(R"({"a": {"b": [null]}})"));
  EXPECT_EQ(j["alias"], Json::parse("[4, 2]"));
}

TEST(YamlJson, SweepFileEqualsItsJsonForm) {
  const Json json = Json::parse(R"({
    "name": "t", "base_model": "runs/tiny", "data": {"eval": "heldout.jsonl"},
    "fp_reference": true,
    "grid": {"bits": [4, 2], "group_size": [32, 0], "symmetric": [true, false],
             "methods": ["ptq", "qat_kd"], "train_steps": [100], "seeds": [0]},
    "options": {"lr": 1e-4, "batch_size": 8}
  })");
  const char* yaml = R"(# the same sweep as YAML
name: t
base_model: runs/tiny
data:
  eval: heldout.jsonl
fp_reference: true
grid:
  bits: [4, 2]
  group_size: [32, 0]
  symmetric: [true, false]
  methods:
    - ptq
    - qat_kd
  train_steps: [100]
  seeds: [0]
options:
  lr: 1.0e-4
  batch_size: 8
)";
  EXPECT_EQ(yaml_to_json(yaml, "s.yaml"), json);
  TempDir dir;
  std::ofstream(dir / "sweep.yaml") << yaml;
  std::ofstream(dir / "sweep.json") << json.dump();
  const auto a = expand_sweep(read_sweep_file(dir / "sweep.yaml"));
  const auto b = expand_sweep(read_sweep_file(dir / "sweep.json"));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].id, b[i].id);
  // The parser's field errors name the YAML file too.
  std::ofstream(dir / "bad.yml") << "base_model: x\ngrid: {bits: [9], methods: [ptq]}\n";
  try {
    read_sweep_file(dir / "bad.yml");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yml"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("grid.bits[0]"), std::string::npos) << e.what();
  }
}

TEST(YamlJson, BadInputNamesFileAndLine) {
  expect_error("grid:\n  bits: [4, 2\n", {"s.yaml:", "YAML syntax error"});
  expect_error("a: 1\nb: [x\n  c: }\n", {"s.yaml:"});
  expect_error("a: 1\nb: 2\na: 3\n", {"s.yaml:3:1", "\"a\" appears twice"});
  expect_error("a: !!binary aGVsbG8=\n", {"s.yaml:1:4", "tag"});
  expect_error("a: .inf\n", {"s.yaml:1:4", "no JSON form"});
  expect_error("a: 0x1f\n", {"no JSON form"});
  expect_error("a: 99999999999999999999\n", {"does not fit in 64 bits"});
  expect_error("a: 1\n---\nb: 2\n", {"one YAML document, found 2"});
  expect_error("? [1, 2]\n: x\n", {"mapping key"});
  TempDir dir;
  EXPECT_THROW(read_yaml_file(dir / "missing.yaml"), Error);
  try {
    read_sweep_file(dir / "missing.yaml");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.yaml"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qwenqat::experiments
