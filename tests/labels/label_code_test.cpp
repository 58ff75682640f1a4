#include <gtest/gtest.h>

#include "mlseg/core/error.h"
#include "mlseg/io/dataset.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {
namespace {

torch::Tensor label_map(std::vector<std::int64_t> values) {
  const auto n = static_cast<std::int64_t>(values.size());
  return torch::tensor(values, torch::kInt64).reshape({1, 1, 1, n}).contiguous();
}

LabelSpec brats_regions() {
  LabelSpec spec;
  spec.channels = {{"whole_tumor", {1, 2, 3, 4}}, {"tumor_core", {1, 3, 4}}, {"enhancing_tumor", {4}}};
  spec.regions_class_order = {2, 1, 4};
  return spec;
}

TEST(LabelCode, LayoutPicksNarrowestTypeAndWordsForManyChannels) {
  EXPECT_EQ(code_layout(7).dtype, torch::kUInt8);  // 7 channels + ignore = 8 bits
  EXPECT_EQ(code_layout(8).dtype, torch::kInt16);
  EXPECT_EQ(code_layout(15).dtype, torch::kInt16);
  EXPECT_EQ(code_layout(16).dtype, torch::kInt32);
  EXPECT_EQ(code_layout(63).dtype, torch::kInt64);
  EXPECT_EQ(code_layout(63).num_words, 1);
  EXPECT_EQ(code_layout(64).num_words, 2);
  EXPECT_EQ(code_layout(117).num_words, 2);
  EXPECT_EQ(code_layout(128).num_words, 3);
}

TEST(LabelCode, PlainLabelMapRoundTrips) {
  LabelSpec spec;
  spec.channels = {{"anterior", {1}}, {"posterior", {2}}};
  EXPECT_FALSE(spec.channels_can_overlap());
  const torch::Tensor raw = label_map({0, 1, 2, 2, 0, 1});
  const CodeVolume code = encode_label_map(raw, spec);
  EXPECT_EQ(code.words.scalar_type(), torch::kUInt8);
  const torch::Tensor masks = decode_channels(code);
  EXPECT_TRUE(torch::equal(masks[0].flatten(), torch::tensor({0, 1, 0, 0, 0, 1}, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(masks[1].flatten(), torch::tensor({0, 0, 1, 1, 0, 0}, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(encode_to_raw_label_map(code, spec), raw));
  const auto counts = count_channel_voxels(code);
  EXPECT_EQ(counts, (std::vector<std::int64_t>{2, 2, 0}));
}

TEST(LabelCode, RegionsGiveNestedChannelsAndExportLikeNnUNet) {
  const LabelSpec spec = brats_regions();
  EXPECT_TRUE(spec.is_region_based());
  EXPECT_TRUE(spec.channels_can_overlap());
  const CodeVolume code = encode_label_map(label_map({0, 1, 2, 3, 4}), spec);
  EXPECT_TRUE(torch::equal(code.words.flatten(), torch::tensor({0, 3, 1, 3, 7}, torch::kUInt8)));
  // Labels 1 and 3 share one region pattern: back to a label map they become one label.
  const torch::Tensor back = encode_to_raw_label_map(code, spec);
  EXPECT_EQ(back.flatten()[2].item<std::int64_t>(), 2);
  EXPECT_EQ(back.flatten()[4].item<std::int64_t>(), 4);
  const CodeVolume again = encode_label_map(back, spec);
  EXPECT_TRUE(torch::equal(again.words, code.words));
}

TEST(LabelCode, RegionsPatternWithoutLabelFallsBackToRegionsClassOrder) {
  LabelSpec spec;
  spec.channels = {{"a", {1, 3}}, {"b", {2, 3}}, {"c", {4}}};
  spec.regions_class_order = {1, 2, 4};
  CodeVolume code = empty_code_volume({1, 1, 1}, 3);
  code.words.fill_(0b101);  // a + c: no raw label has exactly this pattern
  EXPECT_EQ(encode_to_raw_label_map(code, spec).item<std::int64_t>(), 4);  // later region wins
}

TEST(LabelCode, BitmaskTranslatesBitsToChannelOrder) {
  LabelSpec spec;
  spec.format = LabelFormat::bitmask;
  spec.channels = {{"vessel", {4}}, {"organ", {1}}, {"lesion", {2}}};
  const torch::Tensor raw = label_map({0, 1, 5, 7, 4});
  const CodeVolume code = encode_label_map(raw, spec);
  // organ is channel 1 (bit value 1), vessel channel 0 (bit value 4), lesion channel 2.
  EXPECT_TRUE(torch::equal(code.words.flatten(), torch::tensor({0, 2, 3, 7, 1}, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(encode_to_raw_label_map(code, spec), raw));
  const auto unexpected = find_unexpected_values(label_map({0, 8, 9, 8}), spec);
  ASSERT_EQ(unexpected.size(), 2u);
  EXPECT_EQ(unexpected[0].value, 8);
  EXPECT_EQ(unexpected[0].voxels, 2);
  EXPECT_THROW(encode_label_map(label_map({8}), spec), Error);
}

TEST(LabelCode, UndeclaredValuesAreListedWithCounts) {
  LabelSpec spec;
  spec.channels = {{"a", {1}}};
  const auto unexpected = find_unexpected_values(label_map({0, 1, 7, 7, -1, 300}), spec);
  ASSERT_EQ(unexpected.size(), 3u);
  EXPECT_EQ(unexpected[0].value, -1);
  EXPECT_EQ(unexpected[1].value, 7);
  EXPECT_EQ(unexpected[1].voxels, 2);
  EXPECT_EQ(unexpected[2].value, 300);
  try {
    encode_label_map(label_map({7}), spec);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(error.problem().find("7 (1 voxels)"), std::string::npos);
  }
}

TEST(LabelCode, IgnoreLabelSetsOnlyTheReservedFlag) {
  LabelSpec spec;
  spec.channels = {{"a", {1}}, {"b", {2}}};
  spec.ignore_value = 3;
  const CodeVolume code = encode_label_map(label_map({0, 1, 3, 2}), spec);
  EXPECT_TRUE(torch::equal(ignore_mask(code).flatten(), torch::tensor({false, false, true, false})));
  EXPECT_EQ(decode_channels(code).sum().item<std::int64_t>(), 2);
  EXPECT_EQ(encode_to_raw_label_map(code, spec).flatten()[2].item<std::int64_t>(), 3);
}

TEST(LabelCode, PlainLabelMapRefusesToStoreOverlap) {
  LabelSpec spec;
  spec.channels = {{"a", {1}}, {"b", {2}}};
  CodeVolume code = empty_code_volume({1, 1, 2}, 2);
  code.words.fill_(0b11);
  EXPECT_THROW(encode_to_raw_label_map(code, spec), Error);
}

TEST(LabelCode, MultihotVolumesFollowDeclaredIndices) {
  LabelSpec spec;
  spec.format = LabelFormat::multihot4d;
  spec.channels = {{"second_volume", {2}}, {"first_volume", {1}}};
  torch::Tensor volumes = torch::zeros({2, 1, 1, 3}, torch::kUInt8);
  volumes[0][0][0][0] = 1;
  volumes[1][0][0][1] = 1;
  volumes[0][0][0][2] = 1;
  volumes[1][0][0][2] = 1;
  const CodeVolume code = encode_multihot(volumes, spec);
  EXPECT_TRUE(torch::equal(code.words.flatten(), torch::tensor({2, 1, 3}, torch::kUInt8)));
  spec.channels.push_back({"third", {3}});
  EXPECT_THROW(encode_multihot(volumes, spec), Error);
}

TEST(LabelCode, HundredThirtyChannelsRoundTripThroughMultiWordCodes) {
  const int channels = 130;
  const std::array<std::int64_t, 3> shape{2, 3, 5};
  torch::Tensor masks = (torch::rand({channels, 2, 3, 5}, torch::TensorOptions().dtype(torch::kFloat32)) > 0.6)
                            .to(torch::kUInt8);
  CodeVolume code = empty_code_volume(shape, channels);
  EXPECT_EQ(code.words.size(0), 3);
  for (int c = 0; c < channels; ++c) add_channel_mask(code, c, masks[c].unsqueeze(0));
  EXPECT_TRUE(torch::equal(decode_channels(code), masks));
  EXPECT_TRUE(torch::equal(channel_mask(code, 129), masks[129].unsqueeze(0).to(torch::kBool)));
  const auto counts = count_channel_voxels(code);
  EXPECT_EQ(counts[64], masks[64].sum().item<std::int64_t>());
  EXPECT_EQ(counts[channels], 0);  // ignore flag untouched
}

TEST(LabelCode, SixtyThreeChannelLabelMapUsesOneWideWord) {
  LabelSpec spec;
  std::vector<std::int64_t> values;
  for (int c = 0; c < 63; ++c) {
    spec.channels.push_back({"s" + std::to_string(c), {c + 1}});
    values.push_back(c + 1);
  }
  const CodeVolume code = encode_label_map(label_map(values), spec);
  EXPECT_EQ(code.words.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(encode_to_raw_label_map(code, spec), label_map(values)));
  const auto counts = count_channel_voxels(code);
  EXPECT_EQ(counts[62], 1);
}

TEST(LabelSpecParse, ReadsNnUNetLabelsRegionsAndExtensions) {
  const auto brats = nlohmann::ordered_json::parse(R"({
    "labels": {"background": 0, "whole_tumor": [1,2,3,4], "tumor_core": [1,3,4], "enhancing_tumor": 4},
    "regions_class_order": [2, 1, 4]})");
  const LabelSpec spec = parse_label_spec(brats, "dataset.json");
  ASSERT_EQ(spec.num_channels(), 3);
  EXPECT_EQ(spec.channels[1].name, "tumor_core");
  EXPECT_EQ(spec.channels[1].raw_values, (std::vector<std::int64_t>{1, 3, 4}));
  EXPECT_TRUE(spec.is_region_based());

  const auto with_ignore = nlohmann::ordered_json::parse(R"({"labels": {"background": 0, "a": 1, "b": 2, "ignore": 3}})");
  EXPECT_EQ(parse_label_spec(with_ignore, "d").ignore_value.value_or(-1), 3);

  const auto masks = nlohmann::ordered_json::parse(R"({"label_format": "channel_masks"})");
  const LabelSpec from_files = parse_label_spec(masks, "d", {"aorta", "liver"});
  EXPECT_EQ(from_files.num_channels(), 2);
  EXPECT_EQ(from_files.channels[0].name, "aorta");
}

TEST(LabelSpecParse, RejectsInconsistentDefinitionsWithAFix) {
  auto expect_error = [](const char* text, const char* needle) {
    try {
      parse_label_spec(nlohmann::ordered_json::parse(text), "dataset.json");
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
      EXPECT_FALSE(error.fix().empty());
    }
  };
  expect_error(R"({"labels": {"a": 1}})", "background");
  expect_error(R"({"labels": {"background": 0, "a": [1, 2], "b": 2}})", "regions_class_order");
  expect_error(R"({"label_format": "bitmask", "labels": {"background": 0, "a": 3}})", "power of two");
  expect_error(R"({"label_format": "bitmask", "labels": {"background": 0, "a": 2, "b": 2}})", "bit value used twice");
  expect_error(R"({"labels": {"background": 0, "a": 1, "b": 2, "ignore": 1}})", "ignore");
  expect_error(R"({"label_format": "powerset", "labels": {"background": 0}})", "label_format");
  expect_error(R"({"labels": {"background": 0, "a": 1.5}})", "integer");
  expect_error(R"({"labels": {"background": 0}})", "no foreground");
}

}  // namespace
}  // namespace mlseg
