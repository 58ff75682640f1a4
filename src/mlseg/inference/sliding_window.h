#pragma once
// Sliding-window prediction (nnU-Net v2 inference/sliding_window_prediction.py and
// predict_from_raw_data.py): tiles of the patch size at evenly spread positions, Gaussian
// importance weighting, mirroring test-time augmentation, several models averaged as logits.
// Accumulators are float32 (nnU-Net's are fp16 on the device), on the device while memory
// allows, as nnU-Net's perform_everything_on_device.
#include <torch/arg.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "mlseg/nn/precision.h"
#include "mlseg/nn/segmentation_network.h"

namespace mlseg {

/// nnU-Net's defaults (predict_from_raw_data.py:42-45, sliding_window_prediction.py:10-27).
inline constexpr double kDefaultStepSize = 0.5;
inline constexpr double kDefaultGaussianSigmaScale = 1.0 / 8.0;
inline constexpr double kDefaultGaussianMax = 10.0;

struct SlidingWindowOptions {
  explicit SlidingWindowOptions(std::vector<std::int64_t> patch_size) : patch_size_(std::move(patch_size)) {}

  /// The tile: 3 values (z, y, x) for a 3D network, or 2 (y, x) for a 2D network, which then
  /// predicts the volume slice by slice (a tile of one slice at every z).
  TORCH_ARG(std::vector<std::int64_t>, patch_size);
  /// --step-size: tile step as a fraction of the tile (nnU-Net: 0.5); in (0, 1].
  TORCH_ARG(double, step_size) = kDefaultStepSize;
  /// false: every tile weighs 1 (MONAI's "constant" mode).
  TORCH_ARG(bool, use_gaussian) = true;
  /// σ = tile · gaussian_sigma_scale per axis.
  TORCH_ARG(double, gaussian_sigma_scale) = kDefaultGaussianSigmaScale;
  /// The Gaussian's maximum (nnU-Net scales to 10; the result does not depend on it).
  TORCH_ARG(double, gaussian_max) = kDefaultGaussianMax;
  /// --tile-batch: tiles per forward pass.
  TORCH_ARG(int, tile_batch) = 1;
  /// Spatial axes of the [Z, Y, X] volume (0 = z, 1 = y, 2 = x) to mirror for test-time
  /// augmentation: every non-empty combination is predicted and averaged with the plain pass.
  /// Empty: no mirroring. Axes along which the tile is one voxel thick (z of a 2D network) are skipped.
  TORCH_ARG(std::vector<int>, mirror_axes);
  /// Where tiles are predicted (and accumulated, see below); the result comes back on the CPU.
  TORCH_ARG(torch::Device, device) = torch::Device(torch::kCPU);
  /// nnU-Net's perform_everything_on_device: on a GPU the image and the logit and weight
  /// accumulators live on device() too. When that runs out of device memory (a large image), the
  /// call says so on stderr and starts over with them on the CPU, the tiles still predicted on
  /// device(), as nnU-Net does. false: on the CPU from the start. No effect when device() is the CPU.
  TORCH_ARG(bool, perform_everything_on_device) = true;
  /// Networks with a fused forward (SegmentationNetworkImpl::has_fused_forward) run it on the CPU
  /// (InstanceNorm + LeakyReLU fused, same result up to float rounding) instead of the module's forward.
  TORCH_ARG(bool, fused_forward) = true;
  /// The network's arithmetic: bf16 runs the fused forward on bfloat16 tiles (CPU with bf16
  /// instructions, nn/precision.h), else the module's forward under bf16 autocast; the logits are
  /// accumulated in float32 either way.
  TORCH_ARG(Precision, precision) = Precision::fp32;
  /// A progress line over tiles on stderr.
  TORCH_ARG(bool, show_progress) = false;
};

/// One forward pass: tiles [B, C, tz, ty, tx] (on the options' device) → logits [B, K, tz, ty, tx].
using TileForward = std::function<torch::Tensor(const torch::Tensor& tiles)>;

/// `forward` under bf16 autocast on `device`, its logits returned as float32.
TileForward autocast_tile_forward(TileForward forward, const torch::Device& device);

/// Start positions along one axis (nnU-Net compute_steps_for_sliding_window):
/// n = ceil((size − tile) / (tile · step)) + 1 positions, spread evenly over [0, size − tile]
/// and rounded half to even; one position when size <= tile. A tile of 1 visits every index.
std::vector<std::int64_t> sliding_window_steps(std::int64_t size, std::int64_t tile, double step_size);

/// The importance map [tz, ty, tx] float32 (nnU-Net compute_gaussian): a centred delta
/// (at tile / 2) filtered with σ = tile · sigma_scale per axis (truncated at 4σ, as scipy's
/// gaussian_filter), scaled so that its maximum is `max_value`, zeros replaced by the smallest
/// nonzero value.
torch::Tensor gaussian_importance_map(const std::array<std::int64_t, 3>& tile_zyx, double sigma_scale = kDefaultGaussianSigmaScale,
                                      double max_value = kDefaultGaussianMax);

/// The mirror combinations test-time augmentation predicts: every non-empty subset of `axes`
/// (as tensor dims of a [B, C, Z, Y, X] batch, i.e. axis + 2), in nnU-Net's order (singles, then pairs, ...).
std::vector<std::vector<std::int64_t>> mirror_combinations(const std::vector<int>& axes);

/// Logits float32 [K, Z, Y, X] (CPU) of `image_czyx` ([C, Z, Y, X], any float dtype): the tiles'
/// outputs weighted by the importance map, each tile's prediction averaged over the mirror
/// combinations and over `forwards` (several models: averaged as logits), divided by the summed
/// weights. The image is padded with zeros (centred) to at least the tile and the padding cut
/// off again. Throws mlseg::Error for an empty `forwards`, a bad step or tile, a forward that
/// returns another spatial shape, or a device that runs out of memory even with the accumulators
/// on the CPU (naming --tile-batch and --device cpu).
torch::Tensor sliding_window_logits(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                                    const SlidingWindowOptions& options);

/// The same with networks: each is run without gradients, in eval mode, without deep
/// supervision (its previous mode is restored afterwards), moved to options.device() for the
/// call (and back). A 2D network sees [B, C, ty, tx].
torch::Tensor sliding_window_logits(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                                    const SlidingWindowOptions& options);

/// The TileForward of a network (no mode changes; a 2D network's tiles have their z axis squeezed).
TileForward network_tile_forward(const SegmentationNetwork& network);

/// The same through the network's fused CPU forward (full-resolution logits, no autograd); the
/// network's parameters are read at each call, so training in between is seen. Throws
/// mlseg::Error when the network has none.
TileForward fused_network_tile_forward(const SegmentationNetwork& network);

}  // namespace mlseg
