// The Winograd F(4x4, 3x3) convolution (winograd_conv.h) equals the direct convolution up to float
// rounding on awkward shapes (channels not multiples of the kernel widths, planes not multiples of
// the 4x4 tile, thin volumes, batches) and is chosen only where it applies. The reference U-Net's
// fused forward through it: FusedUNetForward.ReferenceTopologyWithinOneInTenThousandOfTheModuleForward.
#include "mlseg/nn/winograd_conv.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "mlseg/core/error.h"

namespace {

using namespace mlseg;

// Largest |winograd - conv3d in float64| over the largest |output|, and the same for ATen's
// float32 conv3d (the rounding any float32 convolution has).
struct Errors {
  double winograd = 0, direct = 0;
};

Errors relative_errors(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const torch::Tensor exact = torch::conv3d(x.to(torch::kDouble), weight.to(torch::kDouble),
                                            bias.defined() ? bias.to(torch::kDouble) : torch::Tensor(), 1, 1);
  const torch::Tensor ours = winograd_conv3d(x, transform_winograd_weights(weight), bias);
  const torch::Tensor direct = torch::conv3d(x, weight, bias, 1, 1);
  EXPECT_EQ(ours.sizes(), exact.sizes());
  const double scale = exact.abs().max().item<double>();
  return {(ours.to(torch::kDouble) - exact).abs().max().item<double>() / scale,
          (direct.to(torch::kDouble) - exact).abs().max().item<double>() / scale};
}

TEST(WinogradConv, EqualsTheDirectConvolutionOnAwkwardShapes) {
  torch::manual_seed(21);
  struct Shape {
    std::int64_t batch, in, out, depth, height, width;
    bool bias;
  };
  const std::vector<Shape> shapes{
      {2, 17, 33, 5, 7, 10, true},   // channels off the 16 / 32 widths, plane off the 4x4 tile
      {1, 32, 32, 16, 16, 16, true},  // a decoder stage of the reference U-Net
      {1, 64, 40, 9, 13, 6, false},   // no bias, more tile rows than columns
      {1, 16, 16, 1, 8, 8, true},     // one slice: both z taps outside
      {3, 20, 96, 3, 4, 4, true},     // one tile per slice, three panels of outputs
      {1, 48, 24, 20, 5, 22, true},   // several z blocks, a partial last one
  };
  for (const Shape& s : shapes) {
    SCOPED_TRACE(std::to_string(s.batch) + "x" + std::to_string(s.in) + "->" + std::to_string(s.out) + " " +
                 std::to_string(s.depth) + "x" + std::to_string(s.height) + "x" + std::to_string(s.width));
    const torch::Tensor x = torch::randn({s.batch, s.in, s.depth, s.height, s.width}) * 2.0 + 0.5;
    const torch::Tensor weight = torch::randn({s.out, s.in, 3, 3, 3}) / std::sqrt(27.0 * static_cast<double>(s.in));
    const torch::Tensor bias = s.bias ? torch::randn({s.out}) : torch::Tensor();
    const Errors e = relative_errors(x, weight, bias);
    // float32 rounding: ATen's own error is ~3e-7 of the output's scale; F(4, 3)'s transforms
    // (factors up to 8 and 1/24) give 2e-6 to 7e-6 here. A wrong tap or index is an error of order 1.
    EXPECT_LT(e.winograd, 3e-5) << "ATen float32: " << e.direct;
  }
}

TEST(WinogradConv, NonFiniteInputsStayNonFinite) {
  torch::manual_seed(22);
  torch::Tensor x = torch::randn({1, 16, 4, 8, 8});
  x[0][3][2][5][5] = std::numeric_limits<float>::quiet_NaN();
  const torch::Tensor weight = torch::randn({16, 16, 3, 3, 3});
  const torch::Tensor out = winograd_conv3d(x, transform_winograd_weights(weight), torch::Tensor());
  // the NaN reaches at least its direct neighbourhood, as in a direct convolution
  EXPECT_TRUE(std::isnan(out[0][0][2][5][5].item<float>()));
  EXPECT_TRUE(std::isnan(out[0][7][1][4][6].item<float>()));
}

TEST(WinogradConv, AppliesOnlyToFloat32ThreeCubedStrideOneConvolutionsWithEnoughChannels) {
  const torch::Tensor x = torch::zeros({1, 32, 8, 16, 16});
  const torch::Tensor weight = torch::zeros({32, 32, 3, 3, 3});
  EXPECT_TRUE(winograd_applicable(x, weight, {1, 1, 1}, {1, 1, 1}));
  EXPECT_FALSE(winograd_applicable(x, weight, {2, 2, 2}, {1, 1, 1}));          // strided: the encoder's downsampling
  EXPECT_FALSE(winograd_applicable(x, weight, {1, 1, 1}, {0, 0, 0}));          // not "same"
  EXPECT_FALSE(winograd_applicable(x, torch::zeros({32, 32, 1, 3, 3}), {1, 1, 1}, {0, 1, 1}));  // anisotropic kernel
  EXPECT_FALSE(winograd_applicable(x.to(torch::kBFloat16), weight.to(torch::kBFloat16), {1, 1, 1}, {1, 1, 1}));
  EXPECT_FALSE(winograd_applicable(torch::zeros({1, 4, 8, 16, 16}), torch::zeros({32, 4, 3, 3, 3}), {1, 1, 1}, {1, 1, 1}));
  EXPECT_FALSE(winograd_applicable(torch::zeros({1, 32, 8, 4, 4}), weight, {1, 1, 1}, {1, 1, 1}));  // 4x4 planes
  EXPECT_FALSE(winograd_applicable(torch::zeros({1, 32, 16, 16}), torch::zeros({32, 32, 3, 3}), {1, 1}, {1, 1}));  // 2D
  set_winograd_enabled(false);
  EXPECT_FALSE(winograd_applicable(x, weight, {1, 1, 1}, {1, 1, 1}));
  set_winograd_enabled(true);
  EXPECT_THROW(winograd_conv3d(torch::zeros({1, 16, 4, 8, 8}), transform_winograd_weights(weight), torch::Tensor()), Error);
  EXPECT_THROW(winograd_conv3d(x, transform_winograd_weights(weight), torch::zeros({5})), Error);
  EXPECT_THROW(transform_winograd_weights(torch::zeros({32, 32, 3, 3})), Error);
}

TEST(WinogradConv, CacheTransformsAgainAfterAnInPlaceUpdate) {
  torch::manual_seed(23);
  torch::Tensor weight = torch::randn({16, 16, 3, 3, 3});
  const torch::Tensor x = torch::randn({1, 16, 4, 8, 8});
  WinogradWeightCache cache;
  const torch::Tensor before = winograd_conv3d(x, cache.get(weight), torch::Tensor());
  {
    torch::NoGradGuard no_grad;
    weight.mul_(2.0);
  }
  const torch::Tensor after = winograd_conv3d(x, cache.get(weight), torch::Tensor());
  EXPECT_TRUE(torch::allclose(after, before * 2.0, 1e-5, 1e-5));
}

}  // namespace
