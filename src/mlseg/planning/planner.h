#pragma once
// mlseg plan: nnU-Net v2's default experiment planner (plan_experiment, P:403-540) on the
// analysis files (WORK/<dataset>/analysis/{fingerprint.json,labels.json}), writing
// WORK/<dataset>/plans.json.
#include <array>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/labels/label_encoding.h"
#include "mlseg/planning/normalization_choice.h"
#include "mlseg/planning/patch_planning.h"
#include "mlseg/planning/plan_options.h"
#include "mlseg/planning/remedies.h"
#include "mlseg/planning/target_spacing.h"
#include "mlseg/planning/validation_coverage.h"

namespace mlseg {

/// One channel combination analyze observed (labels.json "combinations").
struct PlanningCombination {
  CombinationCode code_words;  ///< bit c = channel c (the ignore flag is not part of it)
  std::int64_t voxels = 0;
  bool rare = false;
  bool ignore = false;  ///< carries the ignore flag
};

/// What the planner reads from fingerprint.json and labels.json.
struct PlanningInput {
  std::string dataset_name;
  std::vector<std::array<double, 3>> spacings_zyx;              ///< per case
  std::vector<std::array<std::int64_t, 3>> shapes_after_crop_zyx;  ///< per case
  double median_relative_size_after_cropping = 1;
  std::vector<std::string> image_channel_names;
  nlohmann::ordered_json foreground_intensity_properties = nlohmann::ordered_json::object();  ///< per data channel
  std::vector<std::string> channel_names;  ///< label channels
  std::vector<ChannelPresenceStats> channels;
  std::vector<double> bce_pos_weight, sampling_weights;  ///< per label channel (analyze's)
  std::vector<PlanningCombination> combinations;
  std::string recommended_encoding = "softmax";         ///< sigmoid | softmax | powerset
  bool channels_overlap = false;  ///< some voxel has two channels
};

/// Parses the analysis files (errors name the file and the key).
PlanningInput planning_input_from_json(const nlohmann::ordered_json& fingerprint, const nlohmann::ordered_json& labels);

struct ConfigurationPlan {
  std::string name;  ///< 2d | 3d_fullres | 3d_lowres
  PatchPlan patch;
  bool batch_dice = false;
  int val_iterations_auto = 0;
};

struct Plans {
  std::string dataset_name;
  NetworkPlanner planner = NetworkPlanner::plain;  ///< which planner (network class) made them
  std::array<double, 3> original_median_spacing{};  ///< after transpose
  std::array<double, 3> original_median_shape{};     ///< after transpose
  std::array<double, 3> target_spacing_zyx{};        ///< before transpose
  Transpose transpose;
  NormalizationChoice normalization;
  std::vector<std::string> channel_names;  ///< label channels (the input's)
  std::string label_encoding;  ///< sigmoid | softmax | powerset
  std::string encoding_note;
  /// powerset: the classes after background: observed combinations that are neither rare nor
  /// ignored, most voxels first (rare ones merge into their largest listed subset).
  std::vector<CombinationCode> powerset_combinations;
  PlannedRemedies remedies;
  std::vector<ConfigurationPlan> configurations;  ///< 2d, then 3d_lowres, then 3d_fullres (nnU-Net's order)
  std::vector<std::string> notes;  ///< said on the console
  const ConfigurationPlan* find(const std::string& name) const;
};

/// The plans for `input` (pure: no files).
Plans plan_experiment(const PlanningInput& input, const PlanOptions& options);

struct PlanRun {
  Plans plans;
  nlohmann::ordered_json json;
  std::filesystem::path plans_file;
  bool ran_analyze = false;
};

/// Reads the analysis files of `dataset_dir` (running analyze first when they are missing), plans,
/// and writes WORK/<dataset>/plans.json.
PlanRun plan_dataset(const std::filesystem::path& dataset_dir, const PlanOptions& options);

/// WORK/<dataset>/plans.json for a dataset folder.
std::filesystem::path plans_file_for(const std::filesystem::path& dataset_dir, const std::string& work_dir);

std::string format_plans_report(const PlanRun& run);

}  // namespace mlseg
