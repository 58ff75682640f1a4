// Aggregates over cases and channels, under each --empty-policy.
#include <gtest/gtest.h>

#include "mlseg/metrics/aggregation.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/metrics/case_metrics.h"
#include "mlseg/core/error.h"

namespace mlseg {
namespace {

std::vector<MetricValue> sample() {
  return {MetricValue::of(0.2), MetricValue::of(0.8), MetricValue::undefined(UndefinedReason::both_empty),
          MetricValue::of(0.5), MetricValue::undefined(UndefinedReason::both_empty),
          MetricValue::undefined(UndefinedReason::pred_empty)};
}

TEST(MetricsAggregation, ExcludeByDefault) {
  const MetricAggregate a = aggregate_values(sample(), true, kDefaultEmptyPolicy);
  EXPECT_DOUBLE_EQ(a.mean.value(), 0.5);
  EXPECT_DOUBLE_EQ(a.median.value(), 0.5);
  EXPECT_DOUBLE_EQ(a.std.value(), std::sqrt((0.09 + 0.09 + 0.0) / 3.0));
  EXPECT_DOUBLE_EQ(a.min.value(), 0.2);
  EXPECT_DOUBLE_EQ(a.max.value(), 0.8);
  EXPECT_EQ(a.n_values, 3);
  EXPECT_EQ(a.n_defined, 3);
  EXPECT_EQ(a.n_undefined[static_cast<int>(UndefinedReason::both_empty)], 2);
  EXPECT_EQ(a.n_undefined[static_cast<int>(UndefinedReason::pred_empty)], 1);
}

TEST(MetricsAggregation, OneAndZeroPolicies) {
  const MetricAggregate one = aggregate_values(sample(), true, EmptyPolicy::one);
  EXPECT_DOUBLE_EQ(one.mean.value(), (0.2 + 0.8 + 0.5 + 3.0) / 6.0);
  EXPECT_DOUBLE_EQ(one.median.value(), 0.9);
  EXPECT_EQ(one.n_substituted, 3);
  const MetricAggregate zero = aggregate_values(sample(), true, EmptyPolicy::zero);
  EXPECT_DOUBLE_EQ(zero.mean.value(), 1.5 / 6.0);
  EXPECT_DOUBLE_EQ(zero.median.value(), 0.1);
  // Distances ignore the policy: 1 or 0 mm would be invented.
  EXPECT_EQ(aggregate_values(sample(), false, EmptyPolicy::one).n_values, 3);
}

TEST(MetricsAggregation, AllUndefinedKeepsTheReason) {
  const std::vector<MetricValue> values(3, MetricValue::undefined(UndefinedReason::both_empty));
  const MetricAggregate a = aggregate_values(values, true, EmptyPolicy::exclude);
  EXPECT_EQ(a.mean.format(), "n/a (both_empty)");
  EXPECT_EQ(a.n_values, 0);
  EXPECT_EQ(aggregate_values({}, true, EmptyPolicy::exclude).mean.format(), "n/a (absent_from_validation)");
}

TEST(MetricsAggregation, ForegroundMeanCoversDefinedChannels) {
  const ForegroundMean fm = foreground_mean(
      {MetricValue::of(0.9), MetricValue::undefined(UndefinedReason::both_empty), MetricValue::of(0.7)});
  EXPECT_DOUBLE_EQ(fm.value.value(), 0.8);
  EXPECT_EQ(fm.n_channels, 2);
  EXPECT_EQ(fm.n_channels_total, 3);
  EXPECT_EQ(foreground_mean({MetricValue::undefined(UndefinedReason::pred_empty)}).value.format(), "n/a (pred_empty)");
}

TEST(MetricsCaseMetrics, SelectionParsing) {
  const MetricSelection s = parse_metric_selection("HD95, dice,volume");
  ASSERT_EQ(s.metrics.size(), 6u);
  EXPECT_EQ(s.metrics.front(), Metric::dice);
  EXPECT_EQ(s.metrics.back(), Metric::hd95);
  EXPECT_TRUE(s.needs_surface());
  EXPECT_FALSE(parse_metric_selection("dice,iou").needs_surface());
  EXPECT_EQ(parse_metric_selection("all").metrics.size(), kAllMetrics.size());
  EXPECT_THROW(parse_metric_selection("dice,hausdorf"), Error);
}

TEST(MetricsCaseMetrics, EveryEmptyCellThroughCodes) {
  // Channel 0: both empty; 1: reference empty; 2: prediction empty; 3: equal cubes.
  const std::array<std::int64_t, 3> shape{4, 5, 6};
  CodeVolume ref = empty_code_volume(shape, 4), pred = empty_code_volume(shape, 4);
  torch::Tensor cube = torch::zeros({1, 4, 5, 6}, torch::kUInt8);
  cube.slice(1, 1, 3).slice(2, 1, 4).slice(3, 2, 5).fill_(1);
  add_channel_mask(pred, 1, cube);
  add_channel_mask(ref, 2, cube);
  add_channel_mask(ref, 3, cube);
  add_channel_mask(pred, 3, cube);
  CaseMetricOptions options;
  const auto m = case_metrics(pred, ref, {2.0, 1.0, 1.0}, {0, 1, 2, 3}, options);
  const auto v = [&](int c, Metric metric) { return m[c].values.at(metric).format(); };
  for (Metric metric : kAllMetrics) {
    const bool volume = metric == Metric::volume_ref_ml || metric == Metric::volume_pred_ml || metric == Metric::abs_volume_diff_ml;
    EXPECT_EQ(v(0, metric), volume ? "0.0000" : "n/a (both_empty)") << metric_key(metric);
  }
  EXPECT_EQ(v(1, Metric::dice), "0.0000");
  EXPECT_EQ(v(1, Metric::iou), "0.0000");
  EXPECT_EQ(v(1, Metric::precision), "0.0000");
  EXPECT_EQ(v(1, Metric::recall), "n/a (ref_empty)");
  EXPECT_EQ(v(1, Metric::hd95), "n/a (ref_empty)");
  EXPECT_EQ(v(1, Metric::assd), "n/a (ref_empty)");
  EXPECT_EQ(v(1, Metric::nsd), "0.0000");
  EXPECT_EQ(v(2, Metric::dice), "0.0000");
  EXPECT_EQ(v(2, Metric::precision), "n/a (pred_empty)");
  EXPECT_EQ(v(2, Metric::recall), "0.0000");
  EXPECT_EQ(v(2, Metric::hd), "n/a (pred_empty)");
  EXPECT_EQ(v(2, Metric::nsd), "0.0000");
  EXPECT_EQ(v(3, Metric::dice), "1.0000");
  EXPECT_EQ(v(3, Metric::hd), "0.0000");
  EXPECT_EQ(v(3, Metric::nsd), "1.0000");
  // 2 x 3 x 3 voxels of 2 mm³ = 0.036 ml.
  EXPECT_DOUBLE_EQ(m[3].values.at(Metric::volume_ref_ml).value(), 0.036);
  EXPECT_EQ(m[2].state, EmptyState::pred_empty);
}

}  // namespace
}  // namespace mlseg
