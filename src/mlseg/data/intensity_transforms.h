#pragma once
// Intensity transforms of the training augmentation (nnU-Net v2 defaults, batchgeneratorsv2
// semantics), each on a float32 [C, Z, Y, X] patch in place. apply_intensity_transforms runs them
// in nnU-Net's order with the probabilities of IntensityTransformOptions; the building blocks take
// explicit parameters so that tests and other pipelines can call them directly.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

#include "mlseg/core/random.h"
#include "mlseg/data/augmentation_options.h"
#include "mlseg/data/spatial_transform.h"

namespace mlseg {

/// What the intensity stage drew for one sample (per-channel values in channel order, for the
/// channels the transform touched).
struct IntensityRecord {
  bool noise = false;
  double noise_sigma = 0.0;
  bool blur = false;
  std::vector<std::int64_t> blurred_channels;
  std::vector<std::array<double, 3>> blur_sigmas_zyx;  ///< 0 on an axis that is not blurred
  bool brightness = false;
  std::vector<double> brightness_factors;
  bool contrast = false;
  std::vector<double> contrast_factors;
  bool low_resolution = false;
  std::vector<std::int64_t> low_resolution_channels;
  std::vector<double> low_resolution_zooms;
  bool inverted_gamma = false;
  std::vector<double> inverted_gammas;
  bool gamma = false;
  std::vector<double> gammas;
};

/// batchgeneratorsv2's BGContrast: with odds 1/2 (when min < 1) U(min, 1), else U(max(min, 1), max).
double sample_below_or_above_one(double min_factor, double max_factor, SplitMix64& rng);

/// Adds one N(0, sigma^2) field, the same for every channel.
void add_gaussian_noise(torch::Tensor& image, double sigma, SplitMix64& rng);
/// Separable Gaussian blur of one channel, reflect padding, kernel size from `truncate`
/// (see IntensityTransformOptions::blur_truncate); an axis with sigma <= 0 is left alone.
void gaussian_blur_channel(torch::Tensor& image, std::int64_t channel, const std::array<double, 3>& sigma_zyx,
                           double truncate = 6.0);
void multiply_channel(torch::Tensor& image, std::int64_t channel, double factor);
/// (v - mean) * factor + mean, clamped to the channel's former [min, max] when preserve_range.
void adjust_channel_contrast(torch::Tensor& image, std::int64_t channel, double factor, bool preserve_range);
/// Nearest-exact down to round(size * zoom) on the axes not in keep_axis, linear back up
/// (align_corners = False).
void simulate_low_resolution_channel(torch::Tensor& image, std::int64_t channel, double zoom,
                                     const std::array<bool, 3>& keep_axis);
/// ((v - min) / range)^gamma * range + min, optionally on the negated channel and with mean and
/// (unbiased) standard deviation restored.
void gamma_channel(torch::Tensor& image, std::int64_t channel, double gamma, bool invert, bool retain_stats);

/// Noise, blur, brightness, contrast, low resolution, inverted gamma, gamma — nnU-Net's order.
/// `mode` decides the axes: planar_2d never blurs along axis 0; dummy_2d and planar_2d keep axis 0
/// at full resolution in the low-resolution simulation (nnU-Net's ignore_axes).
void apply_intensity_transforms(torch::Tensor& image, const IntensityTransformOptions& options, AugmentationMode mode,
                                SplitMix64& rng, IntensityRecord* record = nullptr);

}  // namespace mlseg
