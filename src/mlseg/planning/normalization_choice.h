#pragma once
// Per-image-channel normalisation scheme (nnU-Net v2 map_channel_name_to_normalization.py and
// P:198-210), with nnU-Net's scheme names shortened as its channel-name mapping spells them.
#include <string>
#include <vector>

#include "mlseg/planning/plan_options.h"

namespace mlseg {

/// Known scheme names: CT, zscore, noNorm, rescale_to_0_1, rgb_to_0_1.
const std::vector<std::string>& known_normalization_schemes();

/// Accepts the short names and nnU-Net's class names (CTNormalization, ZScoreNormalization, ...);
/// returns the short name, or "" when unknown.
std::string canonical_normalization_scheme(const std::string& name);

/// nnU-Net v2's class name for a scheme (ZScoreNormalization, CTNormalization, NoNormalization,
/// RescaleTo01Normalization, RGBTo01Normalization): what plans.json holds, so that nnU-Net's own
/// tools (PlansManager, DefaultPreprocessor) read mlseg's plans unchanged. Accepts either spelling;
/// returns "" when unknown.
std::string nnunet_normalization_class_name(const std::string& name);

struct NormalizationChoice {
  std::vector<std::string> schemes;  ///< one per data channel
  std::vector<bool> use_mask_for_norm;
  std::vector<std::string> reasons;  ///< why, per data channel
};

struct NormalizationInput {
  std::vector<std::string> image_channel_names;  ///< dataset.json channel_names (one per image file)
  int num_data_channels = 0;  ///< channels of the image tensor (an RGB file gives 3)
  bool is_2d = false;         ///< median z extent is 1
  bool intensities_in_uint8_range = false;  ///< all foreground intensities within [0, 255]
  double median_relative_size_after_cropping = 1;
};

/// CT for channels named CT (case-insensitive); a channel named like a scheme gets that scheme
/// (as nnU-Net maps names); rgb_to_0_1 for one 3-channel 2D file with intensities in [0, 255];
/// else zscore, inside the nonzero mask when cropping left less than 3/4 of the median image.
NormalizationChoice choose_normalization(const NormalizationInput& input, const PlanOptions& options);

}  // namespace mlseg
