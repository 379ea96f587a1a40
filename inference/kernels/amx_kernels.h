// The int8-activation matmul on Intel AMX tiles (amx_q8.cpp, compiled under a
// `#pragma GCC target` region so the rest of the build needs no -mamx*).
// Call it only when cpu_has_amx() (kernels/packed_matmul.h) and the
// activations carry the tile layout (Q8Activations::amx_tiles > 0, filled by
// layout_amx in act_quant.h); act_quant.cpp checks both before dispatching.
#pragma once

#include <cstdint>

#include "export/format/packed_tensor.h"
#include "inference/kernels/act_quant.h"

namespace qwenqat::engine::amx {

// Weight rows per tile panel and sequences per column tile.
constexpr int64_t kPanelRows = 16;
constexpr int64_t kTileSeqs = 16;

// The int8-activation matmul of act_quant.h with the arguments of
// avx512::q8_matmul_rows: requires supports_q8(w), x.cols == w.cols and the
// tile layout in x; eg [x.n, groups] the per-weight-group sums of x.e;
// writes y[b * y_stride + r] for b < x.n, r in [r0, r1).
// Per 32-element block one TDPBSSD / TDPBUSD gives the exact int32 sums of 16
// weight rows x 16 sequences (signed codes u - 8 or unsigned u times signed
// q; for 8-bit weights 128 * sum(q) is taken off exactly), then one FMA per
// weight row and block adds float(isum) * (s * d) for the 16 sequences. A
// (row, sequence) result is a sequential sum over blocks that does not depend
// on x.n, r0, r1 or on which sequences share the batch; it differs from the
// AVX-512 and AVX2 kernels' results by float summation order only (the int32
// block sums are the same). Thread-safe on disjoint row ranges (tile state and scratch
// are per thread; the tile configuration is loaded and released per call).
void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, const float* eg, float* y,
                    int64_t y_stride, int64_t r0, int64_t r1);

}  // namespace qwenqat::engine::amx
