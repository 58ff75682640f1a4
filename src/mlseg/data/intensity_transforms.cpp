#include "mlseg/data/intensity_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "mlseg/core/cpu_dispatch.h"
#include "mlseg/core/error.h"
#include "mlseg/data/deep_supervision.h"
#include "mlseg/data/float_kernels.h"

namespace mlseg {
namespace {

using Shape = std::array<std::int64_t, 3>;
using detail::fast_exp2;
using detail::kBlock;
using detail::log2_from_parts;
using detail::log2_parts;
using detail::Log2Parts;
using detail::moments;
using detail::Moments;
using detail::MomentSums;
using detail::normal_pair;

struct ChannelView {
  float* data = nullptr;
  Shape shape{};
  std::int64_t voxels = 0;
};

ChannelView channel_view(torch::Tensor& image, std::int64_t channel) {
  if (!image.defined() || image.dim() != 4 || image.scalar_type() != torch::kFloat32 || !image.is_contiguous() ||
      !image.device().is_cpu()) {
    throw Error("intensity transforms need a contiguous float32 CPU image [C, Z, Y, X]",
                "convert the patch with .to(torch::kFloat32).contiguous()");
  }
  if (channel < 0 || channel >= image.size(0)) {
    throw Error("intensity transform channel " + std::to_string(channel) + " is outside the image's " +
                    std::to_string(image.size(0)) + " channels",
                "pass a channel index below the channel count");
  }
  ChannelView view;
  view.shape = {image.size(1), image.size(2), image.size(3)};
  view.voxels = view.shape[0] * view.shape[1] * view.shape[2];
  view.data = image.data_ptr<float>() + channel * view.voxels;
  return view;
}

// torch 'reflect' padding index (edge not repeated), for any overshoot.
std::int64_t reflect_index(std::int64_t i, std::int64_t n) {
  if (n == 1) return 0;
  const std::int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// batchgeneratorsv2 _compute_kernel_size: Python round (half to even), then the nearest odd.
int gaussian_kernel_size(double sigma, double truncate) {
  const double n = sigma * truncate + 0.5;
  const auto rounded = static_cast<int>(std::nearbyint(n));
  if (rounded % 2 == 1) return rounded;
  return n - rounded >= 0 ? rounded + 1 : rounded - 1;
}

std::vector<float> gaussian_kernel(double sigma, double truncate) {
  const int size = std::max(1, gaussian_kernel_size(sigma, truncate));
  const double half = (size - 1) * 0.5;
  std::vector<double> pdf(static_cast<std::size_t>(size));
  double sum = 0.0;
  for (int i = 0; i < size; ++i) {
    const double x = (-half + i) / sigma;
    pdf[static_cast<std::size_t>(i)] = std::exp(-0.5 * x * x);
    sum += pdf[static_cast<std::size_t>(i)];
  }
  std::vector<float> kernel(pdf.size());
  for (std::size_t i = 0; i < pdf.size(); ++i) kernel[i] = static_cast<float>(pdf[i] / sum);
  return kernel;
}

// Convolves the lines of a [outer, n, inner] block along n. inner > 1: whole rows at a time;
// inner == 1: each line is padded once (reflect only at the ends), then the taps run over the
// whole line in the outer loop so the inner loop vectorises. Either way each voxel sums its taps
// in kernel order starting from the first tap's product, so both shapes give the same values.
MLSEG_ALWAYS_INLINE void convolve_lines(float* data, std::int64_t outer, std::int64_t n, std::int64_t inner,
                    const std::vector<float>& kernel, std::vector<float>& scratch) {
  const auto radius = static_cast<std::int64_t>(kernel.size() / 2);
  const auto taps = static_cast<std::int64_t>(kernel.size());
  if (inner == 1) {
    scratch.resize(static_cast<std::size_t>(2 * n + 2 * radius));
    float* const padded = scratch.data();
    float* const sum = padded + n + 2 * radius;
    for (std::int64_t o = 0; o < outer; ++o) {
      float* line = data + o * n;
      for (std::int64_t i = -radius; i < 0; ++i) padded[i + radius] = line[reflect_index(i, n)];
      std::memcpy(padded + radius, line, static_cast<std::size_t>(n) * sizeof(float));
      for (std::int64_t i = n; i < n + radius; ++i) padded[i + radius] = line[reflect_index(i, n)];
      for (std::int64_t i = 0; i < n; ++i) sum[i] = kernel[0] * padded[i];
      for (std::int64_t k = 1; k < taps; ++k) {
        const float w = kernel[static_cast<std::size_t>(k)];
        const float* in = padded + k;
        for (std::int64_t i = 0; i < n; ++i) sum[i] += w * in[i];
      }
      std::memcpy(line, sum, static_cast<std::size_t>(n) * sizeof(float));
    }
    return;
  }
  // Rows are overwritten in order, so the originals of the last radius + 1 rows (the row being
  // written included) wait in a ring: output row i reads rows i - radius .. i + radius (reflected
  // at the ends), those up to i from the ring and the later ones, not yet written, in place.
  const std::int64_t ring_rows = radius + 1;
  scratch.resize(static_cast<std::size_t>(ring_rows * inner));
  float* const ring = scratch.data();
  for (std::int64_t o = 0; o < outer; ++o) {
    float* block = data + o * n * inner;
    for (std::int64_t i = 0; i < n; ++i) {
      float* out = block + i * inner;
      std::memcpy(ring + (i % ring_rows) * inner, out, static_cast<std::size_t>(inner) * sizeof(float));
      for (std::int64_t k = 0; k < taps; ++k) {
        const float w = kernel[static_cast<std::size_t>(k)];
        const std::int64_t row = reflect_index(i + k - radius, n);
        const float* in = row <= i ? ring + (row % ring_rows) * inner : block + row * inner;
        if (k == 0) {
          for (std::int64_t x = 0; x < inner; ++x) out[x] = w * in[x];
        } else {
          for (std::int64_t x = 0; x < inner; ++x) out[x] += w * in[x];
        }
      }
    }
  }
}

// Linear resize along one axis of a [outer, n_in, inner] block into [outer, n_out, inner],
// PyTorch's align_corners=False source indices. Block by block (o outer) so that each block's
// input stays in cache while its output is written.
MLSEG_ALWAYS_INLINE void linear_resize_axis(const float* in, std::int64_t outer, std::int64_t n_in, std::int64_t inner, float* out,
                        std::int64_t n_out) {
  const double scale = static_cast<double>(n_in) / static_cast<double>(n_out);
  std::vector<std::int64_t> first(static_cast<std::size_t>(n_out)), second(static_cast<std::size_t>(n_out));
  std::vector<float> weight_first(static_cast<std::size_t>(n_out)), weight_second(static_cast<std::size_t>(n_out));
  for (std::int64_t j = 0; j < n_out; ++j) {
    const double source = std::max(0.0, (j + 0.5) * scale - 0.5);
    const auto i0 = static_cast<std::int64_t>(source);
    const auto l1 = static_cast<float>(source - static_cast<double>(i0));
    const auto at = static_cast<std::size_t>(j);
    first[at] = i0;
    second[at] = i0 < n_in - 1 ? i0 + 1 : i0;
    weight_second[at] = l1;
    weight_first[at] = 1.0f - l1;
  }
  for (std::int64_t o = 0; o < outer; ++o) {
    const float* block = in + o * n_in * inner;
    float* result = out + o * n_out * inner;
    if (inner == 1) {
      for (std::size_t j = 0; j < first.size(); ++j) {
        result[j] = weight_first[j] * block[first[j]] + weight_second[j] * block[second[j]];
      }
      continue;
    }
    for (std::size_t j = 0; j < first.size(); ++j) {
      const float* a = block + first[j] * inner;
      const float* b = block + second[j] * inner;
      float* r = result + static_cast<std::int64_t>(j) * inner;
      const float l0 = weight_first[j], l1 = weight_second[j];
      for (std::int64_t x = 0; x < inner; ++x) r[x] = l0 * a[x] + l1 * b[x];
    }
  }
}

}  // namespace

double sample_below_or_above_one(double min_factor, double max_factor, SplitMix64& rng) {
  if (rng.uniform() < 0.5 && min_factor < 1.0) return rng.uniform(min_factor, 1.0);
  return rng.uniform(std::max(min_factor, 1.0), max_factor);
}

MLSEG_CPU_CLONES void add_gaussian_noise(torch::Tensor& image, double sigma, SplitMix64& rng) {
  ChannelView first = channel_view(image, 0);
  const std::int64_t channels = image.size(0), n = first.voxels;
  const auto s = static_cast<float>(sigma);
  constexpr std::int64_t kBlock = 4096;  // voxels per block; one 64-bit draw per pair
  std::vector<std::uint64_t> bits(kBlock / 2);
  std::vector<float> noise(kBlock);
  for (std::int64_t start = 0; start < n; start += kBlock) {
    const std::int64_t count = std::min(kBlock, n - start), pairs = (count + 1) / 2;
    for (std::int64_t p = 0; p < pairs; ++p) bits[static_cast<std::size_t>(p)] = rng.next();
    // The pair's two values go to the two halves of the block (interleaving them cost shuffles).
    for (std::int64_t p = 0; p < pairs; ++p) {
      normal_pair(bits[static_cast<std::size_t>(p)], noise[static_cast<std::size_t>(p)],
                  noise[static_cast<std::size_t>(pairs + p)]);
    }
    for (std::int64_t c = 0; c < channels; ++c) {
      float* data = first.data + c * n + start;
      for (std::int64_t i = 0; i < count; ++i) data[i] += s * noise[static_cast<std::size_t>(i)];
    }
  }
}

MLSEG_CPU_CLONES void gaussian_blur_channel(torch::Tensor& image, std::int64_t channel, const std::array<double, 3>& sigma_zyx,
                           double truncate) {
  ChannelView view = channel_view(image, channel);
  const auto [Z, Y, X] = view.shape;
  std::vector<float> scratch;
  if (sigma_zyx[0] > 0.0) convolve_lines(view.data, 1, Z, Y * X, gaussian_kernel(sigma_zyx[0], truncate), scratch);
  if (sigma_zyx[1] > 0.0) convolve_lines(view.data, Z, Y, X, gaussian_kernel(sigma_zyx[1], truncate), scratch);
  if (sigma_zyx[2] > 0.0) convolve_lines(view.data, Z * Y, X, 1, gaussian_kernel(sigma_zyx[2], truncate), scratch);
}

MLSEG_CPU_CLONES void multiply_channel(torch::Tensor& image, std::int64_t channel, double factor) {
  ChannelView view = channel_view(image, channel);
  const auto f = static_cast<float>(factor);
  for (std::int64_t i = 0; i < view.voxels; ++i) view.data[i] *= f;
}

MLSEG_CPU_CLONES void adjust_channel_contrast(torch::Tensor& image, std::int64_t channel, double factor, bool preserve_range) {
  ChannelView view = channel_view(image, channel);
  const Moments m = moments(view.data, view.voxels);
  const auto mean = static_cast<float>(m.mean), f = static_cast<float>(factor);
  const float lo = preserve_range ? m.min : -std::numeric_limits<float>::infinity();
  const float hi = preserve_range ? m.max : std::numeric_limits<float>::infinity();
  for (std::int64_t i = 0; i < view.voxels; ++i) view.data[i] = std::clamp((view.data[i] - mean) * f + mean, lo, hi);
}

MLSEG_CPU_CLONES void simulate_low_resolution_channel(torch::Tensor& image, std::int64_t channel, double zoom,
                                     const std::array<bool, 3>& keep_axis) {
  ChannelView view = channel_view(image, channel);
  const Shape& full = view.shape;
  Shape low{};
  for (int a = 0; a < 3; ++a) {
    low[a] = keep_axis[a] ? full[a]
                          : std::max<std::int64_t>(1, static_cast<std::int64_t>(std::nearbyint(static_cast<double>(full[a]) * zoom)));
  }
  if (low == full) return;  // nearest-exact then linear at the same size is the identity
  const auto iz = nearest_exact_indices(full[0], low[0]);
  const auto iy = nearest_exact_indices(full[1], low[1]);
  const auto ix = nearest_exact_indices(full[2], low[2]);
  // Scratch without zero-filling: every element is written before it is read.
  const auto scratch = [](std::int64_t count) { return std::unique_ptr<float[]>(new float[static_cast<std::size_t>(count)]); };
  const std::unique_ptr<float[]> small = scratch(low[0] * low[1] * low[2]);
  std::size_t at = 0;
  for (std::int64_t z = 0; z < low[0]; ++z) {
    for (std::int64_t y = 0; y < low[1]; ++y) {
      const float* row = view.data + (iz[static_cast<std::size_t>(z)] * full[1] + iy[static_cast<std::size_t>(y)]) * full[2];
      for (std::int64_t x = 0; x < low[2]; ++x) small[at++] = row[ix[static_cast<std::size_t>(x)]];
    }
  }
  // Trilinear up = linear along x, then y, then z.
  const std::unique_ptr<float[]> up_x = scratch(low[0] * low[1] * full[2]);
  linear_resize_axis(small.get(), low[0] * low[1], low[2], 1, up_x.get(), full[2]);
  const std::unique_ptr<float[]> up_y = scratch(low[0] * full[1] * full[2]);
  linear_resize_axis(up_x.get(), low[0], low[1], full[2], up_y.get(), full[1]);
  linear_resize_axis(up_y.get(), 1, low[0], full[1] * full[2], view.data, full[0]);
}

MLSEG_CPU_CLONES void gamma_channel(torch::Tensor& image, std::int64_t channel, double gamma, bool invert, bool retain_stats) {
  ChannelView view = channel_view(image, channel);
  float* data = view.data;
  const std::int64_t n = view.voxels;
  const float sign = invert ? -1.0f : 1.0f;
  Moments before = moments(data, n);
  if (invert) {
    before.mean = -before.mean;
    std::swap(before.min, before.max);
    before.min = -before.min;
    before.max = -before.max;
  }
  const float minimum = before.min, range = before.max - before.min;
  const float inverse_range = 1.0f / std::max(range, 1e-7f);
  const auto g = static_cast<float>(gamma);
  // The power pass, block by block; with retain_stats each block is summed for the new moments
  // while it is in L1 (min and max are not needed there). x^g = 2^(g log2 x) runs as two loops
  // over the block: one loop doing both has a dependency chain too long for the out-of-order
  // window, and ran at a third of the speed.
  MomentSums after_sums;
  float log_exponent[kBlock], log_t[kBlock], power_exponent[kBlock];
  const auto power = [&](std::int64_t begin, std::int64_t end) {
    const std::int64_t count = end - begin;
    float* const block = data + begin;
    for (std::int64_t i = 0; i < count; ++i) {
      const Log2Parts parts = log2_parts((sign * block[i] - minimum) * inverse_range);
      log_exponent[i] = parts.exponent;
      log_t[i] = parts.t;
    }
    for (std::int64_t i = 0; i < count; ++i) power_exponent[i] = g * log2_from_parts(log_exponent[i], log_t[i]);
    for (std::int64_t i = 0; i < count; ++i) block[i] = fast_exp2(power_exponent[i]) * range + minimum;
  };
  std::int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    power(i, i + kBlock);
    if (retain_stats) after_sums.add_block<false>(data + i);
  }
  power(i, n);
  if (retain_stats) after_sums.add_tail(data + i, n - i);
  float shift = 0.0f, factor = 1.0f;
  if (retain_stats) {
    const Moments after = after_sums.finish(n);
    const double mean_here = after.mean, std_here = after.std;
    factor = static_cast<float>(before.std / std::max(std_here, 1e-7));
    shift = static_cast<float>(before.mean - mean_here * factor);
  }
  // Undo the inversion together with the stats restoration.
  const float a = sign * factor, b = sign * shift;
  if (a == 1.0f && b == 0.0f) return;  // neither inverted nor restored: nothing to undo
  for (std::int64_t i = 0; i < n; ++i) data[i] = a * data[i] + b;
}

void apply_intensity_transforms(torch::Tensor& image, const IntensityTransformOptions& options, AugmentationMode mode,
                                SplitMix64& rng, IntensityRecord* record) {
  IntensityRecord local;
  IntensityRecord& r = record != nullptr ? *record : local;
  r = IntensityRecord{};
  const std::int64_t channels = image.size(0);

  if (rng.uniform() < options.noise_probability()) {
    r.noise = true;
    r.noise_sigma = rng.uniform(options.noise_min_sigma(), options.noise_max_sigma());
    add_gaussian_noise(image, r.noise_sigma, rng);
  }

  if (rng.uniform() < options.blur_probability()) {
    r.blur = true;
    // batchgeneratorsv2 draws the channel flags first, then one sigma per channel and axis.
    for (std::int64_t c = 0; c < channels; ++c) {
      if (rng.uniform() < options.blur_probability_per_channel()) r.blurred_channels.push_back(c);
    }
    for (const std::int64_t c : r.blurred_channels) {
      std::array<double, 3> sigma{};
      for (int axis = 0; axis < 3; ++axis) {
        if (axis == 0 && mode == AugmentationMode::planar_2d) continue;
        sigma[axis] = rng.uniform(options.blur_min_sigma(), options.blur_max_sigma());
      }
      r.blur_sigmas_zyx.push_back(sigma);
      gaussian_blur_channel(image, c, sigma, options.blur_truncate());
    }
  }

  if (rng.uniform() < options.brightness_probability()) {
    r.brightness = true;
    for (std::int64_t c = 0; c < channels; ++c) {
      r.brightness_factors.push_back(
          sample_below_or_above_one(options.brightness_min_factor(), options.brightness_max_factor(), rng));
      multiply_channel(image, c, r.brightness_factors.back());
    }
  }

  if (rng.uniform() < options.contrast_probability()) {
    r.contrast = true;
    for (std::int64_t c = 0; c < channels; ++c) {
      r.contrast_factors.push_back(
          sample_below_or_above_one(options.contrast_min_factor(), options.contrast_max_factor(), rng));
      adjust_channel_contrast(image, c, r.contrast_factors.back(), options.contrast_preserve_range());
    }
  }

  if (rng.uniform() < options.low_resolution_probability()) {
    r.low_resolution = true;
    for (std::int64_t c = 0; c < channels; ++c) {
      if (rng.uniform() < options.low_resolution_probability_per_channel()) r.low_resolution_channels.push_back(c);
    }
    const std::array<bool, 3> keep{mode != AugmentationMode::volume_3d, false, false};
    for (const std::int64_t c : r.low_resolution_channels) {
      r.low_resolution_zooms.push_back(rng.uniform(options.low_resolution_min_zoom(), options.low_resolution_max_zoom()));
      simulate_low_resolution_channel(image, c, r.low_resolution_zooms.back(), keep);
    }
  }

  const auto gamma_stage = [&](double probability, bool invert, bool& fired, std::vector<double>& gammas) {
    if (!(rng.uniform() < probability)) return;
    fired = true;
    for (std::int64_t c = 0; c < channels; ++c) {
      gammas.push_back(sample_below_or_above_one(options.gamma_min(), options.gamma_max(), rng));
      gamma_channel(image, c, gammas.back(), invert, options.gamma_retain_stats());
    }
  };
  gamma_stage(options.inverted_gamma_probability(), true, r.inverted_gamma, r.inverted_gammas);
  gamma_stage(options.gamma_probability(), false, r.gamma, r.gammas);
}

}  // namespace mlseg
