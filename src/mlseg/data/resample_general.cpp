#include <algorithm>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "mlseg/data/resample_kernels.h"

namespace mlseg::detail {
namespace {

template <typename Word>
void fill_outside(const ResampleJob& job, std::int64_t at, std::int64_t count, std::int64_t out_volume) {
  for (std::int64_t c = 0; c < job.channels; ++c) std::fill_n(job.image_out + c * out_volume + at, count, job.outside);
  Word* codes_out = static_cast<Word*>(job.codes_out);
  for (std::int64_t word = 0; word < job.words; ++word) std::fill_n(codes_out + word * out_volume + at, count, Word{0});
}

// Output tiles keep the source region they read within the L2 cache: a rotated row walks
// across source planes, so plain row order would fetch every source line several times.
constexpr std::int64_t kTileZ = 16, kTileY = 16, kTileX = 64;

struct Tile {
  std::int64_t z_begin, z_end, y_begin, y_end, x_begin, x_end;
};

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

template <bool kPlanar>
MLSEG_ALWAYS_INLINE float interpolate_image(const float* src, const RowCoordinates& coordinates, std::int64_t k,
                                            const CornerOffsets& c) {
  return interpolate_image_at<kPlanar>(src + coordinates.base[k], kPlanar ? 0.0f : coordinates.tz[k], coordinates.ty[k],
                                       coordinates.tx[k], c.o[2], c.o[4]);
}

// Code at interior voxel k: the nearest corner's, or equal corners copied and the others voting
// per bit (the planar modes and nearest labels; 3D linear labels take first_row_3d).
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE Word interpolate_code(const Word* src, const RowCoordinates& coordinates, std::int64_t k, const CornerOffsets& c,
                             bool nearest_labels, float threshold) {
  constexpr int N = kPlanar ? 4 : 8;
  const Word* q = src + coordinates.base[k];
  const float tz = kPlanar ? 0.0f : coordinates.tz[k], ty = coordinates.ty[k], tx = coordinates.tx[k];
  if (nearest_labels) return q[c.o[(tz >= 0.5f ? 4 : 0) + (ty >= 0.5f ? 2 : 0) + (tx >= 0.5f ? 1 : 0)]];
  Word n[N];
  for (int corner = 0; corner < N; ++corner) n[corner] = q[c.o[corner]];
  Word differ = 0;
  for (int corner = 1; corner < N; ++corner) differ = static_cast<Word>(differ | (n[corner] ^ n[0]));
  if (differ == 0) return n[0];  // the common case: all corners carry the same code
  float w[N];
  corner_weights<N>(tz, ty, tx, w);
  return vote_bits<Word, N>(n, w, threshold);
}

// Whether the 8 corners of q (3D) carry one code. Corners x and x+1 are adjacent, so narrow
// codes are read as four pairs: byte codes packed in one 64-bit word and compared against the
// first byte broadcast, 16-bit codes as four 32-bit pairs.
template <typename Word>
MLSEG_ALWAYS_INLINE bool uniform_corners(const Word* q, std::int64_t width, std::int64_t plane) {
  if constexpr (sizeof(Word) == 1) {
    std::uint16_t pair[4];
    std::memcpy(&pair[0], q, 2);
    std::memcpy(&pair[1], q + width, 2);
    std::memcpy(&pair[2], q + plane, 2);
    std::memcpy(&pair[3], q + plane + width, 2);
    const std::uint64_t packed = std::uint64_t{pair[0]} | std::uint64_t{pair[1]} << 16 |
                                 std::uint64_t{pair[2]} << 32 | std::uint64_t{pair[3]} << 48;
    return packed == std::uint64_t{q[0]} * 0x0101010101010101ull;
  } else if constexpr (sizeof(Word) == 2) {
    std::uint32_t pair[4];
    std::memcpy(&pair[0], q, 4);
    std::memcpy(&pair[1], q + width, 4);
    std::memcpy(&pair[2], q + plane, 4);
    std::memcpy(&pair[3], q + plane + width, 4);
    return ((pair[0] ^ pair[1]) | (pair[0] ^ pair[2]) | (pair[0] ^ pair[3]) |
            ((pair[0] >> 16) ^ (pair[0] & 0xffffu))) == 0;
  } else {
    const Word first = q[0];
    return ((q[1] ^ first) | (q[width] ^ first) | (q[width + 1] ^ first) | (q[plane] ^ first) |
            (q[plane + 1] ^ first) | (q[plane + width] ^ first) | (q[plane + width + 1] ^ first)) == 0;
  }
}

// The common case (3D, linear labels) for the first channel and code word of a row segment, in
// a function of its own: inside resample_tile the loop ran out of registers and reloaded its
// offsets, pointers and counter from the stack for every voxel. Votes are taken after the loop,
// for the voxels whose corners differ.
template <typename Word>
MLSEG_ALWAYS_INLINE void first_row_3d(const float* src, const Word* code_src, const RowCoordinates& coordinates,
                                      std::int64_t count, std::int64_t width, std::int64_t plane, float threshold,
                                      float* image_out, Word* code_out) {
  std::int32_t mixed[kTileX];
  std::int64_t mixed_count = 0;
  const auto code_at = [&](std::int64_t k) {
    const Word* const q = code_src + coordinates.base[k];
    code_out[k] = q[0];
    mixed[mixed_count] = static_cast<std::int32_t>(k);
    mixed_count += uniform_corners(q, width, plane) ? 0 : 1;
  };
  std::int64_t k = 0;
#if defined(__SSE2__)
  // Four voxels at a time: each voxel's corners as pairs (x, x+1) in two registers, transposed
  // so that each lerp runs once for the four voxels, in the same order as interpolate_image_at
  // (the same values to the bit).
  using F4 = float __attribute__((vector_size(16)));
  for (; k + 4 <= count; k += 4) {
    const std::int32_t* const interior = coordinates.interior + k;
    if ((interior[0] & interior[1] & interior[2] & interior[3]) == 0) {
      for (std::int64_t j = k; j < k + 4; ++j) {
        if (coordinates.interior[j] == 0) continue;
        image_out[j] = interpolate_image_at<false>(src + coordinates.base[j], coordinates.tz[j], coordinates.ty[j],
                                                   coordinates.tx[j], width, plane);
        code_at(j);
      }
      continue;
    }
    __m128 z0[4], z1[4];  // per voxel: rows y0 and y1 of plane z (z1: plane z + 1), x and x + 1
    for (int v = 0; v < 4; ++v) {
      const float* const p = src + coordinates.base[k + v];
      z0[v] = _mm_loadh_pi(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p))),
                           reinterpret_cast<const __m64*>(p + width));
      z1[v] = _mm_loadh_pi(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p + plane))),
                           reinterpret_cast<const __m64*>(p + plane + width));
    }
    _MM_TRANSPOSE4_PS(z0[0], z0[1], z0[2], z0[3]);  // z0[c]: corner c (y0x0, y0x1, y1x0, y1x1) of the 4 voxels
    _MM_TRANSPOSE4_PS(z1[0], z1[1], z1[2], z1[3]);
    F4 tx, ty, tz;
    std::memcpy(&tx, coordinates.tx + k, sizeof tx);
    std::memcpy(&ty, coordinates.ty + k, sizeof ty);
    std::memcpy(&tz, coordinates.tz + k, sizeof tz);
    const F4 r00 = F4(z0[0]) + tx * (F4(z0[1]) - F4(z0[0])), r10 = F4(z0[2]) + tx * (F4(z0[3]) - F4(z0[2]));
    const F4 r01 = F4(z1[0]) + tx * (F4(z1[1]) - F4(z1[0])), r11 = F4(z1[2]) + tx * (F4(z1[3]) - F4(z1[2]));
    const F4 plane0 = r00 + ty * (r10 - r00), plane1 = r01 + ty * (r11 - r01);
    const F4 value = plane0 + tz * (plane1 - plane0);
    std::memcpy(image_out + k, &value, sizeof value);
    for (std::int64_t j = k; j < k + 4; ++j) code_at(j);
  }
