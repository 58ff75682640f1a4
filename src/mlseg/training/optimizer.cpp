#include "mlseg/training/optimizer.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"

namespace mlseg {

OptimizerKind parse_optimizer_kind(const std::string& name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adamw") return OptimizerKind::adamw;
  throw Error("unknown optimizer '" + name + "'", "use sgd (nnU-Net's default) or adamw");
}

std::string to_string(OptimizerKind kind) { return kind == OptimizerKind::sgd ? "sgd" : "adamw"; }

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& network, const OptimizerOptions& options) {
  if (options.kind() == OptimizerKind::sgd) {
    return std::make_unique<torch::optim::SGD>(network.parameters(), torch::optim::SGDOptions(options.initial_lr())
                                                                         .momentum(options.momentum())
                                                                         .nesterov(true)
                                                                         .weight_decay(options.weight_decay()));
  }
  return std::make_unique<torch::optim::AdamW>(
      network.parameters(), torch::optim::AdamWOptions(options.initial_lr()).weight_decay(options.weight_decay()));
}

double poly_learning_rate(const OptimizerOptions& options, std::int64_t epoch, std::int64_t epochs) {
  if (epochs <= 0) return options.initial_lr();
  const double progress = std::clamp(static_cast<double>(epoch) / static_cast<double>(epochs), 0.0, 1.0);
  return options.initial_lr() * std::pow(1.0 - progress, options.poly_exponent());
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

torch::Tensor clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  // LibTorch's clip_grad_norm_ (and PyTorch's): the same epsilon, the same clamped coefficient.
  constexpr double kNormEpsilon = 1e-6;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> gradients, norms;
  for (const torch::Tensor& parameter : parameters) {
    const torch::Tensor& gradient = parameter.grad();
    if (!gradient.defined()) continue;
    gradients.push_back(gradient);
    norms.push_back(gradient.norm(2).to(torch::kFloat));
  }
  if (gradients.empty()) return torch::zeros({}, torch::kFloat);
  const torch::Tensor total = norms.size() == 1 ? norms.front() : torch::stack(norms).norm(2);
  const torch::Tensor coefficient = (max_norm / (total + kNormEpsilon)).clamp_max(1.0);
  for (torch::Tensor& gradient : gradients) gradient.mul_(coefficient.to(gradient.scalar_type()));
  return total;
}

}  // namespace mlseg
