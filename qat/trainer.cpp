// The QAT training loop (see trainer.h).
#include "qat/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "data/util/progress.h"
#include "models/checkpoint_io.h"

namespace qwenqat::qat {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCheckpointPrefix = "checkpoint-";

int64_t loss_tokens(const data::Batch& b) {
  int64_t n = 0;
  for (int64_t r = 0; r < b.batch_size; ++r) {
    for (int64_t t = 1; t < b.seq_len; ++t) n += b.loss_mask[size_t(r * b.seq_len + t)] != 0;
  }
  return n;
}

std::string fmt(double v, int prec = 4) {
  std::ostringstream os;
  os.precision(prec);
  os << v;
  return os.str();
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::exists(run_dir)) return out;
  for (const auto& e : fs::directory_iterator(run_dir)) {
    const auto name = e.path().filename().string();
    if (!e.is_directory() || !name.starts_with(kCheckpointPrefix)) continue;
    const auto num = name.substr(std::string(kCheckpointPrefix).size());
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) continue;
    out.push_back({std::stoll(num), e.path()});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void TrainOptions::validate() const {
  QWENQAT_CHECK(steps >= 0, "--steps must be >= 0 (0 = post-training quantization), got ", steps);
  QWENQAT_CHECK(grad_accum >= 1, "--grad-accum must be >= 1, got ", grad_accum);
  QWENQAT_CHECK(std::isfinite(lr) && lr > 0, "--lr must be > 0, got ", lr);
  QWENQAT_CHECK(std::isfinite(scale_lr) && scale_lr > 0, "--scale-lr must be > 0, got ", scale_lr);
  QWENQAT_CHECK(weight_decay >= 0, "--weight-decay must be >= 0, got ", weight_decay);
  QWENQAT_CHECK(warmup_steps >= 0, "--warmup must be >= 0, got ", warmup_steps);
  QWENQAT_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1], got ",
                min_lr_ratio);
  QWENQAT_CHECK(grad_clip >= 0, "--grad-clip must be >= 0 (0 = off), got ", grad_clip);
  QWENQAT_CHECK(ce_weight >= 0 && kd_weight >= 0 && ce_weight + kd_weight > 0,
                "--ce-weight and --kd-weight must be >= 0 and not both 0, got ", ce_weight, " and ",
                kd_weight);
  QWENQAT_CHECK(kd_temperature > 0, "--kd-temperature must be > 0, got ", kd_temperature);
  QWENQAT_CHECK(eval_every >= 0 && save_every >= 0, "--eval-every and --save-every must be >= 0");
  QWENQAT_CHECK(eval_accuracy >= 0, "--eval-accuracy must be >= 0 (0 = off), got ",
                eval_accuracy);
  QWENQAT_CHECK(eval_max_new_tokens >= 1, "--eval-max-new-tokens must be >= 1, got ",
                eval_max_new_tokens);
  QWENQAT_CHECK(keep_checkpoints >= 1, "--keep-checkpoints must be >= 1, got ", keep_checkpoints);
}

ScheduledAdamW::ScheduledAdamW(const std::vector<torch::Tensor>& weights,
                               std::vector<torch::Tensor> scales, double lr, double scale_lr,
                               double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : weights) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](std::vector<torch::Tensor> params, double group_lr, double wd) {
    if (params.empty()) return;
    auto o = std::make_unique<torch::optim::AdamWOptions>(group_lr);
    o->weight_decay(wd);
    groups.emplace_back(std::move(params), std::move(o));
    peak_lr_.push_back(group_lr);
  };
  add(decay, lr, weight_decay);
  add(no_decay, lr, 0.0);
  add(std::move(scales), scale_lr, 0.0);
  if (!groups.empty()) {
    optimizer_ = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(lr));
  }
}

void ScheduledAdamW::set_lr_factor(double factor) {
  for (size_t i = 0; i < optimizer_->param_groups().size(); ++i) {
    static_cast<torch::optim::AdamWOptions&>(optimizer_->param_groups()[i].options())
        .lr(peak_lr_[i] * factor);
  }
}

double ScheduledAdamW::clip_grad_norm(double max_norm) {
  std::vector<torch::Tensor> params;
  for (const auto& g : optimizer_->param_groups()) {
    for (const auto& p : g.params()) params.push_back(p);
  }
  return torch::nn::utils::clip_grad_norm_(
      params, max_norm > 0 ? max_norm : std::numeric_limits<double>::infinity());
}

