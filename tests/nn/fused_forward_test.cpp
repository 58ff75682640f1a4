// The fused inference forward (a capability of each network) gives the module's logits (2D and 3D,
// several stages, batches, PlainConvUNet and ResidualEncoderUNet), and the fused kernel is instance
// norm + affine + LeakyReLU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/core/error.h"
#include "mlseg/inference/sliding_window.h"
#include "mlseg/nn/fused_norm.h"
#include "mlseg/nn/plain_conv_unet.h"
#include "mlseg/nn/residual_encoder_unet.h"
#include "mlseg/nn/winograd_conv.h"

namespace {

using namespace mlseg;

TEST(FusedInstanceNorm, EqualsInstanceNormAffineLeakyRelu) {
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({2, 3, 5, 7, 9}) * 3.0 + 5.0;
  const torch::Tensor weight = torch::rand({3}) + 0.5, bias = torch::randn({3});
  const torch::Tensor expected =
      torch::leaky_relu(torch::instance_norm(x, {}, {}, {}, {}, true, 0.1, 1e-5, false) * weight.view({1, 3, 1, 1, 1}) +
                            bias.view({1, 3, 1, 1, 1}),
                        0.01);
  torch::Tensor y = x.clone();
  instance_norm_leaky_relu_(y, weight, bias, 1e-5, 0.01);
  EXPECT_TRUE(torch::allclose(y, expected, 1e-4, 1e-5)) << (y - expected).abs().max().item<float>();
}

// Non-trivial norm parameters (ResidualEncoderUNet starts with its blocks' last norms at 0).
void randomize_norms(torch::nn::Module& network) {
  torch::NoGradGuard no_grad;
  for (auto& item : network.named_parameters()) {
    if (item.key().find("norm") != std::string::npos) item.value().uniform_(0.5, 1.5);
  }
}

TEST(FusedInstanceNorm, SlopeOneIsNoActivation) {
  torch::manual_seed(5);
  torch::Tensor x = torch::randn({1, 2, 4, 6, 6});
  const torch::Tensor weight = torch::rand({2}) + 0.5, bias = torch::randn({2});
  const torch::Tensor expected = torch::instance_norm(x, weight, bias, {}, {}, true, 0.1, 1e-5, false);
  instance_norm_leaky_relu_(x, weight, bias, 1e-5, 1.0);
  EXPECT_TRUE(torch::allclose(x, expected, 1e-4, 1e-5));
  EXPECT_LT(x.min().item<float>(), -0.5f);  // negatives kept
}

TEST(FusedUNetForward, ResidualEncoderUNetMatchesTheModuleForward) {
  torch::manual_seed(7);
  for (int dimension : {3, 2}) {
    SCOPED_TRACE(dimension);
    const std::size_t axes = static_cast<std::size_t>(dimension);
    std::vector<std::int64_t> k(axes, 3), one(axes, 1), two(axes, 2);
    ResidualEncoderUNet network(ResidualEncoderUNetOptions(2, 3)
                                    .dimension(dimension)
                                    .n_stages(3)
                                    .features_per_stage({4, 8, 16})
                                    .kernel_sizes({k, k, k})
                                    .strides({one, two, two})
                                    .n_blocks_per_stage({1, 3, 2})
                                    .n_conv_per_stage_decoder({1, 1})
                                    .deep_supervision(true));
    randomize_norms(*network);
    const torch::Tensor tiles = dimension == 3 ? torch::randn({2, 2, 8, 8, 8}) : torch::randn({2, 2, 1, 8, 8});
    const SegmentationNetwork seam = network;
    EXPECT_FALSE(seam->has_fused_forward());  // measured slower: not offered to sliding windows
    EXPECT_THROW(fused_network_tile_forward(seam), Error);
    const torch::Tensor fused =
        dimension == 3 ? network->fused_forward(tiles) : network->fused_forward(tiles.squeeze(2)).unsqueeze(2);
    torch::NoGradGuard no_grad;
    network->eval();
    network->set_deep_supervision(false);
    const torch::Tensor module = network_tile_forward(seam)(tiles);
    ASSERT_EQ(fused.sizes(), module.sizes());
    EXPECT_TRUE(torch::allclose(fused, module, 1e-4, 1e-4)) << (fused - module).abs().max().item<float>();
  }
}

TEST(FusedUNetForward, MatchesTheModuleForward) {
  torch::manual_seed(6);
  for (int dimension : {3, 2}) {
    SCOPED_TRACE(dimension);
    const std::size_t axes = static_cast<std::size_t>(dimension);
    std::vector<std::int64_t> k(axes, 3), one(axes, 1), two(axes, 2), mixed(axes, 2);
    mixed[0] = 1;  // anisotropic pooling in the first axis
    std::vector<std::int64_t> k1 = k;
    k1[0] = 1;
    PlainConvUNet network(PlainConvUNetOptions(2, 3)
                              .dimension(dimension)
                              .n_stages(3)
                              .features_per_stage({4, 8, 16})
                              .kernel_sizes({k1, k, k})
                              .strides({one, mixed, two})
                              .deep_supervision(true));
    randomize_norms(*network);
    const torch::Tensor tiles = dimension == 3 ? torch::randn({2, 2, 4, 8, 8}) : torch::randn({2, 2, 1, 8, 8});
    const torch::Tensor fused = fused_network_tile_forward(network)(tiles);
    torch::NoGradGuard no_grad;
    network->eval();
    network->set_deep_supervision(false);
    const torch::Tensor module = dimension == 3 ? network->forward(tiles).front() : network->forward(tiles.squeeze(2)).front().unsqueeze(2);
    ASSERT_EQ(fused.sizes(), module.sizes());
    EXPECT_TRUE(torch::allclose(fused, module, 1e-4, 1e-4)) << (fused - module).abs().max().item<float>();
  }
}

}  // namespace

