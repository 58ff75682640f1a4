#pragma once
// Deciding the postprocessing on cross-validation predictions, as nnU-Net's
// determine_postprocessing does, channel by channel:
//  1. keep the largest component of the whole foreground (all channels' union): kept when the
//     foreground mean Dice goes up and no channel's mean Dice goes down;
//  2. per channel (only when there are several), keep its largest component: kept when that
//     channel's mean Dice goes up;
//  3. mlseg's addition (off under --nnunet-defaults): per channel, remove components under a size,
//     the size chosen among kRemoveSmallCandidates below the channel's smallest reference volume;
//     tried as an alternative to step 2, the better of the two kept if it raises the channel's Dice.
// Dice is computed per case and channel (ignored reference voxels left out) and averaged over the
// cases where it is defined: a case whose prediction and reference are both empty for a channel
// is left out of that channel's mean (as nnU-Net does), an empty reference with a non-empty
// prediction scores 0. Everything is counted in memory: component overlaps are counted once per
// case and channel, and every candidate size is scored from them.
#include <cstdint>
#include <string>
#include <vector>

#include "mlseg/inference/prediction_folder.h"
#include "mlseg/io/dataset.h"
#include "mlseg/metrics/metric_value.h"
#include "mlseg/postprocessing/postprocessing.h"

namespace mlseg {

/// Sizes (voxels) tried for remove_small.
inline const std::vector<std::int64_t> kRemoveSmallCandidates{10, 30, 100, 300, 1000, 3000, 10000};

/// How the means treat undefined Dice values; printed with every decision.
inline constexpr const char* kPostprocessingDiceRule =
    "Dice per case and channel, averaged over the cases where it is defined: prediction and reference both empty = left out "
    "(as nnU-Net does); reference empty, prediction not = 0";

struct DeterminePostprocessingOptions {
  bool allow_remove_small = true;  ///< step 3; --nnunet-defaults: false
  int threads = 0;                 ///< cases at once (0 = all cores)
  bool show_progress = true;
};

/// One tried step and what it did to the mean Dice.
struct PostprocessingTrial {
  PostprocessingStep step;
  /// The channel's mean Dice (keep_largest_foreground: the foreground mean) before and with the step.
  MetricValue dice_before;
  MetricValue dice_after;
  bool kept = false;
  std::string why;  ///< "foreground mean up, no channel down", "tumor down: 0.81 -> 0.79", ...
};

struct PostprocessingDecision {
  PostprocessingPlan plan;
  std::vector<PostprocessingTrial> trials;
  std::vector<MetricValue> dice_before;  ///< per channel, mean over cases
  std::vector<MetricValue> dice_after;   ///< per channel, with the plan
  MetricValue foreground_before;         ///< mean over channels of dice_before
  MetricValue foreground_after;
  std::int64_t cases = 0;
};

/// Mean Dice per channel (the rule above) and the foreground mean of a prediction folder.
struct CrossValidationScore {
  std::vector<MetricValue> dice;  ///< per channel
  MetricValue foreground;         ///< mean over the channels with a value
  std::int64_t cases = 0;
};

/// Scores every case of `predictions` (cross-validation predictions of training cases) against
/// `reference`'s labels. Throws as determine_postprocessing.
CrossValidationScore score_cross_validation(const PredictionFolderInfo& predictions, const Dataset& reference, int threads = 0,
                                            bool show_progress = true);

/// Decides on the predictions of `predictions` (cross-validation predictions of training cases)
/// against `reference`'s labels, matched by case id. Throws mlseg::Error for a case without a
/// reference, channels that differ from the reference's, or another grid.
PostprocessingDecision determine_postprocessing(const PredictionFolderInfo& predictions, const Dataset& reference,
                                                const DeterminePostprocessingOptions& options = {});

nlohmann::ordered_json postprocessing_decision_json(const PostprocessingDecision& decision);

/// The decision as a few lines: each trial with its Dice before and after, kept or not, and the rule.
std::string format_postprocessing_decision(const PostprocessingDecision& decision);

}  // namespace mlseg
