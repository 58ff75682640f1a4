#include "mlseg/planning/validation_coverage.h"

#include <algorithm>
#include <cmath>

namespace mlseg {

double patch_hit_probability(const ChannelPresenceStats& channel, double patch_to_image_ratio, const PlanOptions& options) {
  const double grown = std::pow(std::cbrt(std::max(0.0, channel.mean_volume_fraction)) +
                                    std::cbrt(std::clamp(patch_to_image_ratio, 0.0, 1.0)),
                                3.0);
  const double random_hit = channel.case_presence_fraction * std::min(1.0, grown);
  const double o = options.foreground_oversample;
  return std::clamp(o * channel.foreground_selection_probability + (1 - o) * random_hit, 0.0, 1.0);
}

int validation_iterations_for_coverage(const std::vector<ChannelPresenceStats>& channels, double patch_to_image_ratio,
                                       const PlanOptions& options) {
  int iterations = options.min_val_iterations;
  for (const auto& channel : channels) {
    if (channel.case_presence_fraction <= 0) continue;  // absent: no number of patches finds it
    const double p = patch_hit_probability(channel, patch_to_image_ratio, options);
    if (p <= 0) continue;
    if (p >= 1) continue;
    const double n = std::ceil(std::log(1 - options.val_coverage_probability) / std::log1p(-p));
    iterations = std::max(iterations, static_cast<int>(std::min(n, 1e9)));
  }
  return iterations;
}

}  // namespace mlseg
