// `qwenqat train` (see commands.h): flags, model + quantizer setup or resume,
// data, the trainer, and the summary.
#include "qat/commands.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "data/prompts/templates.h"
#include "data/tokenizer/tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "models/checkpoint_io.h"

namespace qwenqat::qat {
namespace {

namespace fs = std::filesystem;

// A run directory (-> its "latest" checkpoint) or a checkpoint directory.
fs::path resolve_checkpoint(const fs::path& p) {
  if (fs::exists(p / "latest")) {
    std::string name = read_file(p / "latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    return p / name;
  }
  QWENQAT_CHECK(fs::exists(p / "trainer_state.json"), "--resume ", p.string(),
                ": neither a run directory (with a \"latest\" file) nor a checkpoint directory "
                "(with trainer_state.json)");
  return p;
}

// The KD teacher's directory ("" = none needed: no KD, or only the scales
// of the unchanged base model train, so the student with quantizers off is
// the base model).
// A fresh run records it in RUN_DIR/teacher.json; --resume reads it back.
fs::path resolve_teacher(const TrainCommandOptions& o, const TrainOptions& t,
                         const fs::path& run_dir) {
  const fs::path record = run_dir / "teacher.json";
  fs::path teacher = o.teacher;
  // Block-wise runs changed the weights before the scales-only phase, so the
  // student with quantizers off is no longer the original model either.
  const bool weights_moved = t.train_weights || o.mode == "blockwise";
  if (teacher.empty() && t.kd_weight > 0 && weights_moved) {
    if (o.resume.empty()) {
      teacher = o.model;
    } else {
      QWENQAT_CHECK(fs::exists(record), "--resume with --kd-weight > 0: ", record.string(),
                    " is missing; give --teacher (the run's original --model)");
      teacher = read_json_file(record).at("teacher").get<std::string>();
    }
  }
  if (teacher.empty()) return {};
  QWENQAT_CHECK(fs::exists(teacher / "config.json"), "--teacher ", teacher.string(),
                ": not a Hugging Face model directory (no config.json)");
  write_json_file(record, Json{{"teacher", fs::absolute(teacher).string()}});
  return teacher;
}

}  // namespace

Json run_train(const TrainCommandOptions& o) {
  QWENQAT_CHECK(o.mode == "full" || o.mode == "blockwise",
                "--mode must be full or blockwise, got \"", o.mode, "\"");
  const bool blockwise = o.mode == "blockwise";
  o.train.validate();
  o.blockwise.validate();
  QWENQAT_CHECK(o.batch_size >= 1, "--batch-size must be >= 1, got ", o.batch_size);
  QWENQAT_CHECK(o.max_length >= 2, "--max-length must be >= 2, got ", o.max_length);
  models::ModuleOptions mo;
  mo.dtype = models::parse_torch_dtype(o.dtype);
  mo.device = models::parse_device(o.device);
  TrainOptions train = o.train;
  if (blockwise) train.train_weights = false;  // E2E-QP: scales only
  train.save_dtype = mo.dtype == torch::kBFloat16 ? models::DType::kBF16
                     : mo.dtype == torch::kHalf   ? models::DType::kF16
                                                  : models::DType::kF32;
  fs::path run_dir = o.out;
  fs::path checkpoint;
  fs::path model_dir = o.model;
  if (!o.resume.empty()) {
    checkpoint = resolve_checkpoint(o.resume);
    if (run_dir.empty()) run_dir = checkpoint.parent_path();
    model_dir = checkpoint;
  }
  QWENQAT_CHECK(!model_dir.empty(), "--model is required (a Hugging Face model directory)");
  QWENQAT_CHECK(!run_dir.empty(), "--out is required (the run directory)");

  auto model = models::load_model(model_dir, mo);
  std::optional<QatModel> qat;
  if (!checkpoint.empty()) {
    qat.emplace(load_quantization(*model, checkpoint));
  } else {
    QatConfig config = o.qconfig.empty()
                           ? QatConfig::from_preset(o.preset)
                           : QatConfig::from_json(read_json_file(o.qconfig), o.qconfig);
    if (!o.scale_init.empty()) config.scale_init = parse_scale_init(o.scale_init, "--scale-init");
    if (o.freeze_scales) config.learnable_scales = false;
    qat.emplace(prepare(*model, config));
  }

  DataOptions data = o.data;
  if (data.tokenizer.empty() && fs::exists(model_dir / "tokenizer.json")) {
    data.tokenizer = model_dir;
  }
  if (train.tokenizer_src.empty() && !data.tokenizer.empty()) {
    train.tokenizer_src = fs::is_directory(data.tokenizer) ? data.tokenizer
                                                            : data.tokenizer.parent_path();
  }
  const TrainData td = load_train_data(data, model->config().vocab_size);
  fs::create_directories(run_dir);
  if (!td.split.train.empty()) data::write_split(run_dir / "split.json", td.split);

  data::BatcherOptions bo;
  bo.batch_size = o.batch_size;
  bo.max_length = o.max_length;
  bo.seed = train.seed;
  bo.pad_id = 0;
  data::Batcher train_batches(td.train, bo);
  std::optional<data::Batcher> eval_batches;
  if (!td.eval.empty()) {
    auto eo = bo;
    eo.shuffle = false;
    eval_batches.emplace(td.eval, eo);
  }
  Json summary;
  summary["mode"] = o.mode;
  if (blockwise && checkpoint.empty()) {  // a resumed run's checkpoint has the block phase done
    BlockwiseOptions bw = o.blockwise;
    bw.weight_decay = train.weight_decay;
    bw.min_lr_ratio = train.min_lr_ratio;
    bw.grad_clip = train.grad_clip;
    bw.progress = train.progress;
    auto calib =
        calibration_batches(td.train, bw.calib_samples, bw.batch_size, o.max_length, train.seed);
    int64_t calib_samples = 0;
    for (const auto& b : calib) calib_samples += b.batch_size;
    const Stopwatch clock;
    BlockwiseTrainer blocks(model, *qat, std::move(calib), bw, run_dir / "metrics.jsonl");
    Json list = Json::array();
    for (const auto& b : blocks.run()) {
      list.push_back({{"block", b.block},
                      {"mse_before", b.mse_before},
                      {"mse_after", b.mse_after},
                      {"seconds", b.seconds},
                      {"cpu_s", b.cpu_s}});
    }
    summary["calib_samples"] = calib_samples;
    summary["blocks"] = list;
    summary["block_phase_s"] = clock.wall_s();
    summary["block_phase_cpu_s"] = clock.cpu_s();
  }
  const Stopwatch clock;
  Trainer trainer(model, *qat, train, std::move(train_batches), std::move(eval_batches), run_dir);
  const fs::path teacher = resolve_teacher(o, train, run_dir);
  if (!teacher.empty()) trainer.set_teacher(models::load_model(teacher, mo));
  std::optional<data::Tokenizer> accuracy_tok;
  if (train.eval_accuracy > 0) {
    auto problems = accuracy_problems(td.eval, train.eval_accuracy);
    QWENQAT_CHECK(!problems.empty(), "--eval-accuracy needs held-out GSM8K problems (the "
                  "held-out data has none with a reference answer)");
    accuracy_tok.emplace(data::Tokenizer::load(data.tokenizer));
    const std::string tname = data.template_name.empty()
                                  ? data::default_template_name(*accuracy_tok)
                                  : data.template_name;
    trainer.set_accuracy_eval(std::move(problems), &*accuracy_tok,
                              completion_stop_ids(*accuracy_tok, tname));
  }
  if (!checkpoint.empty()) trainer.resume(checkpoint);
  const auto steps = trainer.run();
  const auto eval = trainer.evaluate();
  summary["train_phase_s"] = clock.wall_s();
  summary["train_phase_cpu_s"] = clock.cpu_s();
  summary["peak_rss_gb"] = peak_rss_gib();

  summary["run_dir"] = run_dir.string();
  summary["checkpoint"] = (run_dir / read_file(run_dir / "latest")).string();
  summary["steps"] = trainer.step();
  summary["quantized_layers"] = qat->num_quantized();
  summary["train_examples"] = td.train.size();
  summary["eval_examples"] = td.eval.size();
  summary["eval_ce"] = eval.ce;
  if (eval.accuracy.n > 0) {
    summary["eval_accuracy"] = eval.accuracy.accuracy();
    summary["eval_accuracy_n"] = eval.accuracy.n;
  }
  if (!steps.empty()) summary["final_train_ce"] = steps.back().ce;
  std::string& cp = summary["checkpoint"].get_ref<std::string&>();
  while (!cp.empty() && cp.back() == '\n') cp.pop_back();
  return summary;
}

void register_commands(CLI::App& app) {
  auto o = std::make_shared<TrainCommandOptions>();
  auto* cmd = app.add_subcommand(
      "train", "Quantization-aware training of a Qwen2 checkpoint (--steps 0: round-to-nearest "
               "post-training quantization); writes a run directory of checkpoints");
  cmd->add_option("--model", o->model, "Hugging Face model directory (config.json + safetensors)");
  cmd->add_option("--out", o->out, "run directory (metrics.jsonl, checkpoint-<step>/, latest)");
  cmd->add_option("--preset", o->preset,
                  "quantization preset: w4g32 w4g64 w4g128 w4g32a w8g32 w8c w4g32a8 w4g128a8 "
                  "w3g32 w2g32 w4g32-mixed none, or any w<bits>g<group>[a] / w<bits>c")
      ->capture_default_str();
  cmd->add_option("--qconfig", o->qconfig, "quantization config JSON (overrides --preset)");
  cmd->add_option("--scale-init", o->scale_init, "scale initialization: minmax | mse "
                  "(default: the config's, minmax)");
  cmd->add_flag("--freeze-scales", o->freeze_scales, "keep scales at their initial values")
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "compute dtype: f32 | bf16")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N (needs a LibTorch built with CUDA)")
      ->capture_default_str();
  cmd->add_option("--resume", o->resume,
                  "continue a run: its directory or a checkpoint dir "
                  "(with the run's --mode; a block-wise run resumes its E2E phase)");
  cmd->add_option("--mode", o->mode,
                  "full: fine-tune weights and scales end to end; blockwise: "
                  "train each decoder layer in turn on cached calibration activations "
                  "(EfficientQAT Block-AP), then --steps steps of the scales only end to end")
      ->capture_default_str();
  auto& bw = o->blockwise;
  cmd->add_option("--calib-samples", bw.calib_samples,
                  "blockwise: calibration sequences drawn "
                  "(seeded) from the training split (all if fewer)")
      ->capture_default_str();
  cmd->add_option("--block-batch-size", bw.batch_size,
                  "blockwise: calibration sequences per "
                  "block step")
      ->capture_default_str();
  cmd->add_option("--block-steps", bw.block_steps,
                  "blockwise: optimizer steps per decoder layer "
                  "(0 = skip the block phase)")
      ->capture_default_str();
  cmd->add_option("--blocks", bw.blocks,
                  "blockwise: train only the first N decoder layers "
                  "(0 = all)")
      ->capture_default_str();
  cmd->add_option("--block-lr", bw.lr, "blockwise: peak learning rate of a block's weights")
      ->capture_default_str();
  cmd->add_option("--block-scale-lr", bw.scale_lr,
                  "blockwise: peak learning rate of a block's "
                  "scales")
      ->capture_default_str();
  cmd->add_flag("!--block-weights,--block-scales-only", bw.train_weights,
                "blockwise: train only the scales in the block phase too")
      ->capture_default_str();
  cmd->add_option("--data", o->data.data, "training data: a .jsonl file (GSM8K, "
                  "prompt/completion or tokens) or \"embedded\"")->capture_default_str();
  cmd->add_option("--data-format", o->data.format,
                  "auto | gsm8k | prompt-completion | tokens")->capture_default_str();
  cmd->add_option("--eval-data", o->data.eval_data, "held-out file (default: split --data)");
  cmd->add_option("--holdout", o->data.holdout, "fraction of --data held out for evaluation")
      ->capture_default_str();
  cmd->add_option("--tokenizer", o->data.tokenizer,
                  "tokenizer.json or its directory (default: the model directory's)");
  cmd->add_option("--template", o->data.template_name,
                  "prompt template for GSM8K: r1 | qwen | plain (default: by tokenizer)");
  cmd->add_flag("--skip-bad-lines", o->data.skip_bad_lines, "skip malformed data lines")
      ->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "examples per micro-batch")->capture_default_str();
  cmd->add_option("--max-length", o->max_length, "examples are cut to this many tokens")
      ->capture_default_str();
  auto& t = o->train;
  cmd->add_option("--steps", t.steps,
                  "optimizer steps (0 = PTQ only; blockwise: steps of the "
                  "scales-only E2E phase)")
      ->capture_default_str();
  cmd->add_option("--grad-accum", t.grad_accum, "micro-batches per step")->capture_default_str();
  cmd->add_option("--lr", t.lr, "peak learning rate of the weights")->capture_default_str();
  cmd->add_option("--scale-lr", t.scale_lr, "peak learning rate of the scales")
      ->capture_default_str();
  cmd->add_option("--weight-decay", t.weight_decay, "AdamW weight decay of matrices")
      ->capture_default_str();
  cmd->add_option("--warmup", t.warmup_steps, "linear warm-up steps")->capture_default_str();
  cmd->add_option("--min-lr-ratio", t.min_lr_ratio, "cosine floor as a fraction of the peak")
      ->capture_default_str();
  cmd->add_option("--grad-clip", t.grad_clip, "max gradient norm (0 = off)")
      ->capture_default_str();
  cmd->add_option("--ce-weight", t.ce_weight, "weight of the cross-entropy loss")
      ->capture_default_str();
  cmd->add_option("--kd-weight", t.kd_weight, "weight of the distillation loss (teacher: see "
                  "--teacher)")->capture_default_str();
  cmd->add_option("--teacher", o->teacher,
                  "KD teacher model dir (default: --model when the weights train or --mode "
                  "blockwise, so KD anchors to the original model at the cost of a second "
                  "copy; with --scales-only the student with quantizers off)");
  cmd->add_option("--kd-temperature", t.kd_temperature, "distillation temperature")
      ->capture_default_str();
  cmd->add_flag("!--train-weights,--scales-only", t.train_weights,
                "train only the quantizer scales (weights frozen)")->capture_default_str();
  cmd->add_option("--eval-accuracy", t.eval_accuracy,
                  "at each evaluation also score greedy answers to the first N held-out GSM8K "
                  "problems by exact match (0 = off)")
      ->capture_default_str();
  cmd->add_option("--eval-max-new-tokens", t.eval_max_new_tokens,
                  "most tokens generated per --eval-accuracy answer")
      ->capture_default_str();
  cmd->add_option("--eval-every", t.eval_every, "evaluate every N steps (0 = at the end)")
      ->capture_default_str();
  cmd->add_option("--save-every", t.save_every, "checkpoint every N steps (0 = at the end)")
      ->capture_default_str();
  cmd->add_option("--keep-checkpoints", t.keep_checkpoints, "newest checkpoints kept")
      ->capture_default_str();
  cmd->add_option("--seed", t.seed, "seed of data order, split and torch")->capture_default_str();
  cmd->add_flag("!--no-progress", t.progress, "no progress bar")->capture_default_str();
  cmd->add_flag("--json", o->json, "print the summary as JSON")->capture_default_str();
  cmd->callback([o]() {
    o->data.split_seed = o->train.seed;
    o->blockwise.progress = o->train.progress;
    const Json summary = run_train(*o);
    if (o->json) {
      std::cout << summary.dump(2) << std::endl;
    } else {
      if (summary.contains("blocks")) {
        for (const auto& b : summary["blocks"]) {
          std::printf("block %lld: MSE %.4g -> %.4g (%.1f s)\n",
                      static_cast<long long>(b["block"].get<int64_t>()),
                      b["mse_before"].get<double>(), b["mse_after"].get<double>(),
                      b["seconds"].get<double>());
        }
      }
      std::printf("trained %lld steps; held-out CE %.4f; checkpoint %s\n",
                  static_cast<long long>(summary["steps"].get<int64_t>()),
                  summary["eval_ce"].get<double>(),
                  summary["checkpoint"].get<std::string>().c_str());
      if (summary.contains("eval_accuracy")) {
        std::printf("held-out exact match: %.1f%% of %lld problems (greedy)\n",
                    100.0 * summary["eval_accuracy"].get<double>(),
                    static_cast<long long>(summary["eval_accuracy_n"].get<int64_t>()));
      }
    }
  });
}

}  // namespace qwenqat::qat
