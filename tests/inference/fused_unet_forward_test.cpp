// The fused inference forward gives the module's logits (2D and 3D, several stages, batches),
// and the fused kernel is instance norm + affine + LeakyReLU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/inference/fused_unet_forward.h"
#include "mlseg/nn/plain_conv_unet.h"

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
    // Non-trivial norm parameters.
    for (auto& item : network->named_parameters()) {
      if (item.key().find("norm") != std::string::npos) {
        torch::NoGradGuard no_grad;
        item.value().uniform_(0.5, 1.5);
      }
    }
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
