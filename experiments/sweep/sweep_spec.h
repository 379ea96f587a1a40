// Sweep files: the grid of an accuracy-versus-size sweep, parsed from JSON or
// YAML (.yaml/.yml, read into the same JSON value: yaml_json.h), validated with errors
// naming the field, and expanded into points with stable ids; plus the
// deterministic `--shard i/n` split. Format and semantics: docs/EVALUATION.md.
//
//   {
//     "name": "tiny-gsm8k",
//     "base_model": "runs/tiny/model",           // required: checkpoint dir
//     "data": {"train": "...", "eval": "..."},   // opaque, passed to the runner
//     "fp_reference": true,                      // add the full-precision point
//     "grid": {
//       "bits": [8, 4, 3, 2],                    // 2..8
//       "group_size": [32, 128],                 // 0 = per channel
//       "symmetric": [true],
//       "act_bits": [0],                         // 0 = float inputs, else 2..8 per token
//       "methods": ["ptq", "qat", "qat_kd"],
//       "train_steps": [200],                    // budgets for qat/qat_kd, >= 1
//       "mixed_precision": ["none"],             // config names, [A-Za-z0-9_.-]+
//       "seeds": [0]
//     },
//     "options": {...}                           // opaque, passed to the runner
//   }
//
// "grid" may also be a list of such objects: the sweep is the union of their
// points (in list order; a point two grids produce runs once), e.g. the full
// bits x group grid plus int8 activations for w4g32 only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::experiments {

// One quantization scheme: weights (bits, group size, symmetry) and
// activations (act_bits 0 = not quantized).
struct SchemeSpec {
  int bits = 4;
  int group_size = 32;
  bool symmetric = true;
  int act_bits = 0;
  // "w4g32", "w8c" (per channel), "w4g128a" (asymmetric) as quant::QuantSpec::name(),
  // plus "-a8" when activations are quantized.
  std::string name() const;
  bool operator==(const SchemeSpec&) const = default;
};

// Methods: "fp" (the unquantized reference, added by fp_reference), "ptq"
// (round-to-nearest), "qat", "qat_kd" (QAT with distillation).
inline constexpr const char* kMethods[] = {"ptq", "qat", "qat_kd"};

// One grid: the cross product of its lists.
struct SweepGrid {
  std::vector<int> bits, group_sizes, act_bits;
  std::vector<bool> symmetric;
  std::vector<std::string> methods;
  std::vector<int64_t> train_steps;
  std::vector<std::string> mixed_precision;
  std::vector<uint64_t> seeds;
};

struct SweepSpec {
  std::string name;
  std::string base_model;
  Json data = Json::object();
  bool fp_reference = true;
  std::vector<SweepGrid> grids;  // >= 1 ("grid": an object or a list of objects)
  Json options = Json::object();
};

// Parses and validates; `what` names the source in errors ("sweep.json").
// Unknown keys, wrong types, out-of-range or duplicate values all throw
// qwenqat::Error naming the field (e.g. "sweep.json: grid.bits[2]: ...").
SweepSpec parse_sweep(const Json& j, const std::string& what);
SweepSpec read_sweep_file(const std::filesystem::path& path);

// One point of the grid. `id` is the canonical string of its settings, e.g.
// "qat_kd-w4g32-mp_none-steps200-seed0", "ptq-w3g128a-a8-mp_none", "fp";
// it is stable (independent of the order of the grid's lists) and safe as a
// file name.
struct SweepPoint {
  size_t index = 0;  // position in the expansion order
  std::string id;
  std::string method;  // "fp", "ptq", "qat", "qat_kd"
  SchemeSpec scheme;   // meaningless for "fp"
  std::string mixed_precision = "none";
  int64_t train_steps = 0;  // 0 for fp and ptq
  uint64_t seed = 0;        // 0 for fp and ptq
};

// Expansion order: the fp point first (if fp_reference), then grid by grid
// (points already produced by an earlier grid are skipped), for each
// scheme (bits x group_size x symmetric x act_bits, in the listed order), each
// mixed-precision config and each method: ptq once, qat/qat_kd once per
// train_steps x seeds. ptq and fp are deterministic, so they are not repeated
// per budget or seed.
std::vector<SweepPoint> expand_sweep(const SweepSpec& spec);

// `--shard i/n`: 0-based shard i of n. Shard i gets the points whose index
// (expansion order) modulo n equals i, so shards partition the grid exactly
// and balance within one point.
struct Shard {
  int64_t index = 0, count = 1;
};
// Parses "i/n" with 0 <= i < n; throws naming the --shard flag otherwise.
Shard parse_shard(const std::string& text);
std::vector<SweepPoint> shard_points(const std::vector<SweepPoint>& points, const Shard& shard);

}  // namespace qwenqat::experiments
