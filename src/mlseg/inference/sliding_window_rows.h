#pragma once
// The sliding window as a stream of finished z rows (the slab path of `mlseg predict`,
// slab_prediction.h): only one tile's depth of logits is accumulated, in a ring.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "mlseg/inference/sliding_window.h"

namespace mlseg {

/// Receives finished logit rows: float32 [K, n, Y, X] (CPU) for z rows [z_begin, z_begin + n) of the image.
using LogitRowsSink = std::function<void(std::int64_t z_begin, const torch::Tensor& logits)>;

/// sliding_window_logits's logits handed to `sink` in z order, at most `rows_per_call` rows per
/// call, as soon as no later tile reaches them: only one tile's depth of rows is accumulated
/// (K · tile z · Y · X float32, a ring) instead of the whole volume. The rows are equal to
/// sliding_window_logits's (the same additions per voxel in the same order). The accumulators are
/// on the CPU; tiles are predicted on options.device(). Throws as sliding_window_logits.
void sliding_window_logit_rows(const std::vector<TileForward>& forwards, const torch::Tensor& image_czyx,
                               const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink);
void sliding_window_logit_rows(const std::vector<SegmentationNetwork>& networks, const torch::Tensor& image_czyx,
                               const SlidingWindowOptions& options, std::int64_t rows_per_call, const LogitRowsSink& sink);

}  // namespace mlseg
