#pragma once
// detail: how an output index maps onto the input grid, shared by image and code resampling.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace mlseg::detail {

/// Input coordinate read by output index `o` (skimage resize / scipy zoom with grid_mode=True).
inline double source_coordinate(std::int64_t o, std::int64_t in_size, std::int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  return scale * (static_cast<double>(o) + 0.5) - 0.5;
}

inline std::int64_t clamp_index(std::int64_t index, std::int64_t size) {
  return std::clamp<std::int64_t>(index, 0, size - 1);
}

/// nnU-Net order_z = 0 (map_coordinates order 0, mode 'nearest'): floor(coordinate + 0.5), clamped.
inline std::int64_t nearest_source_index(std::int64_t o, std::int64_t in_size, std::int64_t out_size) {
  return clamp_index(static_cast<std::int64_t>(std::floor(source_coordinate(o, in_size, out_size) + 0.5)), in_size);
}

/// Linear interpolation along one axis: value = (1 - upper_weight) * in[lower] + upper_weight * in[upper].
struct LinearTap {
  std::int64_t lower = 0;
  std::int64_t upper = 0;
  double upper_weight = 0.0;
};
inline LinearTap linear_tap(std::int64_t o, std::int64_t in_size, std::int64_t out_size) {
  const double coordinate = source_coordinate(o, in_size, out_size);
  const double below = std::floor(coordinate);
  const auto index = static_cast<std::int64_t>(below);
  return {clamp_index(index, in_size), clamp_index(index + 1, in_size), coordinate - below};
}

/// Throws mlseg::Error for a target shape with an axis below 1 or a separate axis outside -1..2.
void require_resample_target(const std::array<std::int64_t, 3>& new_shape_zyx, int separate_axis, const char* what);

}  // namespace mlseg::detail
