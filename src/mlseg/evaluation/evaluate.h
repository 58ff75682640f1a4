#pragma once
// evaluate: score a folder of predictions against a folder of references, per case and channel,
// with the metrics engine (src/mlseg/metrics). Reads every label format the dataset model reads;
// cases are matched by id. The library behind `mlseg evaluate`.
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/core/geometry.h"
#include "mlseg/io/pixel_io.h"
#include "mlseg/labels/code_array.h"
#include "mlseg/labels/label_spec.h"
#include "mlseg/metrics/aggregation.h"
#include "mlseg/metrics/case_metrics.h"
#include "mlseg/metrics/empty_policy.h"
#include "mlseg/metrics/overlap_metrics.h"

namespace mlseg {

/// --hd-empty-penalty: what HD, HD95 and ASSD become when exactly one side is empty.
struct HdEmptyPenalty {
  enum class Kind {
    none,            ///< n/a (ref_empty / pred_empty), the default
    fixed_mm,        ///< a number of millimetres
    image_diagonal,  ///< the case's image diagonal in mm (sqrt Σ (shape·spacing)²)
  };
  Kind kind = Kind::none;
  double mm = 0.0;  ///< for fixed_mm
};
/// "none" | "diagonal" | a non-negative number of mm. Throws mlseg::Error otherwise.
HdEmptyPenalty parse_hd_empty_penalty(const std::string& text);

inline constexpr const char* kSummaryFileName = "summary.json";
inline constexpr const char* kPerCaseCsvFileName = "metrics_per_case.csv";

struct EvaluateOptions {
  /// --dataset-json: the dataset.json that defines the labels and file endings. Empty: the first of
  /// REF_DIR/dataset.json, REF_DIR/../dataset.json, PRED_DIR/dataset.json that exists.
  std::filesystem::path dataset_json;
  /// --pred-dataset-json: the dataset.json that describes the prediction folder when it is written
  /// in another label format than the references (e.g. `mlseg predict` output in multihot4d or
  /// bitmask against nnU-Net region label maps). Its channels must be the reference's, by name and
  /// order. Empty: the predictions use the references' format.
  std::filesystem::path prediction_dataset_json;
  /// --channels: names of the channels to score, in dataset order; empty = every channel.
  std::vector<std::string> channels;
  /// --metrics: which metrics to compute (see parse_metric_selection).
  std::string metrics = kDefaultMetrics;
  /// --nsd-tolerance-mm: NSD tolerance τ for every channel.
  double nsd_tolerance_mm = kDefaultNsdToleranceMm;
  /// --nsd-tolerance-mm NAME=T,...: per channel τ (overrides nsd_tolerance_mm for those channels).
  std::map<std::string, double> nsd_tolerance_mm_per_channel;
  /// --surface-connectivity: 6 or 26, the neighbourhood that defines boundary voxels.
  int surface_connectivity = kDefaultSurfaceConnectivity;
  /// --empty-policy: what undefined similarity values become inside aggregates.
  EmptyPolicy empty_policy = kDefaultEmptyPolicy;
  /// --hd-empty-penalty.
  HdEmptyPenalty hd_empty_penalty;
  /// --missing-as-empty: a reference case without a prediction counts as an empty prediction
  /// (default: it is an error).
  bool missing_as_empty = false;
  /// Tolerance of the prediction/reference geometry check (shape must match exactly).
  GeometryTolerance geometry_tolerance;
  ImageReadOptions read;
  int threads = 0;  ///< --threads; 0 = all cores
  bool show_progress = true;
};

struct CaseEvaluation {
  std::string case_id;
  std::filesystem::path reference_file;   ///< label file or per-case mask folder
  std::filesystem::path prediction_file;  ///< empty when missing (with missing_as_empty)
  std::vector<ChannelCaseMetrics> channels;  ///< one per evaluated channel, in order
};

struct ChannelSummary {
  int channel = 0;  ///< index in the dataset's channel list
  std::string name;
  std::optional<std::string> nnunet_key;  ///< "(1, 2, 4)" or "4" for label_map datasets
  std::map<Metric, MetricAggregate> aggregates;
  ConfusionCounts pooled_counts;  ///< summed over cases
  OverlapMetrics pooled;          ///< Dice, IoU, ... of the summed counts
};

struct EvaluationResult {
  std::filesystem::path reference_dir;
  std::filesystem::path prediction_dir;
  std::filesystem::path dataset_json;
  std::string label_format;
  MetricSelection metrics;
  EvaluateOptions options;
  std::vector<CaseEvaluation> cases;      ///< sorted by case id
  std::vector<ChannelSummary> channels;   ///< evaluated channels, dataset order
  std::map<Metric, ForegroundMean> foreground_mean;  ///< over channels' means
  std::vector<std::string> missing_predictions;     ///< case ids (with missing_as_empty)
  std::vector<std::string> unmatched_predictions;   ///< prediction case ids without a reference
  double seconds = 0;
};

/// nnU-Net's metric key of a channel: str(tuple) of a region's label values ("(1, 2, 4)"), the
/// label for a plain label ("4"); nullopt for formats nnU-Net cannot read. `listed_as_list`: the
/// dataset.json entry was a JSON list (nnU-Net keeps [4] as the tuple "(4,)").
std::optional<std::string> nnunet_key(const LabelSpec& spec, int channel, bool listed_as_list);

/// Reads, checks and scores every case. Throws mlseg::Error (naming the case, file and fix) for
/// a missing prediction (unless missing_as_empty), unreadable files, or geometry that differs.
EvaluationResult evaluate_folders(const std::filesystem::path& reference_dir, const std::filesystem::path& prediction_dir,
                                  const EvaluateOptions& options = {});

/// The aggregation step alone (per channel statistics, pooled counts, foreground mean), for
/// callers that scored cases themselves. `result.cases` and `result.channels[*].channel/name/nnunet_key`
/// must be filled; the rest is computed.
void summarize_evaluation(EvaluationResult& result);

/// The CaseMetricOptions that `options` stand for (spacing-dependent penalties resolved per case).
CaseMetricOptions case_metric_options(const EvaluateOptions& options, const LabelSpec& spec);

}  // namespace mlseg
