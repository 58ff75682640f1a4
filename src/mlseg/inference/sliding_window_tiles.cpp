#include "mlseg/inference/sliding_window_tiles.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>

#include "mlseg/core/error.h"
#include "mlseg/core/progress.h"
#include "mlseg/nn/device.h"

namespace mlseg::detail {

std::array<std::int64_t, 3> tile_of(const SlidingWindowOptions& options) {
  const auto& patch = options.patch_size();
  if (patch.size() == 3) return {patch[0], patch[1], patch[2]};
  if (patch.size() == 2) return {1, patch[0], patch[1]};
  throw Error("the patch size has " + std::to_string(patch.size()) + " axes", "give 3 (zyx) or 2 (yx, 2D network)");
}

void check_window_inputs(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx) {
  if (forwards.empty()) throw Error("no model to predict with", "pass at least one network / fold");
  if (image_czyx.dim() != 4) throw Error("the image is not [C, Z, Y, X]", kSlidingWindowFix);
}

WindowSetup setup_window(std::size_t num_forwards, const torch::Tensor& image_czyx, const SlidingWindowOptions& options,
                         const torch::Device& results_device) {
  WindowSetup s;
  s.tile = tile_of(options);
  // Pad to at least the tile, centred (nnU-Net pad_nd_image: below = diff // 2).
  s.shape = {image_czyx.size(1), image_czyx.size(2), image_czyx.size(3)};
  for (int a = 0; a < 3; ++a) {
    const std::int64_t diff = std::max<std::int64_t>(0, s.tile[a] - s.shape[a]);
    s.pad_below[a] = diff / 2;
    s.padded_shape[a] = s.shape[a] + diff;
    s.needs_padding = s.needs_padding || diff > 0;
  }
  s.image = image_czyx.to(results_device, torch::kFloat);
  if (s.needs_padding) {
    torch::Tensor padded = torch::zeros({s.image.size(0), s.padded_shape[0], s.padded_shape[1], s.padded_shape[2]}, s.image.options());
    padded.slice(1, s.pad_below[0], s.pad_below[0] + s.shape[0])
        .slice(2, s.pad_below[1], s.pad_below[1] + s.shape[1])
        .slice(3, s.pad_below[2], s.pad_below[2] + s.shape[2])
        .copy_(s.image);
    s.image = padded;
  }
  std::array<std::vector<std::int64_t>, 3> steps;
  for (int a = 0; a < 3; ++a) steps[a] = sliding_window_steps(s.padded_shape[a], s.tile[a], options.step_size());
  for (auto z : steps[0])
    for (auto y : steps[1])
      for (auto x : steps[2]) s.positions.push_back({z, y, x});
  std::vector<int> mirror_axes;
  for (int a : options.mirror_axes()) {
    if (a >= 0 && a <= 2 && s.tile[a] == 1) continue;  // mirroring a one-voxel axis changes nothing
    mirror_axes.push_back(a);
  }
  s.combinations = mirror_combinations(mirror_axes);
  s.passes_per_tile = static_cast<double>(num_forwards * (s.combinations.size() + 1));
  s.weight = options.use_gaussian()
                 ? gaussian_importance_map(s.tile, options.gaussian_sigma_scale(), options.gaussian_max()).to(results_device)
                 : torch::ones({s.tile[0], s.tile[1], s.tile[2]}, torch::TensorOptions(results_device).dtype(torch::kFloat));
  return s;
}

void for_each_tile_batch(const std::vector<TileForward>& forwards, const WindowSetup& s, const SlidingWindowOptions& options,
                         const torch::Device& results_device,
                         const std::function<void(std::size_t first, const torch::Tensor& summed)>& accumulate) {
  const auto& tile = s.tile;
  const int tile_batch = std::max(1, options.tile_batch());
  const torch::Device device = options.device();
  // Tiles cut on the CPU go to a GPU from page-locked memory, without waiting for it.
  const bool pin_tiles = results_device.is_cpu() && device.is_cuda() && torch::cuda::is_available();
  std::optional<Progress> progress;
  if (options.show_progress()) progress.emplace("sliding window", static_cast<std::int64_t>(s.positions.size()), "tiles");
  const std::int64_t channels = s.image.size(0);
  torch::Tensor batch_buffer;
  for (std::size_t first = 0; first < s.positions.size(); first += static_cast<std::size_t>(tile_batch)) {
    const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(tile_batch), s.positions.size() - first);
    // A pinned buffer is taken anew per batch: the caching host allocator reuses it only after
    // its copy to the GPU has finished.
    if (pin_tiles || !batch_buffer.defined() || batch_buffer.size(0) != static_cast<std::int64_t>(count)) {
      batch_buffer =
          torch::empty({static_cast<std::int64_t>(count), channels, tile[0], tile[1], tile[2]}, s.image.options().pinned_memory(pin_tiles));
    }
    for (std::size_t b = 0; b < count; ++b) {
      const auto& p = s.positions[first + b];
      batch_buffer[static_cast<std::int64_t>(b)].copy_(
          s.image.slice(1, p[0], p[0] + tile[0]).slice(2, p[1], p[1] + tile[1]).slice(3, p[2], p[2] + tile[2]));
    }
    const torch::Tensor tiles = batch_buffer.to(device, /*non_blocking=*/true);
    torch::Tensor summed;
    for (const auto& forward : forwards) {
      auto check = [&](const torch::Tensor& out) {
        if (out.dim() != 5 || out.size(0) != tiles.size(0) || out.size(2) != tile[0] || out.size(3) != tile[1] || out.size(4) != tile[2]) {
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
      for (const auto& dims : s.combinations) {
        torch::Tensor mirrored = forward(tiles.flip(dims));
        check(mirrored);
        summed.add_(mirrored.to(torch::kFloat).flip(dims));
      }
    }
    accumulate(first, summed.to(results_device));
    if (progress) progress->advance(static_cast<std::int64_t>(count));
  }
  if (progress) progress->finish();
}

void require_finite(const torch::Tensor& logits) {
  if (!torch::isfinite(logits).all().item<bool>()) {
    throw Error("the network produced non-finite logits", "check the model (a diverged training gives NaN weights) and the input image");
  }
}

std::string shape_text(c10::IntArrayRef sizes) {
  std::string text;
  for (const std::int64_t size : sizes) text += (text.empty() ? "" : "x") + std::to_string(size);
  return text;
}

std::vector<TileForward> network_forwards(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                                          const SlidingWindowOptions& options, std::vector<std::unique_ptr<InferenceModeGuard>>& guards) {
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
    const bool fused = options.fused_forward() && options.device().is_cpu() && network->has_fused_forward();
    if (!bf16) {
      forwards.push_back(fused ? fused_network_tile_forward(network) : network_tile_forward(network));
    } else if (fused && cpu_bf16_support().any()) {
      // The fused forward computes in bfloat16 when its tiles are (oneDNN's bf16 kernels need AVX-512).
      forwards.push_back(
          [forward = fused_network_tile_forward(network)](const torch::Tensor& tiles) { return forward(tiles.to(torch::kBFloat16)); });
    } else {
      forwards.push_back(autocast_tile_forward(network_tile_forward(network), options.device()));
    }
  }
  return forwards;
}

}  // namespace mlseg::detail
