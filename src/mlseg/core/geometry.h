#pragma once
// Geometry of an image grid in mlseg's axis order.
//
// Tensors are [C, Z, Y, X]; ITK's (x, y, z) is reversed at the io boundary, for index axes and
// physical axes alike: spacing_zyx_mm[0] is the spacing of the Z (slowest) index axis,
// origin_zyx_mm = (origin_z, origin_y, origin_x) in ITK's LPS frame, and
// direction_zyx[r][c] = ITK_direction[2 - r][2 - c]. Then, exactly as in ITK,
//   point_zyx = origin_zyx_mm + direction_zyx · (spacing_zyx_mm ∘ index_zyx).
#include <array>
#include <cstdint>
#include <string>

namespace mlseg {

/// Tolerances for "the same geometry" checks (nnU-Net's verify uses allclose-like checks).
struct GeometryTolerance {
  double spacing_relative = 1e-4;  ///< |a-b| <= spacing_relative * max(|a|,|b|)
  double origin_mm = 1e-3;         ///< absolute, per axis
  double direction = 1e-4;         ///< absolute, per matrix entry
};

struct Geometry {
  std::array<double, 3> spacing_zyx_mm{1.0, 1.0, 1.0};
  std::array<double, 3> origin_zyx_mm{0.0, 0.0, 0.0};
  std::array<std::array<double, 3>, 3> direction_zyx{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};

  bool operator==(const Geometry& other) const;
  bool operator!=(const Geometry& other) const { return !(*this == other); }
};

bool spacing_matches(const Geometry& a, const Geometry& b, const GeometryTolerance& tol = {});
bool origin_matches(const Geometry& a, const Geometry& b, const GeometryTolerance& tol = {});
bool direction_matches(const Geometry& a, const Geometry& b, const GeometryTolerance& tol = {});

/// "1 x 0.5 x 0.5" (z x y x x).
std::string format_zyx(const std::array<double, 3>& values);

/// "155 x 240 x 240" (z x y x x).
std::string format_shape(const std::array<std::int64_t, 3>& shape_zyx);

}  // namespace mlseg
