#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "mlseg/core/error.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;

PhantomOptions small_options() {
  PhantomOptions options;
  options.num_cases = 5;
  options.shape_zyx = {12, 24, 24};
  options.show_progress = false;
  options.threads = 2;
  return options;
}

TEST(Phantom, SameSeedSameCaseOtherSeedOtherCase) {
  const PhantomOptions options = small_options();
  const PhantomCase a = make_phantom_case(1, options), b = make_phantom_case(1, options);
  EXPECT_TRUE(torch::equal(a.image.data, b.image.data));
  EXPECT_TRUE(torch::equal(a.code.words, b.code.words));
  PhantomOptions other = options;
  other.seed = 99;
  EXPECT_FALSE(torch::equal(make_phantom_case(1, other).image.data, a.image.data));
  EXPECT_FALSE(torch::equal(make_phantom_case(2, options).code.words, a.code.words));
}

TEST(Phantom, ChannelsAreNestedOverlappingDisjointAndRare) {
  PhantomOptions options = small_options();
  options.num_channels = 8;
  for (int index = 0; index < 8; ++index) {
    const torch::Tensor m = decode_channels(make_phantom_case(index, options).code).to(torch::kInt64);
    const auto count = [](const torch::Tensor& t) { return t.sum().item<std::int64_t>(); };
    EXPECT_GT(count(m[0]), 0);
    EXPECT_EQ(count(m[1] * (1 - m[0])), 0) << "organ inside body";
    EXPECT_EQ(count(m[2] * (1 - m[1])), 0) << "lesion inside organ";
    EXPECT_EQ(count(m[2]) > 0, index % 5 != 4) << "lesion absent in every 5th case";
    EXPECT_GT(count(m[3] * m[1]), 0) << "vessel overlaps organ";
    EXPECT_GT(count(m[3] * (1 - m[1])), 0) << "vessel only partly inside organ";
    EXPECT_EQ(count(m[4] * m[1]), 0) << "cyst disjoint from organ";
    EXPECT_GT(count(m[4]), 0);
    EXPECT_EQ(count(m[5]) > 0, index % options.rare_every == 0) << "rare channel";
  }
}

// Channel set of every voxel as an integer, bit c = channel c (at most 62 channels).
torch::Tensor channel_sets(const torch::Tensor& masks) {
  torch::Tensor sets = torch::zeros_like(masks[0], torch::kInt64);
  for (std::int64_t c = 0; c < masks.size(0); ++c) sets += masks[c].to(torch::kInt64) * (std::int64_t{1} << c);
  return sets;
}

double mean_where(const torch::Tensor& image, const torch::Tensor& where) {
  return image.masked_select(where).mean().item<double>();
}

TEST(Phantom, EveryStructureStandsOutFromWhatItLiesOnByTwiceTheNoise) {
  // Measured, not read from the contrast table: the mean intensity of a structure's most common
  // channel set against the same set without the structure (its parent, the structure it overlaps,
  // or background), in every image channel (channel 0 is what a 1-channel phantom sees).
  PhantomOptions options = small_options();
  options.num_channels = 10;
  options.num_image_channels = 3;
  options.shape_zyx = {32, 64, 64};
  const auto names = phantom_channel_names(options.num_channels);
  constexpr std::int64_t kMinVoxels = 30;
  std::vector<int> measured(options.num_channels, 0);
  for (int index = 0; index < 8; ++index) {
    const PhantomCase phantom = make_phantom_case(index, options);
    const torch::Tensor masks = decode_channels(phantom.code);
    const torch::Tensor sets = channel_sets(masks);
    for (int c = 0; c < options.num_channels; ++c) {
      const torch::Tensor sets_inside = sets.masked_select(masks[c].to(torch::kBool));
      if (sets_inside.numel() == 0) continue;
      const std::int64_t with = std::get<0>(torch::mode(sets_inside)).item<std::int64_t>();
      const std::int64_t without = with & ~(std::int64_t{1} << c);
      const torch::Tensor inside = sets == with, beneath = sets == without;
      if (inside.sum().item<std::int64_t>() < kMinVoxels || beneath.sum().item<std::int64_t>() < kMinVoxels) continue;
      for (int m = 0; m < options.num_image_channels; ++m) {
        const torch::Tensor image = phantom.image.data[m];
        const double contrast = mean_where(image, inside) - mean_where(image, beneath);
        EXPECT_GE(std::abs(contrast), 2 * options.noise_std)
            << names[c] << " in image channel " << m << " of case " << index << " (channel set " << with << " vs "
            << without << ")";
      }
      ++measured[c];
    }
  }
  for (int c = 0; c < options.num_channels; ++c) EXPECT_GT(measured[c], 0) << names[c] << " was never measured";
}

