// Optimizer and schedule: nnU-Net's SGD settings and PolyLR.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/training/optimizer.h"

namespace {

using namespace mlseg;

TEST(Optimizer, PolyScheduleMatchesNnUNet) {
  const OptimizerOptions options;
  EXPECT_DOUBLE_EQ(poly_learning_rate(options, 0, 1000), 1e-2);
  EXPECT_NEAR(poly_learning_rate(options, 500, 1000), 1e-2 * std::pow(0.5, 0.9), 1e-15);
  EXPECT_NEAR(poly_learning_rate(options, 999, 1000), 1e-2 * std::pow(0.001, 0.9), 1e-15);
  EXPECT_DOUBLE_EQ(poly_learning_rate(options, 1000, 1000), 0.0);
}

TEST(Optimizer, SgdIsNesterovWithNnUNetDefaults) {
  torch::nn::Linear layer(3, 2);
  auto optimizer = make_optimizer(*layer, OptimizerOptions());
  auto* sgd = dynamic_cast<torch::optim::SGD*>(optimizer.get());
  ASSERT_NE(sgd, nullptr);
  const auto& group_options = static_cast<const torch::optim::SGDOptions&>(sgd->param_groups()[0].options());
  EXPECT_TRUE(group_options.nesterov());
  EXPECT_DOUBLE_EQ(group_options.momentum(), 0.99);
  EXPECT_DOUBLE_EQ(group_options.weight_decay(), 3e-5);
  set_learning_rate(*optimizer, 0.005);
  EXPECT_DOUBLE_EQ(sgd->param_groups()[0].options().get_lr(), 0.005);
  EXPECT_EQ(parse_optimizer_kind("adamw"), OptimizerKind::adamw);
  EXPECT_THROW(parse_optimizer_kind("adam"), Error);
}

TEST(Optimizer, ClipGradientNormMatchesLibTorchWithoutReadingTheNorm) {
  for (const double scale : {1.0, 100.0}) {  // below and above the limit
    torch::manual_seed(3);
    torch::nn::Linear a(4, 3), b(4, 3);
    torch::NoGradGuard no_grad;
    for (auto* layer : {&a, &b}) {
      (*layer)->weight.mutable_grad() = torch::ones({3, 4});
      (*layer)->bias.mutable_grad() = torch::ones({3});
    }
    const torch::Tensor gradient = torch::randn({3, 4}) * scale;
    a->weight.mutable_grad().copy_(gradient);
    b->weight.mutable_grad().copy_(gradient);
    b->bias.mutable_grad() = torch::Tensor();  // a parameter without gradient is left out
    a->bias.mutable_grad() = torch::Tensor();
    const double expected = torch::nn::utils::clip_grad_norm_(a->parameters(), 12.0);
    const torch::Tensor norm = clip_gradient_norm(b->parameters(), 12.0);
    EXPECT_EQ(norm.dim(), 0);
    EXPECT_NEAR(norm.item<double>(), expected, 1e-5 * expected);
    EXPECT_TRUE(torch::allclose(a->weight.grad(), b->weight.grad()));
    EXPECT_LE(b->weight.grad().norm().item<double>(), 12.0 + 1e-4);
  }
  // Non-finite gradients give a non-finite norm, for the caller to skip the step.
  torch::nn::Linear c(2, 1);
  c->weight.mutable_grad() = torch::full({1, 2}, std::nan(""));
  EXPECT_FALSE(std::isfinite(clip_gradient_norm(c->parameters(), 12.0).item<double>()));
  EXPECT_EQ(clip_gradient_norm({torch::zeros({2})}, 12.0).item<double>(), 0.0);
}

}  // namespace
