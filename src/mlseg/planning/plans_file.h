#pragma once
// plans.json read back, typed: the keys every stage shares (channels, encoding, transposes, each
// configuration's patch, spacing, batch, normalisation and image resampling order), with their
// defaults in one place and the file validated by check_plans on the way in. Every stage reads
// plans through this: train, preprocess, predict (the checkpoint's embedded plans), the report and
// the demo. The architecture keeps its parser in nn/ (network_from_plans(PlansFile, ...)), over
// `json`, so planning does not depend on the network module.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/labels/label_encoding.h"
#include "mlseg/preprocessing/normalize.h"
#include "mlseg/preprocessing/resample.h"

namespace mlseg {

/// One configuration of plans.json ("2d", "3d_fullres", "3d_lowres").
struct PlannedConfiguration {
  std::string name;
  std::vector<std::int64_t> patch_size;  ///< zyx (3D) or yx (2d)
  std::vector<double> spacing_mm;        ///< one per patch axis
  std::int64_t batch_size = 2;           ///< nnU-Net's minimum when the key is missing
  bool batch_dice = false;               ///< nnU-Net's default when the key is missing
  /// One per image channel: normalization_schemes, use_mask_for_norm and, for CT, the dataset's
  /// foreground_intensity_properties_per_channel.
  std::vector<ChannelNormalization> normalization;
  /// resampling_fn_data_kwargs.order: 3 (cubic, nnU-Net's default when the key is missing) or 1.
  int image_resampling_order = kDefaultImageResamplingOrder;
  static constexpr int kDefaultImageResamplingOrder = 3;
  /// Some channel normalises inside the nonzero mask (zscore with use_mask_for_norm).
  bool use_mask_for_norm() const;
  /// The image interpolation image_resampling_order stands for (1 linear, else cubic).
  ImageInterpolation image_interpolation() const {
    return image_resampling_order == 1 ? ImageInterpolation::linear : ImageInterpolation::cubic;
  }
  /// A cascade stage (nnU-Net's 3d_cascade_fullres): the configuration whose prediction it takes
  /// as extra input channels (plans.json previous_stage); empty otherwise.
  std::string previous_stage;
  /// The configuration whose preprocessed store holds this one's data: itself, or, for an entry
  /// that only inherits (nnU-Net's data_identifier is inherited), its parent's.
  std::string data_configuration;
  int dimension() const { return static_cast<int>(patch_size.size()); }
  /// The patch as zyx; 2d configurations get z = 1.
  std::array<std::int64_t, 3> patch_zyx() const;
};

struct PlansFile {
  std::string source;              ///< where it was read from (errors name it)
  nlohmann::ordered_json json;     ///< the whole document
  std::string dataset_name;
  std::vector<std::string> channel_names;        ///< label channels, dataset order
  std::vector<std::string> image_channel_names;  ///< modalities, input order
  LabelEncoding encoding;                        ///< sigmoid when the key is missing (plans before mlseg 0.2)
  std::array<int, 3> transpose_forward{0, 1, 2}, transpose_backward{0, 1, 2};
  /// Every configuration; an entry with "inherits_from" (nnU-Net's 3d_cascade_fullres) is resolved
  /// into its parent's keys updated with its own, in `json` as well.
  std::vector<PlannedConfiguration> configurations;

  /// Throws mlseg::Error naming the file, the configuration and the ones there are.
  const PlannedConfiguration& configuration(const std::string& name) const;
  bool has_configuration(const std::string& name) const;
};

/// nnU-Net's ConfigurationManager inheritance: configuration `name` of `configurations` with its
/// "inherits_from" chain resolved (the parent's keys, shallowly updated with the child's;
/// "inherits_from" itself removed). Throws mlseg::Error naming `source` and `fix` for an unknown
/// name or a loop.
nlohmann::ordered_json resolve_inherited_configuration(const nlohmann::ordered_json& configurations, const std::string& name,
                                                       const std::string& source, const std::string& fix);

/// Parses `json` after check_plans: every problem is listed in one mlseg::Error naming `source`.
PlansFile plans_from_json(const nlohmann::ordered_json& json, const std::string& source);
/// Reads and parses WORK/<dataset>/plans.json (or any plans file).
PlansFile read_plans(const std::filesystem::path& path);

}  // namespace mlseg
