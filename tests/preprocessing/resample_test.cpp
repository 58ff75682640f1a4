#include "mlseg/preprocessing/resample.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

using Shape = std::array<std::int64_t, 3>;
constexpr double kPi = 3.14159265358979323846;

// Input coordinate (in input voxel units) that output index o reads; the mapping under test.
double source_coordinate(std::int64_t o, std::int64_t in_size, std::int64_t out_size) {
  return (o + 0.5) * static_cast<double>(in_size) / static_cast<double>(out_size) - 0.5;
}

// [1, Z, Y, X] float32 image of f(z, y, x) evaluated at input coordinates.
template <typename Function>
torch::Tensor sample(const Shape& shape, Function&& f) {
  torch::Tensor image = torch::empty({1, shape[0], shape[1], shape[2]}, torch::kFloat);
  auto values = image.accessor<float, 4>();
  for (std::int64_t z = 0; z < shape[0]; ++z)
    for (std::int64_t y = 0; y < shape[1]; ++y)
      for (std::int64_t x = 0; x < shape[2]; ++x) values[0][z][y][x] = static_cast<float>(f(z, y, x));
  return image;
}

// Largest |resampled - f| over output voxels whose input coordinate lies `margin` voxels inside.
template <typename Function>
double interior_error(const torch::Tensor& resampled, const Shape& in_shape, Function&& f, double margin) {
  const Shape out_shape{resampled.size(1), resampled.size(2), resampled.size(3)};
  auto values = resampled.accessor<float, 4>();
  double worst = 0.0;
  std::array<double, 3> c{};
  for (std::int64_t z = 0; z < out_shape[0]; ++z)
    for (std::int64_t y = 0; y < out_shape[1]; ++y)
      for (std::int64_t x = 0; x < out_shape[2]; ++x) {
        const std::array<std::int64_t, 3> o{z, y, x};
        bool inside = true;
        for (int axis = 0; axis < 3; ++axis) {
          c[axis] = source_coordinate(o[axis], in_shape[axis], out_shape[axis]);
          if (in_shape[axis] > 1 && (c[axis] < margin || c[axis] > in_shape[axis] - 1 - margin)) inside = false;
        }
        if (inside) worst = std::max(worst, std::abs(values[0][z][y][x] - f(c[0], c[1], c[2])));
      }
  return worst;
}

ResampleOptions with(ImageInterpolation interpolation, int threads = 0) {
  ResampleOptions options;
  options.image_interpolation = interpolation;
  options.threads = threads;
  return options;
}

torch::Tensor sphere(const Shape& shape, std::array<double, 3> center, double radius) {
  auto z = torch::arange(shape[0], torch::kDouble).view({-1, 1, 1}) - center[0];
  auto y = torch::arange(shape[1], torch::kDouble).view({1, -1, 1}) - center[1];
  auto x = torch::arange(shape[2], torch::kDouble).view({1, 1, -1}) - center[2];
  return (z * z + y * y + x * x) <= radius * radius;
}

// Code volume with `bit` set wherever masks[i] ([Z, Y, X] bool) is true, for each (mask, bit).
CodeVolume codes_from_masks(const Shape& shape, int num_channels,
                            const std::vector<std::pair<torch::Tensor, int>>& masks_and_bits) {
  CodeVolume code = empty_code_volume(shape, num_channels);
  torch::Tensor words = torch::zeros({code.words.size(0), shape[0], shape[1], shape[2]}, torch::kInt64);
  for (const auto& [mask, bit] : masks_and_bits) {
    words[bit / 64].bitwise_or_(mask.to(torch::kInt64) * (std::int64_t{1} << (bit % 64)));
  }
  code.words = words.to(code.words.scalar_type());
  return code;
}

// [Z, Y, X] bool: bit `bit` of every voxel.
torch::Tensor bit_mask(const CodeVolume& code, int bit) {
  return code.words[bit / 64].to(torch::kInt64).bitwise_right_shift(bit % 64).bitwise_and(1).to(torch::kBool);
}

