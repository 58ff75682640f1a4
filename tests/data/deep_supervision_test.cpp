// Deep-supervision targets: nnU-Net's scales and nearest-exact downsampling of whole codes.
#include "mlseg/data/deep_supervision.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/augmentation_test_support.h"

namespace mlseg {
namespace {

TEST(DeepSupervision, ScalesAreInverseCumulativeStridesWithoutTheBottleneck) {
  const auto scales = deep_supervision_scales({{1, 1, 1}, {2, 2, 2}, {2, 2, 2}, {1, 2, 2}});
  ASSERT_EQ(scales.size(), 3u);
  EXPECT_EQ(scales[0], (std::array<double, 3>{1.0, 1.0, 1.0}));
  EXPECT_EQ(scales[1], (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(scales[2], (std::array<double, 3>{0.25, 0.25, 0.25}));
}

TEST(DeepSupervision, NearestExactDownsamplingKeepsWholeCodes) {
  const CodeVolume codes = testing::random_codes(12, {8, 12, 10}, 31);
  const auto targets = deep_supervision_targets(codes, {{1, 1, 1}, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.5}});
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_TRUE(targets[0].words.is_same(codes.words));
  EXPECT_EQ(targets[1].words.sizes(), (std::vector<std::int64_t>{1, 4, 6, 5}));
  EXPECT_EQ(targets[2].words.sizes(), (std::vector<std::int64_t>{1, 2, 3, 5}));
  EXPECT_EQ(targets[1].num_channels, 12);
  // nearest-exact, factor 2: source index 2j + 1; factor 4: 4j + 2.
  const auto src = codes.words.accessor<std::int16_t, 4>();
  const auto half = targets[1].words.accessor<std::int16_t, 4>();
  const auto quarter = targets[2].words.accessor<std::int16_t, 4>();
  for (int z = 0; z < 4; ++z)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 5; ++x) ASSERT_EQ(half[0][z][y][x], src[0][2 * z + 1][2 * y + 1][2 * x + 1]);
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x) ASSERT_EQ(quarter[0][z][y][x], src[0][4 * z + 2][4 * y + 2][2 * x + 1]);
  // The same as PyTorch's interpolate(mode = nearest-exact) on the float codes (nnU-Net's path).
  namespace F = torch::nn::functional;
  const torch::Tensor reference =
      F::interpolate(codes.words.unsqueeze(0).to(torch::kFloat32),
                     F::InterpolateFuncOptions().size(std::vector<std::int64_t>{4, 6, 5}).mode(torch::kNearestExact))[0];
  EXPECT_TRUE(torch::equal(reference.to(torch::kInt16), targets[1].words));
}

TEST(DeepSupervision, OddSizesRoundHalfToEven) {
  const CodeVolume codes = testing::random_codes(3, {5, 7, 9}, 32);
  const auto targets = deep_supervision_targets(codes, {{0.5, 0.5, 0.5}});
  // round(2.5) = 2, round(3.5) = 4, round(4.5) = 4 (Python's round, as nnU-Net computes the shape)
  EXPECT_EQ(targets[0].words.sizes(), (std::vector<std::int64_t>{1, 2, 4, 4}));
}

}  // namespace
}  // namespace mlseg
