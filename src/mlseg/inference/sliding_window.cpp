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

// What a pass needs before its first tile: the image padded to at least the tile, the tile
// positions (z outermost), the mirror combinations and the importance map.
struct WindowSetup {
  std::array<std::int64_t, 3> tile{}, shape{}, pad_below{}, padded_shape{};
  bool needs_padding = false;
  torch::Tensor image;  // [C, padded], float32 on the results device
  std::vector<std::array<std::int64_t, 3>> positions;
  std::vector<std::vector<std::int64_t>> combinations;
  double passes_per_tile = 1.0;
  torch::Tensor weight;  // [tz, ty, tx]
};

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

// Runs every tile batch through the forwards (mirrors summed) and hands each batch's summed
// logits [B, K, tz, ty, tx] (on the results device) to `accumulate` with the batch's first position index.
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
      batch_buffer = torch::empty({static_cast<std::int64_t>(count), channels, tile[0], tile[1], tile[2]},
                                  s.image.options().pinned_memory(pin_tiles));
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

// The same pass with only one tile's depth of z rows accumulated: a ring of tz rows (image row r
// at ring row r mod tz). Rows below the next tile's z are final and handed to `sink`; every voxel
// sees the same additions in the same order as in sliding_window_pass, so the rows are equal.
void sliding_window_rows_pass(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                              const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink) {
  torch::NoGradGuard no_grad;
  const torch::Device cpu(torch::kCPU);
  const WindowSetup s = setup_window(forwards.size(), image_czyx, options, cpu);
  const auto& tile = s.tile;
  const std::int64_t ring_rows = tile[0];
  rows_per_call = std::max<std::int64_t>(1, rows_per_call);
  torch::Tensor ring;  // [K, tz, padded y, padded x]
  torch::Tensor ring_weight = torch::zeros({ring_rows, s.padded_shape[1], s.padded_shape[2]}, s.weight.options());
  std::int64_t done = 0;  // padded rows below this were handed over
  // The ring rows of padded rows [begin, end) as at most two contiguous runs (ring row, tile row, count).
  auto runs = [ring_rows](std::int64_t begin, std::int64_t end) {
    std::vector<std::array<std::int64_t, 3>> out;
    for (std::int64_t row = begin; row < end;) {
      const std::int64_t at = row % ring_rows;
      const std::int64_t n = std::min(end - row, ring_rows - at);
      out.push_back({at, row - begin, n});
      row += n;
    }
    return out;
  };
  auto flush_until = [&](std::int64_t end) {
    const std::int64_t image_begin = s.pad_below[0], image_end = s.pad_below[0] + s.shape[0];
    for (const auto& [at, offset, n] : runs(done, end)) {
      for (std::int64_t r = 0; r < n; r += rows_per_call) {
        const std::int64_t count = std::min(rows_per_call, n - r);
        const std::int64_t row = done + offset + r;  // padded row of the first
        const std::int64_t lo = std::max(row, image_begin), hi = std::min(row + count, image_end);
        if (lo < hi && ring.defined()) {
          const torch::Tensor weights = ring_weight.slice(0, at + r + lo - row, at + r + hi - row).mul(s.passes_per_tile);
          torch::Tensor rows = ring.slice(1, at + r + lo - row, at + r + hi - row).div(weights);
          if (s.needs_padding) {
            rows = rows.slice(2, s.pad_below[1], s.pad_below[1] + s.shape[1]).slice(3, s.pad_below[2], s.pad_below[2] + s.shape[2]).contiguous();
          }
          require_finite(rows);
          sink(lo - image_begin, rows);
        }
      }
      if (ring.defined()) ring.slice(1, at, at + n).zero_();
      ring_weight.slice(0, at, at + n).zero_();
    }
    done = std::max(done, end);
  };
  for_each_tile_batch(forwards, s, options, cpu, [&](std::size_t first, const torch::Tensor& summed) {
    if (!ring.defined()) ring = torch::zeros({summed.size(1), ring_rows, s.padded_shape[1], s.padded_shape[2]}, s.weight.options());
    for (std::int64_t b = 0; b < summed.size(0); ++b) {
      const auto& p = s.positions[first + static_cast<std::size_t>(b)];
      if (p[0] > done) flush_until(p[0]);  // positions go up in z: no later tile reaches below p[0]
      for (const auto& [at, offset, n] : runs(p[0], p[0] + tile[0])) {
        ring.slice(1, at, at + n)
            .slice(2, p[1], p[1] + tile[1])
            .slice(3, p[2], p[2] + tile[2])
            .addcmul_(summed[b].slice(1, offset, offset + n), s.weight.slice(0, offset, offset + n));
        ring_weight.slice(0, at, at + n).slice(1, p[1], p[1] + tile[1]).slice(2, p[2], p[2] + tile[2]).add_(s.weight.slice(0, offset, offset + n));
      }
    }
  });
  flush_until(s.padded_shape[0]);
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

void sliding_window_logit_rows(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                               const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink) {
  if (forwards.empty()) throw Error("no model to predict with", "pass at least one network / fold");
  if (image_czyx.dim() != 4) throw Error("the image is not [C, Z, Y, X]", kSlidingWindowFix);
  try {
    sliding_window_rows_pass(forwards, image_czyx, options, rows_per_call, sink);
  } catch (const c10::Error& e) {
    if (options.device().is_cpu() || !is_out_of_memory(e)) throw;
    throw Error(options.device().str() + " ran out of memory predicting tiles of " + shape_text(tile_of(options)) + " (" +
                    std::to_string(std::max(1, options.tile_batch())) + " per forward pass)",
                "lower --tile-batch, free the GPU of other processes (nvidia-smi), or predict with --device cpu");
  }
}

namespace {

// The networks' tile forwards for `options`, each network in inference mode while `guards` live.
std::vector<TileForward> network_forwards(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                                          const SlidingWindowOptions& options,
                                          std::vector<std::unique_ptr<InferenceModeGuard>>& guards) {
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
      forwards.push_back([forward = fused_network_tile_forward(network)](const torch::Tensor& tiles) {
        return forward(tiles.to(torch::kBFloat16));
      });
    } else {
      forwards.push_back(autocast_tile_forward(network_tile_forward(network), options.device()));
    }
  }
  return forwards;
}

}  // namespace

torch::Tensor sliding_window_logits(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                                    const SlidingWindowOptions& options) {
  std::vector<std::unique_ptr<InferenceModeGuard>> guards;
  return sliding_window_logits(network_forwards(networks, image_czyx, options, guards), image_czyx, options);
}

void sliding_window_logit_rows(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                               const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink) {
  std::vector<std::unique_ptr<InferenceModeGuard>> guards;
  sliding_window_logit_rows(network_forwards(networks, image_czyx, options, guards), image_czyx, options, rows_per_call, sink);
}

}  // namespace mlseg
