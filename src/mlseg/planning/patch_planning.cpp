#include "mlseg/planning/patch_planning.h"

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"

namespace mlseg {

double feature_map_budget(int dimensions, const PlanOptions& options) {
  const double reference = dimensions == 2 ? options.reference_feature_map_2d : options.reference_feature_map_3d;
  if (options.preset == PlanPreset::cpu) return reference * options.cpu_budget_fraction;
  return reference * options.gpu_memory_gb / options.reference_gpu_memory_gb;
}

PatchPlan plan_patch_and_batch(const std::vector<double>& spacing, const std::vector<double>& median_shape,
                               double dataset_voxels, int output_channels, const PlanOptions& options) {
  const std::size_t dim = spacing.size();
  for (double s : spacing) {
    if (!(s > 0)) throw Error("a target spacing is not positive", "check the spacings in the images' headers (mlseg verify)");
  }
  const int max_features = dim == 2 ? options.max_features_2d : options.max_features_3d;
  const double edge = dim == 2 ? options.initial_patch_edge_2d : options.initial_patch_edge_3d;
  const int reference_batch = dim == 2 ? options.reference_batch_size_2d : options.reference_batch_size_3d;
  const bool residual = options.planner != NetworkPlanner::plain;

  // Aspect 1/spacing, scaled to edge^dim voxels, rounded, then clipped to the median shape.
  double inverse_volume = 1;
  for (double s : spacing) inverse_volume /= s;
  const double scale = std::pow(std::pow(edge, static_cast<double>(dim)) / inverse_volume, 1.0 / static_cast<double>(dim));
  std::vector<double> patch(dim);
  for (std::size_t i = 0; i < dim; ++i) patch[i] = std::min(std::nearbyint(scale / spacing[i]), median_shape[i]);

  PatchPlan plan;
  plan.spacing = spacing;
  plan.median_shape = median_shape;
  plan.budget = feature_map_budget(static_cast<int>(dim), options);
  auto evaluate = [&](const std::vector<double>& size) {
    plan.topology = pool_and_conv_topology(spacing, size, options.min_feature_map_edge);
    plan.features = features_per_stage(plan.topology.num_stages(), options.base_features, max_features);
    plan.feature_map_size =
        residual ? residual_conv_feature_map_size(plan.topology, plan.features, options.residual_blocks_per_stage,
                                                  options.residual_decoder_convs, output_channels)
                 : conv_feature_map_size(plan.topology, plan.features, options.convs_per_stage, output_channels);
  };
  evaluate(patch);
  // The budget holds for the reference batch size; the default planner shrinks until the minimum
  // batch fits, the ResEnc planners until the estimate itself fits (while estimate > reference).
  auto too_large = [&] {
    return residual ? plan.feature_map_size > plan.budget
                    : plan.feature_map_size / reference_batch * options.min_batch_size > plan.budget;
  };
  while (too_large()) {
    std::vector<double> current(plan.topology.patch_size.begin(), plan.topology.patch_size.end());
    // The axis largest relative to the median shape (the last of equals, as numpy's argsort).
    std::size_t axis = 0;
    for (std::size_t i = 1; i < dim; ++i) {
      if (current[i] / median_shape[i] >= current[axis] / median_shape[axis]) axis = i;
    }
    // Subtract the divisor of the shrunk size, so that valid sizes such as 224 (7 x 32) are not skipped.
    std::vector<double> trial = current;
    trial[axis] -= static_cast<double>(plan.topology.divisible_by[axis]);
    const NetworkTopology trial_topology = pool_and_conv_topology(spacing, trial, options.min_feature_map_edge);
    current[axis] -= static_cast<double>(trial_topology.divisible_by[axis]);
    if (current[axis] < 1) {
      throw Error("the smallest patch does not fit the feature-map budget",
                  "raise --gpu-memory-gb or use --preset gpu");
    }
    evaluate(current);
    ++plan.shrink_steps;
  }
  double patch_voxels = 1;
  for (auto p : plan.topology.patch_size) patch_voxels *= static_cast<double>(p);
  const double by_budget = std::nearbyint(plan.budget / plan.feature_map_size * reference_batch);
  const double by_dataset = std::nearbyint(dataset_voxels * options.max_dataset_fraction_per_batch / patch_voxels);
  plan.batch_size = static_cast<int>(std::max(std::min(by_budget, by_dataset), static_cast<double>(options.min_batch_size)));
  return plan;
}

}  // namespace mlseg
