#include "mlseg/data/deep_supervision.h"

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/metrics/code_words.h"

namespace mlseg {
// PyTorch 'nearest-exact': source = floor((j + 0.5) * in / out), clamped.
std::vector<std::int64_t> nearest_exact_indices(std::int64_t n_in, std::int64_t n_out) {
  std::vector<std::int64_t> index(static_cast<std::size_t>(n_out));
  const double scale = static_cast<double>(n_in) / static_cast<double>(n_out);
  for (std::int64_t j = 0; j < n_out; ++j) {
    index[static_cast<std::size_t>(j)] = std::min(static_cast<std::int64_t>(std::floor((j + 0.5) * scale)), n_in - 1);
  }
  return index;
}

std::vector<std::array<double, 3>> deep_supervision_scales(const std::vector<std::array<std::int64_t, 3>>& strides_zyx) {
  std::vector<std::array<double, 3>> scales;
  std::array<double, 3> product{1.0, 1.0, 1.0};
  for (std::size_t stage = 0; stage + 1 < strides_zyx.size(); ++stage) {
    for (int a = 0; a < 3; ++a) product[a] *= static_cast<double>(strides_zyx[stage][a]);
    scales.push_back({1.0 / product[0], 1.0 / product[1], 1.0 / product[2]});
  }
  return scales;
}

std::vector<CodeVolume> deep_supervision_targets(const CodeVolume& codes,
                                                 const std::vector<std::array<double, 3>>& scales_zyx) {
  detail::require_code_volume(codes, "deep_supervision_targets");
  const auto shape = codes.shape_zyx();
  const std::int64_t words = codes.words.size(0), in_volume = shape[0] * shape[1] * shape[2];
  std::vector<CodeVolume> targets;
  for (const auto& scale : scales_zyx) {
    if (scale[0] == 1.0 && scale[1] == 1.0 && scale[2] == 1.0) {
      targets.push_back(codes);
      continue;
    }
    std::array<std::int64_t, 3> out{};
    for (int a = 0; a < 3; ++a) {
      if (!(scale[a] > 0.0)) {
        throw Error("deep supervision scale " + std::to_string(scale[a]) + " is not positive",
                    "pass per-axis factors such as {1, 1, 1}, {0.5, 0.5, 0.5}");
      }
      out[a] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::nearbyint(static_cast<double>(shape[a]) * scale[a])));
    }
    const auto iz = nearest_exact_indices(shape[0], out[0]);
    const auto iy = nearest_exact_indices(shape[1], out[1]);
    const auto ix = nearest_exact_indices(shape[2], out[2]);
    CodeVolume target;
    target.num_channels = codes.num_channels;
    target.words = torch::empty({words, out[0], out[1], out[2]}, codes.words.options());
    detail::with_code_word_type(codes, [&](auto word) {
      using Word = decltype(word);
      const Word* src = static_cast<const Word*>(codes.words.data_ptr());
      Word* dst = static_cast<Word*>(target.words.data_ptr());
      for (std::int64_t w = 0; w < words; ++w) {
        for (std::int64_t z = 0; z < out[0]; ++z) {
          for (std::int64_t y = 0; y < out[1]; ++y) {
            const Word* row = src + w * in_volume + (iz[static_cast<std::size_t>(z)] * shape[1] + iy[static_cast<std::size_t>(y)]) * shape[2];
            for (std::int64_t x = 0; x < out[2]; ++x) *dst++ = row[ix[static_cast<std::size_t>(x)]];
          }
        }
      }
    });
    targets.push_back(std::move(target));
  }
  return targets;
}

}  // namespace mlseg
