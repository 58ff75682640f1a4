#pragma once
// The cascade's augmentation of the previous stage's prediction (nnU-Net v2's 3d_cascade_fullres
// training: batchgeneratorsv2's ApplyRandomBinaryOperatorTransform and
// RemoveRandomConnectedComponentFromOneHotEncodingTransform), and the binary morphology with a
// ball that it needs.
//
// The morphology runs on the exact Euclidean distance transform (metrics/distance_transform.h),
// not a convolution: a radius-8 ball has 2,109 voxels, the transform's cost does not depend on the
// radius. Borders follow batchgeneratorsv2's zero-padded 'same' convolution: outside the patch is
// background for dilation, and erosion = NOT dilate(NOT mask), so the patch border does not erode.
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "mlseg/core/random.h"
#include "mlseg/data/augmentation_options.h"

namespace mlseg {

/// ApplyRandomBinaryOperatorTransform's operators, in its order (the draw picks one by index).
enum class BinaryOperator { dilation, erosion, closing, opening };

/// "dilation", "erosion", "closing" or "opening" (for logs).
const char* binary_operator_name(BinaryOperator op);

// Binary morphology with the ball of real radius r in voxels: the offsets with dz² + dy² + dx² <= r²
// (on a one-slice mask [1, Y, X], the in-plane disk). `mask` is [Z, Y, X] bool or uint8 on the
// CPU, nonzero is foreground; each returns a new bool [Z, Y, X]. r must be finite and >= 0 (0 is the
// identity). `threads`: one by default, since the training loader already runs a sample per core;
// <= 0 means all cores.

/// Voxels within r of a foreground voxel; outside the patch is background.
torch::Tensor dilate_ball(const torch::Tensor& mask, double radius, int threads = 1);
/// Foreground voxels farther than r from every background voxel of the patch; outside the patch
/// is not background, so an all-foreground patch stays all foreground.
torch::Tensor erode_ball(const torch::Tensor& mask, double radius, int threads = 1);
/// dilate_ball(erode_ball(mask)).
torch::Tensor open_ball(const torch::Tensor& mask, double radius, int threads = 1);
/// erode_ball(dilate_ball(mask)).
torch::Tensor close_ball(const torch::Tensor& mask, double radius, int threads = 1);
/// One of the four, by `op`.
torch::Tensor apply_binary_operator(const torch::Tensor& mask, BinaryOperator op, double radius, int threads = 1);

/// What the cascade stage drew for one sample. Channels index the K priors, in the order they were
/// processed (a random permutation, as nnU-Net's np.random.shuffle).
struct CascadeRecord {
  bool binary_operator = false;  ///< the per-sample draw of the binary operator transform fired
  std::vector<std::int64_t> operated_channels;
  std::vector<BinaryOperator> operators;  ///< per operated channel
  std::vector<double> structure_radii;    ///< per operated channel, in voxels
  bool remove_component = false;          ///< the per-sample draw of the removal fired
  std::vector<std::int64_t> removal_channels;
  /// Per removal channel: voxels of the removed component; 0 when the channel had no foreground or
  /// no component below remove_component_max_fraction of the patch.
  std::vector<std::int64_t> removed_component_voxels;
};

/// The random binary operator, then the removal of a random connected component, on `priors`
/// (float32 [K, Z, Y, X] on the CPU, nonzero is foreground; written in place with 0 / 1, a view
/// into a larger tensor is fine), with nnU-Net's draws in nnU-Net's order from `rng`. With
/// options.exclusive_priors() voxels an operator adds to one channel are cleared in the others.
void apply_cascade_transforms(torch::Tensor& priors, const CascadeAugmentationOptions& options, SplitMix64& rng,
                              CascadeRecord* record = nullptr);

}  // namespace mlseg
