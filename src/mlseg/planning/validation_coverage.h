#pragma once
// How many validation patches make every label channel appear with high probability.
#include <string>
#include <vector>

#include "mlseg/planning/plan_options.h"

namespace mlseg {

struct ChannelPresenceStats {
  std::string name;
  double foreground_selection_probability = 0;  ///< labels.json: chance a forced-foreground patch is centred on it
  double case_presence_fraction = 0;            ///< cases with the channel / cases
  double mean_volume_fraction = 0;              ///< mean over present cases of channel voxels / case voxels
};

/// Chance that one validation patch contains channel c:
///   p_c = o * s_c + (1 - o) * q_c * min(1, (f_c^(1/3) + r^(1/3))^3)
/// o = foreground oversampling (0.33), s_c = foreground selection probability, q_c = case presence,
/// f_c = mean volume fraction, r = patch voxels / median image voxels (structure and patch taken as
/// boxes of the image's aspect: a random patch touches the structure when its centre falls in the
/// structure grown by half a patch).
double patch_hit_probability(const ChannelPresenceStats& channel, double patch_to_image_ratio, const PlanOptions& options);

/// max over present channels of ceil(ln(1 - P) / ln(1 - p_c)), P = 0.99, and at least 50.
int validation_iterations_for_coverage(const std::vector<ChannelPresenceStats>& channels, double patch_to_image_ratio,
                                       const PlanOptions& options);

}  // namespace mlseg
