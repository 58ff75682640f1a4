#pragma once
// detail: one row segment of the general resampling kernel (resample_general.cpp): its source
// coordinates, trilinear image interpolation, and the 3D first-row loop with linear labels
// (resample_first_row.cpp), which is the kernel's hot path.
#include <array>
#include <cstdint>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "mlseg/data/resample_kernels.h"

namespace mlseg::detail {

// Output tiles keep the source region they read within the L2 cache: a rotated row walks
// across source planes, so plain row order would fetch every source line several times.
constexpr std::int64_t kTileZ = 16, kTileY = 16, kTileX = 64;

// Source coordinates of one output row segment, in a loop the compiler vectorises: floor, the
// fractional parts, the flat offset of the lowest corner, and whether all corners are inside.
struct RowCoordinates {
  std::int32_t base[kTileX];
  std::int32_t interior[kTileX];
  float tz[kTileX], ty[kTileX], tx[kTileX];
};

MLSEG_ALWAYS_INLINE void row_coordinates(const std::array<double, 3>& start, const std::array<double, 3>& step, std::int64_t count,
                            const std::array<std::int64_t, 3>& in, bool planar, RowCoordinates& row) {
  const auto bz = static_cast<float>(start[0]), by = static_cast<float>(start[1]), bx = static_cast<float>(start[2]);
  const auto dz = static_cast<float>(step[0]), dy = static_cast<float>(step[1]), dx = static_cast<float>(step[2]);
  const auto plane = static_cast<std::int32_t>(in[1] * in[2]), width = static_cast<std::int32_t>(in[2]);
  // Interior: iz in [0, S0-2] (planar: the slice is checked by the caller), iy in [0, S1-2], ix in [0, S2-2].
  const auto limit_z = static_cast<std::uint32_t>(planar ? 1 : in[0] - 1);
  const auto limit_y = static_cast<std::uint32_t>(in[1] - 1), limit_x = static_cast<std::uint32_t>(in[2] - 1);
  for (std::int32_t k = 0; k < static_cast<std::int32_t>(count); ++k) {
    const float fk = static_cast<float>(k);
    const float fz = planar ? 0.0f : bz + fk * dz, fy = by + fk * dy, fx = bx + fk * dx;
    auto iz = static_cast<std::int32_t>(fz), iy = static_cast<std::int32_t>(fy), ix = static_cast<std::int32_t>(fx);
    iz -= static_cast<std::int32_t>(fz < static_cast<float>(iz));  // truncation -> floor
    iy -= static_cast<std::int32_t>(fy < static_cast<float>(iy));
    ix -= static_cast<std::int32_t>(fx < static_cast<float>(ix));
    row.tz[k] = fz - static_cast<float>(iz);
    row.ty[k] = fy - static_cast<float>(iy);
    row.tx[k] = fx - static_cast<float>(ix);
    row.base[k] = iz * plane + iy * width + ix;
    row.interior[k] = static_cast<std::int32_t>(static_cast<std::uint32_t>(iz) < limit_z) &
                      static_cast<std::int32_t>(static_cast<std::uint32_t>(iy) < limit_y) &
                      static_cast<std::int32_t>(static_cast<std::uint32_t>(ix) < limit_x);
  }
}

// The 8 (planar: 4) corner offsets of a source voxel, corner bit order z, y, x.
struct CornerOffsets {
  std::int64_t o[8];
  CornerOffsets(std::int64_t in_plane, std::int64_t width)
      : o{0, 1, width, width + 1, in_plane, in_plane + 1, in_plane + width, in_plane + width + 1} {}
};

// Trilinear (planar: bilinear) value at source position p + fractions: lerp along x, then y,
// then z (the weights of corner_weights, fewer products).
template <bool kPlanar>
MLSEG_ALWAYS_INLINE float interpolate_image_at(const float* p, float tz, float ty, float tx, std::int64_t width,
                                               std::int64_t plane) {
#if defined(__SSE2__)
  if constexpr (!kPlanar) {
    // Corners x and x+1 are adjacent: four 8-byte loads, the same lerps four lanes at a time.
    using F4 = float __attribute__((vector_size(16)));
    const __m128 lo = _mm_loadh_pi(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p))),
                                   reinterpret_cast<const __m64*>(p + width));
    const __m128 hi = _mm_loadh_pi(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p + plane))),
                                   reinterpret_cast<const __m64*>(p + plane + width));
    const F4 a = F4(_mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));  // x corners: y0z0 y1z0 y0z1 y1z1
    const F4 b = F4(_mm_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)));  // x + 1 corners
    const F4 along_x = a + tx * (b - a);                               // y0 y1 z0 z1 rows
    const F4 next_y = F4(_mm_shuffle_ps(__m128(along_x), __m128(along_x), _MM_SHUFFLE(3, 3, 1, 1)));
    const F4 along_y = along_x + ty * (next_y - along_x);  // lane 0: z0 plane, lane 2: z1 plane
    const F4 next_z = F4(_mm_movehl_ps(__m128(along_y), __m128(along_y)));
    const F4 along_z = along_y + tz * (next_z - along_y);
    return along_z[0];
  }
#endif
  const float y0 = p[0] + tx * (p[1] - p[0]), y1 = p[width] + tx * (p[width + 1] - p[width]);
  float value = y0 + ty * (y1 - y0);
  if constexpr (!kPlanar) {
    const float* const q = p + plane;
    const float z0 = q[0] + tx * (q[1] - q[0]), z1 = q[width] + tx * (q[width + 1] - q[width]);
    value += tz * ((z0 + ty * (z1 - z0)) - value);
  }
  return value;
}

/// The first image channel and code word of a 3D row segment with linear labels: interior voxels'
/// values into image_out and codes into code_out (border voxels are left to the caller). One
/// function per code word width, each compiled for baseline x86-64 and AVX2/FMA.
#define MLSEG_DECLARE_FIRST_ROW_3D(Word)                                                                          \
  void first_row_3d_##Word(const float* src, const std::Word* code_src, const RowCoordinates& coordinates,       \
                           std::int64_t count, std::int64_t width, std::int64_t plane, float threshold,         \
                           float* image_out, std::Word* code_out);
MLSEG_DECLARE_FIRST_ROW_3D(uint8_t)
MLSEG_DECLARE_FIRST_ROW_3D(uint16_t)
MLSEG_DECLARE_FIRST_ROW_3D(uint32_t)
MLSEG_DECLARE_FIRST_ROW_3D(uint64_t)
#undef MLSEG_DECLARE_FIRST_ROW_3D

}  // namespace mlseg::detail