double lr_schedule_factor(int64_t s, int64_t steps, int64_t warmup, double min_lr_ratio) {
  if (s < warmup) return double(s + 1) / double(warmup);
  const double span = double(std::max<int64_t>(1, steps - warmup - 1));
  const double progress = std::min(1.0, double(s - warmup) / span);
  return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

void append_json_line(const fs::path& path, const Json& j) {
  std::ofstream out(path, std::ios::app);
  out << j.dump() << "\n";
  QWENQAT_CHECK(out.good(), path.string(), ": write failed (disk full?)");
}

torch::Tensor masked_ce_sum(const torch::Tensor& logits, const torch::Tensor& ids,
                            const torch::Tensor& mask) {
  const int64_t v = logits.size(-1);
  const auto pred = logits.slice(1, 0, -1).reshape({-1, v});      // [B*(T-1), V]
  const auto target = ids.slice(1, 1).reshape({-1});                // [B*(T-1)]
  const auto m = mask.slice(1, 1).reshape({-1}).to(torch::kFloat);  // [B*(T-1)]
  const auto ce = torch::nn::functional::cross_entropy(
      pred, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  return (ce * m).sum();
}

torch::Tensor masked_kd_sum(const torch::Tensor& student_logits,
                            const torch::Tensor& teacher_logits, const torch::Tensor& mask,
                            double temperature) {
  const auto s = torch::log_softmax(student_logits.slice(1, 0, -1) / temperature, -1);
  const auto t = torch::log_softmax(teacher_logits.slice(1, 0, -1) / temperature, -1);
  const auto kl = (t.exp() * (t - s)).sum(-1);                      // [B, T-1]
  const auto m = mask.slice(1, 1).to(torch::kFloat);                // [B, T-1]
  return (kl * m).sum() * (temperature * temperature);
}

BatchTensors to_tensors(const data::Batch& b, torch::Device device) {
  QWENQAT_CHECK(b.batch_size > 0 && b.seq_len > 0 &&
                    b.input_ids.size() == size_t(b.batch_size * b.seq_len) &&
                    b.loss_mask.size() == b.input_ids.size() &&
                    b.attention_mask.size() == b.input_ids.size(),
                "malformed batch (", b.batch_size, " x ", b.seq_len, ")");
  const std::vector<int64_t> shape{b.batch_size, b.seq_len};
  BatchTensors t;
  t.ids = torch::from_blob(const_cast<int32_t*>(b.input_ids.data()), shape, torch::kInt)
              .to(torch::kLong);
  t.loss_mask = torch::from_blob(const_cast<uint8_t*>(b.loss_mask.data()), shape, torch::kByte)
                    .to(torch::kFloat);
  t.attention_mask =
      torch::from_blob(const_cast<uint8_t*>(b.attention_mask.data()), shape, torch::kByte)
          .to(torch::kLong);
  t.positions = models::positions_from_mask(t.attention_mask);
  t.ids = t.ids.to(device);
  t.loss_mask = t.loss_mask.to(device);
  t.attention_mask = t.attention_mask.to(device);
  t.positions = t.positions.to(device);
  return t;
}

Trainer::Trainer(models::Qwen2ForCausalLM model, QatModel& qat, TrainOptions options,
                 data::Batcher train, std::optional<data::Batcher> eval, fs::path run_dir)
    : model_(std::move(model)),
      qat_(qat),
      options_(options),
      train_(std::move(train)),
      eval_(std::move(eval)),
      run_dir_(std::move(run_dir)) {
  options_.validate();
  fs::create_directories(run_dir_);
  std::vector<torch::Tensor> weights;
  for (auto& item : model_->named_parameters()) {
    auto& p = item.value();
    if (!models::is_checkpoint_parameter(item.key())) continue;
    p.set_requires_grad(options_.train_weights);
    if (options_.train_weights) weights.push_back(p);
  }
  optimizer_ = ScheduledAdamW(weights, qat_.scale_parameters(), options_.lr, options_.scale_lr,
                              options_.weight_decay);
  QWENQAT_CHECK(!optimizer_.empty() || options_.steps == 0,
                "nothing to train: the weights are frozen and the scales are not learnable");
  torch::manual_seed(options_.seed);
}

void Trainer::append_metrics(const Json& j) { append_json_line(run_dir_ / "metrics.jsonl", j); }

void Trainer::set_accuracy_eval(std::vector<AccuracyProblem> problems, const data::Tokenizer* tok,
                                std::vector<int32_t> stop_ids) {
  TORCH_CHECK(tok, "set_accuracy_eval: no tokenizer");
  accuracy_problems_ = std::move(problems);
  accuracy_tok_ = tok;
  accuracy_stop_ids_ = std::move(stop_ids);
}

void Trainer::set_teacher(models::Qwen2ForCausalLM teacher) {
  TORCH_CHECK(!teacher.is_empty(), "set_teacher: empty teacher model");
  TORCH_CHECK(teacher->config().vocab_size == model_->config().vocab_size,
              "the KD teacher's vocab_size (", teacher->config().vocab_size,
              ") differs from the student's (", model_->config().vocab_size, ")");
  teacher->eval();
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);
  teacher_ = std::move(teacher);
}

torch::Tensor Trainer::micro_batch_loss(const data::Batch& b, int64_t step_tokens, double* ce,
                                        double* kd) {
  const auto device = model_->options().device;
  const auto t = to_tensors(b, device);
  const auto logits = model_->forward(t.ids, t.positions, t.attention_mask);
  const double denom = double(std::max<int64_t>(1, step_tokens));
  const auto ce_sum = masked_ce_sum(logits, t.ids, t.loss_mask);
  *ce += ce_sum.item<double>() / denom;
  torch::Tensor loss = ce_sum * (options_.ce_weight / denom);
  if (options_.kd_weight > 0) {
    torch::Tensor teacher;
    {
      torch::NoGradGuard no_grad;
      if (!teacher_.is_empty()) {
        teacher = teacher_->forward(t.ids, t.positions, t.attention_mask);
      } else {
        QuantizersOff teacher_mode(qat_);
        teacher = model_->forward(t.ids, t.positions, t.attention_mask);
      }
    }
    const auto kd_sum = masked_kd_sum(logits, teacher, t.loss_mask, options_.kd_temperature);
    *kd += kd_sum.item<double>() / denom;
    loss = loss + kd_sum * (options_.kd_weight / denom);
  }
  return loss;
}

EvalMetrics Trainer::evaluate() {
  EvalMetrics m;
  m.step = step_;
  if (!eval_) return m;
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (const auto& b : eval_->epoch(0)) {
    const auto t = to_tensors(b, model_->options().device);
    sum += masked_ce_sum(model_->forward(t.ids, t.positions, t.attention_mask), t.ids, t.loss_mask)
               .item<double>();
    m.tokens += loss_tokens(b);
  }
  m.ce = m.tokens ? sum / double(m.tokens) : 0.0;
  Json line{{"type", "eval"}, {"step", m.step}, {"eval_ce", m.ce}, {"eval_tokens", m.tokens}};
  if (accuracy_tok_ && !accuracy_problems_.empty()) {
    m.accuracy = greedy_exact_match(*model_, accuracy_problems_, *accuracy_tok_,
                                    accuracy_stop_ids_, options_.eval_max_new_tokens);
    line["eval_accuracy"] = m.accuracy.accuracy();
    line["eval_accuracy_n"] = m.accuracy.n;
    line["eval_finished"] = m.accuracy.finished;
    line["eval_mean_new_tokens"] = m.accuracy.mean_new_tokens;
  }
  append_metrics(line);
  return m;
}

fs::path Trainer::save_checkpoint() {
  const fs::path dir = run_dir_ / (kCheckpointPrefix + std::to_string(step_));
  const fs::path tmp = run_dir_ / (".tmp-" + dir.filename().string() + "." + std::to_string(getpid()));
  fs::remove_all(tmp);
  try {
    models::save_model(*model_, tmp, options_.save_dtype, options_.tokenizer_src);
    save_quantization(qat_, tmp);
    if (!optimizer_.empty()) {
      const auto opt_tmp = temp_path_for(tmp / "optimizer.pt");
      torch::save(optimizer_.optimizer(), opt_tmp.string());
      commit_temp_file(opt_tmp, tmp / "optimizer.pt");
    }
    const auto rng = at::detail::getDefaultCPUGenerator().get_state();
    torch::save(rng, (tmp / "rng.pt").string());
    write_json_file(tmp / "trainer_state.json",
                    {{"step", step_}, {"seed", options_.seed},
                     {"grad_accum", options_.grad_accum},
                     {"batch_size", train_.options().batch_size}});
    fs::remove_all(dir);
    fs::rename(tmp, dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  write_file_atomic(run_dir_ / "latest", dir.filename().string() + "\n");
  last_checkpoint_ = dir;
  auto all = list_checkpoints(run_dir_);
  for (size_t i = 0; i + size_t(options_.keep_checkpoints) < all.size(); ++i) {
    if (all[i].second != dir) fs::remove_all(all[i].second);
  }
  return dir;
}

void Trainer::resume(const fs::path& checkpoint) {
  const Json st = read_json_file(checkpoint / "trainer_state.json");
  QWENQAT_CHECK(st.value("seed", uint64_t(0)) == options_.seed &&
                    st.value("grad_accum", int64_t(0)) == options_.grad_accum &&
                    st.value("batch_size", int64_t(0)) == train_.options().batch_size,
                checkpoint.string(), ": --seed, --grad-accum and --batch-size must equal the "
                "interrupted run's (", st.dump(), ") to reproduce its data order");
  step_ = st.at("step").get<int64_t>();
  if (!optimizer_.empty() && fs::exists(checkpoint / "optimizer.pt")) {
    torch::load(optimizer_.optimizer(), (checkpoint / "optimizer.pt").string());
  }
  torch::Tensor rng;
  torch::load(rng, (checkpoint / "rng.pt").string());
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle to the global one
  gen.set_state(rng);
  last_checkpoint_ = checkpoint;
  // Drop metrics of steps after the checkpoint (written by the killed run).
  const auto metrics = run_dir_ / "metrics.jsonl";
  if (fs::exists(metrics)) {
    std::istringstream in(read_file(metrics));
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const Json j = parse_json(line, metrics.string());
      if (j.value("step", int64_t(0)) <= step_) kept += line + "\n";
    }
    write_file_atomic(metrics, kept);
  }
}

std::vector<StepMetrics> Trainer::run() {
  std::vector<StepMetrics> out;
  const int64_t nb = int64_t(train_.epoch(0).size());
  QWENQAT_CHECK(nb > 0, "no training batches: the data has no usable examples (",
                train_.stats().dropped_no_loss,
                " dropped because no completion token is left within --max-length; raise it)");
  if (options_.steps == 0) {  // post-training quantization: evaluate and save
    evaluate();
    save_checkpoint();
    return out;
  }
  int64_t cached_epoch = -1;
  std::vector<data::Batch> epoch_batches;
  Progress bar("train", options_.steps, "step", options_.progress);
  bar.update(step_);
  while (step_ < options_.steps) {
    const Stopwatch clock;
    std::vector<const data::Batch*> micro;
    for (int64_t k = 0; k < options_.grad_accum; ++k) {
      const int64_t m = step_ * options_.grad_accum + k;
      if (m / nb != cached_epoch) {
        cached_epoch = m / nb;
        epoch_batches = train_.epoch(cached_epoch);
      }
      micro.push_back(&epoch_batches[size_t(m % nb)]);
    }
    StepMetrics s;
    int64_t real_tokens = 0;
    for (const auto* b : micro) {
      s.tokens += loss_tokens(*b);
      for (auto a : b->attention_mask) real_tokens += a;
    }
    optimizer_.optimizer().zero_grad();
    for (const auto* b : micro) {
      auto loss = micro_batch_loss(*b, s.tokens, &s.ce, &s.kd);
      const double lv = loss.item<double>();
      QWENQAT_CHECK(std::isfinite(lv), "the loss became ", lv, " at step ", step_ + 1,
                    "; training stopped. The last good checkpoint is ",
                    last_checkpoint_.empty() ? std::string("(none yet)") : last_checkpoint_.string(),
                    ". Lower --lr / --scale-lr or check the data, then --resume from it");
      loss.backward();
    }
    s.grad_norm = optimizer_.clip_grad_norm(options_.grad_clip);
    QWENQAT_CHECK(std::isfinite(s.grad_norm), "the gradient norm became ", s.grad_norm,
                  " at step ", step_ + 1, "; training stopped. The last good checkpoint is ",
                  last_checkpoint_.empty() ? std::string("(none yet)") : last_checkpoint_.string());
    const double f =
        lr_schedule_factor(step_, options_.steps, options_.warmup_steps, options_.min_lr_ratio);
    optimizer_.set_lr_factor(f);
    optimizer_.optimizer().step();
    ++step_;
    s.step = step_;
    s.loss = options_.ce_weight * s.ce + options_.kd_weight * s.kd;
    s.lr = options_.lr * f;
    s.scale_lr = options_.scale_lr * f;
    s.step_s = clock.wall_s();
    s.cpu_s = clock.cpu_s();
    s.tokens_per_s = s.step_s > 0 ? double(real_tokens) / s.step_s : 0.0;
    append_metrics({{"type", "train"}, {"step", s.step}, {"loss", s.loss}, {"ce", s.ce},
                    {"kd", s.kd}, {"lr", s.lr}, {"scale_lr", s.scale_lr},
                    {"grad_norm", s.grad_norm}, {"tokens", s.tokens},
                    {"tokens_per_s", s.tokens_per_s}, {"step_s", s.step_s}, {"cpu_s", s.cpu_s}});
    out.push_back(s);
    bar.update(step_, "ce " + fmt(s.ce) + " kd " + fmt(s.kd) + " lr " + fmt(s.lr, 3) + " " +
                          fmt(s.tokens_per_s, 4) + " tok/s");
    const bool last = step_ == options_.steps;
    if ((options_.eval_every > 0 && step_ % options_.eval_every == 0) || last) evaluate();
    if ((options_.save_every > 0 && step_ % options_.save_every == 0) || last) save_checkpoint();
    if (on_step) on_step(s);
  }
  bar.finish();
  return out;
}

}  // namespace qwenqat::qat
