#include "mlseg/data/spatial_transform.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "mlseg/core/cpu_dispatch.h"
#include "mlseg/core/error.h"
#include "mlseg/metrics/code_words.h"

namespace mlseg {
namespace {

using Shape = std::array<std::int64_t, 3>;
using Matrix = std::array<std::array<double, 3>, 3>;

constexpr double kPi = 3.14159265358979323846;

double degrees_to_radians(double degrees) { return degrees / 180.0 * kPi; }

Matrix multiply(const Matrix& a, const Matrix& b) {
  Matrix r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) r[i][j] += a[i][k] * b[k][j];
  return r;
}

// batchgenerators' create_matrix_rotation_{x,y,z}_3d, axis 0..2.
Matrix rotation_about(int axis, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  if (axis == 0) return Matrix{{{1, 0, 0}, {0, c, -s}, {0, s, c}}};
  if (axis == 1) return Matrix{{{c, 0, s}, {0, 1, 0}, {-s, 0, c}}};
  return Matrix{{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}};
}

// Row vector times matrix, as batchgenerators' rotate_coords_3d (np.dot(coords, rot)).
std::array<double, 3> row_times(const std::array<double, 3>& v, const Matrix& m) {
  std::array<double, 3> r{};
  for (int j = 0; j < 3; ++j)
    for (int i = 0; i < 3; ++i) r[j] += v[i] * m[i][j];
  return r;
}

std::int64_t floor_to_int(double value) {
  const auto truncated = static_cast<std::int64_t>(value);
  return truncated - (value < static_cast<double>(truncated) ? 1 : 0);
}

// Integer crop origin nnU-Net's crop_tensor uses for a centred patch: floor(S/2) - floor(P/2).
std::int64_t centre_crop_offset(std::int64_t input_size, std::int64_t patch_size) {
  return input_size / 2 - patch_size / 2;
}

void require_sample(const torch::Tensor& image, const CodeVolume& codes, const Shape& patch_size_zyx) {
  if (!image.defined() || image.dim() != 4 || image.scalar_type() != torch::kFloat32 || !image.is_contiguous() ||
      !image.device().is_cpu()) {
    throw Error("augmentation input image must be a contiguous float32 CPU tensor [C, Z, Y, X]",
                "convert the patch with .to(torch::kFloat32).contiguous() before augmenting");
  }
  detail::require_code_volume(codes, "augmentation labels");
  if (image.size(0) < 1 || codes.words.size(0) < 1) {
    throw Error("augmentation input has no image channel or no label code word",
                "pass at least one image channel and the case's code volume");
  }
  for (int axis = 0; axis < 3; ++axis) {
    if (codes.words.size(axis + 1) != image.size(axis + 1)) {
      throw Error("augmentation image and label code volume differ in spatial shape",
                  "cut image and labels with the same box (both [.., Z, Y, X])");
    }
    if (patch_size_zyx[axis] < 1) {
      throw Error("augmentation patch size must be at least 1 on every axis", "check the plan's patch_size");
    }
  }
}

// Source voxel coordinate of output voxel o: origin + o_z * step[0] + o_y * step[1] + o_x * step[2].
struct SourceGrid {
  std::array<double, 3> origin{};
  Matrix step{};  // step[j][i]: change of source coordinate i per output step along axis j
};

struct ResampleJob {
  const float* image = nullptr;
  std::int64_t channels = 0;
  const void* codes = nullptr;
  std::int64_t words = 1;
  Shape in{}, out{};
  float* image_out = nullptr;
  void* codes_out = nullptr;
  SourceGrid grid;
  std::int64_t plane_offset_z = 0;  // planar modes: source slice = output slice + this
  float label_threshold = 0.5f;
  bool nearest_labels = false;
  float outside = 0.0f;
};

// Per-bit vote of N corner codes with weights w: a bit is set where its weight sum reaches
// `threshold`. Bits all corners share are kept, bits none has stay clear; only the others vote,
// so the cost depends on the bits that change here, never on how many label values exist.
template <typename Word, int N>
MLSEG_ALWAYS_INLINE Word vote_bits(const Word* n, const float* w, float threshold) {
  Word all_and = n[0], all_or = n[0];
  for (int k = 1; k < N; ++k) {
    all_and = static_cast<Word>(all_and & n[k]);
    all_or = static_cast<Word>(all_or | n[k]);
  }
  Word result = all_and;
  auto varying = static_cast<std::uint64_t>(static_cast<Word>(all_or ^ all_and));
  while (varying != 0) {
    const int bit = detail::count_trailing_zeros(varying);
    varying &= varying - 1;
    float vote = 0.0f;
    for (int k = 0; k < N; ++k) vote += ((n[k] >> bit) & 1) ? w[k] : 0.0f;
    if (vote >= threshold) result = static_cast<Word>(result | (Word{1} << bit));
  }
  return result;
}

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

// Trilinear (planar: bilinear) weights of the 8 (4) corners, corner bit order z, y, x.
template <int N>
MLSEG_ALWAYS_INLINE void corner_weights(float tz, float ty, float tx, float* w) {
  const float wyx[4] = {(1 - ty) * (1 - tx), (1 - ty) * tx, ty * (1 - tx), ty * tx};
  if constexpr (N == 4) {
    for (int k = 0; k < 4; ++k) w[k] = wyx[k];
  } else {
    for (int k = 0; k < 4; ++k) {
      w[k] = (1 - tz) * wyx[k];
      w[k + 4] = tz * wyx[k];
    }
  }
}

// The 8 (planar: 4) corner offsets of a source voxel, corner bit order z, y, x.
struct CornerOffsets {
  std::int64_t o[8];
  CornerOffsets(std::int64_t in_plane, std::int64_t width)
      : o{0, 1, width, width + 1, in_plane, in_plane + 1, in_plane + width, in_plane + width + 1} {}
};

// Trilinear (planar: bilinear) value at interior voxel k: lerp along x, then y, then z (the
// weights of corner_weights, fewer products).
template <bool kPlanar>
MLSEG_ALWAYS_INLINE float interpolate_image(const float* src, const RowCoordinates& coordinates, std::int64_t k,
                               const CornerOffsets& c) {
  const float* p = src + coordinates.base[k];
  const float tx = coordinates.tx[k], ty = coordinates.ty[k];
  const float y0 = p[0] + tx * (p[c.o[1]] - p[0]), y1 = p[c.o[2]] + tx * (p[c.o[3]] - p[c.o[2]]);
  float value = y0 + ty * (y1 - y0);
  if constexpr (!kPlanar) {
    const float z0 = p[c.o[4]] + tx * (p[c.o[5]] - p[c.o[4]]), z1 = p[c.o[6]] + tx * (p[c.o[7]] - p[c.o[6]]);
    value += coordinates.tz[k] * ((z0 + ty * (z1 - z0)) - value);
  }
  return value;
}

// Code at interior voxel k: the nearest corner's, or equal corners copied and the others voting
// per bit.
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE Word interpolate_code(const Word* src, const RowCoordinates& coordinates, std::int64_t k, const CornerOffsets& c,
                             bool nearest_labels, float threshold) {
  constexpr int N = kPlanar ? 4 : 8;
  const Word* q = src + coordinates.base[k];
  const float tz = kPlanar ? 0.0f : coordinates.tz[k], ty = coordinates.ty[k], tx = coordinates.tx[k];
  if (nearest_labels) return q[c.o[(tz >= 0.5f ? 4 : 0) + (ty >= 0.5f ? 2 : 0) + (tx >= 0.5f ? 1 : 0)]];
  if constexpr (sizeof(Word) == 1 && !kPlanar) {
    // Byte codes: corners x and x+1 are adjacent, so the 8 corners are 4 two-byte loads packed
    // in one word; all equal is one compare against the first byte broadcast.
    std::uint16_t pair[4];
    std::memcpy(&pair[0], q, 2);
    std::memcpy(&pair[1], q + c.o[2], 2);
    std::memcpy(&pair[2], q + c.o[4], 2);
    std::memcpy(&pair[3], q + c.o[6], 2);
    const std::uint64_t packed = std::uint64_t{pair[0]} | std::uint64_t{pair[1]} << 16 |
                                 std::uint64_t{pair[2]} << 32 | std::uint64_t{pair[3]} << 48;
    if (packed == std::uint64_t{q[0]} * 0x0101010101010101ull) return q[0];
  }
  Word n[N];
  for (int corner = 0; corner < N; ++corner) n[corner] = q[c.o[corner]];
  Word differ = 0;
  for (int corner = 1; corner < N; ++corner) differ = static_cast<Word>(differ | (n[corner] ^ n[0]));
  if (differ == 0) return n[0];  // the common case: all corners carry the same code
  float w[N];
  corner_weights<N>(tz, ty, tx, w);
  return vote_bits<Word, N>(n, w, threshold);
}

// Resamples one output tile, row segment by row segment: coordinates (vectorised), then the
// image and the labels into local buffers (an unsigned char store could alias anything, so the
// loops never store through the output pointers directly), then the few border voxels. The
// first image channel and the first code word share one loop, so each voxel's coordinates are
// read once for both; further channels and words (multi-modal input, over 64 label channels)
// take a loop each.
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE void resample_tile(const ResampleJob& job, const Tile& tile) {
  constexpr int N = kPlanar ? 4 : 8;
  const auto [S0, S1, S2] = job.in;
  const auto [P0, P1, P2] = job.out;
  const std::int64_t in_plane = S1 * S2, in_volume = S0 * in_plane, out_volume = P0 * P1 * P2;
  const auto& g = job.grid;
  const std::array<double, 3> step_x = g.step[2];
  const CornerOffsets corners(in_plane, S2);
  const std::int64_t* const corner_offset = corners.o;
  const Word* const codes = static_cast<const Word*>(job.codes);
  Word* const codes_out = static_cast<Word*>(job.codes_out);
  const float* const image = job.image;
  float* const image_out = job.image_out;
  const std::int64_t channels = job.channels, words = job.words;
  const bool nearest_labels = job.nearest_labels;
  const float threshold = job.label_threshold, outside = job.outside;
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
      row_coordinates(start, step_x, count, job.in, kPlanar, coordinates);
      std::int64_t border_count = 0;
      for (std::int64_t k = 0; k < count; ++k) {
        border[border_count] = static_cast<std::int32_t>(k);
        border_count += coordinates.interior[k] == 0;
      }
      const auto flush_image = [&](std::int64_t c) {
        for (std::int64_t b = 0; b < border_count; ++b) image_buffer[border[b]] = 0.0f;  // filled below
        std::memcpy(image_out + c * out_volume + row, image_buffer, static_cast<std::size_t>(count) * sizeof(float));
      };
      const auto flush_codes = [&](std::int64_t word) {
        for (std::int64_t b = 0; b < border_count; ++b) code_buffer[border[b]] = Word{0};  // filled below
        std::memcpy(codes_out + word * out_volume + row, code_buffer, static_cast<std::size_t>(count) * sizeof(Word));
      };
      {
        const float* const src = image + slice_offset;
        const Word* const code_src = codes + slice_offset;
        for (std::int64_t k = 0; k < count; ++k) {
          if (coordinates.interior[k] == 0) continue;
          image_buffer[k] = interpolate_image<kPlanar>(src, coordinates, k, corners);
          code_buffer[k] = interpolate_code<Word, kPlanar>(code_src, coordinates, k, corners, nearest_labels, threshold);
        }
        flush_image(0);
        flush_codes(0);
      }
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
      // Border voxels: corners outside the input are the outside value / background.
      for (std::int64_t b = 0; b < border_count; ++b) {
        const std::int64_t k = border[b], at = row + k;
        const double fz = start[0] + k * step_x[0], fy = start[1] + k * step_x[1], fx = start[2] + k * step_x[2];
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
        for (std::int64_t c = 0; c < channels; ++c) {
          const float* p = image + c * in_volume;
          float value = outside_weight * outside;
          for (int corner = 0; corner < N; ++corner) {
            value += valid[corner] ? w[corner] * p[base + corner_offset[corner]] : 0.0f;
          }
          image_out[c * out_volume + at] = value;
        }
        const int nearest = (kPlanar ? 0 : (tz >= 0.5f ? 4 : 0)) + (ty >= 0.5f ? 2 : 0) + (tx >= 0.5f ? 1 : 0);
        for (std::int64_t word = 0; word < words; ++word) {
          const Word* src = codes + word * in_volume;
          Word n[N];
          for (int c = 0; c < N; ++c) n[c] = valid[c] ? src[base + corner_offset[c]] : Word{0};
          codes_out[word * out_volume + at] = nearest_labels ? n[nearest] : vote_bits<Word, N>(n, w, threshold);
        }
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

// ---- Scaling without rotation: the trilinear resampling is separable ----
//
// When the affine is diagonal (no rotation drawn: 80 % of nnU-Net's draws, and every scaling-only
// one), output voxel (oz, oy, ox) reads source (iz[oz] + {0,1}, iy[oy] + {0,1}, ix[ox] + {0,1})
// with per-axis fractions. The image is then lerped along x once per source row, along y once
// per source plane, and along z once per output voxel: the same lerps in the same order as the
// general kernel, over streaming rows instead of gathered corners. Corners outside the input
// read as the outside value, which is the general kernel's border formula. Labels follow the
// same passes as "code + mixed" flags: a voxel whose 8 (planar: 4) corners carry one code gets
// it; the others (region boundaries, a few percent) vote per bit exactly as the general kernel.

// One axis: lower corner index and fraction per output index, and whether each corner is inside.
struct AxisTaps {
  std::vector<std::int64_t> lower;
  std::vector<float> t;
  std::vector<std::uint8_t> inside0, inside1;
  std::int64_t interior_begin = 0, interior_end = 0;  // output range with both corners inside
  std::vector<std::int64_t> edge;                      // the other outputs
};

AxisTaps axis_taps(double origin, double step, std::int64_t out_size, std::int64_t in_size) {
  AxisTaps taps;
  const auto n = static_cast<std::size_t>(out_size);
  taps.lower.resize(n);
  taps.t.resize(n);
  taps.inside0.resize(n);
  taps.inside1.resize(n);
  for (std::size_t o = 0; o < n; ++o) {
    const double f = origin + static_cast<double>(o) * step;
    const std::int64_t i = floor_to_int(f);
    taps.lower[o] = i;
    taps.t[o] = static_cast<float>(f - static_cast<double>(i));
    taps.inside0[o] = i >= 0 && i < in_size;
    taps.inside1[o] = i + 1 >= 0 && i + 1 < in_size;
  }
  // The lower index grows with o, so the outputs with both corners inside are one range.
  std::size_t begin = 0;
  while (begin < n && !(taps.inside0[begin] && taps.inside1[begin])) ++begin;
  std::size_t end = begin;
  while (end < n && taps.inside0[end] && taps.inside1[end]) ++end;
  taps.interior_begin = static_cast<std::int64_t>(begin);
  taps.interior_end = static_cast<std::int64_t>(end);
  for (std::int64_t o = 0; o < out_size; ++o) {
    if (o < taps.interior_begin || o >= taps.interior_end) taps.edge.push_back(o);
  }
  return taps;
}

// Source rows [first, last] of one plane lerped along x (rows outside the input: the outside value).
struct RowBlock {
  std::int64_t first = 0, last = -1;
  std::vector<float> values;         // (last - first + 1) x P2
  std::vector<std::uint8_t> mixed;   // labels: the two x corners differ
  template <typename T>
  T* row(std::vector<T>& data, std::int64_t y, std::int64_t width) { return data.data() + (y - first) * width; }
};

// One source plane resampled in y and x: values (image) or codes + mixed flags (labels).
template <typename Word>
struct PlaneSlot {
  std::int64_t z = std::numeric_limits<std::int64_t>::min();
  std::vector<float> values;
  std::vector<Word> codes;
  std::vector<std::uint8_t> mixed;
};

template <bool kPlanar>
struct SeparableGrid {
  AxisTaps z, y, x;
  std::int64_t row_first = 0, row_last = -1;  // source rows any output row reads
};

template <bool kPlanar>
SeparableGrid<kPlanar> separable_grid(const ResampleJob& job) {
  SeparableGrid<kPlanar> grid;
  const auto& g = job.grid;
  if constexpr (!kPlanar) grid.z = axis_taps(g.origin[0], g.step[0][0], job.out[0], job.in[0]);
  grid.y = axis_taps(g.origin[1], g.step[1][1], job.out[1], job.in[1]);
  grid.x = axis_taps(g.origin[2], g.step[2][2], job.out[2], job.in[2]);
  grid.row_first = std::max<std::int64_t>(0, grid.y.lower.front());
  grid.row_last = std::min<std::int64_t>(job.in[1] - 1, grid.y.lower.back() + 1);
  return grid;
}

// Image channel `c`, plane of source slice z (may be outside the input) into slot.values.
template <bool kPlanar>
MLSEG_ALWAYS_INLINE void image_plane(const ResampleJob& job, const SeparableGrid<kPlanar>& grid, std::int64_t c,
                                     std::int64_t z, RowBlock& rows, PlaneSlot<std::uint8_t>& slot) {
  const auto [S0, S1, S2] = job.in;
  const std::int64_t P1 = job.out[1], P2 = job.out[2];
  const float outside = job.outside;
  slot.z = z;
  slot.values.resize(static_cast<std::size_t>(P1 * P2));
  if (z < 0 || z >= S0) {
    std::fill(slot.values.begin(), slot.values.end(), outside);
    return;
  }
  const float* const plane = job.image + (c * S0 + z) * S1 * S2;
  rows.first = grid.row_first;
  rows.last = grid.row_last;
  rows.values.resize(static_cast<std::size_t>(std::max<std::int64_t>(0, rows.last - rows.first + 1) * P2));
  const std::int64_t* const lower = grid.x.lower.data();
  const float* const tx = grid.x.t.data();
  const std::uint8_t *const in0 = grid.x.inside0.data(), *const in1 = grid.x.inside1.data();
  const std::int64_t x_begin = grid.x.interior_begin, x_end = grid.x.interior_end;
  for (std::int64_t y = rows.first; y <= rows.last; ++y) {
    const float* const source = plane + y * S2;
    float* const out = rows.row(rows.values, y, P2);
    for (std::int64_t ox = x_begin; ox < x_end; ++ox) {
      const float a = source[lower[ox]], b = source[lower[ox] + 1];
      out[ox] = a + tx[ox] * (b - a);
    }
    for (const std::int64_t ox : grid.x.edge) {
      const float a = in0[ox] ? source[lower[ox]] : outside, b = in1[ox] ? source[lower[ox] + 1] : outside;
      out[ox] = a + tx[ox] * (b - a);
    }
  }
  std::vector<float> outside_row;
  for (std::int64_t oy = 0; oy < P1; ++oy) {
    const std::int64_t y = grid.y.lower[static_cast<std::size_t>(oy)];
    const auto row_or_outside = [&](bool inside, std::int64_t at) -> const float* {
      if (inside) return rows.row(rows.values, at, P2);
      if (outside_row.empty()) outside_row.assign(static_cast<std::size_t>(P2), outside);
      return outside_row.data();
    };
    const float* const r0 = row_or_outside(grid.y.inside0[static_cast<std::size_t>(oy)], y);
    const float* const r1 = row_or_outside(grid.y.inside1[static_cast<std::size_t>(oy)], y + 1);
    const float ty = grid.y.t[static_cast<std::size_t>(oy)];
    float* const out = slot.values.data() + oy * P2;
    for (std::int64_t ox = 0; ox < P2; ++ox) out[ox] = r0[ox] + ty * (r1[ox] - r0[ox]);
  }
}

// Code word `word`, plane of source slice z into slot.codes / slot.mixed.
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE void code_plane(const ResampleJob& job, const SeparableGrid<kPlanar>& grid, std::int64_t word,
                                    std::int64_t z, std::vector<Word>& row_codes, RowBlock& rows,
                                    PlaneSlot<Word>& slot) {
  const auto [S0, S1, S2] = job.in;
  const std::int64_t P1 = job.out[1], P2 = job.out[2];
  slot.z = z;
  slot.codes.resize(static_cast<std::size_t>(P1 * P2));
  slot.mixed.resize(static_cast<std::size_t>(P1 * P2));
  if (z < 0 || z >= S0) {
    std::fill(slot.codes.begin(), slot.codes.end(), Word{0});
    std::fill(slot.mixed.begin(), slot.mixed.end(), std::uint8_t{0});
    return;
  }
  const Word* const plane = static_cast<const Word*>(job.codes) + (word * S0 + z) * S1 * S2;
  rows.first = grid.row_first;
  rows.last = grid.row_last;
  const auto row_count = static_cast<std::size_t>(std::max<std::int64_t>(0, rows.last - rows.first + 1) * P2);
  row_codes.resize(row_count);
  rows.mixed.resize(row_count);
  const std::int64_t* const lower = grid.x.lower.data();
  const std::uint8_t *const in0 = grid.x.inside0.data(), *const in1 = grid.x.inside1.data();
  const std::int64_t x_begin = grid.x.interior_begin, x_end = grid.x.interior_end;
  for (std::int64_t y = rows.first; y <= rows.last; ++y) {
    const Word* const source = plane + y * S2;
    Word* const codes = row_codes.data() + (y - rows.first) * P2;
    std::uint8_t* const mixed = rows.row(rows.mixed, y, P2);
    for (std::int64_t ox = x_begin; ox < x_end; ++ox) {
      const Word a = source[lower[ox]], b = source[lower[ox] + 1];
      codes[ox] = a;
      mixed[ox] = a != b;
    }
    for (const std::int64_t ox : grid.x.edge) {
      const Word a = in0[ox] ? source[lower[ox]] : Word{0}, b = in1[ox] ? source[lower[ox] + 1] : Word{0};
      codes[ox] = a;
      mixed[ox] = a != b;
    }
  }
  const std::vector<Word> zero_codes(static_cast<std::size_t>(P2), Word{0});
  const std::vector<std::uint8_t> zero_mixed(static_cast<std::size_t>(P2), std::uint8_t{0});
  for (std::int64_t oy = 0; oy < P1; ++oy) {
    const std::int64_t y = grid.y.lower[static_cast<std::size_t>(oy)];
    const bool inside0 = grid.y.inside0[static_cast<std::size_t>(oy)], inside1 = grid.y.inside1[static_cast<std::size_t>(oy)];
    const Word* const c0 = inside0 ? row_codes.data() + (y - rows.first) * P2 : zero_codes.data();
    const Word* const c1 = inside1 ? row_codes.data() + (y + 1 - rows.first) * P2 : zero_codes.data();
    const std::uint8_t* const m0 = inside0 ? rows.row(rows.mixed, y, P2) : zero_mixed.data();
    const std::uint8_t* const m1 = inside1 ? rows.row(rows.mixed, y + 1, P2) : zero_mixed.data();
    Word* const codes = slot.codes.data() + oy * P2;
    std::uint8_t* const mixed = slot.mixed.data() + oy * P2;
    for (std::int64_t ox = 0; ox < P2; ++ox) {
      codes[ox] = c0[ox];
      mixed[ox] = static_cast<std::uint8_t>(m0[ox] | m1[ox] | (c0[ox] != c1[ox]));
    }
  }
}

// The general kernel's per-bit vote for output voxel (oz, oy, ox), corners read through the taps.
template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE Word separable_vote(const ResampleJob& job, const SeparableGrid<kPlanar>& grid, const Word* codes,
                                        std::int64_t source_z, std::int64_t oz, std::int64_t oy, std::int64_t ox) {
  constexpr int N = kPlanar ? 4 : 8;
  const auto [S0, S1, S2] = job.in;
  const auto zi = static_cast<std::size_t>(oz), yi = static_cast<std::size_t>(oy), xi = static_cast<std::size_t>(ox);
  const std::int64_t z0 = kPlanar ? source_z : grid.z.lower[zi], y0 = grid.y.lower[yi], x0 = grid.x.lower[xi];
  const bool zin[2] = {kPlanar ? true : grid.z.inside0[zi] != 0, kPlanar ? false : grid.z.inside1[zi] != 0};
  const bool yin[2] = {grid.y.inside0[yi] != 0, grid.y.inside1[yi] != 0};
  const bool xin[2] = {grid.x.inside0[xi] != 0, grid.x.inside1[xi] != 0};
  Word n[N];
  for (int corner = 0; corner < N; ++corner) {
    const int dz = corner >> 2, dy = (corner >> 1) & 1, dx = corner & 1;
    n[corner] = zin[dz] && yin[dy] && xin[dx] ? codes[((z0 + dz) * S1 + y0 + dy) * S2 + x0 + dx] : Word{0};
  }
  float w[N];
  corner_weights<N>(kPlanar ? 0.0f : grid.z.t[zi], grid.y.t[yi], grid.x.t[xi], w);
  if (job.nearest_labels) {
    const float tz = kPlanar ? 0.0f : grid.z.t[zi];
    return n[(tz >= 0.5f ? 4 : 0) + (grid.y.t[yi] >= 0.5f ? 2 : 0) + (grid.x.t[xi] >= 0.5f ? 1 : 0)];
  }
  return vote_bits<Word, N>(n, w, job.label_threshold);
}

// The slot holding source slice z, if any.
template <typename Slot>
MLSEG_ALWAYS_INLINE Slot* find_plane(Slot (&slots)[2], std::int64_t z) {
  for (Slot& slot : slots) {
    if (slot.z == z) return &slot;
  }
  return nullptr;
}

// The slot to overwrite: the one not holding source slice `keep`.
template <typename Slot>
MLSEG_ALWAYS_INLINE Slot& free_plane(Slot (&slots)[2], std::int64_t keep) {
  return slots[0].z == keep ? slots[1] : slots[0];
}

template <typename Word, bool kPlanar>
MLSEG_ALWAYS_INLINE void resample_separable(const ResampleJob& job) {
  const auto [S0, S1, S2] = job.in;
  const auto [P0, P1, P2] = job.out;
  const std::int64_t out_plane = P1 * P2, out_volume = P0 * out_plane, in_volume = S0 * S1 * S2;
  const SeparableGrid<kPlanar> grid = separable_grid<kPlanar>(job);
  RowBlock rows;
  // Output slice oz reads source slices iz and iz + 1 (planar: one slice), and iz only grows,
  // so two slots suffice.
  const auto source_slices = [&](std::int64_t oz) -> std::array<std::int64_t, 2> {
    if constexpr (kPlanar) return {oz + job.plane_offset_z, oz + job.plane_offset_z};
    const std::int64_t z = grid.z.lower[static_cast<std::size_t>(oz)];
    return {z, z + 1};
  };
  for (std::int64_t c = 0; c < job.channels; ++c) {
    PlaneSlot<std::uint8_t> slots[2];
    for (std::int64_t oz = 0; oz < P0; ++oz) {
      const auto [z0, z1] = source_slices(oz);
      const PlaneSlot<std::uint8_t>* planes[2] = {nullptr, nullptr};
      for (int k = 0; k < (kPlanar ? 1 : 2); ++k) {
        const std::int64_t z = k == 0 ? z0 : z1;
        planes[k] = find_plane(slots, z);
        if (planes[k] != nullptr) continue;
        PlaneSlot<std::uint8_t>& slot = free_plane(slots, k == 0 ? z1 : z0);
        image_plane<kPlanar>(job, grid, c, z, rows, slot);
        planes[k] = &slot;
      }
      float* const out = job.image_out + c * out_volume + oz * out_plane;
      if constexpr (kPlanar) {
        std::memcpy(out, planes[0]->values.data(), static_cast<std::size_t>(out_plane) * sizeof(float));
      } else {
        const float tz = grid.z.t[static_cast<std::size_t>(oz)];
        const float *const a = planes[0]->values.data(), *const b = planes[1]->values.data();
        for (std::int64_t i = 0; i < out_plane; ++i) out[i] = a[i] + tz * (b[i] - a[i]);
      }
    }
  }
  std::vector<Word> row_codes;
  std::vector<std::uint8_t> mixed(static_cast<std::size_t>(out_plane));
  for (std::int64_t word = 0; word < job.words; ++word) {
    const Word* const codes = static_cast<const Word*>(job.codes) + word * in_volume;
    PlaneSlot<Word> slots[2];
    for (std::int64_t oz = 0; oz < P0; ++oz) {
      const auto [z0, z1] = source_slices(oz);
      Word* const out = static_cast<Word*>(job.codes_out) + word * out_volume + oz * out_plane;
      if (job.nearest_labels) {
        for (std::int64_t oy = 0, i = 0; oy < P1; ++oy) {
          for (std::int64_t ox = 0; ox < P2; ++ox, ++i) out[i] = separable_vote<Word, kPlanar>(job, grid, codes, z0, oz, oy, ox);
        }
        continue;
      }
      const PlaneSlot<Word>* planes[2] = {nullptr, nullptr};
      for (int k = 0; k < (kPlanar ? 1 : 2); ++k) {
        const std::int64_t z = k == 0 ? z0 : z1;
        planes[k] = find_plane(slots, z);
        if (planes[k] != nullptr) continue;
        PlaneSlot<Word>& slot = free_plane(slots, k == 0 ? z1 : z0);
        code_plane<Word, kPlanar>(job, grid, word, z, row_codes, rows, slot);
        planes[k] = &slot;
      }
      // Voxels whose corners all carry one code take it (a vectorised pass); the others vote.
      const Word* const a = planes[0]->codes.data();
      const std::uint8_t* const mixed_a = planes[0]->mixed.data();
      const Word* const b = kPlanar ? a : planes[1]->codes.data();
      const std::uint8_t* const mixed_b = kPlanar ? mixed_a : planes[1]->mixed.data();
      std::uint8_t* const vote = mixed.data();
      for (std::int64_t i = 0; i < out_plane; ++i) {
        out[i] = a[i];
        vote[i] = static_cast<std::uint8_t>(mixed_a[i] | mixed_b[i] | (a[i] != b[i]));
      }
      for (std::int64_t block = 0; block < out_plane; block += 8) {
        std::uint64_t any = 0;  // eight flags at a time: most blocks have none
        if (block + 8 <= out_plane) std::memcpy(&any, vote + block, 8);
        if (block + 8 <= out_plane && any == 0) continue;
        for (std::int64_t i = block; i < std::min(out_plane, block + 8); ++i) {
          if (vote[i] != 0) out[i] = separable_vote<Word, kPlanar>(job, grid, codes, z0, oz, i / P2, i % P2);
        }
      }
    }
  }
}

// Every instantiation of each kernel, compiled for baseline x86-64 and for AVX2/FMA
// (cpu_dispatch.h). Two functions, not one: inlined together, the general kernel ran 15 % slower.
MLSEG_CPU_CLONES void general_kernel(const ResampleJob& job, CodeWord word, bool planar) {
  switch (word) {
    case CodeWord::u8: return planar ? resample<std::uint8_t, true>(job) : resample<std::uint8_t, false>(job);
    case CodeWord::u16: return planar ? resample<std::uint16_t, true>(job) : resample<std::uint16_t, false>(job);
    case CodeWord::u32: return planar ? resample<std::uint32_t, true>(job) : resample<std::uint32_t, false>(job);
    case CodeWord::u64: return planar ? resample<std::uint64_t, true>(job) : resample<std::uint64_t, false>(job);
  }
}

MLSEG_CPU_CLONES void separable_kernel(const ResampleJob& job, CodeWord word, bool planar) {
  switch (word) {
    case CodeWord::u8:
      return planar ? resample_separable<std::uint8_t, true>(job) : resample_separable<std::uint8_t, false>(job);
    case CodeWord::u16:
      return planar ? resample_separable<std::uint16_t, true>(job) : resample_separable<std::uint16_t, false>(job);
    case CodeWord::u32:
      return planar ? resample_separable<std::uint32_t, true>(job) : resample_separable<std::uint32_t, false>(job);
    case CodeWord::u64:
      return planar ? resample_separable<std::uint64_t, true>(job) : resample_separable<std::uint64_t, false>(job);
  }
}

// Integer centre crop with padding (nnU-Net's crop_tensor), for `planes` [Z, Y, X] volumes.
template <typename T>
void crop_planes(const T* src, const Shape& in, T* dst, const Shape& out, const Shape& offset, std::int64_t planes,
                 T outside) {
  const std::int64_t in_volume = in[0] * in[1] * in[2], out_volume = out[0] * out[1] * out[2];
  const std::int64_t x_begin = std::clamp<std::int64_t>(-offset[2], 0, out[2]);
  const std::int64_t x_end = std::clamp<std::int64_t>(in[2] - offset[2], x_begin, out[2]);
  for (std::int64_t p = 0; p < planes; ++p) {
    for (std::int64_t oz = 0; oz < out[0]; ++oz) {
      for (std::int64_t oy = 0; oy < out[1]; ++oy) {
        T* row = dst + p * out_volume + (oz * out[1] + oy) * out[2];
        const std::int64_t sz = oz + offset[0], sy = oy + offset[1];
        if (sz < 0 || sz >= in[0] || sy < 0 || sy >= in[1]) {
          std::fill_n(row, out[2], outside);
          continue;
        }
        std::fill_n(row, x_begin, outside);
        const T* source = src + p * in_volume + (sz * in[1] + sy) * in[2] + x_begin + offset[2];
        std::memcpy(row + x_begin, source, static_cast<std::size_t>(x_end - x_begin) * sizeof(T));
        std::fill(row + x_end, row + out[2], outside);
      }
    }
  }
}

}  // namespace

AugmentationGeometry augmentation_geometry(const Shape& patch_size_zyx, const SpatialTransformOptions& options) {
  AugmentationGeometry geometry;
  const auto [pz, py, px] = patch_size_zyx;
  if (pz == 1) {
    geometry.mode = AugmentationMode::planar_2d;
    const double aspect = static_cast<double>(std::max(py, px)) / static_cast<double>(std::max<std::int64_t>(1, std::min(py, px)));
    geometry.max_rotation_rad = degrees_to_radians(aspect > options.elongated_2d_aspect_ratio()
                                                       ? options.max_rotation_deg_2d_elongated()
                                                       : options.max_rotation_deg_in_plane());
    geometry.mirror_axes = {1, 2};
    return geometry;
  }
  const double anisotropy = static_cast<double>(std::max({pz, py, px})) / static_cast<double>(pz);
  geometry.mode = anisotropy > options.dummy_2d_anisotropy_threshold() ? AugmentationMode::dummy_2d
                                                                       : AugmentationMode::volume_3d;
  geometry.max_rotation_rad = degrees_to_radians(geometry.mode == AugmentationMode::dummy_2d
                                                     ? options.max_rotation_deg_in_plane()
                                                     : options.max_rotation_deg_3d());
  geometry.mirror_axes = {0, 1, 2};
  return geometry;
}

Shape initial_patch_size(const Shape& patch_size_zyx, const SpatialTransformOptions& options) {
  const AugmentationGeometry geometry = augmentation_geometry(patch_size_zyx, options);
  const double angle = std::min(geometry.max_rotation_rad, kPi / 2);
  std::array<double, 3> corner{static_cast<double>(patch_size_zyx[0]), static_cast<double>(patch_size_zyx[1]),
                               static_cast<double>(patch_size_zyx[2])};
  std::array<double, 3> extent = corner;
  if (geometry.mode == AugmentationMode::volume_3d) {
    for (int axis = 0; axis < 3; ++axis) {
      const auto rotated = row_times(corner, rotation_about(axis, angle));
      for (int i = 0; i < 3; ++i) extent[i] = std::max(extent[i], std::abs(rotated[i]));
    }
  } else {
    // rotate_coords_2d on (y, x): np.dot(coords, [[c, -s], [s, c]]).
    const double c = std::cos(angle), s = std::sin(angle);
    const double y = corner[1] * c + corner[2] * s, x = -corner[1] * s + corner[2] * c;
    extent[1] = std::max(extent[1], std::abs(y));
    extent[2] = std::max(extent[2], std::abs(x));
  }
  Shape size{};
  for (int i = 0; i < 3; ++i) size[i] = static_cast<std::int64_t>(extent[i] / options.initial_patch_scale_bound());
  if (geometry.mode != AugmentationMode::volume_3d) size[0] = patch_size_zyx[0];
  return size;
}

SpatialParameters sample_spatial_parameters(const AugmentationGeometry& geometry, const SpatialTransformOptions& options,
                                            SplitMix64& rng) {
  if (options.elastic_probability() > 0.0) {
    throw Error("elastic deformation is not supported by mlseg's spatial transform",
                "set SpatialTransformOptions::elastic_probability to 0 (nnU-Net's default also leaves it off)");
  }
  SpatialParameters parameters;
  parameters.rotated = rng.uniform() < options.rotation_probability();
  parameters.scaled = rng.uniform() < options.scaling_probability();
  if (parameters.rotated) {
    const int axes = geometry.mode == AugmentationMode::volume_3d ? 3 : 1;
    for (int axis = 0; axis < axes; ++axis) {
      parameters.angles_rad[axis] = rng.uniform(-geometry.max_rotation_rad, geometry.max_rotation_rad);
    }
  }
  if (parameters.scaled) parameters.scale = rng.uniform(options.min_scale(), options.max_scale());
  return parameters;
}

SpatialOutput apply_spatial_transform(const torch::Tensor& image, const CodeVolume& codes, const Shape& patch_size_zyx,
                                      const AugmentationGeometry& geometry, const SpatialParameters& parameters,
                                      const SpatialTransformOptions& options) {
  require_sample(image, codes, patch_size_zyx);
  const Shape in{image.size(1), image.size(2), image.size(3)};
  const Shape& out = patch_size_zyx;
  Shape offset{};
  for (int i = 0; i < 3; ++i) offset[i] = centre_crop_offset(in[i], out[i]);

  SpatialOutput result;
  result.image = torch::empty({image.size(0), out[0], out[1], out[2]}, image.options());
  result.codes.num_channels = codes.num_channels;
  result.codes.words = torch::empty({codes.words.size(0), out[0], out[1], out[2]}, codes.words.options());

  if (parameters.is_identity()) {
    crop_planes(image.data_ptr<float>(), in, result.image.data_ptr<float>(), out, offset, image.size(0),
                options.image_outside_value());
    detail::with_code_word_type(codes, [&](auto word) {
      using Word = decltype(word);
      crop_planes(static_cast<const Word*>(codes.words.data_ptr()), in, static_cast<Word*>(result.codes.words.data_ptr()),
                  out, offset, codes.words.size(0), Word{0});
    });
    return result;
  }

  // Source offset of output voxel o (relative to the patch centre q = o - (P-1)/2) is q @ (R S),
  // as batchgeneratorsv2 applies grid @ affine with affine = Rz Ry Rx S.
  if (in[0] * in[1] * in[2] >= (std::int64_t{1} << 31)) {
    throw Error("augmentation input of " + std::to_string(in[0] * in[1] * in[2]) +
                    " voxels is too large for the spatial transform (at most 2^31 - 1 per channel)",
                "cut the sample at initial_patch_size(patch_size) instead of passing the whole case");
  }
  const bool planar = geometry.mode != AugmentationMode::volume_3d;
  Matrix affine{};
  const double scale = parameters.scale;
  if (planar) {
    const double c = std::cos(parameters.angles_rad[0]), s = std::sin(parameters.angles_rad[0]);
    affine = Matrix{{{1, 0, 0}, {0, c * scale, -s * scale}, {0, s * scale, c * scale}}};
  } else {
    const Matrix rotation = multiply(rotation_about(2, parameters.angles_rad[2]),
                                     multiply(rotation_about(1, parameters.angles_rad[1]),
                                              rotation_about(0, parameters.angles_rad[0])));
    const Matrix scaling{{{scale, 0, 0}, {0, scale, 0}, {0, 0, scale}}};
    affine = multiply(rotation, scaling);
  }
  ResampleJob job;
  job.image = image.data_ptr<float>();
  job.channels = image.size(0);
  job.codes = codes.words.data_ptr();
  job.words = codes.words.size(0);
  job.in = in;
  job.out = out;
  job.image_out = result.image.data_ptr<float>();
  job.codes_out = result.codes.words.data_ptr();
  job.label_threshold = static_cast<float>(options.label_threshold());
  job.nearest_labels = options.label_interpolation() == LabelInterpolation::nearest;
  job.outside = options.image_outside_value();
  job.plane_offset_z = offset[0];
  std::array<double, 3> patch_centre{}, source_centre{};
  for (int i = 0; i < 3; ++i) {
    patch_centre[i] = (static_cast<double>(out[i]) - 1.0) / 2.0;
    source_centre[i] = static_cast<double>(offset[i]) + patch_centre[i];
  }
  job.grid.step = affine;  // d source / d o_j is row j of the affine (q @ affine)
  const auto centre_offset = row_times(patch_centre, affine);
  for (int i = 0; i < 3; ++i) job.grid.origin[i] = source_centre[i] - centre_offset[i];

  bool diagonal = true;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) diagonal = diagonal && (i == j || affine[i][j] == 0.0);
  if (diagonal && options.separable_when_unrotated()) {
    separable_kernel(job, codes.view().word, planar);
  } else {
    general_kernel(job, codes.view().word, planar);
  }
  return result;
}

}  // namespace mlseg
