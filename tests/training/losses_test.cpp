// Segmentation losses: hand-computed nnU-Net values (DC_and_BCE_loss, DC_and_CE_loss with
// MemoryEfficientSoftDiceLoss), PyTorch's own BCE/CE as references, ignore masks, and finiteness
// on empty, fully ignored and extreme batches.
#include "mlseg/training/losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

constexpr double kSmooth = 1e-5;
const double kLn2 = std::log(2.0);
const double kLn3 = std::log(3.0);

torch::Tensor float_tensor(std::vector<float> values, std::vector<std::int64_t> shape) {
  return torch::tensor(values).view(shape);
}

double value(const torch::Tensor& t) { return t.item<double>(); }

LossOptions softmax_options() { return LossOptions().kind(LossKind::ce_and_dice); }

void expect_finite_loss_and_gradient(const torch::Tensor& logits, const torch::Tensor& target,
                                     const torch::Tensor& annotated, const LossOptions& options) {
  const torch::Tensor x = logits.detach().clone().requires_grad_(true);
  const torch::Tensor loss = segmentation_loss(x, target, annotated, options);
  ASSERT_TRUE(std::isfinite(value(loss))) << loss;
  loss.backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
}

TEST(BceAndDiceLoss, MatchesHandComputedValue) {
  // Two channels, two voxels. Channel 0: p = (1/2, 3/4), y = (1, 0); channel 1: p = (1/4, 1/2), y = (0, 1).
  const torch::Tensor logits = float_tensor({0.0f, float(kLn3), float(-kLn3), 0.0f}, {1, 2, 1, 2});
  const torch::Tensor target = float_tensor({1, 0, 0, 1}, {1, 2, 1, 2});
  // BCE: ln 2, ln 4, ln(4/3), ln 2 → mean.
  const double bce = (4 * kLn2 + std::log(4.0 / 3.0)) / 4;
  // Dice: I = 1/2 both; S_gt = 1 both; S_pred = 5/4 and 3/4.
  const double dice0 = (1 + kSmooth) / (2.25 + kSmooth), dice1 = (1 + kSmooth) / (1.75 + kSmooth);
  EXPECT_NEAR(value(bce_and_dice_loss(logits, target, {})), bce - (dice0 + dice1) / 2, 1e-6);
  EXPECT_NEAR(value(masked_bce_with_logits(logits, target, {}, {})), bce, 1e-6);
  EXPECT_NEAR(value(soft_dice_loss(torch::sigmoid(logits), target, {}, {})), -(dice0 + dice1) / 2, 1e-6);
  // Term weights.
  EXPECT_NEAR(value(bce_and_dice_loss(logits, target, {}, LossOptions().classification_weight(2).dice_weight(0.5))),
              2 * bce - 0.5 * (dice0 + dice1) / 2, 1e-6);
}

TEST(BceAndDiceLoss, BatchDiceSumsOverTheBatch) {
  // Sample 0: p = (3/4, 1/4), y = (1, 0); sample 1: p = (1/2, 1/2), y = (0, 0).
  const torch::Tensor logits = float_tensor({float(kLn3), float(-kLn3), 0.0f, 0.0f}, {2, 1, 2});
  const torch::Tensor target = float_tensor({1, 0, 0, 0}, {2, 1, 2});
  const torch::Tensor p = torch::sigmoid(logits);
  const double per_sample = -((1.5 + kSmooth) / (2 + kSmooth) + kSmooth / (1 + kSmooth)) / 2;
  const double batch = -(1.5 + kSmooth) / (3 + kSmooth);
  EXPECT_NEAR(value(soft_dice_loss(p, target, {}, LossOptions().batch_dice(false))), per_sample, 1e-6);
  EXPECT_NEAR(value(soft_dice_loss(p, target, {}, LossOptions().batch_dice(true))), batch, 1e-6);
}

TEST(BceAndDiceLoss, BceEqualsPyTorchsBceWithLogitsAndPosWeight) {
  torch::manual_seed(0);
  const torch::Tensor logits = torch::randn({2, 3, 4, 5, 6}) * 3;
  const torch::Tensor target = (torch::rand({2, 3, 4, 5, 6}) > 0.7).to(torch::kFloat);
  EXPECT_NEAR(value(masked_bce_with_logits(logits, target, {}, {})),
              value(torch::binary_cross_entropy_with_logits(logits, target)), 1e-6);
  // pos_weight per channel: −[w_c · y ln p + (1 − y) ln(1 − p)].
  const torch::Tensor w = torch::tensor({1.0f, 5.0f, 0.5f}).view({1, 3, 1, 1, 1});
  const torch::Tensor p = torch::sigmoid(logits.to(torch::kDouble));
  const torch::Tensor by_hand = -(w * target * torch::log(p) + (1 - target) * torch::log(1 - p)).mean();
  EXPECT_NEAR(value(masked_bce_with_logits(logits, target, {}, LossOptions().pos_weight({1.0, 5.0, 0.5}))),
              value(by_hand), 1e-5);
}

