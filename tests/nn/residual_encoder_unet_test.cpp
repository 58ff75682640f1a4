// ResidualEncoderUNet's structure (src/mlseg/nn/residual_encoder_unet.cpp); agreement with
// dynamic-network-architectures is in tests/parity/residual_encoder_unet_parity_test.cpp.
#include "mlseg/nn/residual_encoder_unet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

ResidualEncoderUNetOptions three_stages(int dimension) {
  const std::vector<std::int64_t> k(static_cast<std::size_t>(dimension), 3), one(static_cast<std::size_t>(dimension), 1),
      two(static_cast<std::size_t>(dimension), 2);
  return ResidualEncoderUNetOptions(1, 4)
      .dimension(dimension)
      .n_stages(3)
      .features_per_stage({4, 8, 16})
      .kernel_sizes({k, k, k})
      .strides({one, two, two})
      .n_blocks_per_stage({1, 3, 4})
      .n_conv_per_stage_decoder({1, 1});
}

TEST(ResidualEncoderUNet, ShapesNamesAndBlocksFollowTheOptions) {
  for (int dimension : {2, 3}) {
    ResidualEncoderUNet net(three_stages(dimension).deep_supervision(true));
    const std::vector<std::int64_t> shape = dimension == 3 ? std::vector<std::int64_t>{2, 1, 8, 16, 16}
                                                           : std::vector<std::int64_t>{2, 1, 16, 16};
    const auto outputs = net->forward(torch::randn(shape));
    ASSERT_EQ(outputs.size(), 2U);
    EXPECT_EQ(outputs[0].size(1), 4);
    EXPECT_EQ(outputs[0].size(-1), 16);
    EXPECT_EQ(outputs[1].size(-1), 8);
    net->set_deep_supervision(false);
    EXPECT_EQ(net->forward(torch::randn(shape)).size(), 1U);

    const auto params = net->named_parameters();
    EXPECT_TRUE(params.contains("encoder.stem.convs.0.conv.weight"));
    EXPECT_TRUE(params.contains("encoder.stages.2.blocks.3.conv2.norm.bias"));
    EXPECT_FALSE(params.contains("encoder.stages.2.blocks.4.conv1.conv.weight")) << "stage 2 has 4 blocks";
    // Strided and wider: AvgPool (no parameters) then the 1x1 projection without bias.
    EXPECT_TRUE(params.contains("encoder.stages.1.blocks.0.skip.1.conv.weight"));
    EXPECT_FALSE(params.contains("encoder.stages.1.blocks.0.skip.1.conv.bias"));
    EXPECT_FALSE(params.contains("encoder.stages.1.blocks.1.skip.1.conv.weight")) << "only the first block changes shape";
    EXPECT_FALSE(params.contains("encoder.stages.0.blocks.0.skip.0.conv.weight")) << "stage 0 keeps width and size";
    EXPECT_TRUE(params.contains("decoder.stages.0.convs.0.conv.weight"));
    EXPECT_FALSE(params.contains("decoder.stages.0.convs.1.conv.weight")) << "one conv per decoder stage";
    // nnU-Net's initialisation: each block starts as its skip.
    EXPECT_EQ(params["encoder.stages.1.blocks.2.conv2.norm.weight"].abs().max().item<float>(), 0.0F);
    EXPECT_EQ(params["encoder.stages.1.blocks.2.conv1.norm.weight"].min().item<float>(), 1.0F);
  }
}

TEST(ResidualEncoderUNet, ListsThatDisagreeAreNamed) {
  try {
    ResidualEncoderUNet net(three_stages(3).n_blocks_per_stage({1, 3}));
    ADD_FAILURE() << "two block counts for three stages were accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.problem().find("n_blocks_per_stage"), std::string::npos) << e.problem();
  }
  EXPECT_THROW(ResidualEncoderUNet(three_stages(3).n_conv_per_stage_decoder({1, 1, 1})), Error);
}

}  // namespace
}  // namespace mlseg
