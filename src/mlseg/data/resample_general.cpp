#include <algorithm>
#include <cstring>
#include <type_traits>

#include "mlseg/data/resample_kernels.h"
#include "mlseg/data/resample_rows.h"

namespace mlseg::detail {
namespace {

template <typename Word>
void fill_outside(const ResampleJob& job, std::int64_t at, std::int64_t count, std::int64_t out_volume) {
  for (std::int64_t c = 0; c < job.channels; ++c) std::fill_n(job.image_out + c * out_volume + at, count, job.outside);
  Word* codes_out = static_cast<Word*>(job.codes_out);
  for (std::int64_t word = 0; word < job.words; ++word) std::fill_n(codes_out + word * out_volume + at, count, Word{0});
}

struct Tile {
  std::int64_t z_begin, z_end, y_begin, y_end, x_begin, x_end;
};

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
