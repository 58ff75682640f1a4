#pragma once
// detail: the spatial transform's two resampling kernels (not part of the public API).
// apply_spatial_transform (spatial_transform.cpp) fills a ResampleJob and calls one of them:
// the general per-voxel kernel (resample_general.cpp) for any affine, or the separable one
// (resample_separable.cpp) when the affine is diagonal. Both are compiled for baseline x86-64
// and for AVX2/FMA (cpu_dispatch.h), as two functions: inlined together, the general kernel ran
// 15 % slower.
#include <array>
#include <cstdint>

#include "mlseg/core/cpu_dispatch.h"
#include "mlseg/labels/code_array.h"
#include "mlseg/metrics/code_words.h"

namespace mlseg::detail {

using Shape = std::array<std::int64_t, 3>;
using Matrix = std::array<std::array<double, 3>, 3>;

inline std::int64_t floor_to_int(double value) {
  const auto truncated = static_cast<std::int64_t>(value);
  return truncated - (value < static_cast<double>(truncated) ? 1 : 0);
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

// ResampleJob::label_threshold for labels that are classes (LabelInterpolation::classes): the
// vote is over whole codes, not bits (vote_codes).
inline constexpr float kVoteWholeCodes = -1.0f;

// Vote of N corner codes with weights w over whole codes: the code whose corners weigh most
// (ties: the smaller code), i.e. the argmax of each code's linearly interpolated indicator.
template <typename Word, int N>
MLSEG_ALWAYS_INLINE Word vote_codes(const Word* n, const float* w) {
  Word best = n[0];
  float best_weight = -1.0f;
  for (int k = 0; k < N; ++k) {
    bool seen = false;
    for (int j = 0; j < k; ++j) seen = seen || n[j] == n[k];
    if (seen) continue;
    float weight = 0.0f;
    for (int j = k; j < N; ++j) weight += n[j] == n[k] ? w[j] : 0.0f;
    if (weight > best_weight || (weight == best_weight && n[k] < best)) {
      best = n[k];
      best_weight = weight;
    }
  }
  return best;
}

// Per-bit vote of N corner codes with weights w: a bit is set where its weight sum reaches
// `threshold`. Bits all corners share are kept, bits none has stay clear; only the others vote,
// so the cost depends on the bits that change here, never on how many label values exist.
// `threshold` kVoteWholeCodes votes over whole codes instead (vote_codes). Callers come here
// only where the corners differ, so the check costs nothing inside regions.
template <typename Word, int N>
MLSEG_ALWAYS_INLINE Word vote_bits(const Word* n, const float* w, float threshold) {
  if (threshold < 0.0f) return vote_codes<Word, N>(n, w);
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
    // Without branches: whether a corner carries the bit, and the vote's outcome, are as good as
    // random at region boundaries, and mispredicted branches made each vote several times
    // slower. Adding w * 0 or w * 1 sums the same as adding w where the bit is set.
    float vote = 0.0f;
    for (int k = 0; k < N; ++k) vote += w[k] * static_cast<float>((n[k] >> bit) & 1);
    result = static_cast<Word>(result | (static_cast<Word>(vote >= threshold) << bit));
  }
  return result;
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


/// Resamples job.in to job.out through job.grid, any affine.
void general_resample_kernel(const ResampleJob& job, CodeWord word, bool planar);
/// The same for a diagonal job.grid.step (no rotation): axis by axis.
void separable_resample_kernel(const ResampleJob& job, CodeWord word, bool planar);

}  // namespace mlseg::detail
