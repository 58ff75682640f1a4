#pragma once
// Aggregates over cases (per channel) and over channels (foreground mean). Accumulating per-case
// values and aggregating them are separate steps (MONAI's cumulative-metric split); pooled
// metrics come from summed ConfusionCounts (overlap_metrics of the sum).
#include <array>
#include <cstdint>
#include <vector>

#include "mlseg/metrics/empty_policy.h"
#include "mlseg/metrics/metric_value.h"

namespace mlseg {

struct MetricAggregate {
  /// Over the covered values (defined ones, plus substituted ones under --empty-policy one|zero).
  /// With no covered value each is undefined with the most frequent reason of the inputs
  /// (absent_from_validation when there were no inputs at all). std is the population standard
  /// deviation (numpy's default, ddof = 0); the median averages the two middle values.
  MetricValue mean;
  MetricValue median;
  MetricValue std;
  MetricValue min;
  MetricValue max;
  std::int64_t n_values = 0;       ///< values the statistics cover
  std::int64_t n_defined = 0;      ///< inputs that had a number
  std::int64_t n_substituted = 0;  ///< undefined inputs counted as 1 or 0 by the policy
  std::array<std::int64_t, kNumUndefinedReasons> n_undefined{};  ///< by reason (index = enum value)
};

/// `similarity`: whether `policy` applies (see EmptyPolicy); otherwise undefined values are left out.
MetricAggregate aggregate_values(const std::vector<MetricValue>& values, bool similarity, EmptyPolicy policy);

struct ForegroundMean {
  MetricValue value;            ///< mean of the defined channel values
  std::int64_t n_channels = 0;  ///< channels it covers
  std::int64_t n_channels_total = 0;
};

/// Mean over channels of per-channel aggregates (only channels with a defined value; unlike
/// nnU-Net, one all-empty channel does not make the whole mean NaN). Undefined with the most
/// frequent reason when no channel has a value.
ForegroundMean foreground_mean(const std::vector<MetricValue>& channel_values);

}  // namespace mlseg
