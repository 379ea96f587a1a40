// Random weights of a config's shapes, for speed and memory measurements of
// the real model without its weights (`qwenqat bench --random-config`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "inference/weights.h"
#include "models/checkpoint/qwen2_config.h"

namespace qwenqat::engine {

// Random weights of `config`'s shapes: every linear, lm_head and the
// embedding packed with `quant` (random codes, scales ~ N(0, 0.02)-like), or
// float32 / bf16 (as a bf16 checkpoint) when quant is "f32" / "bf16"; norms 1,
// biases small. Fast (no quantization search): for speed and memory
// measurements only. The same seed gives the same weights.
std::shared_ptr<MemorySource> random_weight_source(const models::Qwen2Config& config,
                                                   const std::string& quant, uint64_t seed);

}  // namespace qwenqat::engine
