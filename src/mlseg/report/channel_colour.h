#pragma once
// One colour per label channel, the same in every chart and slice image of a report: the
// Okabe-Ito palette without black (invisible as an overlay on dark image regions).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mlseg/core/svg_plot.h"

namespace mlseg {

inline const std::string& channel_colour(std::size_t channel) {
  static constexpr std::array<std::size_t, 7> kIndices = {0, 1, 2, 3, 4, 5, 7};
  return palette_colour(kIndices[channel % kIndices.size()]);
}

/// "#rrggbb" as bytes.
inline std::array<std::uint8_t, 3> colour_bytes(const std::string& hex) {
  std::array<std::uint8_t, 3> rgb{};
  for (int c = 0; c < 3; ++c) {
    rgb[c] = static_cast<std::uint8_t>(std::strtol(hex.substr(1 + 2 * c, 2).c_str(), nullptr, 16));
  }
  return rgb;
}

}  // namespace mlseg