#endif
  for (; k < count; ++k) {
    if (coordinates.interior[k] == 0) continue;
    image_out[k] = interpolate_image_at<false>(src + coordinates.base[k], coordinates.tz[k], coordinates.ty[k],
                                               coordinates.tx[k], width, plane);
    code_at(k);
  }
  const CornerOffsets corners(plane, width);
  for (std::int64_t m = 0; m < mixed_count; ++m) {
    const std::int64_t k = mixed[m];
    const Word* const q = code_src + coordinates.base[k];
    Word n[8];
    for (int corner = 0; corner < 8; ++corner) n[corner] = q[corners.o[corner]];
    float w[8];
    corner_weights<8>(coordinates.tz[k], coordinates.ty[k], coordinates.tx[k], w);
    code_out[k] = vote_bits<Word, 8>(n, w, threshold);
  }
}

// One function per code word type (GCC's target_clones does not apply to templates).
#define MLSEG_FIRST_ROW_3D(Word)                                                                                  \
  MLSEG_CPU_CLONES __attribute__((noinline)) void first_row_3d_##Word(                                             \
      const float* src, const Word* code_src, const RowCoordinates& coordinates, std::int64_t count,               \
      std::int64_t width, std::int64_t plane, float threshold, float* image_out, Word* code_out) {                 \
    first_row_3d<Word>(src, code_src, coordinates, count, width, plane, threshold, image_out, code_out);            \
  }
