#include "mlseg/core/geometry.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace mlseg {

bool Geometry::operator==(const Geometry& other) const {
  return spacing_zyx_mm == other.spacing_zyx_mm && origin_zyx_mm == other.origin_zyx_mm &&
         direction_zyx == other.direction_zyx;
}

bool spacing_matches(const Geometry& a, const Geometry& b, const GeometryTolerance& tol) {
  for (int axis = 0; axis < 3; ++axis) {
    const double x = a.spacing_zyx_mm[axis], y = b.spacing_zyx_mm[axis];
    if (std::abs(x - y) > tol.spacing_relative * std::max(std::abs(x), std::abs(y))) return false;
  }
  return true;
}

bool origin_matches(const Geometry& a, const Geometry& b, const GeometryTolerance& tol) {
  for (int axis = 0; axis < 3; ++axis) {
    if (std::abs(a.origin_zyx_mm[axis] - b.origin_zyx_mm[axis]) > tol.origin_mm) return false;
  }
  return true;
}

bool direction_matches(const Geometry& a, const Geometry& b, const GeometryTolerance& tol) {
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      if (std::abs(a.direction_zyx[r][c] - b.direction_zyx[r][c]) > tol.direction) return false;
    }
  }
  return true;
}

std::string format_zyx(const std::array<double, 3>& values) {
  std::ostringstream out;
  out << values[0] << " x " << values[1] << " x " << values[2];
  return out.str();
}

std::string format_shape(const std::array<std::int64_t, 3>& shape_zyx) {
  return std::to_string(shape_zyx[0]) + " x " + std::to_string(shape_zyx[1]) + " x " + std::to_string(shape_zyx[2]);
}

}  // namespace mlseg
