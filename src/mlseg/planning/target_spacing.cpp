#include "mlseg/planning/target_spacing.h"

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/metrics/surface_metrics.h"  // percentile_linear: np.percentile

namespace mlseg {

std::array<double, 3> determine_target_spacing(const std::vector<std::array<double, 3>>& spacings_zyx,
                                               const std::vector<std::array<std::int64_t, 3>>& shapes_after_crop_zyx,
                                               const PlanOptions& options) {
  if (spacings_zyx.empty()) throw Error("the fingerprint lists no cases", "run mlseg analyze on a dataset with labelled cases");
  std::array<double, 3> target{}, target_size{};
  for (int axis = 0; axis < 3; ++axis) {
    std::vector<double> spacing, size;
    for (const auto& s : spacings_zyx) spacing.push_back(s[axis]);
    for (const auto& s : shapes_after_crop_zyx) size.push_back(static_cast<double>(s[axis]));
    target[axis] = percentile_linear(spacing, 50);
    target_size[axis] = percentile_linear(size, 50);
  }
  const int worst = static_cast<int>(std::max_element(target.begin(), target.end()) - target.begin());
  double other_max_spacing = 0, other_min_size = INFINITY;
  for (int axis = 0; axis < 3; ++axis) {
    if (axis == worst) continue;
    other_max_spacing = std::max(other_max_spacing, target[axis]);
    other_min_size = std::min(other_min_size, target_size[axis]);
  }
  const bool anisotropic_spacing = target[worst] > options.anisotropy_threshold * other_max_spacing;
  const bool anisotropic_voxels = target_size[worst] * options.anisotropy_threshold < other_min_size;
  if (anisotropic_spacing && anisotropic_voxels) {
    std::vector<double> worst_spacings;
    for (const auto& s : spacings_zyx) worst_spacings.push_back(s[worst]);
    double spacing = percentile_linear(worst_spacings, options.anisotropic_spacing_percentile);
    // Not finer than the other axes (nnU-Net adds 1e-5 so that this axis stays the coarsest).
    if (spacing < other_max_spacing) spacing = std::max(other_max_spacing, spacing) + 1e-5;
    target[worst] = spacing;
  }
  return target;
}

Transpose determine_transpose(const std::array<double, 3>& target_spacing_zyx) {
  const int coarsest = static_cast<int>(std::max_element(target_spacing_zyx.begin(), target_spacing_zyx.end()) -
                                        target_spacing_zyx.begin());
  Transpose transpose;
  int next = 0;
  transpose.forward[next++] = coarsest;
  for (int axis = 0; axis < 3; ++axis) {
    if (axis != coarsest) transpose.forward[next++] = axis;
  }
  for (int i = 0; i < 3; ++i) transpose.backward[transpose.forward[i]] = i;
  return transpose;
}

std::array<double, 3> fractional_resampled_shape(const std::array<std::int64_t, 3>& shape, const std::array<double, 3>& spacing,
                                      const std::array<double, 3>& new_spacing) {
  std::array<double, 3> result{};
  for (int axis = 0; axis < 3; ++axis) {
    // Python's round() rounds halves to even; std::nearbyint does too in the default rounding mode.
    result[axis] = std::nearbyint(spacing[axis] / new_spacing[axis] * static_cast<double>(shape[axis]));
  }
  return result;
}

}  // namespace mlseg
