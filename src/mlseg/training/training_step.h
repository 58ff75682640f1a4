#pragma once
// The pieces one training or validation step is made of: network input/output layout (2D
// networks see [B, C, Y, X]), loss targets per deep-supervision scale from a batch's label codes,
// mixed precision (nn/precision.h), and predicted channel masks from logits.
#include <torch/types.h>

#include <array>
#include <vector>

#include "mlseg/labels/label_encoding.h"
#include "mlseg/nn/precision.h"  // Precision, AutocastScope (used with these pieces)

namespace mlseg {

/// [B, C, z, y, x] batch → what a `dimension`-D network takes (2D: z, which must be 1, dropped).
torch::Tensor network_input(const torch::Tensor& batch_image, int dimension);
/// A network output back to [B, K, z, y, x].
torch::Tensor network_output_5d(const torch::Tensor& output, int dimension);

/// Loss targets of one scale, stacked over the batch: `target` [B, C, ...] float (sigmoid) or
/// [B, 1, ...] int64 class indices (softmax, powerset); `annotated` [B, 1, ...] float, undefined when no voxel of the
/// batch is ignored.
struct ScaleTargets {
  torch::Tensor target;
  torch::Tensor annotated;
};

/// Targets for every deep-supervision scale (full resolution first), in the network's layout
/// (2D: [B, C, Y, X]). `codes` [B, W, z, y, x]; `scales_zyx` from deep_supervision_scales (one
/// entry {1, 1, 1} when deep supervision is off).
std::vector<ScaleTargets> batch_targets(const torch::Tensor& codes, const LabelEncoding& encoding,
                                        const std::vector<std::array<double, 3>>& scales_zyx, int dimension,
                                        const torch::Device& device);

/// Deep-supervision scales of a plans.json configuration's network (strides per stage; 2D
/// strides get z = 1).
std::vector<std::array<double, 3>> network_deep_supervision_scales(const std::vector<std::vector<std::int64_t>>& strides,
                                                                   int dimension);

}  // namespace mlseg
