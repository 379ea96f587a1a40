// The models library's subcommands: `qwenqat init` (random-weight Hugging Face
// checkpoint), `qwenqat logits` (the LibTorch model's logits as JSON) and
// `qwenqat bench-load` (checkpoint load speed and peak memory). `logits` and
// `inspect` are registered in cli/shared_commands.cpp (they also dispatch to
// the engine and the export format) and call run_logits / inspect.h here.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qwenqat::models {

struct InitOptions {
  std::string config;        // config.json (tokenizer files beside it are copied)
  std::string out;           // output directory
  std::string dtype = "bf16";
  uint64_t seed = 0;
  bool progress = true;
};

struct LogitsOptions {
  std::string model;         // model directory or .safetensors file
  std::string ids;           // "1,2,3"
  std::string out;           // JSON file; empty = stdout
  std::string dtype = "f32";
  std::string device = "cpu";
};

struct BenchLoadOptions {
  std::string model;
  std::string dtype = "bf16";
  bool json = false;
};

void run_init(const InitOptions& o);
void run_logits(const LogitsOptions& o);
void run_bench_load(const BenchLoadOptions& o);

// Parses "1,2,3" (spaces allowed) into ids; throws qwenqat::Error naming
// `flag` on an empty list, a non-integer or a negative id.
std::vector<int64_t> parse_ids(const std::string& s, const std::string& flag = "--ids");

// Adds init and bench-load to `app`.
void register_commands(CLI::App& app);

}  // namespace qwenqat::models
