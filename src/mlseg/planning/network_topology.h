#pragma once
// U-Net topology and memory estimate, as nnU-Net v2 plans them:
// get_pool_and_conv_props (experiment_planners/network_topology.py:30-108) and
// PlainConvUNet / ResidualEncoderUNet.compute_conv_feature_map_size (dynamic-network-architectures).
#include <cstdint>
#include <vector>

namespace mlseg {

struct NetworkTopology {
  std::vector<int> pools_per_axis;            ///< times each axis is halved
  std::vector<std::vector<int>> strides;      ///< per stage; stage 0 is all 1
  std::vector<std::vector<int>> kernel_sizes; ///< per stage; the bottleneck's is all 3
  std::vector<std::int64_t> patch_size;       ///< the input patch padded to a multiple of divisible_by
  std::vector<std::int64_t> divisible_by;     ///< 2^pools_per_axis
  int num_stages() const { return static_cast<int>(strides.size()); }
};

/// Pools every axis whose spacing is within 2x of the finest poolable axis and whose size is at
/// least 2*min_edge (a lone axis needs 3*min_edge); kernel 3 once an axis is within 2x of the
/// finest spacing, else 1. `patch_size` may be fractional (a median shape); the result is padded.
NetworkTopology pool_and_conv_topology(const std::vector<double>& spacing, const std::vector<double>& patch_size,
                                       int min_edge);

/// Features per stage: min(base * 2^s, max_features).
std::vector<int> features_per_stage(int num_stages, int base_features, int max_features);

/// Sum of the voxel counts (times channels) of every conv output of one sample: encoder convs,
/// decoder convs, transposed convs and the final segmentation head (nnU-Net plans without deep
/// supervision). Compared against the reference budget per reference batch size.
double conv_feature_map_size(const NetworkTopology& topology, const std::vector<int>& features, int convs_per_stage,
                             int output_channels);

/// ResidualEncoderUNet.compute_conv_feature_map_size (no deep supervision, as nnU-Net's planners
/// build it): the stem (one conv at stage 0's width, full size); per stage, every block's two convs
/// at the size after the stage's stride, plus the first block's skip projection when the width or
/// the size changes; the decoder as the plain one with `decoder_convs` convs per stage.
/// `blocks_per_stage` has at least num_stages entries.
double residual_conv_feature_map_size(const NetworkTopology& topology, const std::vector<int>& features,
                                      const std::vector<int>& blocks_per_stage, int decoder_convs, int output_channels);

}  // namespace mlseg
