#pragma once
// The optimizer and learning-rate schedule of training, nnU-Net v2's defaults
// (nnUNetTrainer: SGD lr 1e-2, momentum 0.99, Nesterov, weight decay 3e-5; PolyLR exponent 0.9
// stepped once per epoch; gradient norm clipped at 12).
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

namespace mlseg {

enum class OptimizerKind {
  sgd,    ///< SGD with Nesterov momentum (nnU-Net)
  adamw,  ///< AdamW (betas 0.9/0.999, eps 1e-8), e.g. for ResEnc-style or transformer training
};

/// "sgd" | "adamw"; anything else throws mlseg::Error.
OptimizerKind parse_optimizer_kind(const std::string& name);
std::string to_string(OptimizerKind kind);

struct OptimizerOptions {
  TORCH_ARG(OptimizerKind, kind) = OptimizerKind::sgd;
  /// nnU-Net's initial_lr.
  TORCH_ARG(double, initial_lr) = 1e-2;
  /// SGD momentum (Nesterov).
  TORCH_ARG(double, momentum) = 0.99;
  TORCH_ARG(double, weight_decay) = 3e-5;
  /// PolyLR: lr = initial_lr · (1 − epoch / epochs)^exponent, once per epoch.
  TORCH_ARG(double, poly_exponent) = 0.9;
  /// Global L2 norm of the gradients is clipped to this (nnU-Net: 12); 0 disables clipping.
  TORCH_ARG(double, gradient_clip_norm) = 12.0;
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& network, const OptimizerOptions& options);

/// PolyLR's learning rate for `epoch` (0-based) of `epochs`.
double poly_learning_rate(const OptimizerOptions& options, std::int64_t epoch, std::int64_t epochs);

/// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

/// torch::nn::utils::clip_grad_norm_(parameters, max_norm) (L2) without reading the norm on the
/// host, so that a CUDA step does not wait for it: scales the gradients so that their global norm
/// is at most `max_norm` and returns the norm before clipping as a 0-d float32 tensor on the
/// gradients' device (a CPU 0 when no parameter has a gradient). A non-finite norm leaves
/// non-finite gradients: the caller reads the norm once with its other step values and skips the step.
torch::Tensor clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

}  // namespace mlseg
