// Block-wise QAT (see blockwise.h): calibration batches, the per-layer
// training loop (targets, float32 upcast, AdamW steps on the masked MSE,
// caching the trained layer's outputs) and its metrics.
#include "qat/blockwise.h"

#include <cmath>
#include <cstdio>

#include "data/util/check.h"
#include "data/util/progress.h"

namespace qwenqat::qat {
namespace {

std::string block_extra(const char* what, double a, double b) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%s %.4g lr %.3g", what, a, b);
  return buf;
}

}  // namespace

void BlockwiseOptions::validate() const {
  QWENQAT_CHECK(calib_samples >= 1, "--calib-samples must be >= 1, got ", calib_samples);
  QWENQAT_CHECK(batch_size >= 1, "--block-batch-size must be >= 1, got ", batch_size);
  QWENQAT_CHECK(block_steps >= 0, "--block-steps must be >= 0 (0 = no block phase), got ",
                block_steps);
  QWENQAT_CHECK(blocks >= 0, "--blocks must be >= 0 (0 = every decoder layer), got ", blocks);
  QWENQAT_CHECK(std::isfinite(lr) && lr > 0, "--block-lr must be > 0, got ", lr);
  QWENQAT_CHECK(std::isfinite(scale_lr) && scale_lr > 0, "--block-scale-lr must be > 0, got ",
                scale_lr);
  QWENQAT_CHECK(weight_decay >= 0, "--weight-decay must be >= 0, got ", weight_decay);
  QWENQAT_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1], got ",
                min_lr_ratio);
  QWENQAT_CHECK(grad_clip >= 0, "--grad-clip must be >= 0 (0 = off), got ", grad_clip);
}

std::vector<data::Batch> calibration_batches(const std::vector<data::Example>& train, int64_t n,
                                             int64_t batch_size, int64_t max_length,
                                             uint64_t seed) {
  QWENQAT_CHECK(n >= 1, "--calib-samples must be >= 1, got ", n);
  data::BatcherOptions order_options;
  order_options.batch_size = 1;
  order_options.max_length = max_length;
  order_options.seed = seed;
  const data::Batcher order(train, order_options);
  std::vector<data::Example> picked;
  for (const auto& idx : order.epoch_indices(0)) {
    if (int64_t(picked.size()) == n) break;
    picked.push_back(order.examples()[size_t(idx.at(0))]);
  }
  QWENQAT_CHECK(!picked.empty(), "no calibration examples (the training data is empty)");
  data::BatcherOptions o;
  o.batch_size = batch_size;
  o.max_length = max_length;
  o.shuffle = false;
  return data::Batcher(std::move(picked), o).epoch(0);
}

