#pragma once
// MetricValue: a metric's number, or the reason it has none. mlseg never reports NaN: an
// undefined value carries one reason from a fixed vocabulary (ARCHITECTURE.md "Undefined values")
// and prints as "n/a (<reason>)"; JSON writes null plus the reason.
#include <array>
#include <optional>
#include <string>

namespace mlseg {

enum class UndefinedReason {
  both_empty,              ///< reference and prediction are both empty
  ref_empty,               ///< the reference is empty, the prediction is not
  pred_empty,              ///< the prediction is empty, the reference is not
  absent_from_validation,  ///< the channel has no voxel in any validation case
};
inline constexpr int kNumUndefinedReasons = 4;
inline constexpr std::array<UndefinedReason, kNumUndefinedReasons> kAllUndefinedReasons{
    UndefinedReason::both_empty, UndefinedReason::ref_empty, UndefinedReason::pred_empty,
    UndefinedReason::absent_from_validation};

std::string to_string(UndefinedReason reason);
std::optional<UndefinedReason> parse_undefined_reason(const std::string& text);

class MetricValue {
 public:
  /// A finite number; a non-finite one throws std::invalid_argument (a bug, never a user error).
  static MetricValue of(double value);
  static MetricValue undefined(UndefinedReason reason);

  bool defined() const { return defined_; }
  /// The number; throws std::logic_error when undefined.
  double value() const;
  /// The reason; meaningful only when !defined().
  UndefinedReason reason() const { return reason_; }
  /// "0.8123" (fixed, `digits` decimals) or "n/a (both_empty)".
  std::string format(int digits = 4) const;
  bool operator==(const MetricValue& other) const;

 private:
  bool defined_ = false;
  double value_ = 0.0;
  UndefinedReason reason_ = UndefinedReason::both_empty;
};

}  // namespace mlseg
