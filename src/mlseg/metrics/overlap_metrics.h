#pragma once
// Overlap metrics from confusion counts: Dice, IoU, precision, recall and volumes.
//
//   Dice = 2TP / (2TP + FP + FN)     IoU = TP / (TP + FP + FN)       (nnU-Net's formulas)
//   precision = TP / (TP + FP)       recall = TP / (TP + FN)
//   volume_*_ml = voxels × voxel volume / 1000;  abs_volume_diff_ml = |V_pred − V_ref|;
//   rel_volume_diff = (V_pred − V_ref) / V_ref   (signed: > 0 means over-segmentation)
// Undefined cells follow ARCHITECTURE.md's table: both empty → Dice/IoU/precision/recall
// n/a (both_empty); reference empty → Dice 0, IoU 0, precision 0, recall and rel_volume_diff
// n/a (ref_empty); prediction empty → Dice 0, IoU 0, recall 0, precision n/a (pred_empty).
#include "mlseg/metrics/confusion_counts.h"
#include "mlseg/metrics/metric_value.h"

namespace mlseg {

struct OverlapMetrics {
  MetricValue dice;
  MetricValue iou;
  MetricValue precision;
  MetricValue recall;
  MetricValue volume_ref_ml;
  MetricValue volume_pred_ml;
  MetricValue abs_volume_diff_ml;
  MetricValue rel_volume_diff;
};

/// `voxel_volume_mm3`: the product of the spacing (1 for unit-less callers).
OverlapMetrics overlap_metrics(const ConfusionCounts& counts, double voxel_volume_mm3 = 1.0);

/// Dice alone (training validation's pooled Dice).
MetricValue dice_from_counts(const ConfusionCounts& counts);

}  // namespace mlseg
