// A deterministic, seeded train / held-out split of a problem file, so QAT
// trains on one part and early evaluation uses the other. Algorithm (the same
// on every machine and compiler): perm = [0, n); Fisher-Yates shuffle of perm
// with SplitMix64(seed) (data/util/rng.h); the first round(n * holdout)
// entries of perm are held out, the rest train; both lists are then sorted.
// The split is written down as JSON (an "indices file") with every run.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::data {

struct DataSplit {
  uint64_t seed = 0;
  double holdout = 0.05;         // fraction held out, in [0, 1)
  int64_t total = 0;             // number of problems split
  std::string source;            // the data file (informational)
  std::vector<int64_t> train;    // 0-based problem indices, ascending
  std::vector<int64_t> heldout;  // 0-based problem indices, ascending
};

// Throws if holdout is outside [0, 1) or n < 0.
DataSplit make_split(int64_t n, double holdout, uint64_t seed, std::string source = "");

// {"format": "qwenqat-split-v1", "seed", "holdout", "total", "source",
//  "train": [...], "heldout": [...]}
Json split_to_json(const DataSplit& s);
// Validates (indices in range, disjoint, covering [0, total)); throws naming
// `origin` and the field.
DataSplit split_from_json(const Json& j, const std::string& origin);
void write_split(const std::filesystem::path& path, const DataSplit& s);  // atomic
DataSplit read_split(const std::filesystem::path& path);

}  // namespace qwenqat::data
