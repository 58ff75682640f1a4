#include "mlseg/metrics/overlap_metrics.h"

#include <cmath>

#include "mlseg/metrics/empty_policy.h"

namespace mlseg {

MetricValue dice_from_counts(const ConfusionCounts& counts) {
  const std::int64_t denominator = 2 * counts.tp + counts.fp + counts.fn;
  if (denominator == 0) return MetricValue::undefined(UndefinedReason::both_empty);
  return MetricValue::of(2.0 * static_cast<double>(counts.tp) / static_cast<double>(denominator));
}

OverlapMetrics overlap_metrics(const ConfusionCounts& counts, double voxel_volume_mm3) {
  OverlapMetrics m;
  const std::int64_t ref = counts.ref_voxels();
  const std::int64_t pred = counts.pred_voxels();
  const auto ratio = [](std::int64_t numerator, std::int64_t denominator) {
    return MetricValue::of(static_cast<double>(numerator) / static_cast<double>(denominator));
  };
  const EmptyState state = empty_state(ref, pred);
  m.dice = dice_from_counts(counts);
  m.iou = state == EmptyState::both_empty ? MetricValue::undefined(UndefinedReason::both_empty)
                                           : ratio(counts.tp, counts.tp + counts.fp + counts.fn);
  m.precision = pred == 0 ? MetricValue::undefined(*empty_reason(state == EmptyState::both_empty ? state : EmptyState::pred_empty))
                          : ratio(counts.tp, pred);
  m.recall = ref == 0 ? MetricValue::undefined(*empty_reason(state == EmptyState::both_empty ? state : EmptyState::ref_empty))
                      : ratio(counts.tp, ref);
  const double ml_per_voxel = voxel_volume_mm3 / 1000.0;
  m.volume_ref_ml = MetricValue::of(static_cast<double>(ref) * ml_per_voxel);
  m.volume_pred_ml = MetricValue::of(static_cast<double>(pred) * ml_per_voxel);
  m.abs_volume_diff_ml = MetricValue::of(std::fabs(static_cast<double>(pred - ref)) * ml_per_voxel);
  m.rel_volume_diff = ref == 0 ? MetricValue::undefined(*empty_reason(state)) : ratio(pred - ref, ref);
  return m;
}

}  // namespace mlseg