// Slow reference: bit `bit` interpolated trilinearly in double precision, or -1 where the weight
// sum is within 1e-9 of the threshold (rounding may decide either way there).
torch::Tensor reference_bit(const CodeVolume& code, int bit, const Shape& out_shape) {
  const Shape in_shape = code.shape_zyx();
  auto inside = bit_mask(code, bit).to(torch::kDouble).contiguous();
  auto in = inside.accessor<double, 3>();
  torch::Tensor expected = torch::empty({out_shape[0], out_shape[1], out_shape[2]}, torch::kInt32);
  auto out = expected.accessor<int, 3>();
  auto tap = [&](std::int64_t o, int axis, std::int64_t& lower, std::int64_t& upper, double& weight) {
    const std::int64_t n = in_shape[axis];
    if (n == out_shape[axis]) {
      lower = upper = o;
      weight = 0.0;
      return;
    }
    const double c = source_coordinate(o, n, out_shape[axis]);
    const double below = std::floor(c);
    lower = std::clamp<std::int64_t>(static_cast<std::int64_t>(below), 0, n - 1);
    upper = std::clamp<std::int64_t>(static_cast<std::int64_t>(below) + 1, 0, n - 1);
    weight = c - below;
  };
  for (std::int64_t z = 0; z < out_shape[0]; ++z)
    for (std::int64_t y = 0; y < out_shape[1]; ++y)
      for (std::int64_t x = 0; x < out_shape[2]; ++x) {
        std::int64_t lo[3], hi[3];
        double w[3];
        tap(z, 0, lo[0], hi[0], w[0]);
        tap(y, 1, lo[1], hi[1], w[1]);
        tap(x, 2, lo[2], hi[2], w[2]);
        double sum = 0.0;
        for (int corner = 0; corner < 8; ++corner) {
          const int bz = corner >> 2 & 1, by = corner >> 1 & 1, bx = corner & 1;
          const double weight = (bz ? w[0] : 1 - w[0]) * (by ? w[1] : 1 - w[1]) * (bx ? w[2] : 1 - w[2]);
          sum += weight * in[bz ? hi[0] : lo[0]][by ? hi[1] : lo[1]][bx ? hi[2] : lo[2]];
        }
        out[z][y][x] = std::abs(sum - 0.5) < 1e-9 ? -1 : sum >= 0.5 ? 1 : 0;
      }
  return expected;
}

// Voxels where `actual` disagrees with a reference_bit result (undecided voxels excluded).
std::int64_t mismatches(const torch::Tensor& actual, const torch::Tensor& expected) {
  auto decided = expected.ge(0);
  return actual.ne(expected.to(torch::kBool)).logical_and(decided).sum().item<std::int64_t>();
}

TEST(ResampleShape, RoundsSpacingRatioTimesShape) {
  EXPECT_EQ(resampled_shape({155, 240, 240}, {1, 1, 1}, {0.8, 0.8, 0.8}), (Shape{194, 300, 300}));
  EXPECT_EQ(resampled_shape({155, 240, 240}, {1, 1, 1}, {1.25, 1.25, 1.25}), (Shape{124, 192, 192}));
  EXPECT_EQ(resampled_shape({20, 100, 100}, {5, 1, 1}, {5, 0.7, 0.7}), (Shape{20, 143, 143}));
  // Python's round() (nnU-Net compute_new_shape) rounds halves to even.
  EXPECT_EQ(resampled_shape({5, 7, 3}, {1, 1, 1}, {2, 2, 2}), (Shape{2, 4, 2}));
  EXPECT_EQ(resampled_shape({3, 3, 3}, {1, 1, 1}, {100, 100, 100}), (Shape{1, 1, 1}));
  // 2D images keep their single slice whatever the spacing says.
  EXPECT_EQ(resampled_shape({1, 64, 64}, {999, 1, 1}, {1, 0.5, 0.5}), (Shape{1, 128, 128}));
  EXPECT_THROW(resampled_shape({4, 4, 4}, {1, 0, 1}, {1, 1, 1}), Error);
}

