#include "mlseg/inference/sliding_window.h"

#include <torch/nn/functional/padding.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "mlseg/core/error.h"
#include "mlseg/core/progress.h"
#include "mlseg/nn/device.h"

namespace mlseg {
namespace {

constexpr const char* kSlidingWindowFix = "check the model's plans.json (patch_size) and the prediction options";

std::array<std::int64_t, 3> tile_of(const SlidingWindowOptions& options) {
  const auto& patch = options.patch_size();
  if (patch.size() == 3) return {patch[0], patch[1], patch[2]};
  if (patch.size() == 2) return {1, patch[0], patch[1]};
  throw Error("the patch size has " + std::to_string(patch.size()) + " axes", "give 3 (zyx) or 2 (yx, 2D network)");
}

/// Restores a network's training mode, deep supervision and device when it goes out of scope.
class InferenceModeGuard {
 public:
  InferenceModeGuard(SegmentationNetwork network, torch::Device device)
      : network_(std::move(network)),
        was_training_(network_->module().is_training()),
        deep_supervision_(network_->deep_supervision()),
        device_(network_device(*network_)) {
    network_->module().eval();
    network_->set_deep_supervision(false);
    if (device_ != device) network_->module().to(device);
  }
  ~InferenceModeGuard() {
    network_->module().train(was_training_);
    network_->set_deep_supervision(deep_supervision_);
    if (network_device(*network_) != device_) network_->module().to(device_);
  }
  InferenceModeGuard(const InferenceModeGuard&) = delete;
  InferenceModeGuard& operator=(const InferenceModeGuard&) = delete;

 private:
  SegmentationNetwork network_;
  bool was_training_;
  bool deep_supervision_;
  torch::Device device_;
};

}  // namespace

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
  const std::array<std::int64_t, 3> tile = tile_of(options);
  const int tile_batch = std::max(1, options.tile_batch());
  const torch::Device device = options.device();
  // Tiles cut on the CPU go to a GPU from page-locked memory, without waiting for it.
  const bool pin_tiles = results_device.is_cpu() && device.is_cuda() && torch::cuda::is_available();
  torch::NoGradGuard no_grad;

  // Pad to at least the tile, centred (nnU-Net pad_nd_image: below = diff // 2).
  const std::array<std::int64_t, 3> shape{image_czyx.size(1), image_czyx.size(2), image_czyx.size(3)};
  std::array<std::int64_t, 3> pad_below{}, padded_shape{};
  bool needs_padding = false;
  for (int a = 0; a < 3; ++a) {
    const std::int64_t diff = std::max<std::int64_t>(0, tile[a] - shape[a]);
    pad_below[a] = diff / 2;
    padded_shape[a] = shape[a] + diff;
    needs_padding = needs_padding || diff > 0;
  }
  torch::Tensor image = image_czyx.to(results_device, torch::kFloat);
  if (needs_padding) {
    torch::Tensor padded = torch::zeros({image.size(0), padded_shape[0], padded_shape[1], padded_shape[2]}, image.options());
    padded.slice(1, pad_below[0], pad_below[0] + shape[0])
        .slice(2, pad_below[1], pad_below[1] + shape[1])
        .slice(3, pad_below[2], pad_below[2] + shape[2])
        .copy_(image);
    image = padded;
  }

  std::array<std::vector<std::int64_t>, 3> steps;
  for (int a = 0; a < 3; ++a) steps[a] = sliding_window_steps(padded_shape[a], tile[a], options.step_size());
  std::vector<std::array<std::int64_t, 3>> positions;
  for (auto z : steps[0])
    for (auto y : steps[1])
      for (auto x : steps[2]) positions.push_back({z, y, x});

  std::vector<int> mirror_axes;
  for (int a : options.mirror_axes()) {
    if (a >= 0 && a <= 2 && tile[a] == 1) continue;  // mirroring a one-voxel axis changes nothing
    mirror_axes.push_back(a);
  }
  const auto combinations = mirror_combinations(mirror_axes);
  const double passes_per_tile = static_cast<double>(forwards.size() * (combinations.size() + 1));

  const torch::Tensor weight =
      options.use_gaussian()
          ? gaussian_importance_map(tile, options.gaussian_sigma_scale(), options.gaussian_max()).to(results_device)
          : torch::ones({tile[0], tile[1], tile[2]}, torch::TensorOptions(results_device).dtype(torch::kFloat));
  torch::Tensor logits;  // [K, padded]: allocated once the first tile says K
  torch::Tensor weight_sum = torch::zeros({padded_shape[0], padded_shape[1], padded_shape[2]}, weight.options());

