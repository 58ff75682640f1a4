#pragma once
// Per-channel intensity normalisation with nnU-Net v2's schemes
// (preprocessing/normalization/default_normalization_schemes.py), chosen by `mlseg plan`.
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mlseg {

struct ChannelNormalization {
  std::string scheme = "zscore";  ///< CT | zscore | noNorm | rescale_to_0_1 | rgb_to_0_1
  bool use_mask = false;          ///< zscore: statistics and normalisation inside the nonzero mask only
  // CT: the dataset's foreground statistics (fingerprint / plans foreground_intensity_properties).
  double ct_mean = 0, ct_std = 1, ct_lower = 0, ct_upper = 0;
};

/// Divisors are at least this (nnU-Net's max(std, 1e-8)).
inline constexpr double kNormalizationMinDivisor = 1e-8;

/// The schemes of plans.json configuration `configuration` (normalization_schemes,
/// use_mask_for_norm, foreground_intensity_properties_per_channel). Errors name `source`.
std::vector<ChannelNormalization> normalization_from_plans(const nlohmann::ordered_json& plans,
                                                           const std::string& configuration, const std::string& source);

/// Normalises `image` ([C, Z, Y, X] float32, contiguous) in place, channel c with schemes[c].
/// `mask` ([Z, Y, X] bool) is used by zscore channels with use_mask; it may be undefined otherwise.
/// Throws mlseg::Error when the channel count differs from the schemes or an rgb_to_0_1 channel
/// leaves [0, 255] (the caller adds the case).
void normalize_channels(torch::Tensor& image, const std::vector<ChannelNormalization>& schemes, const torch::Tensor& mask);

}  // namespace mlseg
