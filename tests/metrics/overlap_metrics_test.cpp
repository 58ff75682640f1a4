// Overlap metrics: nnU-Net's formulas exactly, and every cell of the empty table.
#include <gtest/gtest.h>

#include <random>

#include "mlseg/metrics/overlap_metrics.h"

namespace mlseg {
namespace {

TEST(MetricsOverlap, MatchesNnUNetFormulasExactly) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::int64_t> count(0, 100000);
  for (int i = 0; i < 200; ++i) {
    const ConfusionCounts c{count(rng) + 1, count(rng), count(rng), count(rng)};
    const OverlapMetrics m = overlap_metrics(c, 2.5);
    // nnU-Net: dice = 2 * tp / (2 * tp + fp + fn); iou = tp / (tp + fp + fn)
    EXPECT_EQ(m.dice.value(), 2.0 * c.tp / (2.0 * c.tp + c.fp + c.fn));
    EXPECT_EQ(m.iou.value(), static_cast<double>(c.tp) / static_cast<double>(c.tp + c.fp + c.fn));
  }
}

TEST(MetricsOverlap, HandComputedValues) {
  // TP 6, FP 2, FN 4, TN 100 at 2 x 1 x 0.5 mm (1 mm³ per voxel).
  const OverlapMetrics m = overlap_metrics({6, 2, 4, 100}, 1.0);
  EXPECT_DOUBLE_EQ(m.dice.value(), 12.0 / 18.0);
  EXPECT_DOUBLE_EQ(m.iou.value(), 6.0 / 12.0);
  EXPECT_DOUBLE_EQ(m.precision.value(), 6.0 / 8.0);
  EXPECT_DOUBLE_EQ(m.recall.value(), 6.0 / 10.0);
  EXPECT_DOUBLE_EQ(m.volume_ref_ml.value(), 10.0 / 1000.0);
  EXPECT_DOUBLE_EQ(m.volume_pred_ml.value(), 8.0 / 1000.0);
  EXPECT_DOUBLE_EQ(m.abs_volume_diff_ml.value(), 2.0 / 1000.0);
  EXPECT_DOUBLE_EQ(m.rel_volume_diff.value(), -0.2);
}

TEST(MetricsOverlap, BothEmptyCell) {
  const OverlapMetrics m = overlap_metrics({0, 0, 0, 50});
  for (const MetricValue* v : {&m.dice, &m.iou, &m.precision, &m.recall, &m.rel_volume_diff}) {
    EXPECT_FALSE(v->defined());
    EXPECT_EQ(v->reason(), UndefinedReason::both_empty);
    EXPECT_EQ(v->format(), "n/a (both_empty)");
  }
  EXPECT_EQ(m.volume_ref_ml.value(), 0.0);
}

TEST(MetricsOverlap, ReferenceEmptyCell) {
  const OverlapMetrics m = overlap_metrics({0, 5, 0, 50});
  EXPECT_EQ(m.dice.value(), 0.0);
  EXPECT_EQ(m.iou.value(), 0.0);
  EXPECT_EQ(m.precision.value(), 0.0);
  EXPECT_EQ(m.recall.reason(), UndefinedReason::ref_empty);
  EXPECT_FALSE(m.recall.defined());
  EXPECT_EQ(m.rel_volume_diff.reason(), UndefinedReason::ref_empty);
}

TEST(MetricsOverlap, PredictionEmptyCell) {
  const OverlapMetrics m = overlap_metrics({0, 0, 7, 50});
  EXPECT_EQ(m.dice.value(), 0.0);
  EXPECT_EQ(m.iou.value(), 0.0);
  EXPECT_EQ(m.recall.value(), 0.0);
  EXPECT_FALSE(m.precision.defined());
  EXPECT_EQ(m.precision.reason(), UndefinedReason::pred_empty);
  EXPECT_EQ(m.rel_volume_diff.value(), -1.0);
}

TEST(MetricsOverlap, NeverNan) {
  EXPECT_THROW(MetricValue::of(std::nan("")), std::invalid_argument);
  EXPECT_EQ(MetricValue::of(0.5).format(2), "0.50");
}

}  // namespace
}  // namespace mlseg