TEST(ResampleSeparateAxis, FollowsNnunetLowresAxis) {
  EXPECT_EQ(separate_axis_for({1, 1, 1}, {0.8, 0.8, 0.8}), -1);
  EXPECT_EQ(separate_axis_for({1.5, 0.7, 0.7}, {1, 1, 1}), -1);
  EXPECT_EQ(separate_axis_for({5, 1, 1}, {5, 1, 1}), 0);          // anisotropic 5:1
  EXPECT_EQ(separate_axis_for({1, 1, 5}, {1, 1, 1}), 2);
  EXPECT_EQ(separate_axis_for({3, 1, 1}, {3, 1, 1}), -1);         // exactly the threshold: not above
  EXPECT_EQ(separate_axis_for({1, 1, 1}, {1, 4, 1}), 1);          // only the new spacing is anisotropic
  EXPECT_EQ(separate_axis_for({1, 6, 1}, {1, 1, 6}), 1);          // the old spacing decides first
  EXPECT_EQ(separate_axis_for({3, 3, 0.5}, {1, 1, 1}), -1);       // two axes share the largest spacing
  EXPECT_EQ(separate_axis_for({1, 1, 1}, {3, 3, 0.5}), -1);
  EXPECT_EQ(separate_axis_for({999, 1, 1}, {999, 0.5, 0.5}), 0);  // 2D: the dummy axis (left alone anyway)
  EXPECT_EQ(separate_axis_for({2.5, 1, 1}, {2.5, 1, 1}, 2.0), 0);
}

// Beyond the edge the image continues flat (mode 'edge', as scipy), so spline coefficients feel the
// border up to a few voxels in (decaying as 0.268^distance): interiors start kInteriorMargin in.
constexpr double kInteriorMargin = 6.0;

TEST(ResampleImage, SmoothFunctionCubicBeatsLinear) {
  const Shape in_shape{20, 32, 32};
  const double wavelength = 12.0;  // voxels: well above the spacing
  auto f = [&](double z, double y, double x) {
    const double k = 2 * kPi / wavelength;
    return std::sin(k * x + 0.4) * std::cos(k * y - 0.2) * std::sin(k * z + 1.1);
  };
  const torch::Tensor image = sample(in_shape, f);
  for (const Shape& out_shape : {Shape{27, 45, 45}, Shape{14, 23, 23}}) {
    const double cubic =
        interior_error(resample_image(image, out_shape, -1, with(ImageInterpolation::cubic)), in_shape, f, kInteriorMargin);
    const double linear =
        interior_error(resample_image(image, out_shape, -1, with(ImageInterpolation::linear)), in_shape, f, kInteriorMargin);
    EXPECT_LT(cubic, 0.01) << out_shape[0];
    EXPECT_LT(linear, 0.1) << out_shape[0];
    EXPECT_LT(cubic, 0.3 * linear) << "cubic " << cubic << " linear " << linear;
  }
}

