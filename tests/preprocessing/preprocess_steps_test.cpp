// The steps of preprocessing one case: crop, normalise, sampling locations, rare combinations.
#include <gtest/gtest.h>

#include <set>

#include "mlseg/core/error.h"
#include "mlseg/preprocessing/code_words64.h"
#include "mlseg/preprocessing/crop.h"
#include "mlseg/preprocessing/normalize.h"
#include "mlseg/preprocessing/rare_combinations.h"
#include "mlseg/preprocessing/sampling_locations.h"

namespace {

using namespace mlseg;

TEST(PreprocessCrop, BoundingBoxIsTheUnionOverChannels) {
  auto image = torch::zeros({2, 10, 12, 14});
  image.index_put_({0, 2, 3, 4}, 1.0f);
  image.index_put_({1, 7, 9, 11}, -2.0f);
  const CropBox box = nonzero_bounding_box(image);
  EXPECT_EQ(box.begin, (std::array<int64_t, 3>{2, 3, 4}));
  EXPECT_EQ(box.end, (std::array<int64_t, 3>{8, 10, 12}));
  const auto empty_box = nonzero_bounding_box(torch::zeros({1, 3, 4, 5}));
  EXPECT_EQ(empty_box.shape(), (std::array<int64_t, 3>{3, 4, 5})) << "nothing nonzero: keep the whole image";
}

TEST(PreprocessCrop, CropThenUncropRestoresTheVolume) {
  auto image = torch::zeros({1, 9, 9, 9});
  image.slice(1, 2, 6).slice(2, 1, 8).slice(3, 3, 5).uniform_(1.0, 2.0);
  const CropBox box = nonzero_bounding_box(image);
  const auto cropped = crop_to_box(image, box);
  EXPECT_EQ(cropped.sizes(), (std::vector<int64_t>{1, 4, 7, 2}));
  EXPECT_TRUE(torch::equal(uncrop_from_box(cropped, box, {9, 9, 9}), image));
  EXPECT_THROW(uncrop_from_box(cropped.slice(1, 0, 2), box, {9, 9, 9}), Error);
}

TEST(PreprocessCrop, FilledMaskClosesEnclosedHolesOnly) {
  auto image = torch::zeros({1, 7, 7, 7});
  image.slice(1, 1, 6).slice(2, 1, 6).slice(3, 1, 6).fill_(1.0f);
  image.index_put_({0, 3, 3, 3}, 0.0f);  // enclosed
  image.index_put_({0, 3, 3, 1}, 0.0f);  // on the shell: connected to the outside
  const auto mask = filled_nonzero_mask(image);
  EXPECT_TRUE(mask[3][3][3].item<bool>());
  EXPECT_FALSE(mask[3][3][1].item<bool>());
  EXPECT_FALSE(mask[0][0][0].item<bool>());
}

TEST(PreprocessNormalize, ZScoreGivesMeanZeroStdOne) {
  auto image = torch::rand({1, 6, 7, 8}) * 50 + 10;
  normalize_channels(image, {ChannelNormalization{"zscore"}}, torch::Tensor());
  EXPECT_NEAR(image.mean().item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(image.std(false).item<double>(), 1.0, 1e-4);
}

TEST(PreprocessNormalize, MaskedZScoreLeavesTheOutsideAlone) {
  auto image = torch::zeros({1, 4, 4, 4});
  image.slice(1, 1, 3).uniform_(100, 200);
  const auto mask = image[0] != 0;
  ChannelNormalization scheme{"zscore"};
  scheme.use_mask = true;
  normalize_channels(image, {scheme}, mask);
  EXPECT_NEAR(image[0].masked_select(mask).mean().item<double>(), 0.0, 1e-5);
  EXPECT_EQ(image[0].masked_select(~mask).abs().max().item<float>(), 0.0f);
}

TEST(PreprocessNormalize, CtClipsToForegroundPercentilesThenStandardises) {
  auto image = torch::tensor({-2000.0f, 0.0f, 40.0f, 3000.0f}).reshape({1, 1, 1, 4});
  ChannelNormalization ct{"CT"};
  ct.ct_lower = -100;
  ct.ct_upper = 200;
  ct.ct_mean = 50;
  ct.ct_std = 10;
  normalize_channels(image, {ct}, torch::Tensor());
  EXPECT_FLOAT_EQ(image[0][0][0][0].item<float>(), -15.0f);
  EXPECT_FLOAT_EQ(image[0][0][0][1].item<float>(), -5.0f);
  EXPECT_FLOAT_EQ(image[0][0][0][2].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(image[0][0][0][3].item<float>(), 15.0f);
}

TEST(PreprocessNormalize, RescaleRgbAndNoNorm) {
  auto image = torch::tensor({10.0f, 20.0f, 30.0f, 255.0f, 0.0f, 51.0f, 7.0f, 8.0f, 9.0f}).reshape({3, 1, 1, 3});
  normalize_channels(image, {ChannelNormalization{"rescale_to_0_1"}, ChannelNormalization{"rgb_to_0_1"}, ChannelNormalization{"noNorm"}},
                     torch::Tensor());
  EXPECT_FLOAT_EQ(image[0][0][0][1].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(image[1][0][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(image[1][0][0][2].item<float>(), 0.2f);
  EXPECT_FLOAT_EQ(image[2][0][0][0].item<float>(), 7.0f);
  auto out_of_range = torch::full({1, 1, 1, 2}, 300.0f);
  EXPECT_THROW(normalize_channels(out_of_range, {ChannelNormalization{"rgb_to_0_1"}}, torch::Tensor()), Error);
  EXPECT_THROW(normalize_channels(out_of_range, {}, torch::Tensor()), Error) << "channel count mismatch";
}

TEST(PreprocessNormalize, SchemesComeFromPlans) {
  const nlohmann::ordered_json plans = {
      {"configurations", {{"3d_fullres", {{"normalization_schemes", {"CTNormalization", "zscore"}}, {"use_mask_for_norm", {false, true}}}}}},
      {"foreground_intensity_properties_per_channel",
       {{"0", {{"mean", 1.0}, {"std", 2.0}, {"percentile_00_5", -3.0}, {"percentile_99_5", 4.0}}}}}};
  const auto schemes = normalization_from_plans(plans, "3d_fullres", "plans.json");
  ASSERT_EQ(schemes.size(), 2u);
  EXPECT_EQ(schemes[0].scheme, "CT");
  EXPECT_DOUBLE_EQ(schemes[0].ct_upper, 4.0);
  EXPECT_TRUE(schemes[1].use_mask);
  EXPECT_THROW(normalization_from_plans(plans, "2d", "plans.json"), Error);
}

TEST(PreprocessLocations, NnunetsKeepRule) {
  EXPECT_EQ(locations_to_keep(0), 0);
  EXPECT_EQ(locations_to_keep(5), 5);
  EXPECT_EQ(locations_to_keep(10000), 10000);
  EXPECT_EQ(locations_to_keep(50000), 10000);
  EXPECT_EQ(locations_to_keep(2000000), 20000);
  EXPECT_EQ(locations_to_keep(1000001), 10001);
}

CodeVolume stripes(int64_t z, int64_t y, int64_t x, int channels) {
  CodeVolume code = empty_code_volume({z, y, x}, channels);
  // channel 0 everywhere in the first half of x, channel 1 in a slab, overlapping
  code.words.slice(3, 0, x / 2).fill_(1);
  auto slab = code.words.slice(1, 1, 3);
  slab.bitwise_or_(2);
  return code;
}

TEST(PreprocessLocations, EveryLocationCarriesItsChannelAndCountsAreRight) {
  CodeVolume code = stripes(4, 120, 120, 3);
  const auto locations = sample_locations(code, {"a", "b", "c"}, {}, "case_1");
  ASSERT_EQ(locations.groups.size(), 2u) << "absent channel c has no group";
  const auto words = code.words[0];
  for (const auto& group : locations.groups) {
    const int64_t expected = group.channel == 0 ? 4 * 120 * 60 : (2 * 120 * 120);
    EXPECT_EQ(group.voxels, expected) << group.name;
    EXPECT_EQ(group.count, locations_to_keep(expected));
    std::set<std::tuple<int, int, int>> seen;
    const auto* rows = locations.rows.data_ptr<int32_t>();
    const auto* codes = words.contiguous().data_ptr<uint8_t>();
    for (int64_t r = group.offset; r < group.offset + group.count; ++r) {
      const int z = rows[3 * r], y = rows[3 * r + 1], x = rows[3 * r + 2];
      EXPECT_TRUE((codes[(z * 120 + y) * 120 + x] >> group.channel) & 1);
      EXPECT_TRUE(seen.insert({z, y, x}).second) << "sampled without replacement";
    }
  }
  EXPECT_EQ(locations.channel_voxels, (std::vector<int64_t>{28800, 28800, 0, 0}));
  EXPECT_EQ(locations.groups[0].count, 10000) << "more than 10000 voxels: a subset is kept";
  const auto again = sample_locations(code, {"a", "b", "c"}, {}, "case_1");
  EXPECT_TRUE(torch::equal(again.rows, locations.rows)) << "deterministic per case";
  const auto other = sample_locations(code, {"a", "b", "c"}, {}, "case_2");
  EXPECT_FALSE(torch::equal(other.rows, locations.rows)) << "a different case draws differently";
}

TEST(PreprocessLocations, CombinationsAndIgnoredVoxels) {
  CodeVolume code = stripes(2, 10, 10, 2);
  code.words.index_put_({0, 0, 0, 0}, 1 | 4);  // ignored (bit 2 = ignore flag for 2 channels)
  const auto locations = sample_locations(code, {"a", "b"}, {CombinationTarget{{3}, "", true}}, "c");
  ASSERT_EQ(locations.groups.size(), 3u);
  EXPECT_EQ(locations.groups[2].kind, "combination");
  EXPECT_EQ(locations.groups[2].name, "a+b");
  EXPECT_EQ(locations.groups[2].voxels, 10 * 5) << "a+b: the slab (z = 1) in the first half of x";
  EXPECT_EQ(locations.channel_voxels.back(), 1) << "one ignored voxel";
  EXPECT_EQ(locations.groups[0].voxels, 2 * 10 * 5 - 1);
}

std::vector<ObservedCombination> observed() {
  // channels: 0 organ, 1 lesion, 2 vessel
  return {{{1}, "organ", 5000, false, false},
          {{3}, "organ+lesion", 800, false, false},
          {{5}, "organ+vessel", 300, false, false},
          {{7}, "organ+lesion+vessel", 4, true, false},
          {{4}, "vessel", 2, true, false}};
}

TEST(PreprocessRareCombinations, MergeDropsTheFewestBitsThenTakesTheMostFrequent) {
  const auto plan = plan_rare_combinations(observed(), RareCombinationPolicy::merge);
  ASSERT_EQ(plan.actions.size(), 2u);
  const auto& triple = plan.actions.at({7});
  EXPECT_TRUE(triple.merge);
  EXPECT_EQ(triple.merged_into, (std::vector<std::uint64_t>{3})) << "drops one bit (vessel) rather than two";
  EXPECT_EQ(triple.merged_into_name, "organ+lesion") << "of the two-channel subsets, the more frequent";
  const auto& vessel = plan.actions.at({4});
  EXPECT_EQ(vessel.merged_into, (std::vector<std::uint64_t>{0})) << "nothing frequent inside: background";
  EXPECT_TRUE(plan_rare_combinations(observed(), RareCombinationPolicy::keep).actions.empty());
}

TEST(PreprocessRareCombinations, IgnoreFlagsAndMergeRewritesVoxels) {
  CodeVolume code = empty_code_volume({1, 2, 4}, 3);
  code.words.view({-1}).copy_(torch::tensor({0, 1, 7, 7, 4, 3, 5, 7}, torch::kUInt8));
  CodeVolume ignored = code;
  ignored.words = code.words.clone();
  const auto changes = apply_rare_combination_plan(ignored, plan_rare_combinations(observed(), RareCombinationPolicy::ignore),
                                                   {"organ", "lesion", "vessel"});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].combination, "vessel");
  EXPECT_EQ(changes[0].voxels, 1);
  EXPECT_EQ(changes[1].combination, "organ+lesion+vessel");
  EXPECT_EQ(changes[1].voxels, 3);
  EXPECT_TRUE(torch::equal(ignored.words.view({-1}), torch::tensor({0, 1, 15, 15, 12, 3, 5, 15}, torch::kUInt8)));

  CodeVolume merged = code;
  merged.words = code.words.clone();
  const auto merge_changes = apply_rare_combination_plan(merged, plan_rare_combinations(observed(), RareCombinationPolicy::merge),
                                                         {"organ", "lesion", "vessel"});
  EXPECT_EQ(merge_changes.size(), 2u);
  EXPECT_TRUE(torch::equal(merged.words.view({-1}), torch::tensor({0, 1, 3, 3, 0, 3, 5, 3}, torch::kUInt8)));
}

TEST(PreprocessRareCombinations, SixteenBitCodesKeepTheirHighBits) {
  // 15 channels: int16 codes; channel 14 is bit 14 and the ignore flag bit 15 (the sign bit).
  CodeVolume code = empty_code_volume({1, 1, 3}, 15);
  code.words.view({-1}).copy_(torch::tensor({1 << 14, (1 << 14) | 1, 1}, torch::kInt16));
  RareCombinationPlan plan;
  plan.policy = RareCombinationPolicy::ignore;
  plan.actions[{(1u << 14) | 1u}] = RareCombinationPlan::Action{"a+o", false, {}, ""};
  std::vector<std::string> names(15, "x");
  const auto changes = apply_rare_combination_plan(code, plan, names);
  ASSERT_EQ(changes.size(), 1u);
  const auto words = code_words_as_uint64(code);
  EXPECT_EQ(static_cast<std::uint64_t>(words[0][1].item<int64_t>()), 0xC001u);
  EXPECT_EQ(static_cast<std::uint64_t>(words[0][0].item<int64_t>()), 0x4000u);
}

TEST(PreprocessRareCombinations, PolicyNames) {
  EXPECT_EQ(parse_rare_policy("merge"), RareCombinationPolicy::merge);
  EXPECT_THROW(parse_rare_policy("drop"), Error);
}

}  // namespace