using std::uint16_t;
using std::uint32_t;
using std::uint64_t;
using std::uint8_t;
MLSEG_FIRST_ROW_3D(uint8_t)
MLSEG_FIRST_ROW_3D(uint16_t)
MLSEG_FIRST_ROW_3D(uint32_t)
MLSEG_FIRST_ROW_3D(uint64_t)
#undef MLSEG_FIRST_ROW_3D

template <typename Word>
MLSEG_ALWAYS_INLINE void first_row_3d_any(const float* src, const Word* codes, const RowCoordinates& c,
                                          std::int64_t count, std::int64_t width, std::int64_t plane, float threshold,
                                          float* image_out, Word* code_out) {
  if constexpr (std::is_same_v<Word, std::uint8_t>) {
    first_row_3d_uint8_t(src, codes, c, count, width, plane, threshold, image_out, code_out);
  } else if constexpr (std::is_same_v<Word, std::uint16_t>) {
    first_row_3d_uint16_t(src, codes, c, count, width, plane, threshold, image_out, code_out);
  } else if constexpr (std::is_same_v<Word, std::uint32_t>) {
    first_row_3d_uint32_t(src, codes, c, count, width, plane, threshold, image_out, code_out);
  } else {
    first_row_3d_uint64_t(src, codes, c, count, width, plane, threshold, image_out, code_out);
  }
}

// Software prefetch: every kPrefetchStride-th voxel of a row segment, kPrefetchRowsAhead rows
// ahead (best of strides 4-16 and 1-8 rows on the forced rotation benchmark: -12 % when the
// per-voxel loop still spilled to the stack, 2-3 % since).
constexpr std::int64_t kPrefetchStride = 8;
constexpr int kPrefetchRowsAhead = 4;