// scipy.ndimage.zoom(order=3, mode='nearest', grid_mode=True) on one line, in double precision,
// as scipy computes it: 12 edge values padded on each side, a mirror-initialised prefilter, then
// the cubic B-spline at the mapped coordinates.
std::vector<double> scipy_cubic_zoom(const std::vector<double>& line, std::int64_t out_size) {
  const std::int64_t pad = 12, n = static_cast<std::int64_t>(line.size()) + 2 * pad;
  std::vector<double> c(n);
  for (std::int64_t i = 0; i < n; ++i) c[i] = 6.0 * line[std::clamp<std::int64_t>(i - pad, 0, line.size() - 1)];
  const double z = std::sqrt(3.0) - 2.0, z_n_1 = std::pow(z, static_cast<double>(n - 1));
  double z_i = z;
  c[0] += z_n_1 * c[n - 1];
  for (std::int64_t i = 1; i < n - 1; ++i, z_i *= z) c[0] += z_i * (c[i] + z_n_1 * c[n - 1 - i]);
  c[0] /= 1 - z_n_1 * z_n_1;
  for (std::int64_t i = 1; i < n; ++i) c[i] += z * c[i - 1];
  c[n - 1] = (z * c[n - 2] + c[n - 1]) * z / (z * z - 1);
  for (std::int64_t i = n - 2; i >= 0; --i) c[i] = z * (c[i + 1] - c[i]);
  std::vector<double> out(out_size);
  for (std::int64_t o = 0; o < out_size; ++o) {
    const double x = source_coordinate(o, static_cast<std::int64_t>(line.size()), out_size) + pad;
    const double below = std::floor(x), t = x - below;
    const double w[4] = {std::pow(1 - t, 3) / 6, (4 - 6 * t * t + 3 * t * t * t) / 6,
                         (1 + 3 * t + 3 * t * t - 3 * t * t * t) / 6, t * t * t / 6};
    for (int k = 0; k < 4; ++k) out[o] += w[k] * c[static_cast<std::int64_t>(below) - 1 + k];
  }
  return out;
}

// skimage.transform.resize (what nnU-Net calls) = scipy zoom, then clipped to the input's range.
TEST(ResampleImage, CubicMatchesScipyZoomUpToTheBorder) {
  torch::manual_seed(11);
  const torch::Tensor line = torch::rand({1, 1, 1, 23}) * 100;
  const std::vector<double> values(line.data_ptr<float>(), line.data_ptr<float>() + 23);
  const double low = *std::min_element(values.begin(), values.end()), high = *std::max_element(values.begin(), values.end());
  int clipped = 0;
  for (std::int64_t out_size : {37, 9, 24}) {
    const torch::Tensor out = resample_image(line, {1, 1, out_size}, -1);
    std::vector<double> expected = scipy_cubic_zoom(values, out_size);
    for (auto& e : expected) {
      clipped += e < low || e > high;
      e = std::clamp(e, low, high);
    }
    for (std::int64_t o = 0; o < out_size; ++o) {
      EXPECT_NEAR(out[0][0][0][o].item<float>(), expected[o], 1e-3) << o << " of " << out_size;
    }
  }
  EXPECT_GT(clipped, 0) << "the random line should overshoot somewhere, or the clip is untested";
}

TEST(ResampleImage, ConstantStaysConstant) {
  const torch::Tensor image = torch::full({2, 9, 13, 11}, 3.5f);
  for (auto interpolation : {ImageInterpolation::cubic, ImageInterpolation::linear}) {
    for (int separate_axis : {-1, 0, 2}) {
      const torch::Tensor out = resample_image(image, {17, 6, 20}, separate_axis, with(interpolation));
      ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 17, 6, 20}));
      EXPECT_LT((out - 3.5f).abs().max().item<float>(), 1e-5f);
    }
  }
}

TEST(ResampleImage, LinearRampReproducedInInterior) {
  const Shape in_shape{18, 20, 24};
  auto ramp = [](double z, double y, double x) { return 2.0 * x + 3.0 * y - 1.5 * z + 1.0; };
  const torch::Tensor image = sample(in_shape, ramp);
  for (auto interpolation : {ImageInterpolation::cubic, ImageInterpolation::linear}) {
    for (const Shape& out_shape : {Shape{17, 29, 31}, Shape{8, 13, 15}}) {
      const torch::Tensor out = resample_image(image, out_shape, -1, with(interpolation));
      EXPECT_LT(interior_error(out, in_shape, ramp, kInteriorMargin), 2e-3);
    }
  }
}

TEST(ResampleImage, IdentityShapeIsACopy) {
  const torch::Tensor image = torch::rand({2, 5, 6, 7});
  const torch::Tensor out = resample_image(image, {5, 6, 7}, -1);
  EXPECT_TRUE(torch::equal(out, image));
  EXPECT_NE(out.data_ptr(), image.data_ptr());
}

