#pragma once
// Target spacing and transpose (nnU-Net v2 P:171-226): the per-axis median spacing, except an
// axis much coarser than the others with few voxels, which gets its 10th-percentile spacing.
#include <array>
#include <cstdint>
#include <vector>

#include "mlseg/planning/plan_options.h"

namespace mlseg {

/// determine_fullres_target_spacing: spacings and cropped shapes per case, zyx.
std::array<double, 3> determine_target_spacing(const std::vector<std::array<double, 3>>& spacings_zyx,
                                               const std::vector<std::array<std::int64_t, 3>>& shapes_after_crop_zyx,
                                               const PlanOptions& options);

struct Transpose {
  std::array<int, 3> forward{0, 1, 2};   ///< transposed[i] = original[forward[i]]
  std::array<int, 3> backward{0, 1, 2};  ///< original[i] = transposed[backward[i]]
};

/// The coarsest axis of the target spacing first, the others in their order (first maximum wins).
Transpose determine_transpose(const std::array<double, 3>& target_spacing_zyx);

/// compute_new_shape: round(old_spacing / new_spacing * old_shape) per axis.
std::array<double, 3> fractional_resampled_shape(const std::array<std::int64_t, 3>& shape, const std::array<double, 3>& spacing,
                                      const std::array<double, 3>& new_spacing);

}  // namespace mlseg
