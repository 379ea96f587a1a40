// Implementation of sweep_results.h.
#include "experiments/sweep/sweep_results.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "data/util/check.h"
#include "data/util/file_io.h"

namespace qwenqat::experiments {

namespace {

Json opt(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

const Json& get(const Json& j, const std::string& what, const char* name) {
  auto it = j.find(name);
  QWENQAT_CHECK(it != j.end(), what, ": missing field \"", name, "\"");
  return *it;
}

template <class T>
T typed(const Json& j, const std::string& what, const char* name) {
  const Json& v = get(j, what, name);
  bool ok;
  if constexpr (std::is_same_v<T, std::string>) {
    ok = v.is_string();
  } else if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    ok = v.is_number_integer();
  } else {
    ok = v.is_number();
  }
  QWENQAT_CHECK(ok, what, ": field \"", name, "\" has the wrong type (got ", v.dump(), ")");
  return v.get<T>();
}

std::optional<double> optional_number(const Json& j, const std::string& what, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  QWENQAT_CHECK(it->is_number(), what, ": field \"", name, "\" must be a number or null, got ",
                it->dump());
  return it->get<double>();
}

}  // namespace

void set_generation_metrics(PointMetrics& m, const EvalSummary& summary) {
  QWENQAT_CHECK(summary.problems > 0, "the generation eval of this point scored no problems");
  m.accuracy = summary.accuracy;
}

void set_teacher_forced_metrics(PointMetrics& m, const TeacherForcedAccumulator& acc) {
  QWENQAT_CHECK(acc.tokens() > 0, "the teacher-forced eval of this point scored no tokens");
  m.perplexity = acc.perplexity();
  if (acc.has_reference()) {
    m.kl_mean = acc.kl_stats().mean;
    m.top1_agreement = acc.top1_agreement().value;
  }
}

Json row_to_json(const SweepRow& r) {
  const auto& p = r.point;
  const auto& m = r.metrics;
  const bool fp = p.method == "fp";
  Json j{{"point_id", p.id},
         {"method", p.method},
         {"scheme", fp ? std::string("fp") : p.scheme.name()},
         {"bits", fp ? 0 : p.scheme.bits},
         {"group_size", fp ? 0 : p.scheme.group_size},
         {"symmetric", fp ? true : p.scheme.symmetric},
         {"act_bits", fp ? 0 : p.scheme.act_bits},
         {"mixed_precision", p.mixed_precision},
         {"train_steps", p.train_steps},
         {"seed", p.seed},
         {"size_bytes", m.size_bytes},
         {"bits_per_weight", m.bits_per_weight},
         {"accuracy", m.accuracy ? Json(m.accuracy->value) : Json(nullptr)},
         {"accuracy_ci95_low", m.accuracy ? Json(m.accuracy->ci95.low) : Json(nullptr)},
         {"accuracy_ci95_high", m.accuracy ? Json(m.accuracy->ci95.high) : Json(nullptr)},
         {"accuracy_n", m.accuracy ? Json(m.accuracy->n) : Json(nullptr)},
         {"perplexity", opt(m.perplexity)},
         {"kl_mean", opt(m.kl_mean)},
         {"top1_agreement", opt(m.top1_agreement)},
         {"wall_seconds", r.wall_seconds},
         {"extra", m.extra}};
  return j;
}

SweepRow row_from_json(const Json& j, const std::string& what) {
  QWENQAT_CHECK(j.is_object(), what, ": expected a JSON object");
  SweepRow r;
  auto& p = r.point;
  p.id = typed<std::string>(j, what, "point_id");
  QWENQAT_CHECK(!p.id.empty(), what, ": field \"point_id\" is empty");
  p.method = typed<std::string>(j, what, "method");
  QWENQAT_CHECK(p.method == "fp" || p.method == "ptq" || p.method == "qat" ||
                    p.method == "qat_kd",
                what, ": field \"method\" is \"", p.method, "\" (expected fp, ptq, qat, qat_kd)");
  p.scheme.bits = typed<int>(j, what, "bits");
  p.scheme.group_size = typed<int>(j, what, "group_size");
  p.scheme.symmetric = typed<bool>(j, what, "symmetric");
  p.scheme.act_bits = typed<int>(j, what, "act_bits");
  p.mixed_precision = typed<std::string>(j, what, "mixed_precision");
  p.train_steps = typed<int64_t>(j, what, "train_steps");
  p.seed = typed<uint64_t>(j, what, "seed");
  auto& m = r.metrics;
  m.size_bytes = typed<int64_t>(j, what, "size_bytes");
  QWENQAT_CHECK(m.size_bytes >= 0, what, ": field \"size_bytes\" must be >= 0");
  m.bits_per_weight = typed<double>(j, what, "bits_per_weight");
  if (auto acc = optional_number(j, what, "accuracy")) {
    Proportion a;
    a.value = *acc;
    a.n = optional_number(j, what, "accuracy_n").value_or(0.0);
    a.successes = a.value * a.n;
    a.ci95.low = optional_number(j, what, "accuracy_ci95_low").value_or(a.value);
    a.ci95.high = optional_number(j, what, "accuracy_ci95_high").value_or(a.value);
    QWENQAT_CHECK(a.value >= 0 && a.value <= 1, what, ": field \"accuracy\" must be in [0, 1]");
    m.accuracy = a;
  }
  m.perplexity = optional_number(j, what, "perplexity");
  m.kl_mean = optional_number(j, what, "kl_mean");
  m.top1_agreement = optional_number(j, what, "top1_agreement");
  if (auto it = j.find("extra"); it != j.end() && it->is_object()) m.extra = *it;
  if (auto w = optional_number(j, what, "wall_seconds")) r.wall_seconds = *w;
  return r;
}

LoadedRows load_rows(const std::filesystem::path& jsonl_path) {
  LoadedRows out;
  JsonlContents contents = read_jsonl(jsonl_path);
  out.warnings = std::move(contents.warnings);
  std::set<std::string> seen;
  for (const auto& line : contents.lines) {
    const std::string what = jsonl_path.string() + ":" + std::to_string(line.line_number);
    SweepRow row = row_from_json(line.value, what);
    if (!seen.insert(row.point.id).second) {
      out.warnings.push_back(what + ": point " + row.point.id + " occurs again; keeping the first");
      continue;
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

namespace {

std::string csv_cell(const Json& v) {
  if (v.is_null()) return "";
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string rows_to_csv(const std::vector<SweepRow>& rows) {
  static const char* kColumns[] = {
      "point_id", "method", "scheme", "bits", "group_size", "symmetric", "act_bits",
      "mixed_precision", "train_steps", "seed", "size_bytes", "bits_per_weight", "accuracy",
      "accuracy_ci95_low", "accuracy_ci95_high", "accuracy_n", "perplexity", "kl_mean",
      "top1_agreement", "wall_seconds"};
  std::ostringstream os;
  bool first = true;
  for (const char* c : kColumns) os << (first ? "" : ",") << c, first = false;
  os << "\n";
  for (const auto& r : rows) {
    const Json j = row_to_json(r);
    first = true;
    for (const char* c : kColumns) os << (first ? "" : ",") << csv_cell(j[c]), first = false;
    os << "\n";
  }
  return os.str();
}

ResultsStore::ResultsStore(std::filesystem::path dir) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  LoadedRows loaded = load_rows(dir_ / kResultsJsonl);
  rows_ = std::move(loaded.rows);
  warnings_ = std::move(loaded.warnings);
  for (const auto& w : warnings_) std::fprintf(stderr, "warning: %s\n", w.c_str());
  for (const auto& r : rows_) ids_.insert(r.point.id);
  out_.emplace(dir_ / kResultsJsonl);
}

void ResultsStore::append(const SweepRow& row) {
  QWENQAT_CHECK(!done(row.point.id), (dir_ / kResultsJsonl).string(), " already holds point ",
                row.point.id);
  out_->append(row_to_json(row));
  rows_.push_back(row);
  ids_.insert(row.point.id);
  write_file_atomic(dir_ / kResultsCsv, rows_to_csv(rows_));
}

MergeReport merge_results(const std::vector<std::filesystem::path>& inputs,
                          const std::filesystem::path& out_dir) {
  QWENQAT_CHECK(!inputs.empty(), "merge: no result files given");
  MergeReport report;
  std::vector<SweepRow> merged;
  std::map<std::string, Json> by_id;  // metrics of the kept row, for conflict checks
  for (const auto& in : inputs) {
    const auto file = std::filesystem::is_directory(in) ? in / kResultsJsonl : in;
    QWENQAT_CHECK(std::filesystem::exists(file), "merge: ", file.string(),
                  " does not exist (give results.jsonl files or directories holding one)");
    LoadedRows loaded = load_rows(file);
    for (auto& w : loaded.warnings) report.warnings.push_back(std::move(w));
    for (auto& row : loaded.rows) {
      Json metrics = row_to_json(row);
      metrics.erase("wall_seconds");
      metrics.erase("extra");
      auto it = by_id.find(row.point.id);
      if (it == by_id.end()) {
        by_id.emplace(row.point.id, std::move(metrics));
        merged.push_back(std::move(row));
      } else if (it->second == metrics) {
        ++report.duplicates;
      } else {
        report.warnings.push_back("merge: point " + row.point.id + " in " + file.string() +
                                  " differs from an earlier copy; keeping the first");
        ++report.duplicates;
      }
    }
  }
  std::filesystem::create_directories(out_dir);
  std::string jsonl;
  for (const auto& r : merged) jsonl += row_to_json(r).dump() + "\n";
  write_file_atomic(out_dir / kResultsJsonl, jsonl);
  write_file_atomic(out_dir / kResultsCsv, rows_to_csv(merged));
  report.rows = int64_t(merged.size());
  return report;
}

}  // namespace qwenqat::experiments