// Requests the cache lines of the 4 (planar: 2) source rows that the row segment kPrefetchRowsAhead
// steps of `row_step` after the one at `start` reads, while this one computes: a rotated walk
// defeats the hardware prefetcher, and each miss would otherwise stall the scalar loop.
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE void prefetch_row(const ResampleJob& job, const std::array<double, 3>& row_start,
                                      const std::array<double, 3>& row_step, std::int64_t count,
                                      std::int64_t slice_offset) {
  std::array<double, 3> start = row_start;
  for (int i = 0; i < 3; ++i) start[i] += kPrefetchRowsAhead * row_step[i];
  const std::array<double, 3>& step = job.grid.step[2];
  const auto [S0, S1, S2] = job.in;
  const std::int64_t plane = S1 * S2, volume = S0 * plane;
  const char* image = reinterpret_cast<const char*>(job.image + slice_offset);
  const char* codes = static_cast<const char*>(job.codes) + slice_offset * static_cast<std::int64_t>(sizeof(Word));
  for (std::int64_t k = 0; k < count; k += kPrefetchStride) {
    const double fz = kPlanar ? 0.0 : start[0] + k * step[0], fy = start[1] + k * step[1], fx = start[2] + k * step[2];
    std::int64_t base = static_cast<std::int64_t>(fz) * plane + static_cast<std::int64_t>(fy) * S2 + static_cast<std::int64_t>(fx);
    base = std::clamp<std::int64_t>(base, 0, volume - plane - S2 - 2);
    __builtin_prefetch(image + 4 * base);
    __builtin_prefetch(image + 4 * (base + S2));
    __builtin_prefetch(codes + sizeof(Word) * base);
    __builtin_prefetch(codes + sizeof(Word) * (base + S2));
    if constexpr (!kPlanar) {
      __builtin_prefetch(image + 4 * (base + plane));
      __builtin_prefetch(image + 4 * (base + plane + S2));
      __builtin_prefetch(codes + sizeof(Word) * (base + plane));
      __builtin_prefetch(codes + sizeof(Word) * (base + plane + S2));
    }
  }
}

// The indices of the row segment's border voxels (some corner outside the input) into `border`;
// their count. The list is built only for the few segments that have any.
MLSEG_ALWAYS_INLINE std::int64_t border_list(const RowCoordinates& coordinates, std::int64_t count,
                                             std::int32_t* border) {
  std::int32_t all_interior = 1;
  for (std::int64_t k = 0; k < count; ++k) all_interior &= coordinates.interior[k];
  std::int64_t border_count = 0;
  if (all_interior == 0) {
    for (std::int64_t k = 0; k < count; ++k) {
      border[border_count] = static_cast<std::int32_t>(k);
      border_count += coordinates.interior[k] == 0;
    }
  }
  return border_count;
}

