#include "mlseg/preprocessing/resample.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "mlseg/core/error.h"
#include "mlseg/preprocessing/resample_grid.h"

namespace mlseg {

std::array<std::int64_t, 3> resampled_shape(const std::array<std::int64_t, 3>& old_shape_zyx,
                                            const std::array<double, 3>& old_spacing_zyx,
                                            const std::array<double, 3>& new_spacing_zyx) {
  std::array<std::int64_t, 3> shape{};
  for (int axis = 0; axis < 3; ++axis) {
    if (!(old_spacing_zyx[axis] > 0) || !(new_spacing_zyx[axis] > 0)) {
      throw Error("resampling needs positive spacings, got " + std::to_string(old_spacing_zyx[axis]) + " -> " +
                      std::to_string(new_spacing_zyx[axis]) + " mm on axis " + std::to_string(axis),
                  "fix the spacing in the image header or the plan's target spacing");
    }
    if (old_shape_zyx[axis] == 1) {
      shape[axis] = 1;  // a 2D image's missing axis has no extent to resample
      continue;
    }
    // nearbyint rounds halves to even, like Python's round() in nnU-Net's compute_new_shape.
    const double exact = old_spacing_zyx[axis] / new_spacing_zyx[axis] * static_cast<double>(old_shape_zyx[axis]);
    shape[axis] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::nearbyint(exact)));
  }
  return shape;
}

namespace {

// get_lowres_axis: the axis of the largest spacing, or -1 when several axes share it.
int largest_spacing_axis(const std::array<double, 3>& spacing) {
  const double largest = *std::max_element(spacing.begin(), spacing.end());
  const auto count = std::count(spacing.begin(), spacing.end(), largest);
  if (count != 1) return -1;
  return static_cast<int>(std::find(spacing.begin(), spacing.end(), largest) - spacing.begin());
}

bool is_anisotropic(const std::array<double, 3>& spacing, double anisotropy_threshold) {
  const auto [smallest, largest] = std::minmax_element(spacing.begin(), spacing.end());
  return *largest / *smallest > anisotropy_threshold;
}

}  // namespace

int separate_axis_for(const std::array<double, 3>& old_spacing_zyx, const std::array<double, 3>& new_spacing_zyx,
                      double anisotropy_threshold) {
  if (is_anisotropic(old_spacing_zyx, anisotropy_threshold)) return largest_spacing_axis(old_spacing_zyx);
  if (is_anisotropic(new_spacing_zyx, anisotropy_threshold)) return largest_spacing_axis(new_spacing_zyx);
  return -1;
}

namespace detail {

void require_resample_target(const std::array<std::int64_t, 3>& new_shape_zyx, int separate_axis, const char* what) {
  for (std::int64_t size : new_shape_zyx) {
    if (size < 1) {
      throw Error(std::string(what) + ": target shape " + std::to_string(new_shape_zyx[0]) + " x " +
                      std::to_string(new_shape_zyx[1]) + " x " + std::to_string(new_shape_zyx[2]) +
                      " has an axis below 1 voxel",
                  "compute the target shape with resampled_shape()");
    }
  }
  if (separate_axis < -1 || separate_axis > 2) {
    throw Error(std::string(what) + ": separate axis " + std::to_string(separate_axis) + " is not -1, 0, 1 or 2",
                "pass separate_axis_for(old spacing, new spacing)");
  }
}

}  // namespace detail
}  // namespace mlseg