TEST(Phantom, RareIsTheCystsTwinInSizeAndContrast) {
  // So that a benchmark comparing the two measures rarity, not visibility or size.
  PhantomOptions options = small_options();
  options.num_channels = 6;
  options.num_image_channels = 3;
  options.shape_zyx = {32, 64, 64};
  const std::int64_t body = 1, cyst = 1 << 4, rare = 1 << 5;
  for (int index : {0, 4, 8}) {
    ASSERT_EQ(index % options.rare_every, 0);
    const PhantomCase phantom = make_phantom_case(index, options);
    const torch::Tensor masks = decode_channels(phantom.code);
    const auto cyst_voxels = masks[4].sum().item<double>(), rare_voxels = masks[5].sum().item<double>();
    ASSERT_GT(cyst_voxels, 0);
    EXPECT_NEAR(rare_voxels / cyst_voxels, 1.0, 0.2) << "case " << index;
    const torch::Tensor sets = channel_sets(masks);
    for (int m = 0; m < options.num_image_channels; ++m) {
      const torch::Tensor image = phantom.image.data[m];
      const double on_body = mean_where(image, sets == body);
      const double cyst_contrast = mean_where(image, sets == (body | cyst)) - on_body;
      const double rare_contrast = mean_where(image, sets == (body | rare)) - on_body;
      EXPECT_NEAR(std::abs(rare_contrast), std::abs(cyst_contrast), 0.05) << "image channel " << m << ", case " << index;
      EXPECT_GE(std::abs(rare_contrast), kPhantomMinAbsContrast - 0.05) << "image channel " << m << ", case " << index;
    }
  }
}

class PhantomFormat : public ::testing::TestWithParam<PhantomLabelFormat> {};

TEST_P(PhantomFormat, WrittenLabelsReadBackAsTheTrueChannels) {
  testing::TempDir dir;
  PhantomOptions options = small_options();
  options.label_format = GetParam();
  options.num_test_cases = 1;
  write_phantom_dataset(dir / "ds", options);
  const Dataset dataset = load_dataset(dir / "ds");
  ASSERT_EQ(dataset.training.size(), 5u);
  ASSERT_EQ(dataset.test.size(), 1u);
  EXPECT_TRUE(dataset.layout_problems.empty());
  ASSERT_EQ(dataset.labels.num_channels(), options.num_channels);
  for (int index = 0; index < options.num_cases; ++index) {
    const PhantomCase truth = make_phantom_case(index, options);
    const CaseLabels labels = read_case_labels(dataset, dataset.training[index]);
    if (GetParam() == PhantomLabelFormat::label_map) {
      // Exclusive classes: each voxel keeps its innermost (last) channel.
      const torch::Tensor truth_masks = decode_channels(truth.code);
      const torch::Tensor masks = decode_channels(labels.code);
      EXPECT_EQ(masks.sum(0).max().item<int>(), 1);
      EXPECT_TRUE(torch::equal(masks.sum(0), truth_masks.amax(0)));
    } else {
      EXPECT_TRUE(torch::equal(labels.code.words, truth.code.words)) << "case " << index;
    }
    const Image image = read_case_images(dataset, dataset.training[index]);
    EXPECT_TRUE(torch::allclose(image.data, truth.image.data, 1e-6, 1e-6));
    EXPECT_EQ(labels.geometry.spacing_zyx_mm, options.spacing_zyx_mm);
  }
}

INSTANTIATE_TEST_SUITE_P(All, PhantomFormat,
                         ::testing::Values(PhantomLabelFormat::label_map, PhantomLabelFormat::regions,
                                           PhantomLabelFormat::bitmask, PhantomLabelFormat::multihot4d,
                                           PhantomLabelFormat::channel_masks),
                         [](const auto& info) { return to_string(info.param); });

TEST(Phantom, ManyChannelsAndTwoDimensionalPng) {
  testing::TempDir dir;
  PhantomOptions options = small_options();
  options.num_cases = 2;
  options.num_channels = 130;
  options.shape_zyx = {4, 16, 16};
  options.label_format = PhantomLabelFormat::multihot4d;
  write_phantom_dataset(dir / "many", options);
  const Dataset many = load_dataset(dir / "many");
  const CaseLabels labels = read_case_labels(many, many.training[1]);
  EXPECT_EQ(labels.code.words.size(0), 3);
  EXPECT_TRUE(torch::equal(labels.code.words, make_phantom_case(1, options).code.words));

  PhantomOptions flat = small_options();
  flat.num_cases = 2;
  flat.shape_zyx = {1, 32, 40};
  flat.file_ending = ".png";
  flat.label_format = PhantomLabelFormat::channel_masks;
  write_phantom_dataset(dir / "flat", flat);
  const Dataset dataset = load_dataset(dir / "flat");
  const CaseLabels flat_labels = read_case_labels(dataset, dataset.training[0]);
  EXPECT_TRUE(torch::equal(flat_labels.code.words, make_phantom_case(0, flat).code.words));
  EXPECT_EQ(read_case_images(dataset, dataset.training[0]).data.sizes(), (std::vector<std::int64_t>{1, 1, 32, 40}));
}

TEST(Phantom, RefusesToOverwriteAndLeavesNoPartialFolder) {
  testing::TempDir dir;
  fs::create_directories(dir / "busy");
  std::ofstream(dir / "busy/keep.txt") << "x";
  EXPECT_THROW(write_phantom_dataset(dir / "busy", small_options()), Error);
  EXPECT_TRUE(fs::exists(dir / "busy/keep.txt"));
  PhantomOptions bad = small_options();
  bad.file_ending = ".png";  // 3D shape into a 2D format
  EXPECT_THROW(write_phantom_dataset(dir / "bad", bad), Error);
  EXPECT_FALSE(fs::exists(dir / "bad"));
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".partial"), std::string::npos);
  }
}

}  // namespace
}  // namespace mlseg
