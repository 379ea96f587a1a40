// Tests of sweep-file parsing (with bad-input cases naming the field), grid
// expansion with stable ids, and the --shard partition.
#include "experiments/sweep/sweep_spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "data/util/check.h"

namespace qwenqat::experiments {
namespace {

Json good_sweep() {
  return Json::parse(R"({
    "name": "t", "base_model": "runs/tiny", "data": {"eval": "heldout.jsonl"},
    "grid": {"bits": [4, 2], "group_size": [32, 0], "symmetric": [true, false],
             "methods": ["ptq", "qat", "qat_kd"], "train_steps": [100, 200],
             "seeds": [0, 1]}
  })");
}

// Expects parse_sweep to throw with `needle` in the message.
void expect_error(const Json& j, const std::string& needle) {
  try {
    parse_sweep(j, "sweep.json");
    ADD_FAILURE() << "no error for " << j.dump();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(SweepSpec, ParsesAndExpands) {
  SweepSpec s = parse_sweep(good_sweep(), "sweep.json");
  EXPECT_EQ(s.base_model, "runs/tiny");
  ASSERT_EQ(s.grids.size(), 1u);
  EXPECT_EQ(s.grids[0].act_bits, std::vector<int>{0});
  EXPECT_EQ(s.grids[0].mixed_precision, std::vector<std::string>{"none"});
  auto points = expand_sweep(s);
  // 1 fp + schemes (2 bits x 2 groups x 2 sym = 8) x (1 ptq + 2 methods x 2 steps x 2 seeds) = 1 +
  // 8 * 9.
  ASSERT_EQ(points.size(), 73u);
  EXPECT_EQ(points[0].id, "fp");
  EXPECT_EQ(points[1].id, "ptq-w4g32-mp_none");
  EXPECT_EQ(points[2].id, "qat-w4g32-mp_none-steps100-seed0");
  EXPECT_EQ(points[3].id, "qat-w4g32-mp_none-steps100-seed1");
  EXPECT_EQ(points[10].id, "ptq-w4g32a-mp_none");
  EXPECT_EQ(points[19].id, "ptq-w4c-mp_none");
  std::set<std::string> ids;
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_EQ(points[i].index, i);
    EXPECT_TRUE(ids.insert(points[i].id).second) << points[i].id;
  }
  // Ids do not depend on the order of the grid's lists.
  Json reordered = good_sweep();
  reordered["grid"]["bits"] = {2, 4};
  reordered["grid"]["methods"] = {"qat_kd", "ptq", "qat"};
  std::set<std::string> ids2;
  for (const auto& p : expand_sweep(parse_sweep(reordered, "x"))) ids2.insert(p.id);
  EXPECT_EQ(ids, ids2);
  EXPECT_EQ((SchemeSpec{3, 128, false, 8}).name(), "w3g128a-a8");
}

// "grid" as a list: the union of the grids' points in list order, a point
// that two grids produce listed once; errors name the grid's index.
TEST(SweepSpec, GridListIsTheUnionOfItsGrids) {
  Json j = Json::parse(R"({"base_model": "m",
    "grid": [{"bits": [4, 2], "group_size": [32], "methods": ["ptq", "qat"], "train_steps": [50]},
             {"bits": [4], "group_size": [32], "act_bits": [0, 8], "methods": ["ptq", "qat_kd"],
              "train_steps": [50]}]})");
  const SweepSpec s = parse_sweep(j, "s");
  ASSERT_EQ(s.grids.size(), 2u);
  std::vector<std::string> ids;
  for (const auto& p : expand_sweep(s)) ids.push_back(p.id);
  const std::vector<std::string> want = {
      "fp", "ptq-w4g32-mp_none", "qat-w4g32-mp_none-steps50-seed0", "ptq-w2g32-mp_none",
      "qat-w2g32-mp_none-steps50-seed0",
      // grid 1: ptq-w4g32 again is skipped
      "qat_kd-w4g32-mp_none-steps50-seed0", "ptq-w4g32-a8-mp_none",
      "qat_kd-w4g32-a8-mp_none-steps50-seed0"};
  EXPECT_EQ(ids, want);
  EXPECT_EQ(expand_sweep(s)[7].scheme.act_bits, 8);
  j["grid"][1]["bits"] = {9};
  expect_error(j, "grid[1].bits[0]: 9 is out of range");
  j["grid"][1] = 4;
  expect_error(j, "grid[1]: must be an object");
  j["grid"] = Json::array();
  expect_error(j, "grid: required");
}

// The real-model recipe's sweep file parses, and its second grid adds the
// int8-activation points.
TEST(SweepSpec, RecipeSweepFileParses) {
  const auto s = read_sweep_file(std::filesystem::path(QWENQAT_SOURCE_DIR) /
                                 "experiments/r1-distill-1.5b/sweep.json");
  ASSERT_EQ(s.grids.size(), 2u);
  const auto points = expand_sweep(s);
  const auto a8 = std::count_if(points.begin(), points.end(),
                                [](const SweepPoint& p) { return p.scheme.act_bits == 8; });
  EXPECT_EQ(a8, 2);  // ptq and qat_kd of w4g32-a8
}

TEST(SweepSpec, PtqOnlyNeedsNoBudget) {
  Json j = Json::parse(R"({"base_model": "m", "fp_reference": false,
    "grid": {"bits": [8], "group_size": [32], "methods": ["ptq"]}})");
  auto points = expand_sweep(parse_sweep(j, "s"));
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].id, "ptq-w8g32-mp_none");
}

