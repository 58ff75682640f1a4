#pragma once
// Which side of a comparison is empty, and what an undefined value becomes inside aggregates.
#include <cstdint>
#include <optional>
#include <string>

#include "mlseg/metrics/metric_value.h"

namespace mlseg {

/// The four situations of ARCHITECTURE.md's "Undefined values" table.
enum class EmptyState { neither_empty, both_empty, ref_empty, pred_empty };

/// From voxel counts (after ignored voxels are removed).
EmptyState empty_state(std::int64_t ref_voxels, std::int64_t pred_voxels);
/// The reason an undefined metric gives in this state; nullopt for neither_empty.
std::optional<UndefinedReason> empty_reason(EmptyState state);

/// What an undefined value becomes inside aggregates (means, medians, foreground mean).
/// Applies to the similarity metrics in [0, 1] (Dice, IoU, precision, recall, NSD). Distance and
/// volume metrics (HD, HD95, ASSD, relative volume difference) always leave n/a out, because "one"
/// or "zero" millimetres would be an invented distance; use --hd-empty-penalty for distances.
enum class EmptyPolicy {
  exclude,  ///< leave undefined values out (the default; aggregates say how many values they cover)
  one,      ///< count them as 1 (a perfect score; MONAI's ignore_empty=False for both-empty)
  zero,     ///< count them as 0 (a failure)
};
inline constexpr EmptyPolicy kDefaultEmptyPolicy = EmptyPolicy::exclude;

std::string to_string(EmptyPolicy policy);
/// "exclude" | "one" | "zero"; nullopt otherwise.
std::optional<EmptyPolicy> parse_empty_policy(const std::string& text);
/// The number an undefined similarity value stands for under `policy`; nullopt for exclude.
std::optional<double> empty_policy_substitute(EmptyPolicy policy);

}  // namespace mlseg