BlockwiseTrainer::BlockwiseTrainer(models::Qwen2ForCausalLM model, QatModel& qat,
                                   std::vector<data::Batch> calib, BlockwiseOptions options,
                                   std::filesystem::path metrics_file)
    : model_(std::move(model)),
      qat_(qat),
      options_(options),
      metrics_file_(std::move(metrics_file)) {
  options_.validate();
  QWENQAT_CHECK(!calib.empty(), "block-wise training needs at least one calibration batch");
  QWENQAT_CHECK(options_.blocks <= int64_t(model_->model->layers->size()), "--blocks ",
                options_.blocks, " exceeds the model's ", model_->model->layers->size(),
                " decoder layers");
  // Nothing outside the block in training may collect gradients.
  for (auto& p : model_->named_parameters()) {
    if (models::is_checkpoint_parameter(p.key())) p.value().set_requires_grad(false);
  }
  torch::NoGradGuard no_grad;
  const auto device = model_->options().device;
  for (const auto& b : calib) {
    const auto t = to_tensors(b, device);
    Calib c;
    const int64_t batch = b.batch_size, len = b.seq_len;
    const auto causal =
        torch::ones({len, len}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril();
    c.allowed =
        causal.view({1, 1, len, len}).logical_and(t.attention_mask.ne(0).view({batch, 1, 1, len}));
    c.positions = t.positions;
    c.weight = t.attention_mask.to(torch::kFloat).unsqueeze(-1);
    c.tokens = t.attention_mask.sum().item<int64_t>();
    c.q = model_->model->embed_tokens(t.ids);  // [B, T, hidden], quantized embedding if any
    {
      QuantizersOff fp_mode(qat_);
      c.fp = model_->model->embed_tokens(t.ids);
    }
    calib_.push_back(std::move(c));
  }
}

int64_t BlockwiseTrainer::num_blocks() const {
  return options_.blocks > 0 ? options_.blocks : int64_t(model_->model->layers->size());
}

torch::Tensor BlockwiseTrainer::layer_forward(const torch::Tensor& h, const Calib& c) {
  auto layer = model_->model->layers[size_t(block_)]->as<models::DecoderLayer>();
  const auto dtype = layer->input_layernorm->weight().scalar_type();
  const auto& config = model_->config();
  const auto rope = models::rotary_tables(c.positions, config.dim_head(), config.rope_theta, dtype);
  return layer->forward(h.to(dtype), rope, c.allowed, nullptr, block_);
}

torch::Tensor BlockwiseTrainer::masked_mse(const torch::Tensor& out, const Calib& c) const {
  const auto diff = out.to(torch::kFloat) - c.target.to(torch::kFloat);  // [B, T, hidden]
  return (diff * diff * c.weight).sum() / double(c.tokens * out.size(-1));
}

void BlockwiseTrainer::cast_layer(torch::Dtype dtype) {
  auto layer = model_->model->layers[size_t(block_)];
  for (auto& p : layer->named_parameters()) {
    if (models::is_checkpoint_parameter(p.key()) && p.value().scalar_type() != dtype) {
      p.value().set_data(p.value().to(dtype));
    }
  }
}

void BlockwiseTrainer::append(const Json& j) const {
  if (!metrics_file_.empty()) append_json_line(metrics_file_, j);
}

double BlockwiseTrainer::block_mse() {
  QWENQAT_CHECK(block_ >= 0, "block_mse() outside begin_block() / end_block()");
  torch::NoGradGuard no_grad;
  double sum = 0;
  int64_t tokens = 0;
  for (const auto& c : calib_) {
    sum += masked_mse(layer_forward(c.q, c), c).item<double>() * double(c.tokens);
    tokens += c.tokens;
  }
  return sum / double(std::max<int64_t>(1, tokens));
}

void BlockwiseTrainer::begin_block(int64_t block) {
  QWENQAT_CHECK(block_ < 0 && block == next_block_ && block < num_blocks(), "begin_block(", block,
                "): blocks train in order; the next one is ", next_block_, " of ", num_blocks());
  block_clock_ = Stopwatch();
  block_ = block;
  block_step_ = 0;
  {
    torch::NoGradGuard no_grad;
    QuantizersOff fp_mode(qat_);
    for (auto& c : calib_) c.target = layer_forward(c.fp, c);  // model dtype
  }
  mse_before_ = block_mse();
  cast_layer(torch::kFloat32);  // a no-op for float32 models
  std::vector<torch::Tensor> weights, scales;
  for (auto& p : model_->model->layers[size_t(block_)]->named_parameters()) {
    if (!models::is_checkpoint_parameter(p.key())) {
      scales.push_back(p.value());
    } else if (options_.train_weights) {
      p.value().set_requires_grad(true);
      weights.push_back(p.value());
    }
  }
  block_params_ = weights;
  block_params_.insert(block_params_.end(), scales.begin(), scales.end());
  optimizer_ =
      ScheduledAdamW(weights, scales, options_.lr, options_.scale_lr, options_.weight_decay);
  QWENQAT_CHECK(!optimizer_.empty(), "block ", block,
                ": nothing to train (weights frozen and the scales are not learnable)");
}

BlockStepMetrics BlockwiseTrainer::step() {
  QWENQAT_CHECK(block_ >= 0, "step() outside begin_block() / end_block()");
  const Stopwatch clock;
  const auto& c = calib_[size_t(block_step_) % calib_.size()];
  BlockStepMetrics m;
  m.block = block_;
  m.block_step = block_step_ + 1;
  m.tokens = c.tokens;
  optimizer_.optimizer().zero_grad();
  const auto loss = masked_mse(layer_forward(c.q, c), c);
  m.mse = loss.item<double>();
  QWENQAT_CHECK(std::isfinite(m.mse), "the block MSE became ", m.mse, " at block ", block_,
                " step ", m.block_step, "; lower --block-lr / --block-scale-lr");
  loss.backward();
  m.grad_norm = optimizer_.clip_grad_norm(options_.grad_clip);
  QWENQAT_CHECK(std::isfinite(m.grad_norm), "the gradient norm became ", m.grad_norm, " at block ",
                block_, " step ", m.block_step);
  const double f = lr_schedule_factor(block_step_, options_.block_steps, 0, options_.min_lr_ratio);
  optimizer_.set_lr_factor(f);
  optimizer_.optimizer().step();
  ++block_step_;
  m.lr = options_.lr * f;
  m.scale_lr = options_.scale_lr * f;
  m.step_s = clock.wall_s();
  m.cpu_s = clock.cpu_s();
  append({{"type", "block"},
          {"block", m.block},
          {"block_step", m.block_step},
          {"mse", m.mse},
          {"lr", m.lr},
          {"scale_lr", m.scale_lr},
          {"grad_norm", m.grad_norm},
          {"tokens", m.tokens},
          {"step_s", m.step_s},
          {"cpu_s", m.cpu_s}});
  if (on_step) on_step(m);
  return m;
}

BlockSummary BlockwiseTrainer::end_block() {
  QWENQAT_CHECK(block_ >= 0, "end_block() without begin_block()");
  optimizer_ = ScheduledAdamW();  // frees the AdamW state
  for (auto& p : block_params_) p.mutable_grad() = torch::Tensor();
  for (auto& p : model_->model->layers[size_t(block_)]->named_parameters()) {
    if (models::is_checkpoint_parameter(p.key())) p.value().set_requires_grad(false);
  }
  block_params_.clear();
  cast_layer(model_->options().dtype);
  BlockSummary s;
  s.block = block_;
  s.mse_before = mse_before_;
  {
    torch::NoGradGuard no_grad;
    double sum = 0;
    int64_t tokens = 0;
    for (auto& c : calib_) {
      auto out = layer_forward(c.q, c);  // the next block's input, as the saved model computes
      sum += masked_mse(out, c).item<double>() * double(c.tokens);
      tokens += c.tokens;
      c.q = std::move(out);
      c.fp = std::move(c.target);
      c.target = torch::Tensor();
    }
    s.mse_after = sum / double(std::max<int64_t>(1, tokens));
  }
  s.seconds = block_clock_.wall_s();
  s.cpu_s = block_clock_.cpu_s();
  append({{"type", "block_summary"},
          {"block", s.block},
          {"mse_before", s.mse_before},
          {"mse_after", s.mse_after},
          {"steps", block_step_},
          {"seconds", s.seconds},
          {"cpu_s", s.cpu_s}});
  block_ = -1;
  ++next_block_;
  return s;
}

std::vector<BlockSummary> BlockwiseTrainer::run() {
  std::vector<BlockSummary> out;
  if (options_.block_steps == 0) return out;
  for (int64_t i = next_block_; i < num_blocks(); ++i) {
    begin_block(i);
    Progress bar("block " + std::to_string(i + 1) + "/" + std::to_string(num_blocks()),
                 options_.block_steps, "step", options_.progress);
    for (int64_t k = 0; k < options_.block_steps; ++k) {
      const auto m = step();
      bar.update(k + 1, block_extra("mse", m.mse, m.lr));
    }
    out.push_back(end_block());
    bar.finish("mse " + std::to_string(out.back().mse_before) + " -> " +
               std::to_string(out.back().mse_after));
  }
  return out;
}

}  // namespace qwenqat::qat
