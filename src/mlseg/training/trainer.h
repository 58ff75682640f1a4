#pragma once
// mlseg train: nnU-Net's training loop as a short composition of small parts — the patch sampler
// and threaded loader with augmentation (data/), the network (nn/), the loss (training/losses.h),
// the optimizer and poly schedule (training/optimizer.h), the fixed validation patch set and
// validator (training/validation_set.h, validator.h), checkpoints (nn/checkpoint.h) and the
// log (training/train_log.h). Outputs go to WORK/<dataset>/results/<config>/fold_<k>/.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/data/sampler_options.h"
#include "mlseg/metrics/empty_policy.h"
#include "mlseg/nn/device.h"
#include "mlseg/planning/remedies.h"
#include "mlseg/training/optimizer.h"
#include "mlseg/training/run_context.h"
#include "mlseg/training/training_step.h"
#include "mlseg/training/validation_set.h"
#include "mlseg/training/validator.h"

namespace mlseg {

/// nnU-Net's num_epochs.
inline constexpr std::int64_t kDefaultEpochs = 1000;
/// nnU-Net's num_iterations_per_epoch.
inline constexpr std::int64_t kDefaultIterationsPerEpoch = 250;
/// nnU-Net's save_every: checkpoint_latest every this many epochs (and at the end).
inline constexpr std::int64_t kDefaultCheckpointEvery = 50;
/// Training stops with an error after this many non-finite steps in a row.
inline constexpr int kDefaultMaxNonFiniteInARow = 20;
/// The seed of every random stream of a run (sampling, augmentation, validation set).
inline constexpr std::uint64_t kDefaultTrainingSeed = 12345;

/// TrainOptions::loader_workers for `--loader-workers auto` (the default): cores − 1, at least 1.
inline constexpr int kLoaderWorkersAuto = 0;

enum class ValidationMode {
  patches,  ///< the fixed patch set every --val-every epochs (default)
  /// whole validation cases (preprocessed grid) by sliding window, no mirroring; the EMA follows it
  full,
  /// both every validation epoch; the EMA follows the patch set, the whole-case pass is logged beside
  both,
};
ValidationMode parse_validation_mode(const std::string& name);

/// --loader-workers: "auto" → kLoaderWorkersAuto, or a number of threads >= 1. Throws mlseg::Error
/// for anything else.
int parse_loader_workers(const std::string& text);

struct TrainOptions {
  std::string work_dir;                      ///< --work-dir; empty: $MLSEG_WORK, else ./mlseg_work
  std::string configuration = "3d_fullres";  ///< -c (2d for 2D datasets is the caller's choice)
  std::string fold = "0";                    ///< -f: 0..K-1 of splits_final.json, or "all"
  std::int64_t epochs = kDefaultEpochs;
  std::int64_t iterations_per_epoch = kDefaultIterationsPerEpoch;
  std::int64_t val_iterations = kDefaultValidationIterations;  ///< --val-iterations N
  bool val_iterations_auto = false;                            ///< --val-iterations auto
  std::int64_t val_min_patches_per_channel = kDefaultMinPatchesPerChannel;
  ValidationMode val_mode = ValidationMode::patches;
  std::int64_t val_every = 1;        ///< --val-every: validate every this many epochs (and the last)
  /// --nnunet-compatible-validation: 50 fresh random foreground-biased batches per epoch, as
  /// nnU-Net (its NaN still shown as n/a), so runs can be compared with nnU-Net's pseudo-Dice.
  bool nnunet_compatible_validation = false;
  EmptyPolicy empty_policy = kDefaultEmptyPolicy;
  /// --time-budget-min: when the wall-clock budget is spent, the current epoch ends early and
  /// training finishes cleanly (validation, checkpoint_final). 0 = none.
  double time_budget_minutes = 0;
  Precision precision = Precision::fp32;
  std::string device = kDefaultDevice;  ///< --device (nn/device.h: resolve_device)
  std::uint64_t seed = kDefaultTrainingSeed;
  bool resume = false;               ///< --resume: continue from checkpoint_latest.pt exactly
  /// --stop-after-epoch N: end this run after epoch N (1-based) with checkpoint_latest, as if
  /// interrupted, to train in chunks (e.g. time-limited cluster jobs) and --resume later; the
  /// schedule still runs to `epochs`. 0 = run to the end.
  std::int64_t stop_after_epoch = 0;
  bool overwrite = false;            ///< --overwrite: start over in a fold folder that has a run
  OptimizerOptions optimizer;
  std::int64_t checkpoint_every = kDefaultCheckpointEvery;
  int max_nonfinite_in_a_row = kDefaultMaxNonFiniteInARow;
  /// --nnunet-defaults and --sampling: which of plans.json's remedies for rare channels apply
  /// (planning/remedies.h; default: what plans.json says).
  RemedyOptions remedies;
  /// --loader-workers N | auto: data loader threads; kLoaderWorkersAuto = default_loader_workers()
  /// (cores − 1, at least 1: one core stays with the training loop).
  int loader_workers = kLoaderWorkersAuto;
  int threads = 0;                   ///< intra-op threads of the network; 0 = all cores
  bool show_progress = true;         ///< progress lines on stderr, epoch lines on stdout
};

struct TrainResult {
  std::filesystem::path fold_dir;
  std::string encoding;  ///< the label encoding trained (plans.json)
  Remedies remedies;     ///< what was applied against nnU-Net's defaults, and why
  std::int64_t epochs_completed = 0;  ///< epochs run in total, including resumed ones
  std::string stop_reason;            ///< "epochs", "time budget", "stopped after epoch N"
  std::optional<double> best_ema;
  std::int64_t best_epoch = -1;
  std::optional<ValidationResult> final_validation;
  std::int64_t skipped_steps = 0;
  double seconds = 0;
};

/// Trains one fold of `dataset_dir` (preprocessing first when the store is missing). Throws
/// mlseg::Error for anything that stops the run (with the checkpoints written so far intact).
/// With several ranks (`context`), the run is data parallel: every rank makes its share of each
/// global batch (plans.json batch_size split as nnU-Net does), gradients are averaged before
/// clipping and the step, validation is shared and summed, every decision (time budget,
/// skipped steps, epoch ends, resume) is the same on all ranks, and only rank 0 writes
/// (splits_final.json, checkpoints, log.jsonl, progress.svg) and prints.
TrainResult train(const std::filesystem::path& dataset_dir, const TrainOptions& options, const RunContext& context = RunContext());

/// Fold folder name: "fold_0", "fold_all".
std::string fold_folder_name(const std::string& fold);

}  // namespace mlseg
