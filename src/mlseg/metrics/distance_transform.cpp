#include "mlseg/metrics/distance_transform.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "mlseg/core/parallel.h"

namespace mlseg {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// One pass along an axis of `length` samples with element stride `stride`, over `lines` lines whose
// first elements are given by first(line).
template <typename FirstIndex>
void transform_axis(std::vector<double>& grid, std::int64_t lines, std::int64_t length, std::int64_t stride,
                    double step_mm, int threads, FirstIndex first) {
  if (length <= 1) return;
  const std::int64_t chunks = std::min<std::int64_t>(lines, std::max(1, threads) * 8);
  parallel_for(static_cast<std::size_t>(chunks), threads, [&](std::size_t chunk) {
    std::vector<double> f(static_cast<std::size_t>(length)), d(static_cast<std::size_t>(length));
    detail::ParabolaEnvelope envelope(length);
    const std::int64_t begin = lines * static_cast<std::int64_t>(chunk) / chunks;
    const std::int64_t end = lines * static_cast<std::int64_t>(chunk + 1) / chunks;
    for (std::int64_t line = begin; line < end; ++line) {
      double* base = grid.data() + first(line);
      bool any_finite = false;
      for (std::int64_t i = 0; i < length; ++i) {
        f[i] = base[i * stride];
        any_finite = any_finite || f[i] != kInfinity;
      }
      if (!any_finite) continue;
      detail::squared_distance_line(f.data(), d.data(), length, step_mm, envelope);
      for (std::int64_t i = 0; i < length; ++i) base[i * stride] = d[i];
    }
  });
}

}  // namespace

namespace detail {

// Felzenszwalb & Huttenlocher's lower envelope of parabolas.
void squared_distance_line(const double* f, double* d, std::int64_t n, double step_mm, ParabolaEnvelope& scratch) {
  const double s2 = step_mm * step_mm;
  std::int64_t* v = scratch.vertex.data();
  double* z = scratch.boundary.data();
  std::int64_t k = -1;
  for (std::int64_t q = 0; q < n; ++q) {
    if (f[q] == kInfinity) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -kInfinity;
      z[1] = kInfinity;
      continue;
    }
    // z[0] = -inf, so the loop never pops the first parabola.
    const double fq = f[q] + s2 * static_cast<double>(q) * static_cast<double>(q);
    double s = 0.0;
    while (true) {
      const double vk = static_cast<double>(v[k]);
      s = (fq - (f[v[k]] + s2 * vk * vk)) / (2.0 * s2 * (static_cast<double>(q) - vk));
      if (s > z[k]) break;
      --k;
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = kInfinity;
  }
  if (k < 0) {
    std::fill(d, d + n, kInfinity);
    return;
  }
  std::int64_t j = 0;
  for (std::int64_t q = 0; q < n; ++q) {
    while (z[j + 1] < static_cast<double>(q)) ++j;
    const double delta = static_cast<double>(q - v[j]);
    d[q] = s2 * delta * delta + f[v[j]];
  }
}

}  // namespace detail

std::vector<double> squared_distance_transform(const std::uint8_t* features, const std::array<std::int64_t, 3>& shape_zyx,
                                               const std::array<double, 3>& spacing_zyx_mm, int threads) {
  const std::int64_t nz = shape_zyx[0], ny = shape_zyx[1], nx = shape_zyx[2];
  if (nz < 0 || ny < 0 || nx < 0) throw std::invalid_argument("squared_distance_transform: negative shape");
  if (threads <= 0) threads = default_thread_count();
  const std::int64_t voxels = nz * ny * nx;
  std::vector<double> grid(static_cast<std::size_t>(voxels));
  for (std::int64_t i = 0; i < voxels; ++i) grid[i] = features[i] ? 0.0 : kInfinity;
  // X lines are contiguous; Y lines stride nx within a slice; Z lines stride nx*ny.
  transform_axis(grid, nz * ny, nx, 1, spacing_zyx_mm[2], threads, [&](std::int64_t line) { return line * nx; });
  transform_axis(grid, nz * nx, ny, nx, spacing_zyx_mm[1], threads,
                 [&](std::int64_t line) { return (line / nx) * ny * nx + line % nx; });
  transform_axis(grid, ny * nx, nz, ny * nx, spacing_zyx_mm[0], threads, [&](std::int64_t line) { return line; });
  return grid;
}

}  // namespace mlseg
