// Deep-supervision weighting as nnU-Net's: 1/2^i, lowest resolution 0, normalised.
#include "mlseg/training/loss_deep_supervision.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/core/error.h"
#include "mlseg/training/losses.h"

namespace mlseg {
namespace {

void expect_weights(std::size_t n, const std::vector<double>& expected) {
  const auto weights = deep_supervision_weights(n);
  ASSERT_EQ(weights.size(), expected.size());
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(weights[i], expected[i], 1e-12) << n << " outputs, #" << i;
}

TEST(DeepSupervisionWeights, HalvingWithTheLowestResolutionDropped) {
  expect_weights(1, {1.0});
  expect_weights(2, {1.0, 0.0});
  expect_weights(3, {2.0 / 3, 1.0 / 3, 0.0});
  expect_weights(4, {4.0 / 7, 2.0 / 7, 1.0 / 7, 0.0});
  expect_weights(5, {8.0 / 15, 4.0 / 15, 2.0 / 15, 1.0 / 15, 0.0});
  EXPECT_THROW(deep_supervision_weights(0), Error);
}

TEST(DeepSupervisionLoss, IsTheWeightedSumAndTheCoarsestOutputGetsNoGradient) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> outputs, targets, masks;
  for (std::int64_t size : {16, 8, 4, 2}) {
    outputs.push_back(torch::randn({2, 3, size, size}).requires_grad_(true));
    targets.push_back((torch::rand({2, 3, size, size}) > 0.5).to(torch::kFloat));
    masks.push_back((torch::rand({2, 1, size, size}) > 0.2).to(torch::kFloat));
  }
  const LossOptions options;
  const torch::Tensor loss = deep_supervision_loss(outputs, targets, masks, options);
  double expected = 0;
  const std::vector<double> weights{4.0 / 7, 2.0 / 7, 1.0 / 7};
  for (std::size_t i = 0; i < 3; ++i) {
    expected += weights[i] * bce_and_dice_loss(outputs[i], targets[i], masks[i], options).item<double>();
  }
  EXPECT_NEAR(loss.item<double>(), expected, 1e-6);
  loss.backward();
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(outputs[i].grad().defined()) << i;
  EXPECT_FALSE(outputs[3].grad().defined());

  // Without masks: every voxel annotated.
  const torch::Tensor unmasked = deep_supervision_loss(outputs, targets, {}, options);
  EXPECT_TRUE(std::isfinite(unmasked.item<double>()));
}

TEST(DeepSupervisionLoss, CountsMustAgree) {
  const std::vector<torch::Tensor> outputs{torch::zeros({1, 2, 4, 4}), torch::zeros({1, 2, 2, 2})};
  const std::vector<torch::Tensor> one_target{torch::zeros({1, 2, 4, 4})};
  EXPECT_THROW(deep_supervision_loss(outputs, one_target, {}, {}), Error);
  // A wrong-resolution target names the output.
  const std::vector<torch::Tensor> swapped{torch::zeros({1, 2, 2, 2}), torch::zeros({1, 2, 4, 4})};
  try {
    deep_supervision_loss(outputs, swapped, {}, {});
    FAIL() << "expected mlseg::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.problem().rfind("deep supervision output 0: ", 0), 0u) << e.problem();
  }
}

}  // namespace
}  // namespace mlseg
