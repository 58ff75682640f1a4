#include "mlseg/preprocessing/normalize.h"

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/planning/normalization_choice.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

Error plans_error(const std::string& source, const std::string& problem) {
  return Error(problem, "re-run `mlseg plan` or fix the key in plans.json (`mlseg plan --check` validates it)")
      .located({source, "", ""});
}

struct Moments {
  double mean = 0, std = 0;
  int64_t count = 0;
};

Moments moments(const float* values, int64_t count, const bool* mask) {
  double sum = 0, sum_squares = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (mask != nullptr && !mask[i]) continue;
    const double v = values[i];
    sum += v;
    ++n;
  }
  if (n == 0) return {};
  const double mean = sum / static_cast<double>(n);
  for (int64_t i = 0; i < count; ++i) {
    if (mask != nullptr && !mask[i]) continue;
    const double d = values[i] - mean;
    sum_squares += d * d;
  }
  return {mean, std::sqrt(sum_squares / static_cast<double>(n)), n};
}

}  // namespace

std::vector<ChannelNormalization> normalization_from_plans(const Json& plans, const std::string& configuration,
                                                           const std::string& source) {
  if (!plans.contains("configurations") || !plans["configurations"].contains(configuration)) {
    throw plans_error(source, "plans.json has no configuration \"" + configuration + "\"");
  }
  const auto& config = plans["configurations"][configuration];
  if (!config.contains("normalization_schemes") || !config["normalization_schemes"].is_array()) {
    throw plans_error(source, "configurations." + configuration + ".normalization_schemes is missing");
  }
  const auto& schemes = config["normalization_schemes"];
  const Json masks = config.value("use_mask_for_norm", Json::array());
  const Json properties = plans.value("foreground_intensity_properties_per_channel", Json::object());
  std::vector<ChannelNormalization> result;
  for (size_t c = 0; c < schemes.size(); ++c) {
    ChannelNormalization channel;
    const std::string name = schemes[c].is_string() ? schemes[c].get<std::string>() : "";
    channel.scheme = canonical_normalization_scheme(name);
    if (channel.scheme.empty()) {
      throw plans_error(source, "unknown normalisation scheme \"" + name + "\" for image channel " + std::to_string(c));
    }
    channel.use_mask = c < masks.size() && masks[c].is_boolean() && masks[c].get<bool>();
    if (channel.scheme == "CT") {
      const std::string key = std::to_string(c);
      if (!properties.contains(key)) {
        throw plans_error(source, "channel " + key + " uses CT normalisation but foreground_intensity_properties_per_channel has no entry \"" + key + "\"");
      }
      const auto& p = properties[key];
      try {
        channel.ct_mean = p.at("mean").get<double>();
        channel.ct_std = p.at("std").get<double>();
        channel.ct_lower = p.at("percentile_00_5").get<double>();
        channel.ct_upper = p.at("percentile_99_5").get<double>();
      } catch (const Json::exception&) {
        throw plans_error(source, "foreground_intensity_properties_per_channel." + key + " lacks mean, std, percentile_00_5 or percentile_99_5");
      }
    }
    result.push_back(channel);
  }
  return result;
}

void normalize_channels(torch::Tensor& image, const std::vector<ChannelNormalization>& schemes, const torch::Tensor& mask) {
  if (image.size(0) != static_cast<int64_t>(schemes.size())) {
    throw Error("the image has " + std::to_string(image.size(0)) + " channels but the plan normalises " +
                    std::to_string(schemes.size()),
                "re-run `mlseg plan` for this dataset (the plan was made for different images)");
  }
  const int64_t voxels = image.size(1) * image.size(2) * image.size(3);
  float* data = image.data_ptr<float>();
  const torch::Tensor mask_contiguous = mask.defined() ? mask.contiguous() : torch::Tensor();
  const bool* mask_data = mask_contiguous.defined() ? mask_contiguous.data_ptr<bool>() : nullptr;
  for (size_t c = 0; c < schemes.size(); ++c) {
    const auto& scheme = schemes[c];
    float* values = data + static_cast<int64_t>(c) * voxels;
    if (scheme.scheme == "noNorm") continue;
    if (scheme.scheme == "zscore") {
      const bool* inside = scheme.use_mask ? mask_data : nullptr;
      const Moments m = moments(values, voxels, inside);
      const double divisor = std::max(m.std, kNormalizationMinDivisor);
      for (int64_t i = 0; i < voxels; ++i) {
        if (inside != nullptr && !inside[i]) continue;
        values[i] = static_cast<float>((values[i] - m.mean) / divisor);
      }
    } else if (scheme.scheme == "CT") {
      const double divisor = std::max(scheme.ct_std, kNormalizationMinDivisor);
      for (int64_t i = 0; i < voxels; ++i) {
        const double clipped = std::clamp(static_cast<double>(values[i]), scheme.ct_lower, scheme.ct_upper);
        values[i] = static_cast<float>((clipped - scheme.ct_mean) / divisor);
      }
    } else if (scheme.scheme == "rescale_to_0_1") {
      float low = values[0], high = values[0];
      for (int64_t i = 1; i < voxels; ++i) {
        low = std::min(low, values[i]);
        high = std::max(high, values[i]);
      }
      const double divisor = std::max(static_cast<double>(high) - low, kNormalizationMinDivisor);
      for (int64_t i = 0; i < voxels; ++i) values[i] = static_cast<float>((values[i] - low) / divisor);
    } else if (scheme.scheme == "rgb_to_0_1") {
      for (int64_t i = 0; i < voxels; ++i) {
        if (!(values[i] >= 0.0f && values[i] <= 255.0f)) {
          throw Error("image channel " + std::to_string(c) + " has the value " + std::to_string(values[i]) +
                          ", outside [0, 255], but the plan normalises it with rgb_to_0_1",
                      "use 8-bit RGB images, or set the channel's scheme to zscore or rescale_to_0_1 in plans.json");
        }
        values[i] /= 255.0f;
      }
    } else {
      throw Error("unknown normalisation scheme \"" + scheme.scheme + "\"", "use one of CT, zscore, noNorm, rescale_to_0_1, rgb_to_0_1");
    }
  }
}

}  // namespace mlseg
