// PlainConvUNet against dynamic-network-architectures: parameter counts, parameter names, output
// shapes and order with deep supervision, He initialisation.
#include "mlseg/nn/plain_conv_unet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

using Axes = std::vector<std::int64_t>;

std::int64_t product(const Axes& values) {
  std::int64_t p = 1;
  for (auto v : values) p *= v;
  return p;
}

// The architecture written out as a sum: every conv's weights + bias, every norm's affine
// weight + bias, every transposed conv, every 1x1 head (all heads exist, used or not).
std::int64_t expected_parameters(const PlainConvUNetOptions& o, const std::vector<int>& encoder_convs,
                                 const std::vector<int>& decoder_convs) {
  const auto& f = o.features_per_stage();
  auto conv_norm = [](std::int64_t kernel_voxels, std::int64_t in, std::int64_t out) {
    return kernel_voxels * in * out + out + 2 * out;
  };
  std::int64_t total = 0;
  std::int64_t in = o.input_channels();
  for (std::size_t s = 0; s < f.size(); ++s) {
    for (int i = 0; i < encoder_convs[s]; ++i, in = f[s]) total += conv_norm(product(o.kernel_sizes()[s]), in, f[s]);
  }
  for (std::size_t s = f.size() - 1, d = 0; s >= 1; --s, ++d) {
    total += product(o.strides()[s]) * f[s] * f[s - 1] + f[s - 1];
    in = 2 * f[s - 1];
    for (int i = 0; i < decoder_convs[d]; ++i, in = f[s - 1]) total += conv_norm(product(o.kernel_sizes()[s - 1]), in, f[s - 1]);
    total += f[s - 1] * o.num_classes() + o.num_classes();
  }
  return total;
}

PlainConvUNetOptions nnunet_reference_3d() {
  const Axes k{3, 3, 3};
  return PlainConvUNetOptions(1, 3)
      .dimension(3)
      .n_stages(5)
      .features_per_stage({32, 64, 128, 256, 320})
      .kernel_sizes({k, k, k, k, k})
      .strides({{1, 1, 1}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}})
      .deep_supervision(true);
}

// Hippocampus-like: 4 stages, anisotropic last stride.
PlainConvUNetOptions small_3d(bool deep_supervision) {
  const Axes k{3, 3, 3};
  return PlainConvUNetOptions(1, 3)
      .dimension(3)
      .n_stages(4)
      .features_per_stage({4, 8, 16, 32})
      .kernel_sizes({{1, 3, 3}, k, k, k})
      .strides({{1, 1, 1}, {2, 2, 2}, {2, 2, 2}, {1, 2, 2}})
      .deep_supervision(deep_supervision);
}

PlainConvUNetOptions mixed_2d() {
  return PlainConvUNetOptions(2, 4)
      .dimension(2)
      .n_stages(3)
      .features_per_stage({16, 32, 64})
      .kernel_sizes({{3, 3}, {3, 3}, {1, 3}})
      .strides({{1, 1}, {2, 2}, {1, 2}})
      .n_conv_per_stage({2, 3, 2})
      .n_conv_per_stage_decoder({1, 2})
      .deep_supervision(true);
}

TEST(PlainConvUNet, ParameterCountEqualsNnUNet3dFiveStages) {
  const PlainConvUNet net(nnunet_reference_3d());
  EXPECT_EQ(count_parameters(*net), 16'548'076);
  EXPECT_EQ(expected_parameters(net->options, {2, 2, 2, 2, 2}, {2, 2, 2, 2}), 16'548'076);
}

TEST(PlainConvUNet, ParameterCount2dFollowsTheFormula) {
  const PlainConvUNet net(mixed_2d());
  const std::int64_t expected = expected_parameters(net->options, {2, 3, 2}, {1, 2});
  EXPECT_EQ(count_parameters(*net), expected);
  // By hand (conv + norm = taps*in*out + out + 2*out):
  // encoder  s0: 9*2*16 + 48 = 336, 9*16*16 + 48 = 2,352; s1: 9*16*32 + 96 = 4,704, 2 x (9*32*32 + 96) = 18,624;
  //          s1x3 kernels at s2: 3*32*64 + 192 = 6,336, 3*64*64 + 192 = 12,480 → 44,832
  // decoder 0 (stage 2 → 1, stride 1x2): transp 2*64*32 + 32 = 4,128, one 3x3 conv 9*64*32 + 96 = 18,528,
  //          head 32*4 + 4 = 132 → 22,788
  // decoder 1 (stage 1 → 0, stride 2x2): transp 4*32*16 + 16 = 2,064, 9*32*16 + 48 = 4,656,
  //          9*16*16 + 48 = 2,352, head 16*4 + 4 = 68 → 9,140
  EXPECT_EQ(expected, 44'832 + 22'788 + 9'140);
}

TEST(PlainConvUNet, ParameterNamesFollowTheNnUNetModuleTree) {
  const PlainConvUNet net(small_3d(true));
  std::set<std::string> names;
  for (const auto& p : net->named_parameters()) names.insert(p.key());
  for (const char* name : {"encoder.stages.0.0.convs.0.conv.weight", "encoder.stages.0.0.convs.0.conv.bias",
                           "encoder.stages.0.0.convs.1.norm.weight", "encoder.stages.3.0.convs.1.norm.bias",
                           "decoder.transpconvs.0.weight", "decoder.transpconvs.2.bias",
                           "decoder.stages.0.convs.0.conv.weight", "decoder.stages.2.convs.1.norm.bias",
                           "decoder.seg_layers.0.weight", "decoder.seg_layers.2.bias"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
  EXPECT_EQ(names.size(), 4u * 2 * 4 + 3u * (2 + 2 * 4 + 2));  // no other parameters
}

TEST(PlainConvUNet, DeepSupervisionOutputsAreFullResolutionFirst3d) {
  torch::manual_seed(0);
  PlainConvUNet net(small_3d(true));
  const auto outputs = net->forward(torch::randn({2, 1, 8, 16, 24}));
  ASSERT_EQ(outputs.size(), 3u);
  // cumulative strides: (1,1,1), (2,2,2), (4,4,4); the bottleneck (4,8,8) has no head.
  EXPECT_EQ(outputs[0].sizes(), (Axes{2, 3, 8, 16, 24}));
  EXPECT_EQ(outputs[1].sizes(), (Axes{2, 3, 4, 8, 12}));
  EXPECT_EQ(outputs[2].sizes(), (Axes{2, 3, 2, 4, 6}));

  net->set_deep_supervision(false);
  const auto single = net->forward(torch::randn({1, 1, 8, 16, 24}));
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].sizes(), (Axes{1, 3, 8, 16, 24}));
}

TEST(PlainConvUNet, DeepSupervisionOutputShapes2d) {
  torch::manual_seed(0);
  PlainConvUNet net(mixed_2d());
  const auto outputs = net->forward(torch::randn({3, 2, 12, 16}));
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0].sizes(), (Axes{3, 4, 12, 16}));
  EXPECT_EQ(outputs[1].sizes(), (Axes{3, 4, 6, 8}));  // cumulative stride (2, 2); bottleneck (6, 4)
}

