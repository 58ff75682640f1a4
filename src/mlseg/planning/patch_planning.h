#pragma once
// Patch and batch size for one configuration (nnU-Net v2 get_plans_for_configuration, P:228-378):
// an initial patch of 256^3 (2D 2048^2) voxels with aspect 1/spacing, clipped to the median
// shape; shrunk until the network's feature-map estimate (PlainConvUNet, or ResidualEncoderUNet for
// the ResEnc planners) fits the budget; then the batch size.
#include <vector>

#include "mlseg/planning/network_topology.h"
#include "mlseg/planning/plan_options.h"

namespace mlseg {

struct PatchPlan {
  std::vector<double> spacing;       ///< mm, axes as planned (zyx after transpose; 2D: yx)
  std::vector<double> median_shape;  ///< voxels at `spacing`
  NetworkTopology topology;
  std::vector<int> features;
  double feature_map_size = 0;  ///< conv_feature_map_size of one sample at topology.patch_size
  double budget = 0;            ///< feature-map budget for the reference batch size
  int batch_size = 0;
  int shrink_steps = 0;  ///< how often the patch was shrunk to fit
};

/// The feature-map budget of `dimensions` (2 or 3) under `options` (preset and GPU memory).
double feature_map_budget(int dimensions, const PlanOptions& options);

/// `dataset_voxels`: approximate voxels of the whole dataset at `spacing` (median shape x cases).
/// `output_channels`: the network's outputs (softmax: channels + background).
PatchPlan plan_patch_and_batch(const std::vector<double>& spacing, const std::vector<double>& median_shape,
                               double dataset_voxels, int output_channels, const PlanOptions& options);

}  // namespace mlseg