  std::optional<Progress> progress;
  if (options.show_progress()) progress.emplace("sliding window", static_cast<std::int64_t>(positions.size()), "tiles");
  const std::int64_t channels = image.size(0);
  torch::Tensor batch_buffer;
  for (std::size_t first = 0; first < positions.size(); first += static_cast<std::size_t>(tile_batch)) {
    const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(tile_batch), positions.size() - first);
    // A pinned buffer is taken anew per batch: the caching host allocator reuses it only after
    // its copy to the GPU has finished.
    if (pin_tiles || !batch_buffer.defined() || batch_buffer.size(0) != static_cast<std::int64_t>(count)) {
      batch_buffer = torch::empty({static_cast<std::int64_t>(count), channels, tile[0], tile[1], tile[2]},
                                  image.options().pinned_memory(pin_tiles));
    }
    for (std::size_t b = 0; b < count; ++b) {
      const auto& p = positions[first + b];
      batch_buffer[static_cast<std::int64_t>(b)].copy_(
          image.slice(1, p[0], p[0] + tile[0]).slice(2, p[1], p[1] + tile[1]).slice(3, p[2], p[2] + tile[2]));
    }
    const torch::Tensor tiles = batch_buffer.to(device, /*non_blocking=*/true);
    torch::Tensor summed;
    for (const auto& forward : forwards) {
      auto check = [&](const torch::Tensor& out) {
        if (out.dim() != 5 || out.size(0) != tiles.size(0) || out.size(2) != tile[0] || out.size(3) != tile[1] ||
            out.size(4) != tile[2]) {
          throw Error("the network returned a tile of another shape than its input",
                      "the patch size must be divisible by the network's total stride per axis (re-run `mlseg plan`)");
        }
      };
      torch::Tensor out = forward(tiles);
      check(out);
      out = out.to(torch::kFloat);
      if (!summed.defined()) {
        // A forward may hand back its input (or a view of it): never accumulate into the tiles.
        summed = out.storage().is_alias_of(tiles.storage()) ? out.clone() : out;
      } else {
        summed.add_(out);
      }
      for (const auto& dims : combinations) {
        torch::Tensor mirrored = forward(tiles.flip(dims));
        check(mirrored);
        summed.add_(mirrored.to(torch::kFloat).flip(dims));
      }
    }
    summed = summed.to(results_device);
    if (!logits.defined()) {
      logits = torch::zeros({summed.size(1), padded_shape[0], padded_shape[1], padded_shape[2]}, weight.options());
    }
    for (std::size_t b = 0; b < count; ++b) {
      const auto& p = positions[first + b];
      logits.slice(1, p[0], p[0] + tile[0])
          .slice(2, p[1], p[1] + tile[1])
          .slice(3, p[2], p[2] + tile[2])
          .addcmul_(summed[static_cast<std::int64_t>(b)], weight);
      weight_sum.slice(0, p[0], p[0] + tile[0]).slice(1, p[1], p[1] + tile[1]).slice(2, p[2], p[2] + tile[2]).add_(weight);
    }
    if (progress) progress->advance(static_cast<std::int64_t>(count));
  }
  if (progress) progress->finish();
  // Every pass of a tile added its logits: one division by passes · weights averages them.
  weight_sum.mul_(passes_per_tile);
  logits.div_(weight_sum);
  if (needs_padding) {
    logits = logits.slice(1, pad_below[0], pad_below[0] + shape[0])
                 .slice(2, pad_below[1], pad_below[1] + shape[1])
                 .slice(3, pad_below[2], pad_below[2] + shape[2])
                 .contiguous();
  }
  if (!torch::isfinite(logits).all().item<bool>()) {
    throw Error("the network produced non-finite logits", "check the model (a diverged training gives NaN weights) and the input image");
  }
  return logits.to(torch::kCPU);
}

// "ZxYxX".
std::string shape_text(c10::IntArrayRef sizes) {
  std::string text;
  for (const std::int64_t size : sizes) text += (text.empty() ? "" : "x") + std::to_string(size);
  return text;
}

}  // namespace

torch::Tensor sliding_window_logits(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                                    const SlidingWindowOptions& options) {
  if (forwards.empty()) throw Error("no model to predict with", "pass at least one network / fold");
  if (image_czyx.dim() != 4) throw Error("the image is not [C, Z, Y, X]", kSlidingWindowFix);
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
  std::vector<TileForward> forwards;
  for (const auto& network : networks) {
    if (!network) throw Error("an empty network was passed", "load the checkpoints first");
    const int dimension = network->dimension();
    if ((dimension == 2) != (options.patch_size().size() == 2)) {
      throw Error("a " + std::to_string(dimension) + "D network with a " + std::to_string(options.patch_size().size()) + "-axis patch",
                  kSlidingWindowFix);
    }
    if (network->input_channels() != image_czyx.size(0)) {
      throw Error("the network takes " + std::to_string(network->input_channels()) + " image channels, the image has " +
                      std::to_string(image_czyx.size(0)),
                  "pass the image channels the model was trained on");
    }
    guards.push_back(std::make_unique<InferenceModeGuard>(network, options.device()));
    const bool bf16 = options.precision() == Precision::bf16;
    const bool fused = !bf16 && options.fused_forward() && options.device().is_cpu() && network->has_fused_forward();
    TileForward forward = fused ? fused_network_tile_forward(network) : network_tile_forward(network);
    forwards.push_back(bf16 ? autocast_tile_forward(std::move(forward), options.device()) : std::move(forward));
  }
  return sliding_window_logits(forwards, image_czyx, options);
}

}  // namespace mlseg