TEST(PlainConvUNet, FullResolutionOutputIsTheSameWithAndWithoutDeepSupervision) {
  torch::manual_seed(1);
  PlainConvUNet net(small_3d(true));
  net->eval();
  const torch::Tensor x = torch::randn({1, 1, 8, 16, 16});
  const torch::Tensor with = net->forward(x)[0];
  net->set_deep_supervision(false);
  EXPECT_TRUE(torch::allclose(with, net->forward(x)[0]));
}

TEST(PlainConvUNet, HeInitialisationWithZeroBiases) {
  torch::manual_seed(2);
  const PlainConvUNet net(nnunet_reference_3d());
  for (const auto& p : net->named_parameters()) {
    const std::string& name = p.key();
    const bool conv_bias = name.find("conv.bias") != std::string::npos || name.find("transpconvs") != std::string::npos ||
                           name.find("seg_layers") != std::string::npos;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".bias" && conv_bias) {
      EXPECT_EQ(p.value().abs().max().item<float>(), 0.0f) << name;
    }
    if (name.find("norm.weight") != std::string::npos) {
      EXPECT_TRUE(torch::all(p.value() == 1).item<bool>()) << name;
    }
  }
  // kaiming_normal_(a = 0.01, fan_in, leaky_relu): std = sqrt(2 / (1 + a^2)) / sqrt(fan_in).
  // Stage 4's second conv: 320 in x 27 taps, 2,764,800 samples → std within 1%.
  const torch::Tensor w = net->named_parameters()["encoder.stages.4.0.convs.1.conv.weight"];
  const double expected_std = std::sqrt(2.0 / (1.0 + 1e-4)) / std::sqrt(320.0 * 27.0);
  EXPECT_NEAR(w.std().item<double>(), expected_std, 0.01 * expected_std);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.01 * expected_std);
  // Transposed conv weights [in=320, out=256, 2, 2, 2]: PyTorch's fan_in is size(1) * taps = 256 * 8.
  const torch::Tensor t = net->named_parameters()["decoder.transpconvs.0.weight"];
  const double expected_t = std::sqrt(2.0 / (1.0 + 1e-4)) / std::sqrt(256.0 * 8.0);
  EXPECT_NEAR(t.std().item<double>(), expected_t, 0.01 * expected_t);
}

TEST(PlainConvUNet, EveryParameterGetsAFiniteGradient) {
  torch::manual_seed(3);
  PlainConvUNet net(small_3d(true));
  const auto outputs = net->forward(torch::randn({2, 1, 8, 16, 16}));
  torch::Tensor total = torch::zeros({});
  for (const auto& o : outputs) total = total + o.square().mean();
  total.backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
}

TEST(PlainConvUNet, InconsistentOptionsNameTheOption) {
  auto options = small_3d(true);
  options.features_per_stage({4, 8, 16});
  try {
    PlainConvUNet net(options);
    FAIL() << "expected mlseg::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.problem()).find("features_per_stage"), std::string::npos) << e.what();
  }
  options = small_3d(true);
  options.kernel_sizes({{3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}});
  EXPECT_THROW(PlainConvUNet{options}, Error);
  options = small_3d(true);
  options.kernel_sizes({{2, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}});
  EXPECT_THROW(PlainConvUNet{options}, Error);
  options = small_3d(true);
  options.dimension(4);
  EXPECT_THROW(PlainConvUNet{options}, Error);
  EXPECT_THROW(PlainConvUNet(small_3d(true))->forward(torch::zeros({1, 2, 8, 8, 8})), Error);  // 2 channels, 1 planned
}

TEST(PlainConvUNet, EmptyConvCountsMeanTwoPerStage) {
  const PlainConvUNet net(small_3d(true));
  EXPECT_EQ(net->options.n_conv_per_stage(), (std::vector<int>{2, 2, 2, 2}));
  EXPECT_EQ(net->options.n_conv_per_stage_decoder(), (std::vector<int>{2, 2, 2}));
}

}  // namespace
}  // namespace mlseg
