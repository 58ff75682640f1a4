#include <gtest/gtest.h>

#include "mlseg/analysis/combination_histogram.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {
namespace {

TEST(AnalysisCombinations, CountsEveryCodeOfNarrowCodes) {
  CodeVolume code = empty_code_volume({1, 2, 5}, 3);
  code.words.flatten().copy_(torch::tensor({0, 0, 1, 3, 3, 3, 0, 7, 1, 8}, torch::kUInt8));
  const CombinationHistogram histogram = count_combinations(code);
  EXPECT_EQ(histogram.voxels.at({0}), 3);
  EXPECT_EQ(histogram.voxels.at({1}), 2);
  EXPECT_EQ(histogram.voxels.at({3}), 3);
  EXPECT_EQ(histogram.voxels.at({7}), 1);
  EXPECT_EQ(histogram.voxels.at({8}), 1);  // ignore flag (bit 3 with 3 channels)
  EXPECT_EQ(histogram.total_voxels(), 10);
  EXPECT_TRUE(has_ignore_flag({8}, 3));
  EXPECT_EQ(channels_of({7}, 3), (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(is_background({0}, 3));
}

TEST(AnalysisCombinations, AgreesWithUniqueOnRandomSixteenAndThirtyTwoBitCodes) {
  for (int channels : {10, 20, 40}) {
    CodeVolume code = empty_code_volume({8, 16, 16}, channels);
    // Few distinct values in runs, like real label data.
    const torch::Tensor values = torch::randint(0, 6, {8, 16, 16}, torch::kInt64) * 5;
    code.words.copy_(values.unsqueeze(0).to(code.words.scalar_type()));
    const CombinationHistogram histogram = count_combinations(code);
    const auto [unique, inverse, counts] = torch::_unique2(values.flatten(), true, false, true);
    ASSERT_EQ(histogram.voxels.size(), static_cast<std::size_t>(unique.numel())) << channels;
    for (std::int64_t i = 0; i < unique.numel(); ++i) {
      const auto key = static_cast<std::uint64_t>(unique[i].item<std::int64_t>());
      EXPECT_EQ(histogram.voxels.at({key}), counts[i].item<std::int64_t>());
    }
  }
}

TEST(AnalysisCombinations, MultiWordCodesKeepChannelsAboveSixtyFour) {
  const int channels = 100;
  CodeVolume code = empty_code_volume({1, 1, 4}, channels);
  torch::Tensor a = torch::zeros({1, 1, 1, 4}, torch::kUInt8);
  a[0][0][0][1] = 1;
  a[0][0][0][2] = 1;
  torch::Tensor b = torch::zeros({1, 1, 1, 4}, torch::kUInt8);
  b[0][0][0][2] = 1;
  b[0][0][0][3] = 1;
  add_channel_mask(code, 3, a);
  add_channel_mask(code, 90, b);
  const CombinationHistogram histogram = count_combinations(code);
  ASSERT_EQ(histogram.voxels.size(), 4u);
  const CombinationKey both{std::uint64_t{1} << 3, std::uint64_t{1} << (90 - 64)};
  EXPECT_EQ(histogram.voxels.at(both), 1);
  EXPECT_EQ(channels_of(both, channels), (std::vector<int>{3, 90}));
  EXPECT_EQ(histogram.voxels.at(CombinationKey{0, 0}), 1);
}

}  // namespace
}  // namespace mlseg