TEST(BceAndDiceLoss, ChannelWeightOfZeroDropsTheChannel) {
  torch::manual_seed(1);
  const torch::Tensor logits = torch::randn({2, 2, 6, 7});
  const torch::Tensor target = (torch::rand({2, 2, 6, 7}) > 0.5).to(torch::kFloat);
  const double weighted = value(bce_and_dice_loss(logits, target, {}, LossOptions().channel_weights({1.0, 0.0})));
  const double first_only = value(bce_and_dice_loss(logits.narrow(1, 0, 1), target.narrow(1, 0, 1), {}));
  EXPECT_NEAR(weighted, first_only, 1e-6);
  EXPECT_THROW(bce_and_dice_loss(logits, target, {}, LossOptions().channel_weights({1.0})), Error);
}

TEST(CeAndDiceLoss, MatchesHandComputedValue) {
  // Three classes, two voxels. Voxel 0: p = (1/4, 1/4, 1/2), class 2; voxel 1: p = (1/2, 1/4, 1/4), class 0.
  const torch::Tensor logits = float_tensor({0.0f, float(kLn2), 0.0f, 0.0f, float(kLn2), 0.0f}, {1, 3, 2});
  const torch::Tensor target = torch::tensor({2, 0}, torch::kLong).view({1, 1, 2});
  const double ce = kLn2;  // −ln(1/2) at both voxels
  // Dice without background: class 1: I = 0, S_gt = 0, S_pred = 1/2; class 2: I = 1/2, S_gt = 1, S_pred = 3/4.
  const double dice1 = kSmooth / (0.5 + kSmooth), dice2 = (1 + kSmooth) / (1.75 + kSmooth);
  EXPECT_NEAR(value(ce_and_dice_loss(logits, target, {})), ce - (dice1 + dice2) / 2, 1e-6);
  EXPECT_NEAR(value(masked_cross_entropy(logits, target, {}, {})), ce, 1e-6);
}

TEST(CeAndDiceLoss, CrossEntropyEqualsPyTorchsWithClassWeights) {
  torch::manual_seed(2);
  const torch::Tensor logits = torch::randn({2, 4, 5, 6, 7}) * 2;
  const torch::Tensor target = torch::randint(0, 4, {2, 1, 5, 6, 7}, torch::kLong);
  EXPECT_NEAR(value(masked_cross_entropy(logits, target, {}, {})),
              value(torch::cross_entropy_loss(logits, target.squeeze(1))), 1e-5);
  // channel_weights are the foreground classes' weights; background keeps 1.
  const torch::Tensor weights = torch::tensor({1.0f, 2.0f, 0.5f, 3.0f});
  EXPECT_NEAR(value(masked_cross_entropy(logits, target, {}, LossOptions().channel_weights({2.0, 0.5, 3.0}))),
              value(torch::cross_entropy_loss(logits, target.squeeze(1), weights)), 1e-5);
}

TEST(IgnoreMask, AllAnnotatedChangesNothing) {
  torch::manual_seed(3);
  const torch::Tensor logits = torch::randn({2, 3, 4, 5, 6});
  const torch::Tensor target = (torch::rand({2, 3, 4, 5, 6}) > 0.6).to(torch::kFloat);
  const torch::Tensor ones = torch::ones({2, 1, 4, 5, 6});
  for (bool batch_dice : {false, true}) {
    const auto options = LossOptions().batch_dice(batch_dice).pos_weight({1, 2, 3});
    EXPECT_NEAR(value(bce_and_dice_loss(logits, target, ones, options)), value(bce_and_dice_loss(logits, target, {}, options)), 1e-6);
    EXPECT_NEAR(value(bce_and_dice_loss(logits, target, ones.to(torch::kBool), options)),
                value(bce_and_dice_loss(logits, target, {}, options)), 1e-6);
  }
  const torch::Tensor classes = torch::randint(0, 3, {2, 1, 4, 5, 6}, torch::kLong);
  EXPECT_NEAR(value(ce_and_dice_loss(logits, classes, ones)), value(ce_and_dice_loss(logits, classes, {})), 1e-6);
}

