// Implementation of split.h.
#include "data/gsm8k/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/util/check.h"
#include "data/util/rng.h"

namespace qwenqat::data {

DataSplit make_split(int64_t n, double holdout, uint64_t seed, std::string source) {
  QWENQAT_CHECK(n >= 0, "make_split: negative problem count ", n);
  QWENQAT_CHECK(holdout >= 0.0 && holdout < 1.0, "--holdout must be in [0, 1), got ", holdout);
  DataSplit s;
  s.seed = seed;
  s.holdout = holdout;
  s.total = n;
  s.source = std::move(source);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  SplitMix64 rng(seed);
  portable_shuffle(perm, rng);
  const auto n_hold = static_cast<int64_t>(std::llround(static_cast<double>(n) * holdout));
  s.heldout.assign(perm.begin(), perm.begin() + n_hold);
  s.train.assign(perm.begin() + n_hold, perm.end());
  std::sort(s.heldout.begin(), s.heldout.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

Json split_to_json(const DataSplit& s) {
  return {{"format", "qwenqat-split-v1"}, {"seed", s.seed},
          {"holdout", s.holdout},         {"total", s.total},
          {"source", s.source},           {"train", s.train},
          {"heldout", s.heldout}};
}

DataSplit split_from_json(const Json& j, const std::string& origin) {
  QWENQAT_CHECK(j.is_object() && j.value("format", "") == "qwenqat-split-v1", origin,
                ": not a split file (expected \"format\": \"qwenqat-split-v1\")");
  DataSplit s;
  try {
    s.seed = j.at("seed").get<uint64_t>();
    s.holdout = j.at("holdout").get<double>();
    s.total = j.at("total").get<int64_t>();
    s.source = j.value("source", "");
    s.train = j.at("train").get<std::vector<int64_t>>();
    s.heldout = j.at("heldout").get<std::vector<int64_t>>();
  } catch (const Json::exception& e) {
    fail(origin, ": malformed split file (", e.what(), ")");
  }
  QWENQAT_CHECK(s.total >= 0 && static_cast<int64_t>(s.train.size() + s.heldout.size()) == s.total,
                origin, ": \"train\" and \"heldout\" must together list all ", s.total,
                " problems");
  std::vector<uint8_t> seen(static_cast<size_t>(s.total), 0);
  for (const auto* list : {&s.train, &s.heldout}) {
    for (int64_t i : *list) {
      QWENQAT_CHECK(i >= 0 && i < s.total && !seen[i], origin, ": index ", i,
                    " is out of range or listed twice");
      seen[i] = 1;
    }
  }
  return s;
}

void write_split(const std::filesystem::path& path, const DataSplit& s) {
  write_json_file(path, split_to_json(s), -1);
}

DataSplit read_split(const std::filesystem::path& path) {
  return split_from_json(read_json_file(path), path.string());
}

}  // namespace qwenqat::data
