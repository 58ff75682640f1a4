// The spatial transform: geometry conventions, exactness of the identity, image/label alignment.
#include "mlseg/data/spatial_transform.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "data/augmentation_test_support.h"
#include "mlseg/core/error.h"
#include "mlseg/data/mirror.h"

namespace mlseg {
namespace {

using testing::paint_sphere;
using testing::random_codes;
using testing::random_image;
using Shape = std::array<std::int64_t, 3>;

constexpr double kPi = 3.14159265358979323846;

// Centroid (z, y, x) of channel-0 voxels minus the patch centre (P - 1) / 2.
std::array<double, 3> centroid_offset(const CodeVolume& codes) {
  const torch::Tensor mask = channel_mask(codes, 0)[0];
  const torch::Tensor where = mask.nonzero().to(torch::kFloat64);
  std::array<double, 3> offset{};
  for (int a = 0; a < 3; ++a) offset[a] = where.select(1, a).mean().item<double>() - (mask.size(a) - 1) / 2.0;
  return offset;
}

// An input and patch size for the kernel comparisons, with the number of label channels.
struct KernelCase {
  Shape input, patch;
  int channels;
};

// One sphere per channel (bit c), centres spread around the input's centre so that they overlap.
CodeVolume channel_spheres(const Shape& input, int channels) {
  CodeVolume codes = empty_code_volume(input, channels);
  for (int channel = 0; channel < channels; ++channel) {
    const std::array<double, 3> centre{input[0] / 2.0 + (channel % 3) - 1.0, input[1] / 2.0 + channel - 4.0,
                                       input[2] / 2.0 - channel + 3.0};
    paint_sphere(codes, {}, centre, 5.0 + channel, std::int64_t{1} << channel);
  }
  return codes;
}

TEST(SpatialTransform, InitialPatchSizeMatchesNnUNetGetPatchSize) {
  // nnU-Net: get_patch_size(patch, rot, rot, rot, (0.85, 1.25)); dummy 2D / 2D keep axis 0.
  EXPECT_EQ(initial_patch_size({128, 128, 128}), (Shape{205, 205, 205}));
  EXPECT_EQ(initial_patch_size({20, 256, 256}), (Shape{20, 301, 301}));   // dummy 2D, +-180 capped at 90
  EXPECT_EQ(initial_patch_size({1, 512, 512}), (Shape{1, 602, 602}));     // 2D, +-180
  EXPECT_EQ(initial_patch_size({1, 256, 512}), (Shape{1, 446, 602}));     // elongated 2D, +-15
}

TEST(SpatialTransform, GeometryPicksModeRotationAndMirrorAxes) {
  const auto volume = augmentation_geometry({128, 128, 128});
  EXPECT_EQ(volume.mode, AugmentationMode::volume_3d);
  EXPECT_NEAR(volume.max_rotation_rad, kPi / 6, 1e-12);
  EXPECT_EQ(volume.mirror_axes, (std::vector<int>{0, 1, 2}));
  const auto dummy = augmentation_geometry({24, 192, 160});
  EXPECT_EQ(dummy.mode, AugmentationMode::dummy_2d);
  EXPECT_NEAR(dummy.max_rotation_rad, kPi, 1e-12);
  const auto planar = augmentation_geometry({1, 256, 256});
  EXPECT_EQ(planar.mode, AugmentationMode::planar_2d);
  EXPECT_EQ(planar.mirror_axes, (std::vector<int>{1, 2}));
}

TEST(SpatialTransform, IdentityIsTheIntegerCentreCropWithPadding) {
  const torch::Tensor image = random_image(2, {9, 10, 11}, 1);
  const CodeVolume codes = random_codes(5, {9, 10, 11}, 2);
  const Shape patch{12, 6, 7};  // larger than the input along z: padded
  const auto result = apply_spatial_transform(image, codes, patch, augmentation_geometry(patch), SpatialParameters{});
  // offset = floor(S/2) - floor(P/2): z 4-6 = -2, y 5-3 = 2, x 5-3 = 2
  const torch::Tensor expected_image =
      torch::constant_pad_nd(image, {0, 0, 0, 0, 2, 1}).slice(2, 2, 8).slice(3, 2, 9);
  EXPECT_TRUE(torch::equal(result.image, expected_image));
  const torch::Tensor expected_codes =
      torch::constant_pad_nd(codes.words, {0, 0, 0, 0, 2, 1}).slice(2, 2, 8).slice(3, 2, 9);
  EXPECT_TRUE(torch::equal(result.codes.words, expected_codes));
}

TEST(SpatialTransform, ScalingBelowOneZoomsIn) {
  CodeVolume codes = empty_code_volume({41, 41, 41}, 1);
  paint_sphere(codes, {}, {20, 20, 28}, 3.0, 1);  // 8 voxels right of the centre along x
  const torch::Tensor image = torch::zeros({1, 41, 41, 41});
  SpatialParameters zoom;
  zoom.scaled = true;
  zoom.scale = 0.8;
  const Shape patch{41, 41, 41};
  const auto result = apply_spatial_transform(image, codes, patch, augmentation_geometry(patch), zoom);
  const auto offset = centroid_offset(result.codes);
  EXPECT_NEAR(offset[2], 8.0 / 0.8, 0.05);
  EXPECT_NEAR(offset[0], 0.0, 0.05);
  EXPECT_NEAR(offset[1], 0.0, 0.05);
}

TEST(SpatialTransform, RotationConventionMatchesGridAtAffine) {
  // Source = q @ (Rz Ry Rx S): +90 degrees about axis 0 reads source (y, x) = (q_x, -q_y), so an
  // object at x = +8 shows up at y = -8.
  CodeVolume codes = empty_code_volume({21, 41, 41}, 1);
  paint_sphere(codes, {}, {10, 20, 28}, 3.0, 1);
  const torch::Tensor image = torch::zeros({1, 21, 41, 41});
  SpatialParameters turn;
  turn.rotated = true;
  turn.angles_rad = {kPi / 2, 0, 0};
  const Shape patch{21, 41, 41};
  const auto result = apply_spatial_transform(image, codes, patch, augmentation_geometry(patch), turn);
  const auto offset = centroid_offset(result.codes);
  EXPECT_NEAR(offset[1], -8.0, 0.05);
  EXPECT_NEAR(offset[2], 0.0, 0.05);
}

// Image and labels share the weights: for a binary image painted like channel 0, the label is
// exactly "interpolated image >= 0.5"; and the label keeps covering the bright region.
TEST(SpatialTransform, ImageAndLabelsStayAlignedUnderRotationAndScaling) {
  const Shape input{48, 52, 50}, patch{32, 32, 32};
  CodeVolume codes = empty_code_volume(input, 1);
  torch::Tensor image = torch::zeros({1, input[0], input[1], input[2]});
  paint_sphere(codes, image, {22, 27, 30}, 9.0, 1);
  SpatialTransformOptions options;
  options.rotation_probability(1.0).scaling_probability(1.0);
  const auto geometry = augmentation_geometry(patch, options);
  for (std::uint64_t seed = 0; seed < 12; ++seed) {
    SplitMix64 rng(seed);
    const auto parameters = sample_spatial_parameters(geometry, options, rng);
    ASSERT_TRUE(parameters.rotated && parameters.scaled);
    const auto result = apply_spatial_transform(image, codes, patch, geometry, parameters, options);
    const torch::Tensor label = channel_mask(result.codes, 0);
    const torch::Tensor bright = result.image >= 0.5f - 1e-5f;
    const double disagree = (label != bright).sum().item<double>();
    const double label_voxels = label.sum().item<double>();
    ASSERT_GT(label_voxels, 100.0);
    EXPECT_LE(disagree, 0.001 * label_voxels) << "seed " << seed;
    // Away from the edge the image is fully bright inside and dark outside the label.
    const torch::Tensor eroded = -torch::max_pool3d(-label.to(torch::kFloat32), 3, 1, 1) > 0.5f;
    const torch::Tensor dilated = torch::max_pool3d(label.to(torch::kFloat32), 3, 1, 1) > 0.5f;
    EXPECT_GT(result.image.masked_select(eroded).mean().item<double>(), 0.99);
    EXPECT_LT(result.image.masked_select(dilated.logical_not()).mean().item<double>(), 0.01);
  }
}

// Our resampling against LibTorch's grid_sample on the same source coordinates.
TEST(SpatialTransform, LinearImageAndPerBitLabelsMatchGridSample) {
  const Shape input{30, 34, 32}, patch{24, 24, 24};
  const torch::Tensor image = random_image(1, input, 7);
  CodeVolume codes = empty_code_volume(input, 3);
  paint_sphere(codes, {}, {14, 16, 15}, 10.0, 0b001);
  paint_sphere(codes, {}, {12, 18, 17}, 6.0, 0b010);
  paint_sphere(codes, {}, {18, 12, 15}, 7.0, 0b100);
  SpatialParameters parameters;
  parameters.rotated = parameters.scaled = true;
  parameters.angles_rad = {0.3, -0.4, 0.5};
  parameters.scale = 1.25;  // zoom out: the patch reaches past the input, exercising the border
  const auto result = apply_spatial_transform(image, codes, patch, augmentation_geometry(patch), parameters);

  // Source voxel = (o - (P-1)/2) @ (Rz Ry Rx S) + floor(S/2) - floor(P/2) + (P-1)/2.
  auto rotation = [](int axis, double a) {
    const double c = std::cos(a), s = std::sin(a);
    if (axis == 0) return torch::tensor({1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c}, torch::kFloat64).view({3, 3});
    if (axis == 1) return torch::tensor({c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c}, torch::kFloat64).view({3, 3});
    return torch::tensor({c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({3, 3});
  };
  const torch::Tensor affine = rotation(2, 0.5).mm(rotation(1, -0.4)).mm(rotation(0, 0.3)) * 1.25;
  const auto axis_coords = [&](int a) {
    return torch::arange(patch[a], torch::kFloat64) - (patch[a] - 1) / 2.0;
  };
  const auto grids = torch::meshgrid({axis_coords(0), axis_coords(1), axis_coords(2)}, "ij");
  torch::Tensor q = torch::stack({grids[0], grids[1], grids[2]}, -1);  // [P0, P1, P2, 3] (z, y, x)
  torch::Tensor source = q.matmul(affine);
  torch::Tensor normalized = torch::empty_like(source);
  for (int a = 0; a < 3; ++a) {
    const double centre = static_cast<double>(input[a] / 2 - patch[a] / 2) + (patch[a] - 1) / 2.0;
    normalized.select(-1, a).copy_((source.select(-1, a) + centre) / (input[a] - 1) * 2.0 - 1.0);
  }
  const torch::Tensor grid = normalized.flip(-1).unsqueeze(0).to(torch::kFloat32);  // (x, y, z) order
  namespace F = torch::nn::functional;
  const auto sample = [&](const torch::Tensor& volume) {
    return F::grid_sample(volume.unsqueeze(0), grid,
                          F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true))[0];
  };
  EXPECT_LT((sample(image) - result.image).abs().max().item<double>(), 1e-4);
  for (int channel = 0; channel < 3; ++channel) {
    const torch::Tensor reference = sample(channel_mask(codes, channel).to(torch::kFloat32)) >= 0.5f;
    const double mismatches = (reference != channel_mask(result.codes, channel)).sum().item<double>();
    EXPECT_LE(mismatches, 5.0) << "channel " << channel;  // float ties at exactly 0.5 only
  }
}

TEST(SpatialTransform, NestedLabelsStayNested) {
  const Shape input{40, 40, 40}, patch{28, 28, 28};
  CodeVolume codes = empty_code_volume(input, 3);
  paint_sphere(codes, {}, {20, 20, 20}, 12.0, 0b001);
  paint_sphere(codes, {}, {22, 19, 21}, 6.0, 0b010);
  paint_sphere(codes, {}, {23, 19, 22}, 2.5, 0b100);
  const torch::Tensor image = torch::zeros({1, input[0], input[1], input[2]});
  SpatialTransformOptions options;
  options.rotation_probability(1.0).scaling_probability(1.0);
  const auto geometry = augmentation_geometry(patch, options);
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    SplitMix64 rng(seed);
    const auto result =
        apply_spatial_transform(image, codes, patch, geometry, sample_spatial_parameters(geometry, options, rng), options);
    const torch::Tensor outer = channel_mask(result.codes, 0), middle = channel_mask(result.codes, 1),
                        inner = channel_mask(result.codes, 2);
    EXPECT_GT(middle.sum().item<std::int64_t>(), 0);
    EXPECT_EQ((middle & outer.logical_not()).sum().item<std::int64_t>(), 0) << "seed " << seed;
    EXPECT_EQ((inner & middle.logical_not()).sum().item<std::int64_t>(), 0) << "seed " << seed;
  }
}

TEST(SpatialTransform, IgnoreFlagIsInterpolatedLikeAChannel) {
  const Shape input{30, 30, 30}, patch{20, 20, 20};
  CodeVolume codes = empty_code_volume(input, 2);
  paint_sphere(codes, {}, {15, 15, 15}, 8.0, 0b100);  // bit 2 = the ignore flag for 2 channels
  const torch::Tensor image = torch::zeros({1, input[0], input[1], input[2]});
  SpatialParameters parameters;
  parameters.rotated = true;
  parameters.angles_rad = {0.2, 0.3, -0.1};
  const auto result = apply_spatial_transform(image, codes, patch, augmentation_geometry(patch), parameters);
  const double ignored = ignore_mask(result.codes).sum().item<double>();
  EXPECT_NEAR(ignored, 4.0 / 3.0 * kPi * 512.0, 0.1 * 4.0 / 3.0 * kPi * 512.0);
}

TEST(SpatialTransform, NearestLabelsOnlyProduceInputCodes) {
  const Shape input{20, 20, 20}, patch{16, 16, 16};
  const CodeVolume codes = random_codes(6, input, 3);
  const torch::Tensor image = torch::zeros({1, input[0], input[1], input[2]});
  SpatialTransformOptions options;
  options.label_interpolation(LabelInterpolation::nearest);
  SpatialParameters parameters;
  parameters.rotated = parameters.scaled = true;
  parameters.angles_rad = {0.4, 0.1, -0.3};
  parameters.scale = 0.9;
  const auto result = apply_spatial_transform(image, codes, patch, augmentation_geometry(patch), parameters, options);
  const auto input_values = std::get<0>(at::_unique(codes.words));
  const auto output_values = std::get<0>(at::_unique(result.codes.words));
  EXPECT_TRUE(torch::isin(output_values, input_values).all().item<bool>());
  EXPECT_GT(output_values.numel(), 30);
}

// Labels that are classes (softmax, powerset): whole codes vote, so a patch holds only codes its
// input had, and no voxel between touching classes falls to background. Per-bit voting (sigmoid's
// rule) on the same input makes codes the input did not have, so the test can tell them apart.
TEST(SpatialTransform, ClassLabelsOnlyProduceInputCodesAndOpenNoHoles) {
  const Shape input{24, 24, 24}, patch{16, 16, 16};
  // Four classes, in blocks of 2 voxels, no background: three single channels (softmax-like) and a
  // combination of two (powerset).
  CodeVolume codes = empty_code_volume(input, 3);
  const std::uint64_t classes[4] = {0b001, 0b010, 0b100, 0b011};
  SplitMix64 rng(5);
  auto words = codes.words.accessor<std::uint8_t, 4>();
  for (std::int64_t z = 0; z < input[0]; z += 2) {
    for (std::int64_t y = 0; y < input[1]; y += 2) {
      for (std::int64_t x = 0; x < input[2]; x += 2) {
        const auto code = static_cast<std::uint8_t>(classes[rng.below(4)]);
        for (int d = 0; d < 8; ++d) words[0][z + (d >> 2)][y + ((d >> 1) & 1)][x + (d & 1)] = code;
      }
    }
  }
  const torch::Tensor image = torch::zeros({1, input[0], input[1], input[2]});
  SpatialParameters parameters;
  parameters.rotated = parameters.scaled = true;
  parameters.angles_rad = {0.15, -0.1, 0.2};
  parameters.scale = 0.9;  // zoom in: the patch stays inside the input, no outside voxels
  const auto input_values = std::get<0>(at::_unique(codes.words));
  for (const bool separable : {true, false}) {
    SpatialParameters draw = parameters;
    if (separable) draw.rotated = false;
    const auto vote = [&](LabelInterpolation labels) {
      const SpatialTransformOptions options = SpatialTransformOptions().label_interpolation(labels);
      return apply_spatial_transform(image, codes, patch, augmentation_geometry(patch), draw, options).codes.words;
    };
    const torch::Tensor by_class = vote(LabelInterpolation::classes), by_bit = vote(LabelInterpolation::linear);
    EXPECT_TRUE(torch::isin(std::get<0>(at::_unique(by_class)), input_values).all().item<bool>()) << "separable " << separable;
    EXPECT_EQ(by_class.eq(0).sum().item<std::int64_t>(), 0) << "separable " << separable;
    EXPECT_FALSE(torch::isin(std::get<0>(at::_unique(by_bit)), input_values).all().item<bool>())
        << "per-bit voting made no new code, so this input does not test the difference";
  }
}

TEST(SpatialTransform, ElasticDeformationIsRejectedWithAnError) {
  SpatialTransformOptions options;
  options.elastic_probability(0.1);
  SplitMix64 rng(1);
  EXPECT_THROW(sample_spatial_parameters(augmentation_geometry({32, 32, 32}), options, rng), Error);
}

// Draws without rotation take the separable path; it must give what the general per-voxel kernel
// gives: every mode (3D, dummy 2D, 2D), zooming in and out past the input's edge, several image
// channels, byte and wider code words (the 10-channel words vote on mixed corners), and nearest
// labels.
TEST(SpatialTransform, SeparablePathMatchesTheGeneralKernel) {
  const std::vector<KernelCase> cases = {
      {{30, 34, 32}, {24, 24, 24}, 3},   // 3D, byte codes
      {{30, 34, 32}, {24, 20, 22}, 10},  // 3D, 16-bit codes
      {{9, 40, 36}, {6, 28, 28}, 3},     // dummy 2D (anisotropic patch)
      {{1, 40, 36}, {1, 28, 30}, 10},    // 2D
  };
  for (const KernelCase& c : cases) {
    const torch::Tensor image = random_image(2, c.input, 31);
    const CodeVolume codes = channel_spheres(c.input, c.channels);
    const auto geometry = augmentation_geometry(c.patch);
    for (const LabelInterpolation labels : {LabelInterpolation::linear, LabelInterpolation::nearest, LabelInterpolation::classes}) {
      for (const double scale : {0.7, 1.0, 1.17, 1.4}) {
        SpatialParameters parameters;
        parameters.scaled = true;
        parameters.scale = scale;
        const SpatialTransformOptions separable = SpatialTransformOptions().label_interpolation(labels);
        const SpatialTransformOptions general = SpatialTransformOptions(separable).separable_when_unrotated(false);
        const auto fast = apply_spatial_transform(image, codes, c.patch, geometry, parameters, separable);
        const auto reference = apply_spatial_transform(image, codes, c.patch, geometry, parameters, general);
        const std::string where = "input " + std::to_string(c.input[0]) + "x" + std::to_string(c.input[1]) +
                                  ", scale " + std::to_string(scale) +
                                  (labels == LabelInterpolation::nearest ? ", nearest"
                                                                         : labels == LabelInterpolation::classes ? ", classes" : ", linear");
        ASSERT_EQ(fast.image.sizes(), reference.image.sizes()) << where;
        EXPECT_LT((fast.image - reference.image).abs().max().item<double>(), 1e-5) << where;
        // Coordinates are computed in double here and in float there, so a corner weight right at
        // a tie may fall the other way: allow one voxel in ten thousand.
        const auto differing = (fast.codes.words != reference.codes.words).sum().item<std::int64_t>();
        EXPECT_LE(differing, fast.codes.words.numel() / 10000) << where;
        EXPECT_GT(channel_mask(fast.codes, 0).sum().item<std::int64_t>(), 0) << where;
      }
    }
  }
}

// Mirroring done by the spatial pass (crop rows in mirror order, grid walked backwards) equals
// resampling first and flipping afterwards, on every path: identity crop, separable scaling,
// general rotation, and the planar modes whose slice axis the kernel does not resample.
TEST(SpatialTransform, MirroringInTheSamePassEqualsFlippingAfterwards) {
  const std::vector<KernelCase> cases = {
      {{30, 34, 32}, {24, 24, 24}, 3},   // 3D, byte codes
      {{30, 34, 32}, {24, 20, 22}, 10},  // 3D, 16-bit codes
      {{9, 40, 36}, {6, 28, 28}, 3},     // dummy 2D
      {{1, 40, 36}, {1, 28, 30}, 3},     // 2D
      {{20, 20, 20}, {24, 26, 22}, 3},   // patch larger than the input: padding on both sides
  };
  for (const KernelCase& c : cases) {
    const torch::Tensor image = random_image(2, c.input, 41);
    const CodeVolume codes = channel_spheres(c.input, c.channels);
    const auto geometry = augmentation_geometry(c.patch);
    std::vector<SpatialParameters> draws(3);  // identity, scaling only, rotation and scaling
    draws[1].scaled = draws[2].scaled = true;
    draws[1].scale = 1.17;
    draws[2].scale = 0.9;
    draws[2].rotated = true;
    draws[2].angles_rad = {0.3, -0.2, 0.4};
    for (std::size_t d = 0; d < draws.size(); ++d) {
      for (int flips = 1; flips < 8; ++flips) {
        const std::array<bool, 3> flip{(flips & 4) != 0, (flips & 2) != 0, (flips & 1) != 0};
        auto expected = apply_spatial_transform(image, codes, c.patch, geometry, draws[d]);
        mirror_in_place(expected.image, flip);
        mirror_in_place(expected.codes, flip);
        const auto mirrored = apply_spatial_transform(image, codes, c.patch, geometry, draws[d], {}, flip);
        const std::string where = "input " + std::to_string(c.input[0]) + "x" + std::to_string(c.input[1]) +
                                  ", draw " + std::to_string(d) + ", flips " + std::to_string(flips);
        if (d == 0) {
          EXPECT_TRUE(torch::equal(mirrored.image, expected.image)) << where;
          EXPECT_TRUE(torch::equal(mirrored.codes.words, expected.codes.words)) << where;
          continue;
        }
        // The backward walk computes the same coordinates in another order of rounding.
        EXPECT_LT((mirrored.image - expected.image).abs().max().item<double>(), 1e-4) << where;
        const auto differing = (mirrored.codes.words != expected.codes.words).sum().item<std::int64_t>();
        EXPECT_LE(differing, mirrored.codes.words.numel() / 10000) << where;
      }
    }
  }
}

TEST(SpatialTransform, PlanarSamplesRotateInPlaneOnly) {
  const Shape input{1, 60, 60}, patch{1, 40, 40};
  CodeVolume codes = empty_code_volume(input, 1);
  torch::Tensor image = torch::zeros({1, 1, 60, 60});
  // A disc 10 pixels right of the centre.
  for (int y = 0; y < 60; ++y)
    for (int x = 0; x < 60; ++x)
      if ((y - 30) * (y - 30) + (x - 40) * (x - 40) <= 16) image[0][0][y][x] = 1.0f;
  codes.words.copy_(image.to(codes.words.scalar_type()));
  SpatialParameters turn;
  turn.rotated = true;
  // Half turn about the source centre (29.5, 29.5): the disc at (+0.5, +10.5) goes to (-0.5, -10.5).
  turn.angles_rad = {kPi, 0, 0};
  const auto geometry = augmentation_geometry(patch);
  ASSERT_EQ(geometry.mode, AugmentationMode::planar_2d);
  const auto result = apply_spatial_transform(image, codes, patch, geometry, turn);
  ASSERT_EQ(result.image.sizes(), (std::vector<std::int64_t>{1, 1, 40, 40}));
  const auto offset = centroid_offset(result.codes);
  EXPECT_NEAR(offset[2], -10.5, 0.05);
  EXPECT_NEAR(offset[1], -0.5, 0.05);
  EXPECT_LE((channel_mask(result.codes, 0) != (result.image >= 0.5f - 1e-5f)).sum().item<std::int64_t>(), 2);
}

}  // namespace
}  // namespace mlseg
