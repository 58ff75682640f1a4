#include <cstring>

#include "mlseg/data/resample_rows.h"

namespace mlseg::detail {
namespace {

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

}  // namespace

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

}  // namespace mlseg::detail