// One border voxel of a row segment starting at source position `start` (output index row + k):
// corners outside the input are the outside value / background, every channel and code word.
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE void border_voxel(const ResampleJob& job, const std::array<double, 3>& start, std::int64_t k,
                                      std::int64_t row, const RowCoordinates& coordinates, const CornerOffsets& corners,
                                      std::int64_t slice_offset) {
  constexpr int N = kPlanar ? 4 : 8;
  const auto [S0, S1, S2] = job.in;
  const std::int64_t in_plane = S1 * S2, in_volume = S0 * in_plane;
  const std::int64_t out_volume = job.out[0] * job.out[1] * job.out[2], at = row + k;
  const std::array<double, 3>& step = job.grid.step[2];
  const double fz = start[0] + k * step[0], fy = start[1] + k * step[1], fx = start[2] + k * step[2];
  const std::int64_t iz = kPlanar ? 0 : floor_to_int(fz), iy = floor_to_int(fy), ix = floor_to_int(fx);
  const bool z0 = kPlanar || (iz >= 0 && iz < S0), z1 = !kPlanar && iz + 1 >= 0 && iz + 1 < S0;
  const bool y0 = iy >= 0 && iy < S1, y1 = iy + 1 >= 0 && iy + 1 < S1;
  const bool x0 = ix >= 0 && ix < S2, x1 = ix + 1 >= 0 && ix + 1 < S2;
  const bool valid[8] = {z0 && y0 && x0, z0 && y0 && x1, z0 && y1 && x0, z0 && y1 && x1,
                         z1 && y0 && x0, z1 && y0 && x1, z1 && y1 && x0, z1 && y1 && x1};
  const std::int64_t base = slice_offset + iz * in_plane + iy * S2 + ix;
  const float tz = coordinates.tz[k], ty = coordinates.ty[k], tx = coordinates.tx[k];
  float w[N];
  corner_weights<N>(tz, ty, tx, w);
  float outside_weight = 0.0f;
  for (int c = 0; c < N; ++c) outside_weight += valid[c] ? 0.0f : w[c];
  for (std::int64_t c = 0; c < job.channels; ++c) {
    const float* p = job.image + c * in_volume;
    float value = outside_weight * job.outside;
    for (int corner = 0; corner < N; ++corner) {
      value += valid[corner] ? w[corner] * p[base + corners.o[corner]] : 0.0f;
    }
    job.image_out[c * out_volume + at] = value;
  }
  const int nearest = (kPlanar ? 0 : (tz >= 0.5f ? 4 : 0)) + (ty >= 0.5f ? 2 : 0) + (tx >= 0.5f ? 1 : 0);
  for (std::int64_t word = 0; word < job.words; ++word) {
    const Word* src = static_cast<const Word*>(job.codes) + word * in_volume;
    Word n[N];
    for (int c = 0; c < N; ++c) n[c] = valid[c] ? src[base + corners.o[c]] : Word{0};
    static_cast<Word*>(job.codes_out)[word * out_volume + at] =
        job.nearest_labels ? n[nearest] : vote_bits<Word, N>(n, w, job.label_threshold);
  }
}

