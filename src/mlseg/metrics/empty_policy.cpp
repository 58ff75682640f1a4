#include "mlseg/metrics/empty_policy.h"

namespace mlseg {

EmptyState empty_state(std::int64_t ref_voxels, std::int64_t pred_voxels) {
  if (ref_voxels == 0 && pred_voxels == 0) return EmptyState::both_empty;
  if (ref_voxels == 0) return EmptyState::ref_empty;
  if (pred_voxels == 0) return EmptyState::pred_empty;
  return EmptyState::neither_empty;
}

std::optional<UndefinedReason> empty_reason(EmptyState state) {
  switch (state) {
    case EmptyState::both_empty: return UndefinedReason::both_empty;
    case EmptyState::ref_empty: return UndefinedReason::ref_empty;
    case EmptyState::pred_empty: return UndefinedReason::pred_empty;
    case EmptyState::neither_empty: break;
  }
  return std::nullopt;
}

std::string to_string(EmptyPolicy policy) {
  switch (policy) {
    case EmptyPolicy::exclude: return "exclude";
    case EmptyPolicy::one: return "one";
    case EmptyPolicy::zero: return "zero";
  }
  return "exclude";
}

std::optional<EmptyPolicy> parse_empty_policy(const std::string& text) {
  for (EmptyPolicy policy : {EmptyPolicy::exclude, EmptyPolicy::one, EmptyPolicy::zero}) {
    if (to_string(policy) == text) return policy;
  }
  return std::nullopt;
}

std::optional<double> empty_policy_substitute(EmptyPolicy policy) {
  switch (policy) {
    case EmptyPolicy::one: return 1.0;
    case EmptyPolicy::zero: return 0.0;
    case EmptyPolicy::exclude: break;
  }
  return std::nullopt;
}

}  // namespace mlseg