TEST(IgnoreMask, IgnoredVoxelsAreAsIfAbsent) {
  // The loss over 3 voxels with the last ignored equals the loss over the first 2 alone, whatever
  // the ignored voxel's logits and target (softmax: even nnU-Net's ignore value −100).
  torch::manual_seed(4);
  const torch::Tensor logits = torch::randn({2, 3, 3});
  const torch::Tensor mask = torch::tensor({1.0f, 1.0f, 0.0f}).view({1, 1, 3}).expand({2, 1, 3}).contiguous();
  const torch::Tensor regions = (torch::rand({2, 3, 3}) > 0.5).to(torch::kFloat);
  EXPECT_NEAR(value(bce_and_dice_loss(logits, regions, mask)),
              value(bce_and_dice_loss(logits.narrow(2, 0, 2), regions.narrow(2, 0, 2), {})), 1e-6);
  torch::Tensor classes = torch::randint(0, 3, {2, 1, 3}, torch::kLong);
  classes.select(2, 2).fill_(-100);
  EXPECT_NEAR(value(ce_and_dice_loss(logits, classes, mask)),
              value(ce_and_dice_loss(logits.narrow(2, 0, 2), classes.narrow(2, 0, 2), {})), 1e-6);
  EXPECT_THROW(ce_and_dice_loss(logits, classes, {}), Error);  // −100 at an annotated voxel
}

TEST(IgnoreMask, BceGradientIsZeroAtIgnoredVoxels) {
  torch::manual_seed(5);
  const torch::Tensor logits = torch::randn({1, 2, 4}).requires_grad_(true);
  const torch::Tensor target = (torch::rand({1, 2, 4}) > 0.5).to(torch::kFloat);
  const torch::Tensor mask = torch::tensor({1.0f, 0.0f, 1.0f, 1.0f}).view({1, 1, 4});
  masked_bce_with_logits(logits, target, mask, {}).backward();
  // d/dx mean = (σ(x) − y) / (annotated voxels × channels) where annotated.
  const torch::Tensor expected = (torch::sigmoid(logits.detach()) - target) * mask / (3 * 2);
  EXPECT_TRUE(torch::allclose(logits.grad(), expected, 1e-6, 1e-7));
}

TEST(LossFiniteness, AllIgnoredGivesMinusOneWithZeroGradient) {
  const torch::Tensor logits = torch::randn({2, 3, 4, 4}).requires_grad_(true);
  const torch::Tensor none = torch::zeros({2, 1, 4, 4});
  const torch::Tensor regions = torch::ones({2, 3, 4, 4});
  // BCE over nothing is 0, Dice over nothing is (0 + s) / (0 + s) = 1.
  torch::Tensor loss = bce_and_dice_loss(logits, regions, none);
  EXPECT_NEAR(value(loss), -1.0, 1e-6);
  loss.backward();
  EXPECT_EQ(value(logits.grad().abs().max()), 0.0);
  logits.mutable_grad().zero_();
  loss = ce_and_dice_loss(logits, torch::full({2, 1, 4, 4}, -100, torch::kLong), none);
  EXPECT_NEAR(value(loss), -1.0, 1e-6);
  loss.backward();
  EXPECT_EQ(value(logits.grad().abs().max()), 0.0);
}

TEST(LossFiniteness, EmptyTargetsAndEmptyChannels) {
  torch::manual_seed(6);
  const torch::Tensor logits = torch::randn({2, 3, 4, 5, 6});
  for (bool batch_dice : {false, true}) {
    const auto options = LossOptions().batch_dice(batch_dice);
    expect_finite_loss_and_gradient(logits, torch::zeros({2, 3, 4, 5, 6}), {}, options);  // nothing anywhere
    torch::Tensor one_empty = (torch::rand({2, 3, 4, 5, 6}) > 0.5).to(torch::kFloat);
    one_empty.select(1, 1).zero_();
    expect_finite_loss_and_gradient(logits, one_empty, {}, options);
    expect_finite_loss_and_gradient(logits, torch::zeros({2, 1, 4, 5, 6}, torch::kLong), {},
                                    softmax_options().batch_dice(batch_dice));  // background only
  }
}

