// Training targets from codes: sigmoid channels, softmax classes, ignore handling.
#include "mlseg/data/training_target.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

// A 1 x 1 x 5 code row with 3 channels: background, ch0, ch0+ch1, ignore, ch2.
CodeVolume small_codes(bool overlap) {
  CodeVolume codes = empty_code_volume({1, 1, 5}, 3);
  const std::vector<int> values{0, 0b0001, overlap ? 0b0011 : 0b0010, 0b1000, 0b0100};
  for (int x = 0; x < 5; ++x) codes.words[0][0][0][x] = values[static_cast<std::size_t>(x)];
  return codes;
}

TEST(TrainingTarget, SigmoidGivesOneBinaryChannelPerChannelAndAnAnnotatedMask) {
  const auto target = training_target(small_codes(true), TargetEncoding::sigmoid);
  ASSERT_EQ(target.target.sizes(), (std::vector<std::int64_t>{3, 1, 1, 5}));
  EXPECT_EQ(target.target.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(target.target.flatten(1),
                           torch::tensor({0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, torch::kFloat32).view({3, 5})));
  EXPECT_TRUE(torch::equal(target.annotated.flatten(), torch::tensor({1, 1, 1, 0, 1}, torch::kFloat32)));
  EXPECT_TRUE(target.has_ignored_voxels);
}

TEST(TrainingTarget, SoftmaxGivesClassIndicesAndTheIgnoreIndex) {
  const auto target = training_target(small_codes(false), TrainingTargetOptions().encoding(TargetEncoding::softmax));
  ASSERT_EQ(target.target.sizes(), (std::vector<std::int64_t>{1, 1, 1, 5}));
  EXPECT_TRUE(torch::equal(target.target.flatten(), torch::tensor({0, 1, 2, -100, 3}, torch::kInt64)));
  const auto custom = training_target(small_codes(false),
                                      TrainingTargetOptions().encoding(TargetEncoding::softmax).ignore_index(4));
  EXPECT_EQ(custom.target.flatten()[3].item<std::int64_t>(), 4);
}

TEST(TrainingTarget, SoftmaxRejectsOverlappingChannels) {
  try {
    training_target(small_codes(true), TargetEncoding::softmax);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.problem()).find("overlapping channels 0 and 1"), std::string::npos) << error.problem();
    EXPECT_NE(error.fix().find("sigmoid"), std::string::npos);
  }
}

TEST(TrainingTarget, MultiWordCodesReachEveryChannel) {
  CodeVolume codes = empty_code_volume({1, 2, 2}, 70);  // 2 int64 words per voxel
  ASSERT_EQ(codes.words.size(0), 2);
  codes.words[0][0][0][1] = std::int64_t{1} << 63;  // channel 63
  codes.words[1][0][1][0] = std::int64_t{1} << 5;   // channel 69
  codes.words[1][0][1][1] = std::int64_t{1} << 6;   // ignore flag (bit 70)
  const auto target = training_target(codes);
  EXPECT_EQ(target.target.sum().item<double>(), 2.0);
  EXPECT_EQ(target.target[63][0][0][1].item<float>(), 1.0f);
  EXPECT_EQ(target.target[69][0][1][0].item<float>(), 1.0f);
  EXPECT_EQ(target.annotated[0][0][1][1].item<float>(), 0.0f);
  EXPECT_EQ(parse_target_encoding("softmax"), TargetEncoding::softmax);
  EXPECT_THROW(parse_target_encoding("powerset"), Error);
}

}  // namespace
}  // namespace mlseg
