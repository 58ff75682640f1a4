#include "mlseg/metrics/aggregation.h"

#include <algorithm>
#include <cmath>

namespace mlseg {

namespace {

// The most frequent reason (ties: vocabulary order); absent_from_validation when there is none.
UndefinedReason dominant_reason(const std::array<std::int64_t, kNumUndefinedReasons>& counts) {
  int best = static_cast<int>(UndefinedReason::absent_from_validation);
  std::int64_t best_count = 0;
  for (int r = 0; r < kNumUndefinedReasons; ++r) {
    if (counts[r] > best_count) {
      best = r;
      best_count = counts[r];
    }
  }
  return static_cast<UndefinedReason>(best);
}

std::array<std::int64_t, kNumUndefinedReasons> reason_counts(const std::vector<MetricValue>& values) {
  std::array<std::int64_t, kNumUndefinedReasons> counts{};
  for (const MetricValue& v : values) {
    if (!v.defined()) ++counts[static_cast<int>(v.reason())];
  }
  return counts;
}

}  // namespace

MetricAggregate aggregate_values(const std::vector<MetricValue>& values, bool similarity, EmptyPolicy policy) {
  MetricAggregate a;
  a.n_undefined = reason_counts(values);
  const std::optional<double> substitute = similarity ? empty_policy_substitute(policy) : std::nullopt;
  std::vector<double> covered;
  covered.reserve(values.size());
  for (const MetricValue& v : values) {
    if (v.defined()) {
      covered.push_back(v.value());
      ++a.n_defined;
    } else if (substitute) {
      covered.push_back(*substitute);
      ++a.n_substituted;
    }
  }
  a.n_values = static_cast<std::int64_t>(covered.size());
  if (covered.empty()) {
    const MetricValue none = MetricValue::undefined(dominant_reason(a.n_undefined));
    a.mean = a.median = a.std = a.min = a.max = none;
    return a;
  }
  std::sort(covered.begin(), covered.end());
  const double n = static_cast<double>(covered.size());
  double sum = 0.0;
  for (double v : covered) sum += v;
  const double mean = sum / n;
  double squares = 0.0;
  for (double v : covered) squares += (v - mean) * (v - mean);
  const std::size_t middle = covered.size() / 2;
  const double median = covered.size() % 2 ? covered[middle] : 0.5 * (covered[middle - 1] + covered[middle]);
  a.mean = MetricValue::of(mean);
  a.median = MetricValue::of(median);
  a.std = MetricValue::of(std::sqrt(squares / n));
  a.min = MetricValue::of(covered.front());
  a.max = MetricValue::of(covered.back());
  return a;
}

ForegroundMean foreground_mean(const std::vector<MetricValue>& channel_values) {
  ForegroundMean result;
  result.n_channels_total = static_cast<std::int64_t>(channel_values.size());
  double sum = 0.0;
  for (const MetricValue& v : channel_values) {
    if (!v.defined()) continue;
    sum += v.value();
    ++result.n_channels;
  }
  result.value = result.n_channels > 0 ? MetricValue::of(sum / static_cast<double>(result.n_channels))
                                       : MetricValue::undefined(dominant_reason(reason_counts(channel_values)));
  return result;
}

}  // namespace mlseg
