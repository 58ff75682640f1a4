#pragma once
// One validation pass over a fixed patch set: per-channel TP/FP/FN summed over every patch (the
// metrics engine's counts, as `evaluate` uses), Dice = 2TP/(2TP+FP+FN) per channel from the sums,
// undefined values with their reason instead of NaN, the mean over the channels that have a
// value (saying how many), and the validation loss. Plus the EMA that checkpoint_best follows,
// which only ever sees finite numbers.
#include <optional>
#include <string>
#include <vector>

#include "mlseg/metrics/confusion_counts.h"
#include "mlseg/metrics/empty_policy.h"
#include "mlseg/metrics/metric_value.h"
#include "mlseg/nn/segmentation_network.h"
#include "mlseg/training/loss_options.h"
#include "mlseg/training/run_context.h"
#include "mlseg/training/training_step.h"
#include "mlseg/training/validation_set.h"

namespace mlseg {

class PreprocessedStore;

struct ValidatorOptions {
  LabelEncoding encoding;  ///< the run's (plans.json); decides targets, loss and predicted masks
  LossOptions loss;
  /// What an undefined Dice becomes inside the mean (--empty-policy; default: left out).
  EmptyPolicy empty_policy = kDefaultEmptyPolicy;
  Precision precision = Precision::fp32;
  torch::Device device = torch::kCPU;
  int dimension = 3;
  /// Several ranks: each scores its share (batch b, or case b, when b % world == rank) and the
  /// counts, patches and loss sums are summed over ranks before any Dice is computed, so every
  /// rank gets the one-process result. Null: one process.
  const RunContext* ranks = nullptr;
};

struct ValidationResult {
  /// "patches" (the fixed patch set; `patches` counts patches) or "full_cases" (whole validation
  /// cases by sliding window; `patches` counts cases).
  std::string kind = "patches";
  std::vector<std::string> channel_names;
  std::vector<ConfusionCounts> counts;  ///< per channel, summed over the pass
  std::vector<MetricValue> dice;        ///< per channel; undefined with its reason
  /// Patches of the pass whose reference contains the channel.
  std::vector<std::int64_t> patches_with_channel;
  /// Mean over the channels counted (defined ones, plus substituted ones under policy one/zero);
  /// empty when none.
  std::optional<double> mean_dice;
  int channels_in_mean = 0;
  std::optional<double> loss;  ///< mean full-resolution loss over the batches; empty if none was finite
  std::int64_t patches = 0;
  double seconds = 0;
};

/// Dice of one channel from summed counts. A channel without support (no reference voxel in the
/// pass: TP+FN = 0) has no Dice and is left out of the mean: n/a (absent_from_validation) when
/// the validation cases lack it, else n/a (both_empty), or n/a (ref_empty) when the network
/// predicted it somewhere (its false positives stay in the counts and the log). This differs
/// from `evaluate` (reference empty, prediction not → 0) on purpose: a validation mean must not
/// move with false positives of a channel it cannot score.
MetricValue validation_dice(const ConfusionCounts& counts, bool present_in_validation_cases);

/// The mean of `values` under `policy`; sets `count` to how many values it covers.
std::optional<double> mean_under_policy(const std::vector<MetricValue>& values, EmptyPolicy policy, int* count);

/// Scores `network` (deep supervision switched off for the pass, restored after) on every patch
/// of `set`, without gradients.
ValidationResult run_validation(const SegmentationNetwork& network, const PreprocessedStore& store, const ValidationSet& set,
                                const ValidatorOptions& options);

/// Scores `network` on whole validation cases of the store (preprocessed grid) by sliding window
/// (Gaussian, step 0.5, no mirroring, so it stays cheap enough to run during training), counts
/// summed over the cases. `cases_with_channel` tells which channels the cases contain. No loss.
ValidationResult run_full_case_validation(const SegmentationNetwork& network, const PreprocessedStore& store,
                                          const std::vector<std::size_t>& case_indices, const PatchShapeZyx& patch_zyx,
                                          const std::vector<std::int64_t>& cases_with_channel,
                                          const ValidatorOptions& options);

/// nnU-Net's exponential moving average of the mean Dice (α = 0.9; the first value is taken as
/// is), fed only finite numbers: an epoch without a mean leaves it unchanged.
class DiceEma {
 public:
  static constexpr double kDefaultAlpha = 0.9;
  explicit DiceEma(double alpha = kDefaultAlpha) : alpha_(alpha) {}
  /// Updates with `mean` when it has a finite value; returns the current EMA (empty until the
  /// first finite value).
  std::optional<double> update(const std::optional<double>& mean);
  std::optional<double> value() const { return value_; }
  void restore(std::optional<double> value) { value_ = value; }

 private:
  double alpha_;
  std::optional<double> value_;
};

/// "0.8123 (5 of 6 channels)" / "n/a (no channel has a value)".
std::string format_mean(const std::optional<double>& mean, int channels_in_mean, int channels);

}  // namespace mlseg
