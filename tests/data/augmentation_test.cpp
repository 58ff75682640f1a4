// The whole per-sample pipeline: identity, determinism, mirroring, firing rates and parameter
// ranges of every transform, the 2D path.
#include "mlseg/data/augmentation.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "data/augmentation_test_support.h"
#include "mlseg/data/mirror.h"

namespace mlseg {
namespace {

using testing::paint_sphere;
using testing::random_codes;
using testing::random_image;
using Shape = std::array<std::int64_t, 3>;

TEST(Augment, AllProbabilitiesZeroIsTheExactCentreCrop) {
  const Shape input{21, 24, 26}, patch{16, 16, 16};
  const torch::Tensor image = random_image(2, input, 11);
  const CodeVolume codes = random_codes(10, input, 12);
  const auto sample = augment_sample(image, codes, patch, AugmentationOptions::none(), 99);
  // offset floor(S/2) - floor(P/2) = (2, 4, 5)
  EXPECT_TRUE(torch::equal(sample.image, image.slice(1, 2, 18).slice(2, 4, 20).slice(3, 5, 21)));
  EXPECT_TRUE(torch::equal(sample.codes.words, codes.words.slice(1, 2, 18).slice(2, 4, 20).slice(3, 5, 21)));
  EXPECT_EQ(sample.codes.num_channels, 10);
}

TEST(Augment, MaskedChannelsStayZeroOutsideTheNonzeroMaskLikeNnUNetsMaskImageTransform) {
  // Two channels, zero outside a "brain" sphere (as the store holds a use_mask_for_norm image);
  // channel 0 is masked, channel 1 not. Every intensity transform on: contrast, gamma and noise
  // move the zeros of channel 1, never those of channel 0.
  const Shape input{32, 32, 32}, patch{24, 24, 24};
  torch::Tensor image = random_image(2, input, 21) + 2.0;
  const auto grid = torch::meshgrid({torch::arange(32), torch::arange(32), torch::arange(32)}, "ij");
  const torch::Tensor brain = ((grid[0] - 16).pow(2) + (grid[1] - 16).pow(2) + (grid[2] - 16).pow(2)).lt(10 * 10);
  image.mul_(brain.unsqueeze(0));
  const CodeVolume codes = empty_code_volume(input, 1);
  AugmentationOptions options;
  options.intensity().noise_probability(1.0).contrast_probability(1.0).gamma_probability(1.0).brightness_probability(1.0);
  options.spatial().rotation_probability(1.0);
  options.masked_channels({0});
  // The same spatial draws without intensity transforms: where channel 0 is 0 after them.
  AugmentationOptions spatial_only = options;
  spatial_only.intensity(AugmentationOptions::none().intensity());
  std::int64_t outside_checked = 0;
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    const auto sample = augment_sample(image, codes, patch, options, seed);
    const torch::Tensor outside = augment_sample(image, codes, patch, spatial_only, seed).image[0].eq(0);
    outside_checked += outside.sum().item<std::int64_t>();
    EXPECT_EQ(sample.image[0].masked_select(outside).abs().max().item<float>(), 0.0f) << seed;
    EXPECT_GT(sample.image[1].masked_select(outside).abs().max().item<float>(), 0.0f) << "channel 1 is not masked";
  }
  EXPECT_GT(outside_checked, 0);
}

TEST(Augment, SameSeedSameOutputOtherSeedOtherOutput) {
  const Shape input{40, 40, 40}, patch{24, 24, 24};
  const torch::Tensor image = random_image(1, input, 5);
  CodeVolume codes = empty_code_volume(input, 3);
  paint_sphere(codes, {}, {20, 20, 20}, 10.0, 0b011);
  AugmentationOptions options;  // defaults, with the spatial part forced so that seeds differ there too
  options.spatial().rotation_probability(1.0).scaling_probability(1.0);
  const auto a = augment_sample(image, codes, patch, options, 1234);
  const auto b = augment_sample(image, codes, patch, options, 1234);
  const auto c = augment_sample(image, codes, patch, options, 1235);
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_TRUE(torch::equal(a.codes.words, b.codes.words));
  EXPECT_FALSE(torch::equal(a.image, c.image));
  EXPECT_TRUE(torch::equal(image, random_image(1, input, 5)));  // the input is untouched
}

TEST(Augment, MirrorTwiceIsIdentity) {
  const torch::Tensor image = random_image(2, {5, 6, 7}, 3);
  const CodeVolume codes = random_codes(12, {5, 6, 7}, 4);
  for (int flags = 1; flags < 8; ++flags) {
    const std::array<bool, 3> flip{(flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0};
    torch::Tensor mirrored = image.clone();
    mirror_in_place(mirrored, flip);
    std::vector<std::int64_t> dims;
    for (int a = 0; a < 3; ++a)
      if (flip[static_cast<std::size_t>(a)]) dims.push_back(a + 1);
    EXPECT_TRUE(torch::equal(mirrored, image.flip(dims))) << "flags " << flags;
    mirror_in_place(mirrored, flip);
    EXPECT_TRUE(torch::equal(mirrored, image));
    CodeVolume code_copy{codes.words.clone(), codes.num_channels};
    mirror_in_place(code_copy, flip);
    EXPECT_TRUE(torch::equal(code_copy.words, codes.words.flip(dims)));
    mirror_in_place(code_copy, flip);
    EXPECT_TRUE(torch::equal(code_copy.words, codes.words));
  }
}

// Binomial tolerance: 5 standard deviations of a frequency over n draws.
double tolerance(double p, int n) { return 5.0 * std::sqrt(p * (1.0 - p) / n); }

// Mean of uniform draws in [lo, hi] and the fraction below the midpoint, for a rough uniformity check.
void expect_uniform(const std::vector<double>& values, double lo, double hi, const char* what) {
  ASSERT_GT(values.size(), 50u) << what;
  double sum = 0.0;
  int lower_half = 0;
  for (const double v : values) {
    EXPECT_GE(v, lo) << what;
    EXPECT_LE(v, hi) << what;
    sum += v;
    lower_half += v < (lo + hi) / 2;
  }
  const double n = static_cast<double>(values.size());
  EXPECT_NEAR(sum / n, (lo + hi) / 2, 5.0 * (hi - lo) / std::sqrt(12.0 * n)) << what;
  EXPECT_NEAR(lower_half / n, 0.5, tolerance(0.5, static_cast<int>(n))) << what;
}

// BGContrast draws: half below 1 (uniform in [lo, 1)), half above (uniform in [1, hi]).
void expect_below_or_above_one(const std::vector<double>& values, double lo, double hi, const char* what) {
  std::vector<double> below, above;
  for (const double v : values) (v < 1.0 ? below : above).push_back(v);
  EXPECT_NEAR(static_cast<double>(below.size()) / values.size(), 0.5, tolerance(0.5, static_cast<int>(values.size())))
      << what;
  expect_uniform(below, lo, 1.0, what);
  expect_uniform(above, 1.0, hi, what);
}

TEST(Augment, DefaultProbabilitiesAndParameterRangesAreNnUNets) {
  const Shape input{10, 10, 10}, patch{8, 8, 8};
  const torch::Tensor image = random_image(1, input, 8);
  const CodeVolume codes = random_codes(3, input, 9);
  const AugmentationOptions options;
  const int n = 4000;
  int rotated = 0, scaled = 0, noise = 0, blur = 0, brightness = 0, contrast = 0, low_resolution = 0,
      inverted_gamma = 0, gamma = 0;
  std::array<int, 3> mirrored{};
  std::vector<double> angles, scales, sigmas, blur_sigmas, brightness_factors, contrast_factors, zooms, gammas;
  int blurred_channels = 0, low_resolution_channels = 0;
  for (int i = 0; i < n; ++i) {
    const auto record = augment_sample(image, codes, patch, options, static_cast<std::uint64_t>(i)).record;
    rotated += record.spatial.rotated;
    scaled += record.spatial.scaled;
    if (record.spatial.rotated) angles.insert(angles.end(), record.spatial.angles_rad.begin(), record.spatial.angles_rad.end());
    if (record.spatial.scaled) scales.push_back(record.spatial.scale);
    const auto& r = record.intensity;
    noise += r.noise;
    if (r.noise) sigmas.push_back(r.noise_sigma);
    blur += r.blur;
    blurred_channels += static_cast<int>(r.blurred_channels.size());
    for (const auto& s : r.blur_sigmas_zyx) blur_sigmas.insert(blur_sigmas.end(), s.begin(), s.end());
    brightness += r.brightness;
    brightness_factors.insert(brightness_factors.end(), r.brightness_factors.begin(), r.brightness_factors.end());
    contrast += r.contrast;
    contrast_factors.insert(contrast_factors.end(), r.contrast_factors.begin(), r.contrast_factors.end());
    low_resolution += r.low_resolution;
    low_resolution_channels += static_cast<int>(r.low_resolution_channels.size());
    zooms.insert(zooms.end(), r.low_resolution_zooms.begin(), r.low_resolution_zooms.end());
    inverted_gamma += r.inverted_gamma;
    gamma += r.gamma;
    gammas.insert(gammas.end(), r.inverted_gammas.begin(), r.inverted_gammas.end());
    gammas.insert(gammas.end(), r.gammas.begin(), r.gammas.end());
    for (int a = 0; a < 3; ++a) mirrored[static_cast<std::size_t>(a)] += record.mirrored_zyx[static_cast<std::size_t>(a)];
  }
  const auto expect_rate = [&](int count, double p, const char* what) {
    EXPECT_NEAR(static_cast<double>(count) / n, p, tolerance(p, n)) << what;
  };
  expect_rate(rotated, 0.2, "rotation");
  expect_rate(scaled, 0.2, "scaling");
  expect_rate(noise, 0.1, "noise");
  expect_rate(blur, 0.2, "blur");
  expect_rate(brightness, 0.15, "brightness");
  expect_rate(contrast, 0.15, "contrast");
  expect_rate(low_resolution, 0.25, "low resolution");
  expect_rate(inverted_gamma, 0.1, "inverted gamma");
  expect_rate(gamma, 0.3, "gamma");
  for (int a = 0; a < 3; ++a) expect_rate(mirrored[static_cast<std::size_t>(a)], 0.5, "mirror");
  EXPECT_NEAR(static_cast<double>(blurred_channels) / blur, 0.5, tolerance(0.5, blur)) << "blur per channel";
  EXPECT_NEAR(static_cast<double>(low_resolution_channels) / low_resolution, 0.5, tolerance(0.5, low_resolution))
      << "low resolution per channel";
  const double max_angle = 30.0 / 180.0 * 3.14159265358979323846;
  expect_uniform(angles, -max_angle, max_angle, "rotation angle");
  expect_uniform(scales, 0.7, 1.4, "scale");
  expect_uniform(sigmas, 0.0, 0.1, "noise sigma");
  expect_uniform(blur_sigmas, 0.5, 1.0, "blur sigma");
  expect_uniform(zooms, 0.5, 1.0, "low-resolution zoom");
  expect_below_or_above_one(brightness_factors, 0.75, 1.25, "brightness");
  expect_below_or_above_one(contrast_factors, 0.75, 1.25, "contrast");
  expect_below_or_above_one(gammas, 0.7, 1.5, "gamma");
}

TEST(Augment, PlanarSampleKeepsItsShapeAndAlignment) {
  const Shape input{1, 90, 80}, patch{1, 64, 64};
  CodeVolume codes = empty_code_volume(input, 2);
  torch::Tensor image = torch::zeros({1, 1, 90, 80});
  for (int y = 0; y < 90; ++y)
    for (int x = 0; x < 80; ++x)
      if ((y - 40) * (y - 40) + (x - 45) * (x - 45) <= 144) image[0][0][y][x] = 1.0f;
  codes.words.copy_(image.to(codes.words.scalar_type()));
  AugmentationOptions options = AugmentationOptions::none();
  options.spatial().rotation_probability(1.0).scaling_probability(1.0);
  options.mirror_probability_per_axis(0.5);
  int flipped_z = 0;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const auto sample = augment_sample(image, codes, patch, options, seed);
    ASSERT_EQ(sample.record.mode, AugmentationMode::planar_2d);
    ASSERT_EQ(sample.image.sizes(), (std::vector<std::int64_t>{1, 1, 64, 64}));
    ASSERT_EQ(sample.codes.words.sizes(), (std::vector<std::int64_t>{1, 1, 64, 64}));
    flipped_z += sample.record.mirrored_zyx[0];
    const torch::Tensor label = channel_mask(sample.codes, 0);
    const double disagree = (label != (sample.image >= 0.5f - 1e-5f)).sum().item<double>();
    EXPECT_LE(disagree, 2.0) << "seed " << seed;
    EXPECT_GT(label.sum().item<double>(), 100.0);
  }
  EXPECT_EQ(flipped_z, 0);  // 2D: mirroring on y and x only
}

TEST(Augment, DummyTwoDimensionalPatchRotatesSliceBySlice) {
  const Shape patch{6, 40, 40};
  const Shape input = initial_patch_size(patch);
  ASSERT_EQ(input[0], 6);
  CodeVolume codes = empty_code_volume(input, 1);
  torch::Tensor image = torch::zeros({1, input[0], input[1], input[2]});
  paint_sphere(codes, image, {2.5, input[1] / 2.0, input[2] / 2.0 + 8}, 5.0, 1);
  AugmentationOptions options = AugmentationOptions::none();
  options.spatial().rotation_probability(1.0);
  const auto sample = augment_sample(image, codes, patch, options, 3);
  EXPECT_EQ(sample.record.mode, AugmentationMode::dummy_2d);
  EXPECT_EQ(sample.record.spatial.angles_rad[1], 0.0);
  EXPECT_EQ(sample.record.spatial.angles_rad[2], 0.0);
  // Slices are not mixed: each output slice's label area equals its own input slice's disc area
  // up to the rotation's resampling.
  const torch::Tensor in_area = channel_mask(codes, 0).sum({0, 2, 3}).to(torch::kFloat64);
  const torch::Tensor out_area = channel_mask(sample.codes, 0).sum({0, 2, 3}).to(torch::kFloat64);
  EXPECT_LT((in_area - out_area).abs().max().item<double>(), 0.1 * in_area.max().item<double>());
}

}  // namespace
}  // namespace mlseg
