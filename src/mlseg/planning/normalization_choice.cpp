#include "mlseg/planning/normalization_choice.h"

#include <algorithm>
#include <cctype>

namespace mlseg {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

const std::vector<std::string>& known_normalization_schemes() {
  static const std::vector<std::string> names{"CT", "zscore", "noNorm", "rescale_to_0_1", "rgb_to_0_1"};
  return names;
}

std::string canonical_normalization_scheme(const std::string& name) {
  const std::string key = lower(name);
  if (key == "ct" || key == "ctnormalization") return "CT";
  if (key == "zscore" || key == "zscorenormalization") return "zscore";
  if (key == "nonorm" || key == "nonormalization") return "noNorm";
  if (key == "rescale_to_0_1" || key == "rescaleto01normalization") return "rescale_to_0_1";
  if (key == "rgb_to_0_1" || key == "rgbto01normalization") return "rgb_to_0_1";
  return "";
}

std::string nnunet_normalization_class_name(const std::string& name) {
  const std::string scheme = canonical_normalization_scheme(name);
  if (scheme == "CT") return "CTNormalization";
  if (scheme == "zscore") return "ZScoreNormalization";
  if (scheme == "noNorm") return "NoNormalization";
  if (scheme == "rescale_to_0_1") return "RescaleTo01Normalization";
  if (scheme == "rgb_to_0_1") return "RGBTo01Normalization";
  return "";
}

NormalizationChoice choose_normalization(const NormalizationInput& input, const PlanOptions& options) {
  NormalizationChoice choice;
  const bool one_file_per_channel = static_cast<int>(input.image_channel_names.size()) == input.num_data_channels;
  const bool rgb = input.is_2d && input.num_data_channels == 3 && input.image_channel_names.size() == 1 &&
                   input.intensities_in_uint8_range;
  const bool cropped = input.median_relative_size_after_cropping < options.mask_for_norm_threshold;
  for (int m = 0; m < input.num_data_channels; ++m) {
    const std::string name = one_file_per_channel ? input.image_channel_names[m]
                             : input.image_channel_names.empty() ? std::string() : input.image_channel_names.front();
    std::string scheme = canonical_normalization_scheme(name), reason;
    if (!scheme.empty()) {
      reason = "channel name '" + name + "'";
    } else if (rgb) {
      scheme = "rgb_to_0_1";
      reason = "one 2D file with 3 channels in [0, 255] (RGB)";
    } else {
      scheme = "zscore";
      reason = "default: per-image mean/std";
    }
    const bool mask = scheme == "zscore" && cropped;  // only zscore leaves voxels outside the mask at 0
    if (mask) reason += "; inside the nonzero mask (cropping left less than 3/4 of the median image)";
    choice.schemes.push_back(scheme);
    choice.use_mask_for_norm.push_back(mask);
    choice.reasons.push_back(reason);
  }
  return choice;
}

}  // namespace mlseg
