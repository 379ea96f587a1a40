// Implementation of pipeline.h: one sweep point = train (or reuse) -> export
// -> evaluate, and the `qwenqat sweep` command.
#include "experiments/pipeline.h"

#include <iostream>
#include <memory>

#include "data/gsm8k/gsm8k.h"
#include "data/gsm8k/split.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "experiments/eval/eval_commands.h"
#include "experiments/sweep/report.h"
#include "experiments/sweep/report_commands.h"
#include "export/exporter.h"
#include "export/format/h5_inspect.h"
#include "models/checkpoint/qwen2_config.h"
#include "qat/commands.h"

namespace qwenqat::experiments {
namespace fs = std::filesystem;

PipelineSettings PipelineSettings::from_spec(const SweepSpec& spec) {
  PipelineSettings s;
  const Json& d = spec.data;
  const Json& o = spec.options;
  auto get = [](const Json& j, const char* key, auto& out, const char* where) {
    if (!j.contains(key)) return;
    try {
      out = j[key].get<std::decay_t<decltype(out)>>();
    } catch (const Json::exception&) {
      fail("sweep file: ", where, ".", key, " has the wrong type (", j[key].type_name(), ")");
    }
  };
  get(d, "train", s.train_data, "data");
  get(d, "eval", s.eval_data, "data");
  get(d, "holdout", s.holdout, "data");
  get(d, "eval_limit", s.eval_limit, "data");
  get(o, "batch_size", s.batch_size, "options");
  get(o, "max_length", s.max_length, "options");
  get(o, "lr", s.lr, "options");
  get(o, "scale_lr", s.scale_lr, "options");
  get(o, "kd_weight", s.kd_weight, "options");
  get(o, "ce_weight_kd", s.ce_weight_kd, "options");
  get(o, "kd_temperature", s.kd_temperature, "options");
  get(o, "warmup_steps", s.warmup_steps, "options");
  get(o, "scale_init", s.scale_init, "options");
  get(o, "generation_eval", s.generation_eval, "options");
  get(o, "max_new_tokens", s.max_new_tokens, "options");
  get(o, "threads", s.threads, "options");
  get(o, "device", s.device, "options");
  get(o, "dtype", s.dtype, "options");
  return s;
}

namespace {

// The held-out split of the training data, written once per sweep so every
// point (fp included) is evaluated on the same problems as training held out.
fs::path ensure_split(const PipelineSettings& s, const fs::path& sweep_dir) {
  const fs::path p = sweep_dir / "split.json";
  if (!fs::exists(p)) {
    const auto problems = data::load_gsm8k(s.train_data, false);
    data::write_split(p, data::make_split(int64_t(problems.size()), s.holdout, 0, s.train_data));
  }
  return p;
}

EvalOptions eval_options(const PipelineSettings& s, const fs::path& model, const fs::path& ref,
                         const fs::path& split, const fs::path& out) {
  EvalOptions e;
  e.model = model.string();
  e.reference = ref.string();
  if (s.eval_data.empty()) {
    e.data = s.train_data;
    e.split = split.string();
    e.part = "heldout";
  } else {
    e.data = s.eval_data;
  }
  e.limit = s.eval_limit;
  e.max_length = s.max_length;  // score the positions the points were trained on
  e.threads = s.threads;
  e.out = out.string();
  e.progress = s.progress;
  e.temperature = 0.0;  // greedy: deterministic accuracy for the sweep table
  e.max_new_tokens = s.max_new_tokens;
  return e;
}

void evaluate_into(PointMetrics& m, const PipelineSettings& s, const fs::path& model,
                   const SweepSpec& spec, const fs::path& split, const fs::path& work_dir) {
  EvalOptions e = eval_options(s, model, spec.base_model, split, work_dir / "eval");
  e.teacher_forced = true;
  const fs::path tf_file = work_dir / "eval" / "teacher_forced.json";
  const Json tf = fs::exists(tf_file) ? read_json_file(tf_file) : teacher_forced_eval(e);
  m.perplexity = tf.at("perplexity").get<double>();
  if (tf.contains("kl")) m.kl_mean = tf["kl"].at("mean").get<double>();
  if (tf.contains("top1_agreement")) {
    m.top1_agreement = tf["top1_agreement"].at("value").get<double>();
  }
  m.extra["teacher_forced"] = tf_file.string();
  if (s.generation_eval) {
    e.teacher_forced = false;
    e.resume = true;
    const Json g = generation_eval(e);
    const Json& acc = g.contains("accuracy") ? g["accuracy"] : g.at("summary").at("accuracy");
    Proportion p;
    p.value = acc.at("value").get<double>();
    p.n = acc.at("n").get<double>();
    p.successes = acc.at("successes").get<double>();
    p.ci95.low = acc.at("ci95_low").get<double>();
    p.ci95.high = acc.at("ci95_high").get<double>();
    m.accuracy = p;
  }
}

}  // namespace

PointMetrics PipelineRunner::run(const SweepPoint& point, const SweepSpec& spec,
                                 const fs::path& work_dir) {
  const PipelineSettings& s = settings_;
  const fs::path sweep_dir = work_dir.parent_path().parent_path();  // DIR/points/<id>
  const fs::path split = ensure_split(s, sweep_dir);
  PointMetrics m;
  if (point.method == "fp") {
    const auto config = models::Qwen2Config::load(spec.base_model);
    m.size_bytes = 2 * config.num_parameters();  // as bf16
    m.bits_per_weight = 16.0;
    m.extra["note"] = "full-precision reference; size as bf16";
    evaluate_into(m, s, spec.base_model, spec, split, work_dir);
    return m;
  }
  const fs::path h5 = work_dir / "model.h5";
  const fs::path train_summary = work_dir / "train_summary.json";
  if (!fs::exists(h5)) {
    Json ts;
    if (fs::exists(train_summary)) {
      ts = read_json_file(train_summary);
    } else {
      qat::TrainCommandOptions t;
      t.model = spec.base_model;
      t.out = (work_dir / "run").string();
      quant::QuantSpec w{point.scheme.bits, point.scheme.group_size, point.scheme.symmetric};
      qat::QatConfig qc = point.mixed_precision == "none"
                              ? qat::QatConfig::from_preset(w.name())
                              : qat::QatConfig::from_preset(point.mixed_precision);
      qc.weight = w;
      // Per-token dynamic activations of the default scheme's layers; the
      // export records them and the engine applies them (ActQuant::kAuto).
      qc.activation_bits = point.scheme.act_bits;
      qc.scale_init = qat::parse_scale_init(s.scale_init, "options.scale_init");
      const fs::path qfile = work_dir / "qconfig.json";
      fs::create_directories(work_dir);
      write_json_file(qfile, qc.to_json());
      t.qconfig = qfile.string();
      t.batch_size = s.batch_size;
      t.device = s.device;
      t.dtype = s.dtype;
      t.max_length = s.max_length;
      t.data.data = s.train_data;
      t.data.eval_data = s.eval_data;
      t.data.holdout = s.holdout;
      t.train.steps = point.method == "ptq" ? 0 : point.train_steps;
      t.train.lr = s.lr;
      t.train.scale_lr = s.scale_lr;
      t.train.seed = point.seed;
      t.train.warmup_steps = std::min(s.warmup_steps, t.train.steps);
      t.train.progress = s.progress;
      if (point.method == "qat_kd") {
        t.train.kd_weight = s.kd_weight;
        t.train.ce_weight = s.ce_weight_kd;
        t.train.kd_temperature = s.kd_temperature;
      }
      ts = qat::run_train(t);
      write_json_file(train_summary, ts);
    }
    exporter::ExportOptions eo;
    eo.model = ts.at("checkpoint").get<std::string>();
    eo.out_h5 = h5;
    eo.progress = false;
    exporter::run_export(eo);
  }
  // Size: the weights as deployed, with unquantized tensors (norms, biases,
  // float embeddings) counted as bf16 like the fp row, so rows compare the
  // same thing; the .h5 file itself (f32 floats, config, tokenizer) is in extra.
  const Json report = format::inspect_model_file(h5);
  int64_t size = 0, bytes = 0, params = 0;
  for (const auto& t : report["tensors"]) {
    const std::string scheme = t["scheme"].get<std::string>();
    const bool is_float = scheme == "f32" || scheme == "f16" || scheme == "bf16";
    size += is_float ? t["bf16_bytes"].get<int64_t>() : t["bytes"].get<int64_t>();
  }
  for (const auto& c : report["classes"])
    if (c["class"] == "attention" || c["class"] == "mlp") {
      bytes += c["bytes"].get<int64_t>();
      params += c["params"].get<int64_t>();
    }
  m.size_bytes = size;
  m.bits_per_weight = params > 0 ? 8.0 * double(bytes) / double(params) : 0.0;
  m.extra["h5_file_bytes"] = report["totals"]["file_bytes"];
  m.extra["h5"] = h5.string();
  if (fs::exists(train_summary)) m.extra["train"] = read_json_file(train_summary);
  evaluate_into(m, s, h5, spec, split, work_dir);
  return m;
}

void register_sweep_commands(CLI::App& app) {
  struct Opts {
    fs::path spec, out;
    std::string shard = "0/1";
    bool keep_going = false, report = true, json = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "sweep",
      "Run an accuracy-versus-size sweep: for each grid point train (or reuse), export, "
      "measure and evaluate; append to DIR/results.{csv,jsonl}; then write the table "
      "and plot (docs/EVALUATION.md)");
  cmd->add_option("--spec", o->spec,
                  "Sweep file (JSON, or YAML if named .yaml/.yml): base_model, data, grid, options")
      ->required();
  cmd->add_option("--out", o->out, "Sweep directory (results, per-point work dirs)")->required();
  cmd->add_option("--shard", o->shard,
                  "Run only shard i of n (\"i/n\", 0-based) so several processes split the grid; "
                  "merge with `qwenqat report --merge`")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Engine threads for evaluation (0 = all cores)")
      ->capture_default_str();
  cmd->add_flag("--keep-going", o->keep_going,
                "Report a failing point and continue (a re-run retries it)");
  cmd->add_flag("!--no-report", o->report, "Do not write the table and plot at the end");
  cmd->add_flag("--json", o->json, "Print the run report as JSON");
  cmd->callback([o] {
    const SweepSpec spec = read_sweep_file(o->spec);
    PipelineSettings settings = PipelineSettings::from_spec(spec);
    if (o->threads > 0) settings.threads = o->threads;
    PipelineRunner runner(settings);
    SweepRunOptions ro;
    ro.shard = parse_shard(o->shard);
    ro.keep_going = o->keep_going;
    fs::create_directories(o->out);
    const SweepRunReport r = run_sweep(spec, runner, o->out, ro);
    if (o->json) {
      std::cout << Json{{"shard_points", r.shard_points},
                        {"skipped", r.skipped},
                        {"ran", r.ran},
                        {"failed", r.failed}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "sweep: " << r.ran << " point(s) run, " << r.skipped << " already done, "
                << r.failed.size() << " failed, of " << r.shard_points << " in this shard\n";
    }
    if (o->report && !o->json) {
      ReportOptions rep;
      rep.results_dir = o->out;
      rep.title = spec.name;
      run_report(rep);
    }
  });
}

}  // namespace qwenqat::experiments
