#pragma once
// detail: the directed boundary distances of surface_metrics.h, computed only where they are read.
//
// Every distance d(a → B) is the minimum over B's boundary voxels b of
//   sz²·Δz² + (sy²·Δy² + sx²·Δx²)   (that order of floating-point additions)
// which is the value of the separable exact transform (distance_transform.h: X pass, then Y, then Z)
// at a. Instead of transforming the whole box twice, the search works per X plane: the X pass is a
// table of Δx to the nearest boundary voxel in each row, and each boundary voxel a of the other mask
// searches that plane outward in Z and Y, stopping once sz²·Δz² (+ sy²·Δy²) reaches the best value
// found and skipping rows and runs of 8 voxels whose smallest Δx is already too far. When the
// searches of one plane cost more than transforming it would, the rest of that plane uses the Y and
// Z passes instead. Only the order of the candidates differs from the transform, so the values are
// its values (up to which of two near-tied candidates wins).
#include <array>
#include <cstdint>
#include <vector>

#include "mlseg/metrics/surface_metrics.h"

namespace mlseg::detail {

inline constexpr std::uint8_t kPredMaskBit = 1;
inline constexpr std::uint8_t kRefMaskBit = 2;

/// Two masks of one box and the buffers to measure them; keeps its capacity from one pair to the
/// next, so one workspace serves every channel of a case.
class SurfaceDistanceWorkspace {
 public:
  /// Starts a pair of masks of this shape, all background.
  void reset(const std::array<std::int64_t, 3>& shape_zyx);
  /// Row (z, y) of the pair, shape_zyx[2] bytes: bit kPredMaskBit / kRefMaskBit set = inside.
  std::uint8_t* row(std::int64_t z, std::int64_t y) { return masks_.data() + padded_index(z + 1, y + 1, 1); }
  /// Directed distances between the boundaries of the pair (surface_metrics.h's definitions).
  SurfaceDistances distances(const std::array<double, 3>& spacing_zyx_mm, int connectivity, int threads);

 private:
  std::int64_t padded_index(std::int64_t z, std::int64_t y, std::int64_t x) const {
    return (z * (shape_[1] + 2) + y) * (shape_[2] + 2) + x;
  }
  void find_boundaries(int connectivity);

  std::array<std::int64_t, 3> shape_{0, 0, 0};
  std::vector<std::uint8_t> masks_;       // padded by one background voxel on every side
  std::vector<std::uint8_t> boundaries_;  // same layout, the boundary bits of both masks
  std::vector<std::uint8_t> erosion_;     // 26-connectivity scratch
  // Per voxel Δx to the nearest boundary voxel of the other mask in its row, [X][Z][Y], and the
  // minimum of each run of 8 along Y; 32-bit only for boxes 65535 voxels wide or more.
  std::vector<std::uint16_t> offsets16_, block_min16_;
  std::vector<std::uint32_t> offsets32_, block_min32_;
};

}  // namespace mlseg::detail
