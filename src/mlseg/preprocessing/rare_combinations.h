#pragma once
// The rare-combination policy of `mlseg preprocess --rare-combos keep|ignore|merge`: combinations
// of channels that analyze found in too few voxels or cases (labels.json "rare") are kept, turned
// into ignore-flagged voxels (excluded from loss and metrics), or merged into the most frequent
// observed combination they contain.
#include <nlohmann/json.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mlseg/io/store_layout.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {

enum class RareCombinationPolicy { keep, ignore, merge };
RareCombinationPolicy parse_rare_policy(const std::string& name);  ///< throws mlseg::Error for other names
std::string to_string(RareCombinationPolicy policy);

/// One combination analyze observed (labels.json "combinations").
struct ObservedCombination {
  std::vector<std::uint64_t> code_words;
  std::string name;
  std::int64_t voxels = 0;
  bool rare = false;
  bool ignore = false;  ///< the ignore flag is part of it
};

/// labels.json's combinations (errors name `source`).
std::vector<ObservedCombination> observed_combinations_from_labels_json(const nlohmann::ordered_json& labels,
                                                                        const std::string& source);

/// What happens to each rare combination, decided once for the dataset.
struct RareCombinationPlan {
  RareCombinationPolicy policy = RareCombinationPolicy::keep;
  struct Action {
    std::string name;
    bool merge = false;                       ///< false: ignore
    std::vector<std::uint64_t> merged_into;   ///< merge: the target code (all zero: background)
    std::string merged_into_name;
  };
  std::map<std::vector<std::uint64_t>, Action> actions;  ///< by code (ignore bit excluded)
};

/// merge: the target of a rare combination is a non-rare observed combination whose channels are a
/// non-empty subset of its channels: the one that drops the fewest channel bits, and among those
/// the most frequent; background when there is none.
RareCombinationPlan plan_rare_combinations(const std::vector<ObservedCombination>& observed, RareCombinationPolicy policy);

/// Applies the plan to one case's codes; returns what changed (voxels per combination).
std::vector<RareCombinationChange> apply_rare_combination_plan(CodeVolume& code, const RareCombinationPlan& plan,
                                                               const std::vector<std::string>& channel_names);

}  // namespace mlseg