TEST(ResampleImage, UnchangedAxesAreNotSmoothed) {
  // Random along z and y, constant along x: changing only x must keep the z/y values, which a
  // prefilter round trip along z or y would blur.
  torch::manual_seed(7);
  const torch::Tensor image = torch::rand({2, 6, 9, 1}).expand({2, 6, 9, 10}).contiguous();
  const torch::Tensor out = resample_image(image, {6, 9, 17}, -1);
  EXPECT_LT((out - image.select(3, 0).unsqueeze(3)).abs().max().item<float>(), 1e-5f);
  const torch::Tensor random_z = torch::rand({1, 8, 1, 1}).expand({1, 8, 7, 7}).contiguous();
  const torch::Tensor out_xy = resample_image(random_z, {8, 12, 5}, -1);
  EXPECT_LT((out_xy - random_z.narrow(2, 0, 1).narrow(3, 0, 1)).abs().max().item<float>(), 1e-5f);
}

TEST(ResampleImage, SeparateAxisTakesNearestSlice) {
  const torch::Tensor image = torch::rand({2, 10, 8, 8});
  const Shape out_shape{23, 8, 8};
  const torch::Tensor out = resample_image(image, out_shape, 0, with(ImageInterpolation::cubic));
  for (std::int64_t o = 0; o < out_shape[0]; ++o) {
    const auto nearest = static_cast<std::int64_t>(std::floor(source_coordinate(o, 10, 23) + 0.5));
    EXPECT_TRUE(torch::equal(out.select(1, o), image.select(1, std::clamp<std::int64_t>(nearest, 0, 9)))) << o;
  }
  // Shrinking: slice o reads floor((o + 0.5) * 2 - 0.5 + 0.5) = 2o + 1.
  const torch::Tensor halved = resample_image(image, {5, 8, 8}, 0);
  for (std::int64_t o = 0; o < 5; ++o) EXPECT_TRUE(torch::equal(halved.select(1, o), image.select(1, 2 * o + 1)));
}

TEST(ResampleImage, TwoDimensionalKeepsSingleSlice) {
  const Shape in_shape{1, 20, 24};
  auto ramp = [](double, double y, double x) { return 0.5 * x - 2.0 * y; };
  const torch::Tensor out = resample_image(sample(in_shape, ramp), {1, 31, 37}, -1);
  ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{1, 1, 31, 37}));
  EXPECT_LT(interior_error(out, in_shape, ramp, kInteriorMargin), 1e-3);
}

TEST(ResampleImage, SameOutputForAnyThreadCount) {
  torch::manual_seed(3);
  const torch::Tensor image = torch::rand({2, 19, 23, 29});
  for (auto interpolation : {ImageInterpolation::cubic, ImageInterpolation::linear}) {
    const torch::Tensor one = resample_image(image, {25, 17, 41}, -1, with(interpolation, 1));
    const torch::Tensor two = resample_image(image, {25, 17, 41}, -1, with(interpolation, 2));
    EXPECT_TRUE(torch::equal(one, two));
  }
  // 5 planes: one thread goes plane by plane, two threads pass over the whole volume per axis.
  const torch::Tensor few_planes = torch::rand({1, 5, 23, 29});
  EXPECT_TRUE(torch::equal(resample_image(few_planes, {7, 31, 19}, -1, with(ImageInterpolation::cubic, 1)),
                           resample_image(few_planes, {7, 31, 19}, -1, with(ImageInterpolation::cubic, 2))));
}

TEST(ResampleImage, RejectsBadTarget) {
  const torch::Tensor image = torch::zeros({1, 4, 4, 4});
  EXPECT_THROW(resample_image(image, {0, 4, 4}, -1), Error);
  EXPECT_THROW(resample_image(image, {4, 4, 4}, 3), Error);
  EXPECT_THROW(resample_image(torch::zeros({4, 4, 4}), {4, 4, 4}, -1), Error);
}

