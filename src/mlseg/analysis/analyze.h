#pragma once
// analyze: the dataset fingerprint (as nnU-Net's), label statistics, combination histogram,
// co-occurrence and nesting, recommendations, and stratified cross-validation folds — one
// multi-threaded pass over the cases. Writes WORK/<dataset>/analysis/{fingerprint.json,
// labels.json} and WORK/<dataset>/splits_final.json.
#include <array>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/analysis/combination_histogram.h"
#include "mlseg/analysis/splits.h"

namespace mlseg {

enum class SplitMethod { stratified, random };

struct AnalyzeOptions {
  std::string work_dir;        ///< empty: $MLSEG_WORK, else ./mlseg_work
  int threads = 0;             ///< 0 = all cores
  bool show_progress = true;
  bool write_files = true;     ///< false: compute only (tests, benchmarks)
  /// Foreground voxels sampled for intensity statistics, spread evenly over the cases, with
  /// replacement — nnU-Net's num_foreground_voxels_for_intensitystats (10e7).
  std::int64_t foreground_samples = 100'000'000;
  std::uint64_t seed = 1234;   ///< intensity sampling seed (nnU-Net's fingerprint uses 1234)
  /// A channel combination is rare when it covers fewer voxels or occurs in fewer cases than these.
  std::int64_t min_combo_voxels = 100;
  std::int64_t min_combo_cases = 2;
  int num_folds = kDefaultNumFolds;  ///< nnU-Net: 5
  SplitMethod splits = SplitMethod::stratified;
  std::uint64_t split_seed = kNnUNetSplitSeed;  ///< nnU-Net: 12345
  bool overwrite_splits = false;  ///< an existing splits_final.json is kept unless this is set
  /// BCE pos_weight = negatives / positives, clipped to this (rare channels would reach 1e5+).
  double max_pos_weight = 1000.0;
  /// Powerset is recommended for overlapping channels with at most this many observed combinations.
  int powerset_max_combinations = 64;
};

struct IntensityStatistics {
  bool defined = false;  ///< false when no case has foreground
  std::int64_t num_samples = 0;
  double mean = 0, std = 0, min = 0, max = 0, median = 0, percentile_00_5 = 0, percentile_99_5 = 0;
};

struct CaseFingerprint {
  std::string case_id;
  std::array<std::int64_t, 3> shape_zyx{};
  std::array<double, 3> spacing_zyx_mm{};
  std::array<std::int64_t, 3> shape_after_crop_zyx{};  ///< bounding box of nonzero image voxels
  std::vector<std::int64_t> channel_voxels;
  std::int64_t foreground_voxels = 0;  ///< voxels in any channel
  std::int64_t ignore_voxels = 0;
  CombinationHistogram combinations;
  double voxel_volume_ml() const;
};

struct ChannelStatistics {
  std::string name;
  std::int64_t voxels = 0;
  std::int64_t cases_present = 0;
  double volume_voxels_mean = 0, volume_voxels_median = 0, volume_voxels_min = 0, volume_voxels_max = 0;
  double volume_ml_mean = 0, volume_ml_median = 0, volume_ml_min = 0, volume_ml_max = 0;
  double fraction_of_foreground = 0;  ///< channel voxels / voxels in any channel
  double fraction_of_voxels = 0;      ///< channel voxels / all voxels
  double case_presence_fraction = 0;  ///< cases_present / cases
  double mean_volume_fraction = 0;    ///< mean over present cases of channel voxels / case voxels
  /// Chance that a forced-foreground patch (nnU-Net: uniform case, then uniform among the case's
  /// present classes) is centred on this channel.
  double foreground_selection_probability = 0;
  double pos_weight = 1, pos_weight_unclipped = 1;
  double sampling_weight = 1;  ///< relative weight that equalises the selection probabilities
};

struct CombinationStatistics {
  CombinationKey key;
  std::vector<int> channels;
  bool ignore = false;
  std::int64_t voxels = 0;
  std::int64_t cases = 0;
  bool rare = false;
};

struct ChannelRelation {
  enum class Kind { inside, disjoint, partial };
  int first = 0, second = 0;  ///< inside: first ⊂ second
  Kind kind = Kind::partial;
  std::int64_t overlap_voxels = 0;
  std::int64_t cases_together = 0;
};

struct AnalysisResult {
  std::string dataset_name;
  std::string label_format;
  bool region_based = false;  ///< nnU-Net regions (label_map whose channels join several labels)
  std::vector<std::string> image_channels;
  std::vector<std::string> channel_names;
  std::vector<CaseFingerprint> cases;
  double median_relative_size_after_cropping = 0;  ///< median of crop volume / image volume
  std::vector<IntensityStatistics> intensity;  ///< per image channel
  std::vector<ChannelStatistics> channels;
  std::int64_t background_voxels = 0;
  std::vector<CombinationStatistics> combinations;  ///< non-background, most voxels first
  std::vector<std::vector<std::int64_t>> overlap_voxels;  ///< C x C, diagonal = channel voxels
  std::vector<std::vector<std::int64_t>> cases_together;  ///< C x C, diagonal = cases present
  std::vector<ChannelRelation> relations;
  std::string recommended_encoding;  ///< sigmoid | softmax | powerset
  std::string encoding_reason;
  std::vector<std::string> warnings;
  std::vector<Fold> folds;
  std::string split_method;  ///< stratified | random | existing
  std::vector<std::vector<std::int64_t>> fold_coverage;  ///< [channel][fold] validation cases with it
  std::filesystem::path output_dir;
  double seconds = 0;
};

AnalysisResult analyze_dataset(const std::filesystem::path& dataset_dir, const AnalyzeOptions& options = {});

nlohmann::ordered_json fingerprint_to_json(const AnalysisResult& result);
nlohmann::ordered_json labels_to_json(const AnalysisResult& result, const AnalyzeOptions& options);
std::string format_analysis_report(const AnalysisResult& result, bool verbose = false);

}  // namespace mlseg
