#pragma once
// The tile loop of the sliding window, shared by the whole-volume pass (sliding_window.cpp) and the
// z-row stream (sliding_window_rows.cpp): the image padded to the tile, the tile positions, the
// forwards run over tile batches with their mirrors, and the networks held in inference mode.
// Internal to inference/.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mlseg/inference/sliding_window.h"

namespace mlseg::detail {

inline constexpr const char* kSlidingWindowFix = "check the model's plans.json (patch_size) and the prediction options";

/// The tile [tz, ty, tx] of `options` (a 2D patch is one slice thick). Throws for other axis counts.
std::array<std::int64_t, 3> tile_of(const SlidingWindowOptions& options);

/// Throws for an empty `forwards` or an image that is not [C, Z, Y, X].
void check_window_inputs(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx);

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

/// The setup for `num_forwards` forwards, the image and weights on `results_device`.
WindowSetup setup_window(std::size_t num_forwards, const torch::Tensor& image_czyx, const SlidingWindowOptions& options,
                         const torch::Device& results_device);

/// Runs every tile batch through the forwards (mirrors summed) and hands each batch's summed
/// logits [B, K, tz, ty, tx] (on the results device) to `accumulate` with the batch's first position index.
void for_each_tile_batch(const std::vector<TileForward>& forwards, const WindowSetup& s, const SlidingWindowOptions& options,
                         const torch::Device& results_device,
                         const std::function<void(std::size_t first, const torch::Tensor& summed)>& accumulate);

/// Throws mlseg::Error when `logits` holds a NaN or an infinity (a diverged model).
void require_finite(const torch::Tensor& logits);

/// "ZxYxX".
std::string shape_text(c10::IntArrayRef sizes);

/// The networks' tile forwards for `options` (fused, bf16 or autocast as asked), each network in
/// inference mode while `guards` live. Throws for an empty network, a 2D/3D mismatch with the
/// patch, or another number of image channels.
std::vector<TileForward> network_forwards(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                                          const SlidingWindowOptions& options, std::vector<std::unique_ptr<InferenceModeGuard>>& guards);

}  // namespace mlseg::detail
