// Confusion counts from code volumes and raw masks: hand-counted, summable, ignore handling.
#include <gtest/gtest.h>

#include "mlseg/labels/label_code.h"
#include "mlseg/metrics/confusion_counts.h"
#include "mlseg/metrics/tensor_metrics.h"

namespace mlseg {
namespace {

// 1 x 2 x 4 volume, 2 channels; bit 2 is the ignore flag.
CodeVolume small_code(std::vector<int> values) {
  CodeVolume code = empty_code_volume({1, 2, 4}, 2);
  auto* words = code.words.data_ptr<std::uint8_t>();
  for (std::size_t i = 0; i < values.size(); ++i) words[i] = static_cast<std::uint8_t>(values[i]);
  return code;
}

TEST(MetricsConfusion, HandCountedWithReferenceIgnoreFlag) {
  //            voxel:  0  1  2  3  4  5  6  7
  const CodeVolume ref = small_code({1, 1, 3, 0, 2, 4, 4, 0});
  const CodeVolume pred = small_code({1, 0, 1, 2, 2, 3, 0, 0});
  const auto counts = count_confusion(pred, ref);
  ASSERT_EQ(counts.size(), 2u);
  // Voxels 5 and 6 are ignored (reference flag). Channel 0: ref {0,1,2}, pred {0,2} -> TP 2, FN 1.
  EXPECT_EQ(counts[0], (ConfusionCounts{2, 0, 1, 3}));
  // Channel 1: ref {2,4}, pred {3,4} -> TP 1, FP 1, FN 1, TN 6 - 3 = 3.
  EXPECT_EQ(counts[1], (ConfusionCounts{1, 1, 1, 3}));
  EXPECT_EQ(counts[1].ref_voxels(), 2);
  EXPECT_EQ(counts[1].pred_voxels(), 2);
}

TEST(MetricsConfusion, ExtraIgnoreMaskAndMaskPathAgree) {
  const CodeVolume ref = small_code({1, 1, 3, 0, 2, 0, 0, 0});
  const CodeVolume pred = small_code({1, 0, 1, 2, 2, 3, 0, 1});
  torch::Tensor ignore = torch::zeros({1, 2, 4}, torch::kUInt8);
  ignore.view({-1})[7] = 1;
  ignore.view({-1})[1] = 1;
  const auto from_codes = count_confusion(pred, ref, ignore);
  const auto from_masks = count_confusion_masks(decode_channels(pred), decode_channels(ref), ignore);
  ASSERT_EQ(from_codes.size(), from_masks.size());
  for (std::size_t c = 0; c < from_codes.size(); ++c) EXPECT_EQ(from_codes[c], from_masks[c]) << c;
  EXPECT_EQ(from_codes[0], (ConfusionCounts{2, 1, 0, 3}));  // voxels 0,2 TP; 5 FP; 1,7 ignored
}

class MetricsConfusionWidths : public ::testing::TestWithParam<int> {};

// 3 channels: pair-histogram path; 6: single-word bit loop; 70: two int64 words per voxel.
TEST_P(MetricsConfusionWidths, CountsSumOverPatchesAndMatchMasks) {
  torch::manual_seed(7);
  const int channels = GetParam();
  const torch::Tensor ref_masks = torch::rand({channels, 3, 4, 5}) < 0.3;
  const torch::Tensor pred_masks = torch::rand({channels, 3, 4, 5}) < 0.3;
  LabelSpec spec;
  spec.format = LabelFormat::channel_masks;
  for (int c = 0; c < channels; ++c) spec.channels.push_back({"c" + std::to_string(c), {}});
  CodeVolume ref = empty_code_volume({3, 4, 5}, channels), pred = empty_code_volume({3, 4, 5}, channels);
  for (int c = 0; c < channels; ++c) {
    add_channel_mask(ref, c, ref_masks[c].unsqueeze(0));
    add_channel_mask(pred, c, pred_masks[c].unsqueeze(0));
  }
  const auto whole = count_confusion(pred, ref);
  EXPECT_EQ(whole, count_confusion_masks(pred_masks, ref_masks));
  // Two "patches" (z slices 0 and 1-2) summed give the whole.
  std::vector<ConfusionCounts> summed;
  add_counts(summed, count_confusion_masks(pred_masks.slice(1, 0, 1), ref_masks.slice(1, 0, 1)));
  add_counts(summed, count_confusion_masks(pred_masks.slice(1, 1, 3), ref_masks.slice(1, 1, 3)));
  EXPECT_EQ(summed, whole);
  const std::int64_t tp_last = (pred_masks[channels - 1] & ref_masks[channels - 1]).sum().item<std::int64_t>();
  EXPECT_EQ(whole[channels - 1].tp, tp_last);
  // An ignore flag on voxel 0 removes it from every channel's counts.
  CodeVolume flagged{ref.words.clone(), channels};
  torch::Tensor ignore = torch::zeros({1, 3, 4, 5}, torch::kUInt8);
  ignore.view({-1})[0] = 1;
  add_channel_mask(flagged, channels, ignore);
  const auto with_flag = count_confusion(pred, flagged);
  EXPECT_EQ(with_flag, count_confusion_masks(pred_masks, ref_masks, ignore));
  EXPECT_EQ(with_flag[0].tp + with_flag[0].fp + with_flag[0].fn + with_flag[0].tn, 59);
}
INSTANTIATE_TEST_SUITE_P(MetricsWidths, MetricsConfusionWidths, ::testing::Values(3, 6, 70));

}  // namespace
}  // namespace mlseg
