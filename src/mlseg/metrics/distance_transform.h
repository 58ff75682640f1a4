#pragma once
// Exact Euclidean distance transform with anisotropic spacing.
//
// Felzenszwalb & Huttenlocher's separable algorithm ("Distance Transforms of Sampled Functions",
// 2012): a 1D lower envelope of parabolas along X, then Y, then Z, each with that axis' spacing,
// which gives the exact squared Euclidean distance in mm² (not a chamfer approximation). Lines of
// one pass are independent, so each pass is spread over threads.
#include <array>
#include <cstdint>
#include <vector>

namespace mlseg {

/// Squared distance in mm² from every voxel of a [Z, Y, X] grid (row-major, X fastest) to the
/// nearest voxel whose `features` entry is nonzero (0 on feature voxels). +infinity everywhere when
/// there is no feature voxel. `threads` <= 0 means all cores.
std::vector<double> squared_distance_transform(const std::uint8_t* features, const std::array<std::int64_t, 3>& shape_zyx,
                                               const std::array<double, 3>& spacing_zyx_mm, int threads = 0);

/// (Tensor form, distances in mm: distance_transform_mm in metrics/tensor_metrics.h.)

namespace detail {

/// Scratch space of squared_distance_line for lines of up to `n` samples.
struct ParabolaEnvelope {
  explicit ParabolaEnvelope(std::int64_t n = 0) { resize(n); }
  void resize(std::int64_t n) {
    vertex.resize(static_cast<std::size_t>(n));
    boundary.resize(static_cast<std::size_t>(n) + 1);
  }
  std::vector<std::int64_t> vertex;  ///< sample of each parabola of the lower envelope
  std::vector<double> boundary;      ///< where each parabola starts to be the lowest
};

/// One line of the transform: d[p] = min_q step_mm² (p − q)² + f[q] over the n samples (infinite f[q]
/// contributes no parabola; d all +infinity when every f is). d must not alias f.
void squared_distance_line(const double* f, double* d, std::int64_t n, double step_mm, ParabolaEnvelope& scratch);

}  // namespace detail

}  // namespace mlseg