TEST(ResampleCodes, SphereKeepsPhysicalVolume) {
  const Shape in_shape{32, 32, 32};
  const torch::Tensor ball = sphere(in_shape, {15.7, 16.2, 15.4}, 10.0);
  const double in_volume = ball.sum().item<double>();  // 1 mm voxels
  for (int num_channels : {1, 10, 40}) {  // uint8, int16 and int64 words
    const CodeVolume code = codes_from_masks(in_shape, num_channels, {{ball, num_channels - 1}});
    for (double spacing_mm : {0.7, 1.6}) {
      const Shape out_shape = resampled_shape(in_shape, {1, 1, 1}, {spacing_mm, spacing_mm, spacing_mm});
      const double voxel_mm3 = std::pow(32.0 / static_cast<double>(out_shape[0]), 3);
      for (auto mode : {LabelResampling::per_channel_bit, LabelResampling::most_likely_combination}) {
        const CodeVolume out = resample_codes(code, out_shape, -1, mode);
        ASSERT_EQ(out.shape_zyx(), out_shape);
        ASSERT_EQ(out.words.scalar_type(), code.words.scalar_type());
        const double out_volume = bit_mask(out, num_channels - 1).sum().item<double>() * voxel_mm3;
        EXPECT_NEAR(out_volume / in_volume, 1.0, 0.02) << num_channels << " channels, " << spacing_mm << " mm";
      }
    }
  }
}

TEST(ResampleCodes, NestedSpheresStayNested) {
  const Shape in_shape{30, 30, 30};
  const torch::Tensor outer = sphere(in_shape, {14.6, 15.1, 14.3}, 10.0);
  const torch::Tensor inner = sphere(in_shape, {15.9, 14.2, 13.8}, 5.0).logical_and(outer);
  const CodeVolume code = codes_from_masks(in_shape, 2, {{outer, 0}, {inner, 1}});
  for (const Shape& out_shape : {Shape{43, 43, 43}, Shape{19, 19, 19}}) {
    const CodeVolume out = resample_codes(code, out_shape, -1, LabelResampling::per_channel_bit);
    const torch::Tensor inner_out = bit_mask(out, 1), outer_out = bit_mask(out, 0);
    EXPECT_GT(inner_out.sum().item<std::int64_t>(), 0);
    EXPECT_EQ(inner_out.logical_and(outer_out.logical_not()).sum().item<std::int64_t>(), 0);
  }
}

TEST(ResampleCodes, PerChannelBitMatchesSlowReference) {
  const Shape in_shape{13, 17, 19};
  const CodeVolume code = codes_from_masks(in_shape, 3,
                                           {{sphere(in_shape, {6, 8, 9}, 5.5), 0},
                                            {sphere(in_shape, {4, 9, 7}, 4.2), 1},
                                            {sphere(in_shape, {8, 6, 11}, 3.7), 2}});
  const Shape out_shape{21, 11, 26};
  const CodeVolume out = resample_codes(code, out_shape, -1, LabelResampling::per_channel_bit);
  for (int bit = 0; bit < 3; ++bit) EXPECT_EQ(mismatches(bit_mask(out, bit), reference_bit(code, bit, out_shape)), 0);
}

TEST(ResampleCodes, IgnoreBitResampledLikeAChannel) {
  const Shape in_shape{16, 18, 20};
  const torch::Tensor region = sphere(in_shape, {7.3, 8.8, 9.1}, 6.0);
  const CodeVolume as_ignore = codes_from_masks(in_shape, 2, {{region, 2}});  // bit C = ignore flag
  const CodeVolume as_channel = codes_from_masks(in_shape, 2, {{region, 0}});
  const Shape out_shape{23, 12, 29};
  for (auto mode : {LabelResampling::per_channel_bit, LabelResampling::most_likely_combination}) {
    const torch::Tensor ignored = bit_mask(resample_codes(as_ignore, out_shape, -1, mode), 2);
    EXPECT_TRUE(torch::equal(ignored, bit_mask(resample_codes(as_channel, out_shape, -1, mode), 0)));
    EXPECT_EQ(mismatches(ignored, reference_bit(as_ignore, 2, out_shape)), 0);
  }
}

