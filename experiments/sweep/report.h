// The sweep report: recovery of QAT over PTQ per scheme and the Markdown
// results table (scheme, method, size, bits/weight, accuracy with CI,
// perplexity, KL, top-1 agreement, recovery). Definitions: docs/EVALUATION.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "experiments/sweep/sweep_results.h"

namespace qwenqat::experiments {

// recovery = (M_qat - M_ptq) / (M_fp - M_ptq) for the first metric M that the
// QAT row, the PTQ row of the same scheme and mixed-precision config, and the
// fp row all have, in the order accuracy, KL, perplexity (the fp row's KL is 0
// by definition when absent). The ratio does not depend on whether M is
// better high or low: 1 = QAT closes the whole gap to full precision, 0 = no
// better than PTQ, < 0 = worse than PTQ, > 1 = better than full precision.
// Undefined (nullopt) for fp/ptq rows, without a matching PTQ or fp row, or
// when |M_fp - M_ptq| <= 1e-12 (PTQ loses nothing) or, on KL, below kMinKlGap.
struct Recovery {
  double value = 0.0;
  std::string metric;  // "accuracy", "perplexity" or "kl"
};
// Below this PTQ-vs-fp KL gap (nats per token) recovery on KL is undefined:
// PTQ is then as good as fp within noise (e.g. 8-bit) and the ratio is noise.
inline constexpr double kMinKlGap = 1e-3;
std::optional<Recovery> recovery_of(const SweepRow& row, const std::vector<SweepRow>& rows);

// The rows in table order: fp first, then by scheme and mixed-precision config
// in order of first appearance, then method (ptq, qat, qat_kd), train steps, seed.
std::vector<SweepRow> table_order(const std::vector<SweepRow>& rows);

// Markdown table of the rows (in table_order). Size in MB is size_bytes / 10^6.
// Missing metrics show as "-".
std::string markdown_table(const std::vector<SweepRow>& rows);

// The table as JSON rows (the same numbers, plus recovery), for --json.
Json table_json(const std::vector<SweepRow>& rows);

}  // namespace qwenqat::experiments
