#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "mlseg/data/resample_kernels.h"

namespace mlseg::detail {
namespace {

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
    // A row segment that carries one code throughout (most rows of a label map) is filled
    // without the gather: one vectorised compare over the source span it reads.
    bool uniform = x_begin < x_end;
    if (uniform) {
      const Word first = source[lower[x_begin]];
      const std::int64_t span_end = lower[x_end - 1] + 1;
      Word differ = 0;  // an OR reduction, which the compiler vectorises (a bool AND it did not)
      for (std::int64_t i = lower[x_begin]; i <= span_end; ++i) differ = static_cast<Word>(differ | (source[i] ^ first));
      uniform = differ == 0;
      if (uniform) {
        std::fill(codes + x_begin, codes + x_end, first);
        std::fill(mixed + x_begin, mixed + x_end, std::uint8_t{0});
      }
    }
    if (!uniform) {
      for (std::int64_t ox = x_begin; ox < x_end; ++ox) {
        const Word a = source[lower[ox]], b = source[lower[ox] + 1];
        codes[ox] = a;
        mixed[ox] = a != b;
      }
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


}  // namespace

MLSEG_CPU_CLONES void separable_resample_kernel(const ResampleJob& job, CodeWord word, bool planar) {
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

}  // namespace mlseg::detail
