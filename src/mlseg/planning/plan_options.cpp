#include "mlseg/planning/plan_options.h"

#include "mlseg/core/error.h"

namespace mlseg {
namespace {

/// nnU-Net's ResEnc presets (residual_encoder_unet_planners.py): reference feature-map sizes and
/// the memory they correspond to (also the preset's default target).
struct ResEncPreset {
  NetworkPlanner planner;
  const char* name;
  const char* plans_name;
  double reference_3d, reference_2d, gigabytes;
};

constexpr ResEncPreset kResEncPresets[] = {
    {NetworkPlanner::resenc_m, "resenc-m", "mlsegResEncUNetMPlans", 680e6, 135e6, 8.0},
    {NetworkPlanner::resenc_l, "resenc-l", "mlsegResEncUNetLPlans", 2100e6, 380e6, 24.0},
    {NetworkPlanner::resenc_xl, "resenc-xl", "mlsegResEncUNetXLPlans", 3600e6, 560e6, 40.0},
};

/// nnU-Net's max_dataset_covered of the ResEnc M/L/XL planners: a batch may cover the whole dataset.
constexpr double kResEncMaxDatasetCovered = 1.0;

}  // namespace

NetworkPlanner parse_network_planner(const std::string& name) {
  if (name == "default" || name == "plain") return NetworkPlanner::plain;
  for (const ResEncPreset& preset : kResEncPresets) {
    if (name == preset.name) return preset.planner;
  }
  throw Error("unknown --planner '" + name + "'", "use default (PlainConvUNet), resenc-m, resenc-l or resenc-xl");
}

std::string to_string(NetworkPlanner planner) {
  for (const ResEncPreset& preset : kResEncPresets) {
    if (planner == preset.planner) return preset.name;
  }
  return "default";
}

std::string plans_name_for(NetworkPlanner planner) {
  for (const ResEncPreset& preset : kResEncPresets) {
    if (planner == preset.planner) return preset.plans_name;
  }
  return "mlsegPlans";
}

PlanOptions with_network_planner(PlanOptions options, NetworkPlanner planner, bool keep_gpu_memory) {
  options.planner = planner;
  for (const ResEncPreset& preset : kResEncPresets) {
    if (planner != preset.planner) continue;
    options.reference_feature_map_3d = preset.reference_3d;
    options.reference_feature_map_2d = preset.reference_2d;
    options.reference_gpu_memory_gb = preset.gigabytes;
    if (!keep_gpu_memory) options.gpu_memory_gb = preset.gigabytes;
    options.max_dataset_fraction_per_batch = kResEncMaxDatasetCovered;
  }
  return options;
}

}  // namespace mlseg