TEST(ResampleCodes, TouchingLabelsLeaveNoBackgroundInArgmax) {
  // Three labels fill the volume along oblique planes: argmax never produces background.
  const Shape in_shape{20, 24, 24};
  auto z = torch::arange(in_shape[0], torch::kDouble).view({-1, 1, 1});
  auto y = torch::arange(in_shape[1], torch::kDouble).view({1, -1, 1});
  auto x = torch::arange(in_shape[2], torch::kDouble).view({1, 1, -1});
  const torch::Tensor plane = (0.7 * x + 0.4 * y - 0.3 * z + torch::zeros({in_shape[0], in_shape[1], in_shape[2]}));
  const torch::Tensor first = plane < 8.0, third = plane >= 14.0;
  const torch::Tensor second = first.logical_not().logical_and(third.logical_not());
  const CodeVolume code = codes_from_masks(in_shape, 3, {{first, 0}, {second, 1}, {third, 2}});
  for (const Shape& out_shape : {Shape{29, 35, 35}, Shape{13, 15, 15}}) {
    const CodeVolume out = resample_codes(code, out_shape, -1, LabelResampling::most_likely_combination);
    EXPECT_EQ(out.words.eq(0).sum().item<std::int64_t>(), 0);
    const torch::Tensor single_label = out.words.eq(1).logical_or(out.words.eq(2)).logical_or(out.words.eq(4));
    EXPECT_TRUE(single_label.all().item<bool>());  // labels never mix
  }
}

TEST(ResampleCodes, SeparateAxisTakesNearestSlice) {
  // Each z slice holds one code; after resampling every slice is still one input slice's code.
  const Shape in_shape{7, 12, 12};
  torch::Tensor words = (torch::arange(in_shape[0]) % 3 + 1).view({1, -1, 1, 1}).expand({1, 7, 12, 12});
  CodeVolume code = empty_code_volume(in_shape, 2);
  code.words = words.to(torch::kUInt8).contiguous();
  const Shape out_shape{16, 17, 9};
  for (auto mode : {LabelResampling::per_channel_bit, LabelResampling::most_likely_combination}) {
    const CodeVolume out = resample_codes(code, out_shape, 0, mode);
    for (std::int64_t o = 0; o < out_shape[0]; ++o) {
      const auto nearest = std::clamp<std::int64_t>(
          static_cast<std::int64_t>(std::floor(source_coordinate(o, 7, 16) + 0.5)), 0, 6);
      EXPECT_TRUE(out.words.select(1, o).eq(nearest % 3 + 1).all().item<bool>()) << o;
    }
  }
}

TEST(ResampleCodes, TwoDimensional) {
  const Shape in_shape{1, 40, 40};
  const torch::Tensor disc = sphere(in_shape, {0, 19.6, 20.3}, 12.0);
  const CodeVolume code = codes_from_masks(in_shape, 1, {{disc, 0}});
  const Shape out_shape{1, 57, 57};
  for (auto mode : {LabelResampling::per_channel_bit, LabelResampling::most_likely_combination}) {
    const CodeVolume out = resample_codes(code, out_shape, -1, mode);
    ASSERT_EQ(out.shape_zyx(), out_shape);
    const double area = bit_mask(out, 0).sum().item<double>() * std::pow(40.0 / 57.0, 2);
    EXPECT_NEAR(area / disc.sum().item<double>(), 1.0, 0.02);
    EXPECT_EQ(mismatches(bit_mask(out, 0), reference_bit(code, 0, out_shape)), 0);
  }
}

TEST(ResampleCodes, SameOutputForAnyThreadCount) {
  torch::manual_seed(5);
  CodeVolume code = empty_code_volume({15, 17, 19}, 5);
  code.words = torch::randint(0, 64, {1, 15, 17, 19}, torch::kInt64).to(torch::kUInt8);
  for (auto mode : {LabelResampling::per_channel_bit, LabelResampling::most_likely_combination}) {
    const CodeVolume one = resample_codes(code, {22, 11, 27}, -1, mode, 1);
    const CodeVolume two = resample_codes(code, {22, 11, 27}, -1, mode, 2);
    EXPECT_TRUE(torch::equal(one.words, two.words));
  }
}

