#include "mlseg/metrics/metric_value.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mlseg {

std::string to_string(UndefinedReason reason) {
  switch (reason) {
    case UndefinedReason::both_empty: return "both_empty";
    case UndefinedReason::ref_empty: return "ref_empty";
    case UndefinedReason::pred_empty: return "pred_empty";
    case UndefinedReason::absent_from_validation: return "absent_from_validation";
  }
  return "both_empty";
}

std::optional<UndefinedReason> parse_undefined_reason(const std::string& text) {
  for (UndefinedReason reason : kAllUndefinedReasons) {
    if (to_string(reason) == text) return reason;
  }
  return std::nullopt;
}

MetricValue MetricValue::of(double value) {
  if (!std::isfinite(value)) throw std::invalid_argument("MetricValue::of: non-finite value");
  MetricValue result;
  result.defined_ = true;
  result.value_ = value;
  return result;
}

MetricValue MetricValue::undefined(UndefinedReason reason) {
  MetricValue result;
  result.reason_ = reason;
  return result;
}

double MetricValue::value() const {
  if (!defined_) throw std::logic_error("MetricValue::value: undefined (" + to_string(reason_) + ")");
  return value_;
}

std::string MetricValue::format(int digits) const {
  if (!defined_) return "n/a (" + to_string(reason_) + ")";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value_);
  return buffer;
}

bool MetricValue::operator==(const MetricValue& other) const {
  if (defined_ != other.defined_) return false;
  return defined_ ? value_ == other.value_ : reason_ == other.reason_;
}

}  // namespace mlseg