namespace {

// The reference topology of the benchmarks (3D PlainConvUNet, 5 stages 32-320, kernels 3, strides
// 1-2-2-2-2, 3 outputs) with randomised norms and biases: the fused forward (Winograd or oneDNN for
// every conv, the upsampling and the head as matrix products, the fused norm) is within 1e-4 of the module's
// logits, relative to their largest magnitude. A 32^3 tile keeps it quick; the deep stages then take
// oneDNN where ATen's heuristic takes its own convolution, which is the route this checks.
TEST(FusedUNetForward, ReferenceTopologyWithinOneInTenThousandOfTheModuleForward) {
  torch::manual_seed(11);
  const std::vector<std::int64_t> k{3, 3, 3}, one{1, 1, 1}, two{2, 2, 2};
  PlainConvUNet network(PlainConvUNetOptions(1, 3)
                            .dimension(3)
                            .n_stages(5)
                            .features_per_stage({32, 64, 128, 256, 320})
                            .kernel_sizes({k, k, k, k, k})
                            .strides({one, two, two, two, two}));
  randomize_norms(*network);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : network->named_parameters()) {
      if (item.key().find("bias") != std::string::npos && item.key().find("norm") == std::string::npos) item.value().uniform_(-0.1, 0.1);
    }
  }
  network->eval();
  for (const std::int64_t batch : {1, 2}) {
    SCOPED_TRACE(batch);
    const torch::Tensor tiles = torch::randn({batch, 1, 32, 32, 32});
    const torch::Tensor fused = fused_network_tile_forward(network)(tiles);
    torch::NoGradGuard no_grad;
    const torch::Tensor module = network->forward(tiles).front();
    ASSERT_EQ(fused.sizes(), module.sizes());
    const double scale = module.abs().max().item<double>();
    const double difference = (fused - module).abs().max().item<double>();
    std::cout << "[fused] batch " << batch << ": largest difference " << difference << " of logits up to " << scale << "\n";
    EXPECT_LE(difference, 1e-4 * scale);
    // The 32^3, 16^3 and 8^3 stages took the Winograd route (winograd_conv.h): with it off, every
    // convolution direct, the logits differ in the last bits and are as close to the module's.
    set_winograd_enabled(false);
    const torch::Tensor direct = fused_network_tile_forward(network)(tiles);
    set_winograd_enabled(true);
    EXPECT_FALSE(torch::equal(fused, direct));
    EXPECT_LE((direct - module).abs().max().item<double>(), 1e-4 * scale);
  }
}

}  // namespace

namespace {

// bf16 inference through the fused forward: bfloat16 tiles give float32 logits close to the float32
// module's (bf16 keeps 8 bits of mantissa: within 5 % of the logits' range) with the same sign
// almost everywhere; the parameters are cast once and again after an in-place update.
TEST(FusedUNetForward, Bfloat16TilesGiveLogitsCloseToTheFloat32Module) {
  torch::manual_seed(12);
  const std::vector<std::int64_t> k{3, 3, 3}, one{1, 1, 1}, two{2, 2, 2};
  PlainConvUNet network(PlainConvUNetOptions(1, 3).dimension(3).n_stages(3).features_per_stage({8, 16, 32}).kernel_sizes({k, k, k}).strides({one, two, two}));
  randomize_norms(*network);
  network->eval();
  const torch::Tensor tiles = torch::randn({2, 1, 16, 16, 16});
  const torch::Tensor bf16 = network->fused_forward(tiles.to(torch::kBFloat16));
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat);
  torch::NoGradGuard no_grad;
  const torch::Tensor module = network->forward(tiles).front();
  ASSERT_EQ(bf16.sizes(), module.sizes());
  const double scale = module.abs().max().item<double>();
  EXPECT_LE((bf16 - module).abs().max().item<double>(), 0.05 * scale);
  const double same_sign = ((bf16 > 0) == (module > 0)).to(torch::kDouble).mean().item<double>();
  EXPECT_GE(same_sign, 0.99);
  // An in-place update of a weight is seen by the next bf16 forward (the cast cache's version check).
  for (auto& item : network->named_parameters()) item.value().mul_(0.5);
  const torch::Tensor after = network->fused_forward(tiles.to(torch::kBFloat16));
  const torch::Tensor module_after = network->forward(tiles).front();
  EXPECT_LE((after - module_after).abs().max().item<double>(), 0.05 * module_after.abs().max().item<double>());
}

}  // namespace