TEST(ResampleCodes, MultiWordCodesPerBit) {
  const int num_channels = 130;  // 131 bits: three int64 words
  const Shape in_shape{11, 14, 16};
  std::vector<std::pair<torch::Tensor, int>> masks;
  for (int bit : {0, 5, 63, 64, 100, 127, 129, 130}) {  // 130 = the ignore bit
    masks.push_back({sphere(in_shape, {3.0 + bit % 5, 5.0 + bit % 7, 4.0 + bit % 9}, 3.0 + bit % 4), bit});
  }
  const CodeVolume code = codes_from_masks(in_shape, num_channels, masks);
  ASSERT_EQ(code.words.size(0), 3);
  const Shape out_shape{17, 9, 23};
  const CodeVolume out = resample_codes(code, out_shape, -1, LabelResampling::per_channel_bit, 2);
  ASSERT_EQ(out.words.size(0), 3);
  std::int64_t inside = 0;
  for (const auto& [mask, bit] : masks) {
    EXPECT_EQ(mismatches(bit_mask(out, bit), reference_bit(code, bit, out_shape)), 0) << "bit " << bit;
    inside += bit_mask(out, bit).sum().item<std::int64_t>();
  }
  EXPECT_GT(inside, 0);
  EXPECT_EQ(bit_mask(out, 1).sum().item<std::int64_t>(), 0);  // bits never set stay clear
}

TEST(ResampleCodes, MultiWordArgmaxMatchesSingleWord) {
  // Non-overlapping labels on channels 0, 70 and 129 of a 130-channel code, and the same labels on
  // channels 0, 1, 2 of a 3-channel code: the code order agrees, so argmax picks the same labels.
  const Shape in_shape{12, 13, 14};
  const torch::Tensor a = sphere(in_shape, {5, 6, 6}, 4.5);
  const torch::Tensor b = sphere(in_shape, {6, 7, 9}, 4.0).logical_and(a.logical_not());
  const torch::Tensor c = sphere(in_shape, {4, 4, 8}, 3.5).logical_and(a.logical_or(b).logical_not());
  const CodeVolume wide = codes_from_masks(in_shape, 130, {{a, 0}, {b, 70}, {c, 129}});
  const CodeVolume narrow = codes_from_masks(in_shape, 3, {{a, 0}, {b, 1}, {c, 2}});
  const Shape out_shape{19, 8, 21};
  const auto mode = LabelResampling::most_likely_combination;
  const CodeVolume wide_out = resample_codes(wide, out_shape, -1, mode);
  const CodeVolume narrow_out = resample_codes(narrow, out_shape, -1, mode);
  EXPECT_TRUE(torch::equal(bit_mask(wide_out, 0), bit_mask(narrow_out, 0)));
  EXPECT_TRUE(torch::equal(bit_mask(wide_out, 70), bit_mask(narrow_out, 1)));
  EXPECT_TRUE(torch::equal(bit_mask(wide_out, 129), bit_mask(narrow_out, 2)));
  EXPECT_GT(bit_mask(wide_out, 70).sum().item<std::int64_t>(), 0);
}

TEST(ResampleCodes, IdentityShapeIsACopy) {
  CodeVolume code = codes_from_masks({6, 7, 8}, 2, {{sphere({6, 7, 8}, {3, 3, 4}, 2.5), 1}});
  const CodeVolume out = resample_codes(code, {6, 7, 8}, -1, LabelResampling::per_channel_bit);
  EXPECT_TRUE(torch::equal(out.words, code.words));
  EXPECT_NE(out.words.data_ptr(), code.words.data_ptr());
}

}  // namespace
}  // namespace mlseg
