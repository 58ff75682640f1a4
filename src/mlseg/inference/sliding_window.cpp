#include "mlseg/inference/sliding_window.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>

#include "mlseg/core/error.h"
#include "mlseg/inference/block_reuse.h"
#include "mlseg/inference/sliding_window_tiles.h"
#include "mlseg/nn/device.h"

namespace mlseg {

using namespace detail;

std::vector<std::int64_t> sliding_window_steps(std::int64_t size, std::int64_t tile, double step_size) {
  if (tile < 1 || size < 1) throw Error("tile " + std::to_string(tile) + " or size " + std::to_string(size) + " below 1", kSlidingWindowFix);
  if (!(step_size > 0.0) || step_size > 1.0) {
    throw Error("--step-size is " + std::to_string(step_size), "use a fraction of the tile in (0, 1] (nnU-Net: 0.5)");
  }
  std::vector<std::int64_t> steps;
  if (tile == 1) {
    for (std::int64_t i = 0; i < size; ++i) steps.push_back(i);
    return steps;
  }
  if (size <= tile) return {0};
  const double target_step = static_cast<double>(tile) * step_size;
  const auto count = static_cast<std::int64_t>(std::ceil(static_cast<double>(size - tile) / target_step)) + 1;
  const double actual_step = static_cast<double>(size - tile) / static_cast<double>(count - 1);
  for (std::int64_t i = 0; i < count; ++i) {
    // np.round: half to even (the default rounding mode of nearbyint).
    steps.push_back(static_cast<std::int64_t>(std::nearbyint(actual_step * static_cast<double>(i))));
  }
  return steps;
}

torch::Tensor gaussian_importance_map(const std::array<std::int64_t, 3>& tile_zyx, double sigma_scale, double max_value) {
  // The filtered delta is separable: the product of three sampled, truncated 1D Gaussians.
  std::array<torch::Tensor, 3> factors;
  for (int axis = 0; axis < 3; ++axis) {
    const std::int64_t n = tile_zyx[axis];
    if (n < 1) throw Error("tile size below 1", kSlidingWindowFix);
    const std::int64_t center = n / 2;
    const double sigma = static_cast<double>(n) * sigma_scale;
    const auto radius = static_cast<std::int64_t>(4.0 * sigma + 0.5);  // scipy: truncate = 4
    std::vector<double> values(static_cast<std::size_t>(n), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t d = i - center;
      if (std::abs(d) <= radius) values[static_cast<std::size_t>(i)] = sigma > 0 ? std::exp(-0.5 * double(d * d) / (sigma * sigma)) : (d == 0);
    }
    factors[axis] = torch::tensor(values, torch::kDouble);
  }
  torch::Tensor map = factors[0].view({-1, 1, 1}) * factors[1].view({1, -1, 1}) * factors[2].view({1, 1, -1});
  map = map / map.max() * max_value;
  map = map.to(torch::kFloat);
  const torch::Tensor nonzero = map > 0;
  if (!nonzero.all().item<bool>()) {
    const float smallest = map.masked_select(nonzero).min().item<float>();
    map.masked_fill_(~nonzero, smallest);
  }
  return map.contiguous();
}

std::vector<std::vector<std::int64_t>> mirror_combinations(const std::vector<int>& axes) {
  std::vector<int> unique;
  for (int a : axes) {
    if (a < 0 || a > 2) throw Error("mirror axis " + std::to_string(a) + " is not 0 (z), 1 (y) or 2 (x)", "fix the model's mirror_axes");
    if (std::find(unique.begin(), unique.end(), a) == unique.end()) unique.push_back(a);
  }
  std::vector<std::vector<std::int64_t>> combinations;
  const int n = static_cast<int>(unique.size());
  // itertools.combinations for sizes 1..n, lexicographic within a size.
  for (int size = 1; size <= n; ++size) {
    std::vector<int> index(static_cast<std::size_t>(size));
    for (int i = 0; i < size; ++i) index[i] = i;
    while (true) {
      std::vector<std::int64_t> combination;
      for (int i : index) combination.push_back(unique[i] + 2);
      combinations.push_back(combination);
      int i = size - 1;
      while (i >= 0 && index[i] == n - size + i) --i;
      if (i < 0) break;
      ++index[i];
      for (int j = i + 1; j < size; ++j) index[j] = index[j - 1] + 1;
    }
  }
  return combinations;
}

TileForward network_tile_forward(const SegmentationNetwork& network) {
  SegmentationNetwork net = network;
  if (net->dimension() == 2) {
    return [net](const torch::Tensor& tiles) { return net->forward(tiles.squeeze(2)).front().unsqueeze(2); };
  }
  return [net](const torch::Tensor& tiles) { return net->forward(tiles).front(); };
}

TileForward fused_network_tile_forward(const SegmentationNetwork& network) {
  SegmentationNetwork net = network;
  if (!net || !net->has_fused_forward()) {
    throw Error((net ? net->class_name() : std::string("an empty network")) + " has no fused inference forward",
                "use network_tile_forward (the module's forward)");
  }
  if (net->dimension() == 2) {
    return [net](const torch::Tensor& tiles) { return net->fused_forward(tiles.squeeze(2)).unsqueeze(2); };
  }
  return [net](const torch::Tensor& tiles) { return net->fused_forward(tiles); };
}

TileForward autocast_tile_forward(TileForward forward, const torch::Device& device) {
  return [forward = std::move(forward), device](const torch::Tensor& tiles) {
    const AutocastScope autocast(Precision::bf16, device);
    return forward(tiles).to(torch::kFloat);
  };
}

namespace {

// One sliding-window pass with the image and the accumulators on `results_device` (options.device()
// or, in nnU-Net's fallback, the CPU); tiles are predicted on options.device().
torch::Tensor sliding_window_pass(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                                  const SlidingWindowOptions& options, const torch::Device& results_device) {
  torch::NoGradGuard no_grad;
  const WindowSetup s = setup_window(forwards.size(), image_czyx, options, results_device);
  const auto& tile = s.tile;
  torch::Tensor logits;  // [K, padded]: allocated once the first tile says K
  torch::Tensor weight_sum = torch::zeros({s.padded_shape[0], s.padded_shape[1], s.padded_shape[2]}, s.weight.options());
  for_each_tile_batch(forwards, s, options, results_device, [&](std::size_t first, const torch::Tensor& summed) {
    if (!logits.defined()) {
      logits = torch::zeros({summed.size(1), s.padded_shape[0], s.padded_shape[1], s.padded_shape[2]}, s.weight.options());
    }
    for (std::int64_t b = 0; b < summed.size(0); ++b) {
      const auto& p = s.positions[first + static_cast<std::size_t>(b)];
      logits.slice(1, p[0], p[0] + tile[0])
          .slice(2, p[1], p[1] + tile[1])
          .slice(3, p[2], p[2] + tile[2])
          .addcmul_(summed[b], s.weight);
      weight_sum.slice(0, p[0], p[0] + tile[0]).slice(1, p[1], p[1] + tile[1]).slice(2, p[2], p[2] + tile[2]).add_(s.weight);
    }
  });
  // Every pass of a tile added its logits: one division by passes · weights averages them.
  weight_sum.mul_(s.passes_per_tile);
  logits.div_(weight_sum);
  if (s.needs_padding) {
    logits = logits.slice(1, s.pad_below[0], s.pad_below[0] + s.shape[0])
                 .slice(2, s.pad_below[1], s.pad_below[1] + s.shape[1])
                 .slice(3, s.pad_below[2], s.pad_below[2] + s.shape[2])
                 .contiguous();
  }
  require_finite(logits);
  return logits.to(torch::kCPU);
}

}  // namespace

torch::Tensor sliding_window_logits(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                                    const SlidingWindowOptions& options) {
  check_window_inputs(forwards, image_czyx);
  const BlockReuseScope reuse;  // the tiles' activations reuse each other's memory (block_reuse.h)
  const torch::Device device = options.device();
  if (!device.is_cpu() && options.perform_everything_on_device()) {
    try {
      return sliding_window_pass(forwards, image_czyx, options, device);
    } catch (const c10::Error& e) {
      if (!is_out_of_memory(e)) throw;
      // nnU-Net (predict_sliding_window_return_logits): results arrays to the CPU, tiles on the device.
      std::cerr << "mlseg: " << device.str() << " ran out of memory for the sliding window over a "
                << shape_text(image_czyx.sizes().slice(1))
                << " image with its accumulators on the device: predicting again with them on the CPU (slower)\n";
    }
  }
  try {
    return sliding_window_pass(forwards, image_czyx, options, device.is_cpu() ? device : torch::Device(torch::kCPU));
  } catch (const c10::Error& e) {
    if (device.is_cpu() || !is_out_of_memory(e)) throw;
    throw Error(device.str() + " ran out of memory predicting tiles of " + shape_text(tile_of(options)) + " (" +
                    std::to_string(std::max(1, options.tile_batch())) + " per forward pass), with the accumulators on the CPU",
                "lower --tile-batch, free the GPU of other processes (nvidia-smi), or predict with --device cpu");
  }
}

torch::Tensor sliding_window_logits(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                                    const SlidingWindowOptions& options) {
  std::vector<std::unique_ptr<InferenceModeGuard>> guards;
  return sliding_window_logits(network_forwards(networks, image_czyx, options, guards), image_czyx, options);
}

}  // namespace mlseg