// Resamples one output tile, row segment by row segment: coordinates (vectorised), then the
// image and the labels into local buffers (an unsigned char store could alias anything, so the
// loops never store through the output pointers directly), then the few border voxels. 3D linear
// labels take first_row_3d for the first channel and code word; the planar modes and nearest
// labels share one generic loop; further channels and words (multi-modal input, over 64 label
// channels) take a loop each.
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE void resample_tile(const ResampleJob& job, const Tile& tile) {
  const auto [S0, S1, S2] = job.in;
  const auto [P0, P1, P2] = job.out;
  const std::int64_t in_plane = S1 * S2, in_volume = S0 * in_plane, out_volume = P0 * P1 * P2;
  const auto& g = job.grid;
  const std::array<double, 3> step_x = g.step[2];
  const CornerOffsets corners(in_plane, S2);
  const Word* const codes = static_cast<const Word*>(job.codes);
  Word* const codes_out = static_cast<Word*>(job.codes_out);
  const float* const image = job.image;
  float* const image_out = job.image_out;
  const std::int64_t channels = job.channels, words = job.words;
  const bool nearest_labels = job.nearest_labels;
  const float threshold = job.label_threshold;
  const std::int64_t count = tile.x_end - tile.x_begin;
  RowCoordinates coordinates;
  float image_buffer[kTileX];
  Word code_buffer[kTileX];
  std::int32_t border[kTileX];
  for (std::int64_t oz = tile.z_begin; oz < tile.z_end; ++oz) {
    for (std::int64_t oy = tile.y_begin; oy < tile.y_end; ++oy) {
      const std::int64_t row = (oz * P1 + oy) * P2 + tile.x_begin;
      std::array<double, 3> start{};
      for (int i = 0; i < 3; ++i) {
        start[i] = g.origin[i] + oz * g.step[0][i] + oy * g.step[1][i] + tile.x_begin * g.step[2][i];
      }
      std::int64_t slice_offset = 0;
      if constexpr (kPlanar) {
        const std::int64_t sz = oz + job.plane_offset_z;
        if (sz < 0 || sz >= S0) {
          fill_outside<Word>(job, row, count, out_volume);
          continue;
        }
        slice_offset = sz * in_plane;
      }
      // The row kPrefetchRowsAhead further on (the next plane near the tile's end).
      const int ahead_axis = oy + kPrefetchRowsAhead < tile.y_end ? 1 : 0;
      prefetch_row<Word, kPlanar>(job, start, g.step[ahead_axis], count, slice_offset);
      row_coordinates(start, step_x, count, job.in, kPlanar, coordinates);
      const std::int64_t border_count = border_list(coordinates, count, border);
      const auto flush_image = [&](std::int64_t c) {
        for (std::int64_t b = 0; b < border_count; ++b) image_buffer[border[b]] = 0.0f;  // filled below
        std::memcpy(image_out + c * out_volume + row, image_buffer, static_cast<std::size_t>(count) * sizeof(float));
      };
      const auto flush_codes = [&](std::int64_t word) {
        for (std::int64_t b = 0; b < border_count; ++b) code_buffer[border[b]] = Word{0};  // filled below
        std::memcpy(codes_out + word * out_volume + row, code_buffer, static_cast<std::size_t>(count) * sizeof(Word));
      };
      if (!kPlanar && !nearest_labels) {
        first_row_3d_any(image, codes, coordinates, count, S2, in_plane, threshold, image_buffer, code_buffer);
      } else {
        const float* const src = image + slice_offset;
        const Word* const code_src = codes + slice_offset;
        for (std::int64_t k = 0; k < count; ++k) {
          if (coordinates.interior[k] == 0) continue;
          image_buffer[k] = interpolate_image<kPlanar>(src, coordinates, k, corners);
          code_buffer[k] = interpolate_code<Word, kPlanar>(code_src, coordinates, k, corners, nearest_labels, threshold);
        }
      }
      flush_image(0);
      flush_codes(0);
      for (std::int64_t c = 1; c < channels; ++c) {
        const float* const src = image + c * in_volume + slice_offset;
        for (std::int64_t k = 0; k < count; ++k) {
          if (coordinates.interior[k] != 0) image_buffer[k] = interpolate_image<kPlanar>(src, coordinates, k, corners);
        }
        flush_image(c);
      }
      for (std::int64_t word = 1; word < words; ++word) {
        const Word* const src = codes + word * in_volume + slice_offset;
        for (std::int64_t k = 0; k < count; ++k) {
          if (coordinates.interior[k] != 0) {
            code_buffer[k] = interpolate_code<Word, kPlanar>(src, coordinates, k, corners, nearest_labels, threshold);
          }
        }
        flush_codes(word);
      }
      for (std::int64_t b = 0; b < border_count; ++b) {
        border_voxel<Word, kPlanar>(job, start, border[b], row, coordinates, corners, slice_offset);
      }
    }
  }
}

template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE void resample(const ResampleJob& job) {
  const auto [P0, P1, P2] = job.out;
  for (std::int64_t z = 0; z < P0; z += kTileZ) {
    for (std::int64_t y = 0; y < P1; y += kTileY) {
      for (std::int64_t x = 0; x < P2; x += kTileX) {
        resample_tile<Word, kPlanar>(job, Tile{z, std::min(P0, z + kTileZ), y, std::min(P1, y + kTileY), x,
                                               std::min(P2, x + kTileX)});
      }
    }
  }
}

}  // namespace

MLSEG_CPU_CLONES void general_resample_kernel(const ResampleJob& job, CodeWord word, bool planar) {
  switch (word) {
    case CodeWord::u8: return planar ? resample<std::uint8_t, true>(job) : resample<std::uint8_t, false>(job);
    case CodeWord::u16: return planar ? resample<std::uint16_t, true>(job) : resample<std::uint16_t, false>(job);
    case CodeWord::u32: return planar ? resample<std::uint32_t, true>(job) : resample<std::uint32_t, false>(job);
    case CodeWord::u64: return planar ? resample<std::uint64_t, true>(job) : resample<std::uint64_t, false>(job);
  }
}

}  // namespace mlseg::detail
