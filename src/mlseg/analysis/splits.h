#pragma once
// Cross-validation folds in nnU-Net's splits_final.json format.
//
// stratified: iterative multi-label stratification (Sechidis, Tsoumakas & Vlahavas, ECML 2011) on
//   each case's label set (which channels, and which rare combinations, it contains): labels with
//   the fewest cases are placed first, each case into the fold that still needs that label most.
//   Two repair passes follow, because the iterative pass promises neither:
//   - fold sizes: validation folds differ by at most one case, always;
//   - coverage: a label carried by at least as many cases as there are folds ("coverable") is put
//     into every fold's validation set, rarest label first, by exchanges or moves of single cases
//     (directly, through a third fold, or after one detour exchange) that never uncover another
//     coverable label. Each change covers one more (label, fold) pair, so the pass ends.
//   Sizes and coverage can conflict (e.g. 2 folds of 2 cases, case A with labels {0,1,2}, cases
//   B, C, D with {0}, {1}, {2}: the fold without A lacks one label); coverage is then as complete
//   as the repair finds, never at the expense of sizes, and the repair gives up on a (label, fold)
//   pair no such change can cover rather than search further.
// random: nnU-Net's sklearn KFold(n_splits, shuffle=True, random_state=12345) over sorted case ids,
//   reproduced exactly (MT19937 + numpy's legacy shuffle), for comparison.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mlseg {

/// nnU-Net's default number of folds and its KFold seed.
inline constexpr int kDefaultNumFolds = 5;
inline constexpr std::uint64_t kNnUNetSplitSeed = 12345;

struct Fold {
  std::vector<std::string> train;
  std::vector<std::string> val;
};

/// `case_labels[i]` are the label ids case i carries (any integers: channels, combinations; a
/// repeated id counts once). Deterministic for a seed. Requires 2 <= num_folds <= case count and
/// one label set per case; throws mlseg::Error otherwise.
std::vector<Fold> stratified_folds(const std::vector<std::string>& case_ids,
                                   const std::vector<std::vector<int>>& case_labels, int num_folds,
                                   std::uint64_t seed);

/// nnU-Net's KFold(shuffle=True, random_state=seed) over the sorted ids, case for case; train and
/// val lists sorted, exactly as nnU-Net writes them.
std::vector<Fold> random_kfold(std::vector<std::string> case_ids, int num_folds,
                               std::uint64_t seed = kNnUNetSplitSeed);

nlohmann::ordered_json folds_to_json(const std::vector<Fold>& folds);
/// Parses splits_final.json; throws mlseg::Error naming `source` when malformed.
std::vector<Fold> folds_from_json(const nlohmann::ordered_json& json, const std::string& source);

}  // namespace mlseg