TEST(LossFiniteness, ExtremeLogits) {
  torch::manual_seed(7);
  const torch::Tensor sign = torch::where(torch::rand({2, 3, 4, 5}) > 0.5, torch::ones({}), -torch::ones({}));
  const torch::Tensor logits = sign * 1e4;
  const torch::Tensor right = (sign > 0).to(torch::kFloat), wrong = (sign < 0).to(torch::kFloat);
  const torch::Tensor mask = (torch::rand({2, 1, 4, 5}) > 0.3).to(torch::kFloat);
  for (const auto& annotated : {torch::Tensor(), mask}) {
    expect_finite_loss_and_gradient(logits, right, annotated, {});
    expect_finite_loss_and_gradient(logits, wrong, annotated, {});
    expect_finite_loss_and_gradient(logits, right, annotated, LossOptions().pos_weight({10, 10, 10}).batch_dice(true));
    expect_finite_loss_and_gradient(logits, torch::randint(0, 3, {2, 1, 4, 5}, torch::kLong), annotated, softmax_options());
  }
  // Confidently wrong: BCE is the logit's size per voxel.
  EXPECT_NEAR(value(masked_bce_with_logits(logits, wrong, {}, {})), 1e4, 1.0);
}

// Powerset: bg, {a}, {a, b}; a voxel of class {a, b} counts for a and b in the marginal Dice.
LossOptions powerset_options() {
  return LossOptions().kind(LossKind::ce_and_marginal_dice).powerset_membership(LabelEncoding::powerset(2, {{0b01}, {0b11}}).membership());
}

TEST(PowersetLoss, CrossEntropyOverCombinationsPlusDiceOfTheChannelMarginals) {
  // One voxel of class {a, b} with uniform logits: p = 1/3 each; marginals a = 2/3, b = 1/3.
  const torch::Tensor logits = torch::zeros({1, 3, 1, 1});
  const torch::Tensor target = torch::full({1, 1, 1, 1}, 2, torch::kLong);
  const double ce = kLn3;
  const double dice_a = (2 * 2.0 / 3 + kSmooth) / (1 + 2.0 / 3 + kSmooth), dice_b = (2 * 1.0 / 3 + kSmooth) / (1 + 1.0 / 3 + kSmooth);
  EXPECT_NEAR(value(segmentation_loss(logits, target, {}, powerset_options())), ce - (dice_a + dice_b) / 2, 1e-6);
  // Without the membership table the loss refuses to guess.
  EXPECT_THROW(segmentation_loss(logits, target, {}, LossOptions().kind(LossKind::ce_and_marginal_dice)), Error);
}

TEST(PowersetLoss, FiniteWithoutForegroundFullyIgnoredAndExtreme) {
  torch::manual_seed(8);
  const torch::Tensor logits = torch::randn({2, 3, 4, 5, 6});
  for (bool batch_dice : {false, true}) {
    // A batch without any foreground: every voxel background.
    expect_finite_loss_and_gradient(logits, torch::zeros({2, 1, 4, 5, 6}, torch::kLong), {}, powerset_options().batch_dice(batch_dice));
  }
  const torch::Tensor none = torch::zeros({2, 1, 4, 5, 6});
  expect_finite_loss_and_gradient(logits, torch::full({2, 1, 4, 5, 6}, kIgnoreClassIndex, torch::kLong), none, powerset_options());
  expect_finite_loss_and_gradient(logits * 1e4, torch::randint(0, 3, {2, 1, 4, 5, 6}, torch::kLong), {}, powerset_options());
  // Channel weights become class weights (a combination takes its largest channel weight).
  expect_finite_loss_and_gradient(logits, torch::randint(0, 3, {2, 1, 4, 5, 6}, torch::kLong), {},
                                  powerset_options().channel_weights({1.0, 4.0}));
}

TEST(LossInputs, ShapeMismatchesAreErrors) {
  const torch::Tensor logits = torch::zeros({2, 3, 4, 4});
  EXPECT_THROW(bce_and_dice_loss(logits, torch::zeros({2, 2, 4, 4}), {}), Error);
  EXPECT_THROW(bce_and_dice_loss(logits, torch::zeros({2, 3, 4, 4}), torch::ones({2, 3, 4, 4})), Error);
  EXPECT_THROW(ce_and_dice_loss(logits, torch::zeros({2, 1, 4, 4}), {}), Error);  // float class indices
  EXPECT_THROW(ce_and_dice_loss(logits, torch::full({2, 1, 4, 4}, 3, torch::kLong), {}), Error);  // class 3 of 0..2
  EXPECT_THROW(bce_and_dice_loss(torch::zeros({0, 3, 4, 4}), torch::zeros({0, 3, 4, 4}), {}), Error);
  EXPECT_EQ(LabelEncoding::softmax(2).loss_kind(), LossKind::ce_and_dice);
  EXPECT_EQ(LabelEncoding::sigmoid(2).loss_kind(), LossKind::bce_and_dice);
  EXPECT_EQ(LabelEncoding::powerset(2, {}).loss_kind(), LossKind::ce_and_marginal_dice);
}

}  // namespace
}  // namespace mlseg