TEST(SweepSpec, BadInputNamesTheField) {
  expect_error(Json::array(), "JSON object");
  Json j = good_sweep();
  j.erase("base_model");
  expect_error(j, "base_model");
  j = good_sweep();
  j["colour"] = "red";
  expect_error(j, "colour: unknown field");
  j = good_sweep();
  j["grid"]["bitz"] = {4};
  expect_error(j, "grid.bitz: unknown field");
  j = good_sweep();
  j["grid"]["bits"] = {4, 9};
  expect_error(j, "grid.bits[1]: 9 is out of range");
  j = good_sweep();
  j["grid"]["bits"] = {4, 4};
  expect_error(j, "grid.bits[1]: 4 is listed twice");
  j = good_sweep();
  j["grid"]["bits"] = Json::array();
  expect_error(j, "grid.bits: must be a non-empty list");
  j = good_sweep();
  j["grid"]["bits"] = {"4"};
  expect_error(j, "grid.bits[0]: must be an integer");
  j = good_sweep();
  j["grid"]["group_size"] = {-1};
  expect_error(j, "grid.group_size[0]");
  j = good_sweep();
  j["grid"]["methods"] = {"ptq", "gptq"};
  expect_error(j, "grid.methods[1]: unknown method \"gptq\"");
  j = good_sweep();
  j["grid"].erase("train_steps");
  expect_error(j, "grid.train_steps: missing");
  j = good_sweep();
  j["grid"]["train_steps"] = {0};
  expect_error(j, "grid.train_steps[0]");
  j = good_sweep();
  j["grid"]["act_bits"] = {1};
  expect_error(j, "grid.act_bits[0]");
  j["grid"]["act_bits"] = {16};
  expect_error(j, "grid.act_bits[0]: 16 is out of range");
  j = good_sweep();
  j["grid"]["symmetric"] = {"yes"};
  expect_error(j, "grid.symmetric[0]");
  j = good_sweep();
  j["grid"]["mixed_precision"] = {"a b"};
  expect_error(j, "grid.mixed_precision[0]");
  j = good_sweep();
  j["grid"]["seeds"] = {-3};
  expect_error(j, "grid.seeds[0]");
  j = good_sweep();
  j["fp_reference"] = 1;
  expect_error(j, "fp_reference");
  j = good_sweep();
  j.erase("grid");
  expect_error(j, "grid: required");
  EXPECT_THROW(read_sweep_file("no-such-sweep.yaml"), Error);
}

TEST(SweepSpec, ShardsPartitionTheGrid) {
  const auto points = expand_sweep(parse_sweep(good_sweep(), "s"));
  for (int64_t n : {1, 2, 3, 5, 100}) {
    std::multiset<std::string> all;
    for (int64_t i = 0; i < n; ++i) {
      auto part = shard_points(points, {i, n});
      // Balanced within one point.
      EXPECT_LE(part.size(), (points.size() + size_t(n) - 1) / size_t(n));
      for (const auto& p : part) all.insert(p.id);
    }
    ASSERT_EQ(all.size(), points.size()) << n;  // no point twice (disjoint) ...
    std::set<std::string> unique(all.begin(), all.end());
    EXPECT_EQ(unique.size(), points.size());  // ... and every point once (union = grid)
  }
  EXPECT_EQ(shard_points(points, {1, 3})[0].id, points[1].id);
}

TEST(SweepSpec, ParseShard) {
  Shard s = parse_shard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  for (const char* bad : {"5/5", "1/0", "", "/3", "1/", "a/b", "-1/3", "1/2/3", "1 /2",
                          "99999999999999999999999/2"}) {
    EXPECT_THROW(parse_shard(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace qwenqat::experiments
