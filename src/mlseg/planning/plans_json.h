#pragma once
// plans.json: nnU-Net v2's plans keys (dataset_name, configurations.*.patch_size, architecture, ...)
// plus mlseg's (label_encoding, channel_names, bce_pos_weight, sampling_weights,
// val_iterations_auto). Axes are zyx after transpose_forward (2d: yx). Human-editable;
// check_plans validates an edited file.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/planning/planner.h"

namespace mlseg {

inline constexpr const char* kPlansName = "mlsegPlans";

nlohmann::ordered_json plans_to_json(const Plans& plans, const PlanningInput& input, const PlanOptions& options);

/// One problem in a plans.json: the key (a JSON path such as configurations.3d_fullres.patch_size),
/// what is wrong and how to fix it.
struct PlansProblem {
  std::string key;
  std::string problem;
  std::string fix;
};

/// Validates an (edited) plans.json: patch divisible by 2^pools per axis, positive spacing,
/// batch >= 1, known normalisation names (one per image channel), kernel/stride/feature lists
/// consistent with n_stages and the dimension, a known label encoding, a valid transpose.
std::vector<PlansProblem> check_plans(const nlohmann::ordered_json& plans);

}  // namespace mlseg
