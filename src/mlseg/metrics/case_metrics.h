#pragma once
// Every metric of one case, per channel: the names, which ones to compute, and the computation
// from two code volumes (confusion counts → overlap metrics; boundaries → surface metrics).
#include <array>
#include <map>
#include <string>
#include <vector>

#include "mlseg/labels/code_array.h"
#include "mlseg/metrics/confusion_counts.h"
#include "mlseg/metrics/empty_policy.h"
#include "mlseg/metrics/metric_value.h"
#include "mlseg/metrics/surface_metrics.h"

namespace mlseg {

enum class Metric {
  dice,
  iou,
  precision,
  recall,
  volume_ref_ml,
  volume_pred_ml,
  abs_volume_diff_ml,
  rel_volume_diff,
  hd,
  hd95,
  assd,
  nsd,
};
inline constexpr std::array<Metric, 12> kAllMetrics{
    Metric::dice,          Metric::iou,  Metric::precision, Metric::recall, Metric::volume_ref_ml, Metric::volume_pred_ml,
    Metric::abs_volume_diff_ml, Metric::rel_volume_diff, Metric::hd, Metric::hd95, Metric::assd, Metric::nsd};

/// The key in summary.json and the CSV: nnU-Net's "Dice", "IoU"; "precision", "recall",
/// "volume_ref_ml", "volume_pred_ml", "abs_volume_diff_ml", "rel_volume_diff", "HD", "HD95", "ASSD", "NSD".
std::string metric_key(Metric metric);
/// HD, HD95, ASSD, NSD: need boundaries and distance transforms.
bool is_surface_metric(Metric metric);
/// Bounded in [0, 1], higher is better (Dice, IoU, precision, recall, NSD): --empty-policy applies.
bool is_similarity_metric(Metric metric);
/// Unit for human output ("mm", "ml" or "").
std::string metric_unit(Metric metric);

/// The default of --metrics: everything ("volume" stands for the four volume metrics).
inline constexpr const char* kDefaultMetrics = "dice,iou,precision,recall,volume,hd,hd95,assd,nsd";

struct MetricSelection {
  std::vector<Metric> metrics;  ///< in kAllMetrics order, no duplicates
  bool contains(Metric metric) const;
  bool needs_surface() const;
};
/// Comma-separated names, case-insensitive: dice, iou, precision, recall, volume (the four volume
/// metrics) or any metric_key, hd, hd95, assd, nsd, all. Throws mlseg::Error on an unknown name.
MetricSelection parse_metric_selection(const std::string& text);

struct CaseMetricOptions {
  MetricSelection metrics = parse_metric_selection(kDefaultMetrics);
  SurfaceMetricOptions surface;  ///< connectivity, NSD tolerance, HD percentile, empty penalty
};

/// One channel of one case. Confusion counts (nnU-Net's TP/FP/FN/TN, n_ref, n_pred) always.
struct ChannelCaseMetrics {
  int channel = 0;
  ConfusionCounts counts;
  EmptyState state = EmptyState::both_empty;
  std::map<Metric, MetricValue> values;  ///< the selected metrics
};

/// Per channel (result[i] for channels[i]) metrics of prediction vs reference. Voxels with the
/// reference's ignore flag or in `ignore_flags` (one byte per voxel, may be null) are excluded
/// from the counts (and are background for surface metrics). `spacing_zyx_mm` gives volumes and
/// distances their units. (Tensor ignore mask: metrics/tensor_metrics.h.)
std::vector<ChannelCaseMetrics> case_metrics(const CodeView& pred, const CodeView& ref,
                                             const std::array<double, 3>& spacing_zyx_mm, const std::vector<int>& channels,
                                             const CaseMetricOptions& options = {},
                                             const std::uint8_t* ignore_flags = nullptr);

}  // namespace mlseg
