// The one seam between the LibTorch model and QAT: a linear (or embedding)
// layer of the model can carry a weight quantizer and an input (activation)
// quantizer. models/ only calls them; qat/ implements them (fake quantization
// with learnable scales). With no quantizer set the layer is a plain float
// layer, and a quantizer whose enabled() is false passes tensors through, so
// the same weights serve as the full-precision teacher for distillation.
#pragma once

#include <torch/torch.h>

namespace qwenqat::models {

// A module mapping a tensor to its (fake-)quantized version, same shape and
// dtype. Registered on the layer as submodule "weight_fake_quant" or
// "input_fake_quant", so its parameters are named e.g.
// "model.layers.0.self_attn.q_proj.weight_fake_quant.scale".
class QuantizerImpl : public torch::nn::Module {
 public:
  virtual ~QuantizerImpl() = default;
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  bool enabled() const { return enabled_; }
  void set_enabled(bool on) { enabled_ = on; }

 private:
  bool enabled_ = true;
};

}  // namespace qwenqat::models
