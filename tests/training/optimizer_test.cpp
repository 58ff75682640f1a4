// Optimizer and schedule: nnU-Net's SGD settings and PolyLR.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

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

}  // namespace
