// resample_codes: every output voxel reads its 8 linear-interpolation neighbours once. Most voxels
// lie inside one region, where all 8 codes agree and the code is copied without any weighting.
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "mlseg/core/parallel.h"
#include "mlseg/metrics/code_words.h"
#include "mlseg/preprocessing/resample.h"
#include "mlseg/preprocessing/resample_grid.h"

namespace mlseg {
namespace {

constexpr int kNeighbours = 8;
// nnU-Net resize_segmentation keeps a label where its interpolated indicator reaches this.
constexpr double kBitThreshold = 0.5;

// Per axis and output index: the two input indices and the upper one's weight. An axis of unchanged
// size, and the separate axis (nearest slice), read a single index with weight 1.
struct CodeGrid {
  std::array<std::int64_t, 3> in_shape{};
  std::array<std::int64_t, 3> out_shape{};
  std::array<std::vector<detail::LinearTap>, 3> taps;
};

CodeGrid make_grid(const std::array<std::int64_t, 3>& in_shape, const std::array<std::int64_t, 3>& out_shape,
                   int separate_axis) {
  CodeGrid grid{in_shape, out_shape, {}};
  for (int axis = 0; axis < 3; ++axis) {
    const std::int64_t in_size = in_shape[axis], out_size = out_shape[axis];
    auto& taps = grid.taps[axis];
    taps.reserve(out_size);
    for (std::int64_t o = 0; o < out_size; ++o) {
      if (in_size == out_size) {
        taps.push_back({o, o, 0.0});
      } else if (axis == separate_axis) {
        const std::int64_t nearest = detail::nearest_source_index(o, in_size, out_size);
        taps.push_back({nearest, nearest, 0.0});
      } else {
        taps.push_back(detail::linear_tap(o, in_size, out_size));
      }
    }
  }
  return grid;
}

// The four input lines (z, y neighbours) one output row reads, with their weights.
struct RowNeighbours {
  std::int64_t line_offset[4];
  double line_weight[4];
};

RowNeighbours row_neighbours(const CodeGrid& grid, std::int64_t z, std::int64_t y) {
  const detail::LinearTap& tz = grid.taps[0][z];
  const detail::LinearTap& ty = grid.taps[1][y];
  const std::int64_t rows = grid.in_shape[1], columns = grid.in_shape[2];
  return {{(tz.lower * rows + ty.lower) * columns, (tz.lower * rows + ty.upper) * columns,
           (tz.upper * rows + ty.lower) * columns, (tz.upper * rows + ty.upper) * columns},
          {(1 - tz.upper_weight) * (1 - ty.upper_weight), (1 - tz.upper_weight) * ty.upper_weight,
           tz.upper_weight * (1 - ty.upper_weight), tz.upper_weight * ty.upper_weight}};
}

// Neighbour 2 * line + side, side 0 = lower x, 1 = upper x.
void neighbour_offsets(const RowNeighbours& row, const detail::LinearTap& tx, std::int64_t (&offsets)[kNeighbours]) {
  for (int line = 0; line < 4; ++line) {
    offsets[2 * line] = row.line_offset[line] + tx.lower;
    offsets[2 * line + 1] = row.line_offset[line] + tx.upper;
  }
}

void neighbour_weights(const RowNeighbours& row, const detail::LinearTap& tx, double (&weights)[kNeighbours]) {
  for (int line = 0; line < 4; ++line) {
    weights[2 * line] = row.line_weight[line] * (1 - tx.upper_weight);
    weights[2 * line + 1] = row.line_weight[line] * tx.upper_weight;
  }
}

// Bits set in some but not all neighbours, each kept where its summed weight reaches the threshold.
template <typename Word>
Word threshold_bits(const Word (&codes)[kNeighbours], const double (&weights)[kNeighbours], Word all, Word any) {
  Word result = all;
  std::uint64_t undecided = static_cast<std::uint64_t>(static_cast<Word>(any & ~all));
  while (undecided) {
    const int bit = detail::count_trailing_zeros(undecided);
    double inside = 0.0;
    for (int k = 0; k < kNeighbours; ++k) {
      if ((codes[k] >> bit) & 1) inside += weights[k];
    }
    if (inside >= kBitThreshold) result = static_cast<Word>(result | (Word{1} << bit));
    undecided &= undecided - 1;
  }
  return result;
}

// The neighbour whose code gathers the largest summed weight (ties: the smaller code). An argmax
// over codes rather than nnU-Net's per-label threshold: two touching labels never leave background
// voxels between them, which thresholding each label at 0.5 can.
template <typename SameCode, typename SmallerCode>
int most_likely_neighbour(const double (&weights)[kNeighbours], SameCode&& same_code, SmallerCode&& smaller_code) {
  int representative[kNeighbours];
  double weight_sum[kNeighbours];
  int distinct = 0;
  for (int k = 0; k < kNeighbours; ++k) {
    int i = 0;
    while (i < distinct && !same_code(representative[i], k)) ++i;
    if (i == distinct) {
      representative[distinct] = k;
      weight_sum[distinct++] = 0.0;
    }
    weight_sum[i] += weights[k];
  }
  int best = 0;
  for (int i = 1; i < distinct; ++i) {
    if (weight_sum[i] > weight_sum[best] ||
        (weight_sum[i] == weight_sum[best] && smaller_code(representative[i], representative[best]))) {
      best = i;
    }
  }
  return representative[best];
}

// One word plane: every code value of `Word` (per_channel_bit treats each word of a multi-word code
// on its own, as its bits are independent).
template <typename Word>
void resample_word_plane(const Word* in, Word* out, const CodeGrid& grid, LabelResampling mode, int threads) {
  const std::int64_t out_rows = grid.out_shape[1], out_columns = grid.out_shape[2];
  parallel_for(static_cast<std::size_t>(grid.out_shape[0] * out_rows), threads, [&](std::size_t row_index) {
    const auto z = static_cast<std::int64_t>(row_index) / out_rows;
    const auto y = static_cast<std::int64_t>(row_index) % out_rows;
    const RowNeighbours row = row_neighbours(grid, z, y);
    Word* destination = out + static_cast<std::int64_t>(row_index) * out_columns;
    // Rows far from any boundary read four identical input lines: then a voxel is decided by two codes.
    const Word* first_line = in + row.line_offset[0];
    bool lines_agree = true;
    for (int line = 1; line < 4 && lines_agree; ++line) {
      lines_agree = std::equal(first_line, first_line + grid.in_shape[2], in + row.line_offset[line]);
    }
    std::int64_t offsets[kNeighbours];
    Word codes[kNeighbours];
    double weights[kNeighbours];
    for (std::int64_t x = 0; x < out_columns; ++x) {
      const detail::LinearTap& tx = grid.taps[2][x];
      if (lines_agree && first_line[tx.lower] == first_line[tx.upper]) {
        destination[x] = first_line[tx.lower];
        continue;
      }
      neighbour_offsets(row, tx, offsets);
      Word any = 0, all = static_cast<Word>(~Word{0});
      for (int k = 0; k < kNeighbours; ++k) {
        codes[k] = in[offsets[k]];
        any = static_cast<Word>(any | codes[k]);
        all = static_cast<Word>(all & codes[k]);
      }
      if (any == all) {
        destination[x] = all;
        continue;
      }
      neighbour_weights(row, tx, weights);
      if (mode == LabelResampling::per_channel_bit) {
        destination[x] = threshold_bits(codes, weights, all, any);
      } else {
        destination[x] = codes[most_likely_neighbour(
            weights, [&](int a, int b) { return codes[a] == codes[b]; },
            [&](int a, int b) { return codes[a] < codes[b]; })];
      }
    }
  });
}

// most_likely_combination for multi-word codes: codes compare word by word, the last word most
// significant.
void resample_multi_word_most_likely(const std::uint64_t* in, std::uint64_t* out, std::int64_t num_words,
                                     const CodeGrid& grid, int threads) {
  const std::int64_t in_voxels = grid.in_shape[0] * grid.in_shape[1] * grid.in_shape[2];
  const std::int64_t out_voxels = grid.out_shape[0] * grid.out_shape[1] * grid.out_shape[2];
  const std::int64_t out_rows = grid.out_shape[1], out_columns = grid.out_shape[2];
  parallel_for(static_cast<std::size_t>(grid.out_shape[0] * out_rows), threads, [&](std::size_t row_index) {
    const auto z = static_cast<std::int64_t>(row_index) / out_rows;
    const auto y = static_cast<std::int64_t>(row_index) % out_rows;
    const RowNeighbours row = row_neighbours(grid, z, y);
    std::int64_t offsets[kNeighbours];
    double weights[kNeighbours];
    auto same_code = [&](int a, int b) {
      for (std::int64_t w = 0; w < num_words; ++w) {
        if (in[w * in_voxels + offsets[a]] != in[w * in_voxels + offsets[b]]) return false;
      }
      return true;
    };
    auto smaller_code = [&](int a, int b) {
      for (std::int64_t w = num_words - 1; w >= 0; --w) {
        const std::uint64_t word_a = in[w * in_voxels + offsets[a]], word_b = in[w * in_voxels + offsets[b]];
        if (word_a != word_b) return word_a < word_b;
      }
      return false;
    };
    for (std::int64_t x = 0; x < out_columns; ++x) {
      const detail::LinearTap& tx = grid.taps[2][x];
      neighbour_offsets(row, tx, offsets);
      int chosen = 0;
      bool uniform = true;
      for (int k = 1; k < kNeighbours && uniform; ++k) uniform = same_code(0, k);
      if (!uniform) {
        neighbour_weights(row, tx, weights);
        chosen = most_likely_neighbour(weights, same_code, smaller_code);
      }
      const std::int64_t out_offset = static_cast<std::int64_t>(row_index) * out_columns + x;
      for (std::int64_t w = 0; w < num_words; ++w) out[w * out_voxels + out_offset] = in[w * in_voxels + offsets[chosen]];
    }
  });
}

}  // namespace

CodeVolume resample_codes(const CodeVolume& code, const std::array<std::int64_t, 3>& new_shape_zyx, int separate_axis,
                          LabelResampling mode, int threads) {
  detail::require_code_volume(code, "resample_codes");
  detail::require_resample_target(new_shape_zyx, separate_axis, "resample_codes");
  const std::array<std::int64_t, 3> old_shape = code.shape_zyx();
  CodeVolume resampled;
  resampled.num_channels = code.num_channels;
  if (old_shape == new_shape_zyx) {
    resampled.words = code.words.clone();
    return resampled;
  }
  const std::int64_t num_words = code.words.size(0);
  resampled.words = torch::empty({num_words, new_shape_zyx[0], new_shape_zyx[1], new_shape_zyx[2]},
                                 code.words.options());
  const CodeGrid grid = make_grid(old_shape, new_shape_zyx, separate_axis);
  const std::int64_t out_voxels = new_shape_zyx[0] * new_shape_zyx[1] * new_shape_zyx[2];
  if (num_words > 1 && mode == LabelResampling::most_likely_combination) {
    resample_multi_word_most_likely(reinterpret_cast<const std::uint64_t*>(code.words.data_ptr()),
                                    reinterpret_cast<std::uint64_t*>(resampled.words.data_ptr()), num_words, grid,
                                    threads);
    return resampled;
  }
  detail::with_code_word_type(code, [&](auto tag) {
    using Word = decltype(tag);
    for (std::int64_t w = 0; w < num_words; ++w) {
      resample_word_plane(detail::code_word_plane<Word>(code, static_cast<int>(w)),
                          reinterpret_cast<Word*>(resampled.words.data_ptr()) + w * out_voxels,
                          grid, mode, threads);
    }
  });
  return resampled;
}

}  // namespace mlseg
