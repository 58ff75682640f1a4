// The cascade's augmentation of the previous stage's prediction: ball morphology against a
// brute-force ball on random masks, batchgeneratorsv2's border semantics, the removal of one random
// small component, exclusive and overlapping priors, the firing rates of both transforms, and the
// priors' path through augment_sample.
#include "mlseg/data/cascade_transforms.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "data/augmentation_test_support.h"
#include "mlseg/core/error.h"
#include "mlseg/data/augmentation.h"
#include "mlseg/data/connected_components.h"

namespace mlseg {
namespace {

using testing::random_image;
using Shape = std::array<std::int64_t, 3>;

const std::vector<double> kRadii{1.0, 1.5, 2.7, 4.0};

torch::Tensor random_mask(const Shape& shape, double foreground_fraction, std::uint64_t seed) {
  torch::Tensor mask = torch::empty({shape[0], shape[1], shape[2]}, torch::kBool);
  SplitMix64 rng(seed);
  bool* data = mask.data_ptr<bool>();
  for (std::int64_t i = 0; i < mask.numel(); ++i) data[i] = rng.uniform() < foreground_fraction;
  return mask;
}

// Brute force over the ball's offsets: dilation = some foreground voxel within r; erosion = a
// foreground voxel with no background voxel of the patch within r (outside the patch is ignored).
torch::Tensor brute_force(const torch::Tensor& mask, double radius, bool dilate) {
  const auto in = mask.accessor<bool, 3>();
  const std::int64_t Z = mask.size(0), Y = mask.size(1), X = mask.size(2);
  const auto reach = static_cast<std::int64_t>(std::floor(radius));
  torch::Tensor out = torch::zeros_like(mask);
  auto result = out.accessor<bool, 3>();
  for (std::int64_t z = 0; z < Z; ++z) {
    for (std::int64_t y = 0; y < Y; ++y) {
      for (std::int64_t x = 0; x < X; ++x) {
        bool hit = false;  // dilation: a foreground neighbour; erosion: a background neighbour
        for (std::int64_t dz = -reach; dz <= reach && !hit; ++dz) {
          for (std::int64_t dy = -reach; dy <= reach && !hit; ++dy) {
            for (std::int64_t dx = -reach; dx <= reach && !hit; ++dx) {
              if (static_cast<double>(dz * dz + dy * dy + dx * dx) > radius * radius) continue;
              const std::int64_t nz = z + dz, ny = y + dy, nx = x + dx;
              if (nz < 0 || ny < 0 || nx < 0 || nz >= Z || ny >= Y || nx >= X) continue;
              hit = in[nz][ny][nx] == dilate;
            }
          }
        }
        result[z][y][x] = dilate ? hit : (in[z][y][x] && !hit);
      }
    }
  }
  return out;
}

void expect_morphology_matches_brute_force(const Shape& shape, std::uint64_t seed) {
  for (const double foreground : {0.05, 0.3, 0.85}) {
    const torch::Tensor mask = random_mask(shape, foreground, seed);
    for (const double radius : kRadii) {
      EXPECT_TRUE(torch::equal(dilate_ball(mask, radius), brute_force(mask, radius, true)))
          << "dilation, r " << radius << ", foreground " << foreground;
      EXPECT_TRUE(torch::equal(erode_ball(mask, radius), brute_force(mask, radius, false)))
          << "erosion, r " << radius << ", foreground " << foreground;
    }
  }
}

TEST(CascadeMorphology, DilationAndErosionEqualABruteForceBallIn3D) {
  expect_morphology_matches_brute_force({7, 9, 11}, 1);
  expect_morphology_matches_brute_force({10, 6, 8}, 2);
}

TEST(CascadeMorphology, OneSliceMaskGetsTheInPlaneDisk) {
  expect_morphology_matches_brute_force({1, 13, 17}, 3);
  // A single voxel dilated with r = 1.5 is the 3 x 3 square (|offset|² = 2 <= 2.25), in-plane only.
  torch::Tensor dot = torch::zeros({1, 7, 7}, torch::kBool);
  dot[0][3][3] = true;
  const torch::Tensor dilated = dilate_ball(dot, 1.5);
  EXPECT_EQ(dilated.sum().item<std::int64_t>(), 9);
  EXPECT_TRUE(dilated[0].slice(0, 2, 5).slice(1, 2, 5).all().item<bool>());
}

TEST(CascadeMorphology, OpeningAndClosingAreTheCompositionsAndBehaveLikeThem) {
  const torch::Tensor mask = random_mask({9, 10, 11}, 0.4, 4);
  for (const double radius : kRadii) {
    const torch::Tensor opened = open_ball(mask, radius), closed = close_ball(mask, radius);
    EXPECT_TRUE(torch::equal(opened, dilate_ball(erode_ball(mask, radius), radius))) << radius;
    EXPECT_TRUE(torch::equal(closed, erode_ball(dilate_ball(mask, radius), radius))) << radius;
    // Opening shrinks, closing grows, both are idempotent, and closing is the dual of opening.
    EXPECT_FALSE(opened.logical_and(mask.logical_not()).any().item<bool>()) << radius;
    EXPECT_FALSE(mask.logical_and(closed.logical_not()).any().item<bool>()) << radius;
    EXPECT_TRUE(torch::equal(open_ball(opened, radius), opened)) << radius;
    EXPECT_TRUE(torch::equal(close_ball(closed, radius), closed)) << radius;
    EXPECT_TRUE(torch::equal(closed, open_ball(mask.logical_not(), radius).logical_not())) << radius;
  }
  EXPECT_TRUE(torch::equal(apply_binary_operator(mask, BinaryOperator::closing, 2.0), close_ball(mask, 2.0)));
  EXPECT_TRUE(torch::equal(apply_binary_operator(mask, BinaryOperator::opening, 2.0), open_ball(mask, 2.0)));
}

TEST(CascadeMorphology, ErosionIsNotDilationOfBackgroundAndLeavesThePatchBorder) {
  // batchgeneratorsv2: erosion = NOT dilate(NOT mask), with zero padding for the dilation.
  const torch::Tensor mask = random_mask({8, 9, 10}, 0.7, 5);
  for (const double radius : kRadii) {
    EXPECT_TRUE(torch::equal(erode_ball(mask, radius), dilate_ball(mask.logical_not(), radius).logical_not())) << radius;
  }
  // Foreground x < 5 in an 8 x 8 x 12 patch: only the face towards the background erodes.
  const auto grid = torch::meshgrid({torch::arange(8), torch::arange(8), torch::arange(12)}, "ij");
  EXPECT_TRUE(torch::equal(erode_ball(grid[2].lt(5), 2.0), grid[2].lt(3)));
  EXPECT_TRUE(torch::equal(dilate_ball(grid[2].lt(5), 2.0), grid[2].lt(7)));
  const torch::Tensor full = torch::ones({6, 6, 6}, torch::kBool), empty = torch::zeros({6, 6, 6}, torch::kBool);
  EXPECT_TRUE(torch::equal(erode_ball(full, 8.0), full));
  EXPECT_TRUE(torch::equal(dilate_ball(empty, 8.0), empty));
  EXPECT_TRUE(torch::equal(close_ball(full, 3.0), full));
  EXPECT_TRUE(torch::equal(open_ball(empty, 3.0), empty));
  // uint8 input: any nonzero value is foreground.
  EXPECT_TRUE(torch::equal(dilate_ball(mask.to(torch::kUInt8).mul(200), 1.5), dilate_ball(mask, 1.5)));
}

TEST(CascadeMorphology, BadInputsAreErrorsThatSayWhatToPass) {
  const torch::Tensor mask = torch::zeros({4, 4, 4}, torch::kBool);
  EXPECT_THROW(dilate_ball(mask.to(torch::kFloat32), 1.0), Error);
  EXPECT_THROW(dilate_ball(mask[0], 1.0), Error);
  EXPECT_THROW(erode_ball(mask, -1.0), Error);
  EXPECT_THROW(erode_ball(mask, std::nan("")), Error);
  torch::Tensor priors = torch::zeros({2, 4, 4}, torch::kFloat32);
  SplitMix64 rng(1);
  EXPECT_THROW(apply_cascade_transforms(priors, {}, rng), Error);
}

CascadeAugmentationOptions removal_only() {
  return CascadeAugmentationOptions()
      .binary_operator_probability(0.0)
      .remove_component_probability(1.0)
      .remove_component_probability_per_channel(1.0);
}

TEST(CascadeTransforms, RemovalTakesExactlyOneWholeComponentBelowTheSizeLimit) {
  // 16³ = 4096 voxels; with max fraction 1/64 the limit is exactly 64 voxels, which is not below it.
  torch::Tensor prior = torch::zeros({1, 16, 16, 16}, torch::kFloat32);
  prior[0].slice(0, 0, 4).slice(1, 0, 4).slice(2, 0, 4).fill_(1);      // 64 voxels: kept (not < 64)
  prior[0].slice(0, 8, 11).slice(1, 0, 3).slice(2, 8, 11).fill_(1);    // 27
  prior[0].slice(0, 12, 14).slice(1, 12, 14).slice(2, 0, 2).fill_(1);  // 8
  prior[0][14][4][14] = 1;                                             // 1
  prior[0].slice(0, 6, 16).slice(1, 6, 16).slice(2, 6, 7).fill_(1);    // 100: kept
  const CascadeAugmentationOptions options = removal_only().remove_component_max_fraction(1.0 / 64.0);
  const ComponentLabels before = label_components(prior[0].ne(0));
  ASSERT_EQ(before.sizes.size(), 5u);
  std::map<std::int64_t, int> removals_by_size;
  for (std::uint64_t seed = 0; seed < 60; ++seed) {
    torch::Tensor priors = prior.clone();
    SplitMix64 rng(seed);
    CascadeRecord record;
    apply_cascade_transforms(priors, options, rng, &record);
    ASSERT_EQ(record.removed_component_voxels.size(), 1u);
    const torch::Tensor removed = prior[0].ne(0).logical_and(priors[0].eq(0));
    EXPECT_FALSE(priors[0].ne(0).logical_and(prior[0].eq(0)).any().item<bool>()) << "nothing is added";
    // The removed voxels are exactly one component of the input.
    const torch::Tensor labels = before.labels.masked_select(removed);
    ASSERT_GT(labels.numel(), 0) << seed;
    const std::int32_t label = labels[0].item<std::int32_t>();
    EXPECT_TRUE(labels.eq(label).all().item<bool>()) << seed;
    const std::int64_t size = before.sizes[static_cast<std::size_t>(label - 1)];
    EXPECT_EQ(removed.sum().item<std::int64_t>(), size) << seed;
    EXPECT_EQ(record.removed_component_voxels[0], size) << seed;
    ++removals_by_size[size];
  }
  // Only the three small components, each chosen (uniformly: P(never in 60) = (2/3)^60).
  EXPECT_EQ(removals_by_size.size(), 3u);
  for (const std::int64_t size : {1, 8, 27}) EXPECT_GT(removals_by_size[size], 0) << size;
}

TEST(CascadeTransforms, RemovalLeavesChannelsWithoutSmallComponentsAlone) {
  // Default limit 15 % of 8³ = 76.8 voxels: the 80-voxel block stays; the empty channel too.
  torch::Tensor priors = torch::zeros({2, 8, 8, 8}, torch::kFloat32);
  priors[0].slice(0, 0, 5).slice(1, 0, 4).slice(2, 0, 4).fill_(1);
  const torch::Tensor before = priors.clone();
  SplitMix64 rng(7);
  CascadeRecord record;
  apply_cascade_transforms(priors, removal_only(), rng, &record);
  EXPECT_TRUE(torch::equal(priors, before));
  EXPECT_EQ(record.removal_channels.size(), 2u);
  EXPECT_EQ(record.removed_component_voxels, (std::vector<std::int64_t>{0, 0}));
}

// The priors after `record`'s operators, replayed with the morphology functions.
torch::Tensor replay_operators(const torch::Tensor& input, const CascadeRecord& record, bool exclusive) {
  torch::Tensor priors = input.clone();
  for (std::size_t i = 0; i < record.operated_channels.size(); ++i) {
    const std::int64_t channel = record.operated_channels[i];
    const torch::Tensor before = priors[channel].ne(0);
    const torch::Tensor after = apply_binary_operator(before, record.operators[i], record.structure_radii[i]);
    if (exclusive) {
      for (std::int64_t other = 0; other < priors.size(0); ++other) {
        if (other != channel) priors[other].masked_fill_(after.logical_and(before.logical_not()), 0.0);
      }
    }
    priors[channel].copy_(after);
  }
  return priors;
}

TEST(CascadeTransforms, ExclusivePriorsLoseTheVoxelsAnotherChannelGainsOverlappingOnesDoNot) {
  // Two touching one-hot classes: x < 6 and 6 <= x < 10 in a 10 x 10 x 14 patch.
  const auto grid = torch::meshgrid({torch::arange(10), torch::arange(10), torch::arange(14)}, "ij");
  const torch::Tensor input = torch::stack({grid[2].lt(6), grid[2].ge(6).logical_and(grid[2].lt(10))}).to(torch::kFloat32);
  CascadeAugmentationOptions options;
  options.prior_channels(2).binary_operator_probability(1.0).binary_operator_probability_per_channel(1.0).remove_component_probability(0.0);
  int overlapping_draws = 0, dilations = 0;
  for (std::uint64_t seed = 0; seed < 24; ++seed) {
    for (const bool exclusive : {true, false}) {
      torch::Tensor priors = input.clone();
      SplitMix64 rng(seed);
      CascadeRecord record;
      apply_cascade_transforms(priors, CascadeAugmentationOptions(options).exclusive_priors(exclusive), rng, &record);
      ASSERT_EQ(record.operated_channels.size(), 2u);
      EXPECT_TRUE(torch::equal(priors, replay_operators(input, record, exclusive))) << seed;
      EXPECT_TRUE(priors.eq(0).logical_or(priors.eq(1)).all().item<bool>()) << seed;
      const bool overlap = priors[0].ne(0).logical_and(priors[1].ne(0)).any().item<bool>();
      if (exclusive) {
        EXPECT_FALSE(overlap) << "one-hot priors stay one-hot, seed " << seed;
      } else {
        overlapping_draws += overlap ? 1 : 0;
        for (const BinaryOperator op : record.operators) dilations += op == BinaryOperator::dilation ? 1 : 0;
      }
    }
  }
  EXPECT_GT(dilations, 0);
  EXPECT_GT(overlapping_draws, 0) << "a dilation into the other class overlaps it when the priors are not exclusive";
}

double five_sigma(double p, int n) { return 5.0 * std::sqrt(p * (1.0 - p) / n); }

TEST(CascadeTransforms, FiringRatesAndParameterRangesAreNnUNets) {
  constexpr int kDraws = 2000;
  constexpr std::int64_t kChannels = 3;
  const CascadeAugmentationOptions options = CascadeAugmentationOptions().prior_channels(kChannels);
  const torch::Tensor input =
      torch::stack({random_mask({6, 6, 6}, 0.2, 1), random_mask({6, 6, 6}, 0.1, 2), random_mask({6, 6, 6}, 0.3, 3)}).to(torch::kFloat32);
  SplitMix64 rng(2024);
  int operator_samples = 0, removal_samples = 0;
  std::array<int, kChannels> operated{}, removal{}, first_operated{};
  std::array<int, 4> operators{};
  double min_radius = 1e9, max_radius = -1e9, radius_sum = 0.0;
  int radii = 0;
  for (int draw = 0; draw < kDraws; ++draw) {
    torch::Tensor priors = input.clone();
    CascadeRecord record;
    apply_cascade_transforms(priors, options, rng, &record);
    operator_samples += record.binary_operator ? 1 : 0;
    removal_samples += record.remove_component ? 1 : 0;
    for (const std::int64_t c : record.operated_channels) ++operated[static_cast<std::size_t>(c)];
    for (const std::int64_t c : record.removal_channels) ++removal[static_cast<std::size_t>(c)];
    if (record.operated_channels.size() == kChannels) ++first_operated[static_cast<std::size_t>(record.operated_channels[0])];
    for (const BinaryOperator op : record.operators) ++operators[static_cast<std::size_t>(op)];
    for (const double r : record.structure_radii) {
      min_radius = std::min(min_radius, r);
      max_radius = std::max(max_radius, r);
      radius_sum += r;
      ++radii;
    }
    EXPECT_TRUE(priors.eq(0).logical_or(priors.eq(1)).all().item<bool>());
  }
  EXPECT_NEAR(operator_samples / static_cast<double>(kDraws), 0.4, five_sigma(0.4, kDraws));
  EXPECT_NEAR(removal_samples / static_cast<double>(kDraws), 0.2, five_sigma(0.2, kDraws));
  for (std::size_t c = 0; c < kChannels; ++c) {
    EXPECT_NEAR(operated[c] / static_cast<double>(kDraws), 0.4 * 0.5, five_sigma(0.2, kDraws)) << "operator, channel " << c;
    EXPECT_NEAR(removal[c] / static_cast<double>(kDraws), 0.2 * 0.5, five_sigma(0.1, kDraws)) << "removal, channel " << c;
  }
  // The channels are processed in a random order: each one comes first in about a third of the
  // samples that operate on all three.
  const int all_three = first_operated[0] + first_operated[1] + first_operated[2];
  ASSERT_GT(all_three, 20);
  for (std::size_t c = 0; c < kChannels; ++c) {
    EXPECT_NEAR(first_operated[c] / static_cast<double>(all_three), 1.0 / 3.0, five_sigma(1.0 / 3.0, all_three)) << c;
  }
  for (std::size_t op = 0; op < operators.size(); ++op) {
    EXPECT_NEAR(operators[op] / static_cast<double>(radii), 0.25, five_sigma(0.25, radii)) << binary_operator_name(BinaryOperator(op));
  }
  EXPECT_GE(min_radius, 1.0);
  EXPECT_LT(max_radius, 8.0);
  EXPECT_NEAR(radius_sum / radii, 4.5, 5.0 * 7.0 / std::sqrt(12.0 * radii));
}

TEST(CascadeTransforms, SameSeedSameResult) {
  const torch::Tensor input = torch::stack({random_mask({8, 8, 8}, 0.2, 8), random_mask({8, 8, 8}, 0.2, 9)}).to(torch::kFloat32);
  CascadeAugmentationOptions options;
  options.prior_channels(2).binary_operator_probability(1.0).remove_component_probability(1.0);
  torch::Tensor a = input.clone(), b = input.clone();
  SplitMix64 rng_a(77), rng_b(77);
  apply_cascade_transforms(a, options, rng_a);
  apply_cascade_transforms(b, options, rng_b);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(rng_a.next(), rng_b.next());
}

// Augmentation with every intensity transform on, applied to C = 2 image + K = 2 prior channels.
AugmentationOptions every_intensity_transform(std::int64_t prior_channels) {
  AugmentationOptions options = AugmentationOptions::none();
  options.intensity()
      .noise_probability(1.0)
      .blur_probability(1.0)
      .blur_probability_per_channel(1.0)
      .brightness_probability(1.0)
      .contrast_probability(1.0)
      .low_resolution_probability(1.0)
      .low_resolution_probability_per_channel(1.0)
      .inverted_gamma_probability(1.0)
      .gamma_probability(1.0);
  options.cascade().prior_channels(prior_channels);
  return options;
}

torch::Tensor cascade_input(const Shape& shape) {
  const torch::Tensor priors = torch::stack({random_mask(shape, 0.3, 31), random_mask(shape, 0.5, 32)}).to(torch::kFloat32);
  return torch::cat({random_image(2, shape, 30) + 1.0, priors});
}

TEST(CascadeAugment, IntensityTransformsLeaveThePriorChannelsAlone) {
  const Shape input_shape{20, 20, 20}, patch{16, 16, 16};
  const torch::Tensor image = cascade_input(input_shape);
  const CodeVolume codes = empty_code_volume(input_shape, 1);
  const auto sample = augment_sample(image, codes, patch, every_intensity_transform(2), 5);
  const torch::Tensor crop = image.slice(1, 2, 18).slice(2, 2, 18).slice(3, 2, 18);
  EXPECT_TRUE(torch::equal(sample.image.slice(0, 2, 4), crop.slice(0, 2, 4)));
  EXPECT_FALSE(sample.image[0].equal(crop[0]));
  EXPECT_FALSE(sample.image[1].equal(crop[1]));
  EXPECT_EQ(sample.record.intensity.brightness_factors.size(), 2u) << "drawn for the image channels only";
  EXPECT_FALSE(sample.record.cascade.binary_operator || sample.record.cascade.remove_component);
  // The image channels get what they get without priors, draw for draw.
  const auto without_priors = augment_sample(image.slice(0, 0, 2), codes, patch, every_intensity_transform(0), 5);
  EXPECT_TRUE(torch::equal(sample.image.slice(0, 0, 2), without_priors.image));
}

TEST(CascadeAugment, PriorsStayBinaryThroughTheWholePipeline) {
  const Shape input_shape{24, 24, 24}, patch{16, 16, 16};
  const torch::Tensor image = cascade_input(input_shape);
  const CodeVolume codes = empty_code_volume(input_shape, 1);
  AugmentationOptions options = every_intensity_transform(2);
  options.spatial().rotation_probability(1.0).scaling_probability(1.0);
  options.mirror_probability_per_axis(0.5).masked_channels({0, 1, 2, 3});
  options.cascade().binary_operator_probability(1.0).remove_component_probability(1.0).exclusive_priors(true);
  int operated = 0;
  for (std::uint64_t seed = 0; seed < 6; ++seed) {
    const auto sample = augment_sample(image, codes, patch, options, seed);
    const torch::Tensor priors = sample.image.slice(0, 2, 4);
    EXPECT_TRUE(priors.eq(0).logical_or(priors.eq(1)).all().item<bool>()) << seed;
    EXPECT_TRUE(sample.record.cascade.binary_operator);
    operated += static_cast<int>(sample.record.cascade.operated_channels.size());
    EXPECT_TRUE(torch::equal(sample.image, augment_sample(image, codes, patch, options, seed).image)) << seed;
  }
  EXPECT_GT(operated, 0);
}

TEST(CascadeAugment, PriorChannelsMustLeaveAnImageChannel) {
  const Shape shape{8, 8, 8};
  const torch::Tensor image = cascade_input(shape);
  const CodeVolume codes = empty_code_volume(shape, 1);
  for (const std::int64_t prior_channels : {-1, 4, 5}) {
    AugmentationOptions options = AugmentationOptions::none();
    options.cascade().prior_channels(prior_channels);
    EXPECT_THROW(augment_sample(image, codes, shape, options, 1), Error) << prior_channels;
  }
  // none() keeps the cascade transforms off: the exact crop, priors included.
  AugmentationOptions options = AugmentationOptions::none();
  options.cascade().prior_channels(2);
  EXPECT_TRUE(torch::equal(augment_sample(image, codes, shape, options, 1).image, image));
}

}  // namespace
}  // namespace mlseg
