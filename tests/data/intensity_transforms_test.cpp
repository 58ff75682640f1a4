// The intensity transforms' building blocks against their definitions.
#include "mlseg/data/intensity_transforms.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "data/augmentation_test_support.h"

namespace mlseg {
namespace {

using testing::random_image;

TEST(IntensityTransform, GammaRetainsMeanAndStandardDeviation) {
  for (const bool invert : {false, true}) {
    torch::Tensor image = random_image(2, {8, 9, 10}, 21) * 3.0 - 1.0;
    const torch::Tensor before = image.clone();
    gamma_channel(image, 1, 1.4, invert, true);
    EXPECT_NEAR(image[1].mean().item<double>(), before[1].mean().item<double>(), 1e-4);
    EXPECT_NEAR(image[1].std().item<double>(), before[1].std().item<double>(), 1e-4);
    EXPECT_FALSE(torch::allclose(image[1], before[1]));
    EXPECT_TRUE(torch::equal(image[0], before[0]));  // other channels untouched
  }
}

TEST(IntensityTransform, GammaMatchesItsDefinition) {
  torch::Tensor image = random_image(1, {4, 5, 6}, 22) * 2.0 + 0.5;
  const torch::Tensor before = image.clone();
  gamma_channel(image, 0, 0.8, false, false);
  const auto lo = before.min(), range = before.max() - before.min();
  const torch::Tensor expected = ((before - lo) / range).pow(0.8) * range + lo;
  EXPECT_TRUE(torch::allclose(image, expected, 1e-5, 1e-5));
  // Inverted: gamma on -x, negated back.
  torch::Tensor inverted = before.clone();
  gamma_channel(inverted, 0, 0.8, true, false);
  const torch::Tensor negative = -before;
  const auto nlo = negative.min(), nrange = negative.max() - negative.min();
  EXPECT_TRUE(torch::allclose(inverted, -(((negative - nlo) / nrange).pow(0.8) * nrange + nlo), 1e-5, 1e-5));
}

TEST(IntensityTransform, ContrastScalesAroundTheMeanWithinTheFormerRange) {
  torch::Tensor image = random_image(1, {6, 6, 6}, 23);
  const torch::Tensor before = image.clone();
  adjust_channel_contrast(image, 0, 1.25, true);
  const auto mean = before.mean();
  const torch::Tensor expected = ((before - mean) * 1.25 + mean).clamp(before.min().item<float>(), before.max().item<float>());
  EXPECT_TRUE(torch::allclose(image, expected, 1e-5, 1e-6));
  multiply_channel(image, 0, 0.5);
  EXPECT_TRUE(torch::allclose(image, expected * 0.5));
}

TEST(IntensityTransform, BlurKeepsConstantsAndSpreadsAnImpulseSymmetrically) {
  torch::Tensor constant = torch::full({1, 7, 8, 9}, 2.5f);
  gaussian_blur_channel(constant, 0, {0.7, 0.9, 1.0});
  EXPECT_TRUE(torch::allclose(constant, torch::full_like(constant, 2.5f), 1e-5, 1e-5));
  torch::Tensor impulse = torch::zeros({1, 15, 15, 15});
  impulse[0][7][7][7] = 1.0f;
  gaussian_blur_channel(impulse, 0, {1.0, 1.0, 1.0});
  EXPECT_NEAR(impulse.sum().item<double>(), 1.0, 1e-5);
  EXPECT_TRUE(torch::allclose(impulse, impulse.flip({1}), 1e-7, 1e-7));
  EXPECT_TRUE(torch::allclose(impulse, impulse.transpose(1, 3), 1e-7, 1e-7));
  // sigma 1, truncate 6: kernel size 7 (nearest odd of 6.5), so nothing beyond 3 voxels.
  EXPECT_EQ(impulse[0][7][7][11].item<float>(), 0.0f);
  EXPECT_GT(impulse[0][7][7][10].item<float>(), 0.0f);
  const double g1 = std::exp(-0.5), g0 = 1.0, g2 = std::exp(-2.0), g3 = std::exp(-4.5);
  const double norm = g0 + 2 * (g1 + g2 + g3);
  EXPECT_NEAR(impulse[0][7][7][8].item<double>() / impulse[0][7][7][7].item<double>(), g1 / g0, 1e-5);
  EXPECT_NEAR(impulse[0][7][7][7].item<double>(), std::pow(g0 / norm, 3), 1e-6);
}

// Against a plain reference: each axis convolved in double with the normalised Gaussian of
// nnU-Net's kernel size, reflect padding (edge not repeated). Axes of 2 to 9 voxels with radii
// up to 3 make the reflections reach across the whole line.
TEST(IntensityTransform, BlurMatchesAPlainSeparableConvolutionWithReflectPadding) {
  const std::array<double, 3> sigma{1.0, 0.8, 0.55};
  for (const std::array<std::int64_t, 3> shape : {std::array<std::int64_t, 3>{9, 10, 11}, {2, 5, 3}, {1, 4, 7}}) {
    torch::Tensor image = random_image(1, {shape[0], shape[1], shape[2]}, 25);
    torch::Tensor reference = image.to(torch::kFloat64).clone();
    for (int axis = 0; axis < 3; ++axis) {
      const int size = [&] {  // _compute_kernel_size: round half to even, then the nearest odd
        const double n = sigma[static_cast<std::size_t>(axis)] * 6.0 + 0.5;
        const int r = static_cast<int>(std::nearbyint(n));
        return r % 2 == 1 ? r : (n - r >= 0 ? r + 1 : r - 1);
      }();
      std::vector<double> kernel(static_cast<std::size_t>(size));
      double total = 0.0;
      for (int i = 0; i < size; ++i) {
        const double x = (i - (size - 1) / 2.0) / sigma[static_cast<std::size_t>(axis)];
        total += kernel[static_cast<std::size_t>(i)] = std::exp(-0.5 * x * x);
      }
      const std::int64_t n = shape[static_cast<std::size_t>(axis)];
      const auto reflect = [n](std::int64_t i) {
        if (n == 1) return std::int64_t{0};
        while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
        return i;
      };
      torch::Tensor out = torch::zeros_like(reference);
      for (std::int64_t i = 0; i < n; ++i) {
        for (int k = 0; k < size; ++k) {
          out.select(axis + 1, i) += kernel[static_cast<std::size_t>(k)] / total *
                                     reference.select(axis + 1, reflect(i + k - (size - 1) / 2));
        }
      }
      reference = out;
    }
    gaussian_blur_channel(image, 0, sigma);
    EXPECT_TRUE(torch::allclose(image.to(torch::kFloat64), reference, 1e-5, 1e-6)) << shape[0] << "x" << shape[1];
  }
}

TEST(IntensityTransform, LowResolutionIsNearestDownLinearUp) {
  torch::Tensor image = random_image(1, {8, 8, 8}, 24);
  const torch::Tensor before = image.clone();
  simulate_low_resolution_channel(image, 0, 1.0, {false, false, false});
  EXPECT_TRUE(torch::equal(image, before));
  simulate_low_resolution_channel(image, 0, 0.5, {true, false, false});
  namespace F = torch::nn::functional;
  const torch::Tensor down = F::interpolate(before.unsqueeze(0), F::InterpolateFuncOptions()
                                                                     .size(std::vector<std::int64_t>{8, 4, 4})
                                                                     .mode(torch::kNearestExact));
  const torch::Tensor up = F::interpolate(
      down, F::InterpolateFuncOptions().size(std::vector<std::int64_t>{8, 8, 8}).mode(torch::kTrilinear).align_corners(false));
  EXPECT_TRUE(torch::allclose(image, up[0], 1e-5, 1e-6));
}

TEST(IntensityTransform, NoiseHasTheRequestedStandardDeviation) {
  torch::Tensor image = torch::zeros({2, 32, 32, 32});
  SplitMix64 rng(5);
  add_gaussian_noise(image, 0.1, rng);
  EXPECT_NEAR(image[0].std().item<double>(), 0.1, 0.002);
  EXPECT_NEAR(image[0].mean().item<double>(), 0.0, 0.001);
  EXPECT_TRUE(torch::equal(image[0], image[1]));  // one noise field for all channels
}

TEST(IntensityTransform, BelowOrAboveOneDrawsEachSideHalfTheTime) {
  SplitMix64 rng(6);
  int below = 0;
  for (int i = 0; i < 10000; ++i) {
    const double f = sample_below_or_above_one(0.75, 1.25, rng);
    ASSERT_GE(f, 0.75);
    ASSERT_LE(f, 1.25);
    below += f < 1.0;
  }
  EXPECT_NEAR(below / 10000.0, 0.5, 0.025);
  // A range entirely above 1 always draws above 1.
  EXPECT_GE(sample_below_or_above_one(1.1, 1.3, rng), 1.1);
}

}  // namespace
}  // namespace mlseg
