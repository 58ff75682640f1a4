#pragma once
// What training writes about itself: one EpochRecord per epoch, appended to `log.jsonl` (one
// JSON object per line; undefined values are null with a "reason"), printed as console lines,
// and drawn into `progress.svg` (losses, mean and per-channel validation Dice with its EMA, lr).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/training/validator.h"

namespace mlseg {

struct EpochRecord {
  std::int64_t epoch = 0;
  std::optional<double> train_loss;  ///< mean over the finite steps; empty when none was
  double lr = 0;
  double epoch_seconds = 0;
  double train_seconds = 0;          ///< the iterations alone (data waits included)
  double data_wait_seconds = 0;      ///< time the loop waited for the loader
  std::int64_t iterations = 0;       ///< steps run (fewer than planned when the time budget ended the epoch)
  std::int64_t skipped_steps = 0;    ///< non-finite loss or gradients: no update
  /// What the EMA and checkpoint_best follow (the patch set, or whole cases with --val-mode full);
  /// empty on epochs without validation.
  std::optional<ValidationResult> validation;
  /// --val-mode both: the whole-case pass, logged beside the patch set's.
  std::optional<ValidationResult> full_validation;
  std::optional<double> ema_mean_dice;
  bool best = false;                 ///< checkpoint_best was written after this epoch
  std::vector<std::string> channel_names;
  std::vector<std::int64_t> train_patches_with_channel;  ///< sampling coverage of the epoch
  std::int64_t train_patches = 0;
  /// The remedies for rare channels the run applies, one line each (empty: nnU-Net's behaviour).
  std::vector<std::string> remedies;
};

nlohmann::ordered_json epoch_record_to_json(const EpochRecord& record);
/// Reads what epoch_record_to_json wrote (for --resume and the plot); throws mlseg::Error.
EpochRecord epoch_record_from_json(const nlohmann::ordered_json& json);

/// The records of `log_path`, in order; empty when the file does not exist.
std::vector<EpochRecord> read_epoch_records(const std::filesystem::path& log_path);
/// Rewrites `log_path` atomically with `records` (used on --resume to drop epochs after the checkpoint).
void write_epoch_records(const std::filesystem::path& log_path, const std::vector<EpochRecord>& records);
/// Appends one line (flushed).
void append_epoch_record(const std::filesystem::path& log_path, const EpochRecord& record);

/// "epoch 12/1000  train loss -0.7123  val loss -0.6512  Dice 0.7341 (5 of 6 channels)  EMA 0.7012 *best*  lr 0.00989  41.2 s  ETA 11 h 02 min"
/// plus an indented line of per-channel Dice ("body 0.95  lesion n/a (both_empty)").
std::string format_epoch_lines(const EpochRecord& record, std::int64_t epochs, double eta_seconds);

/// progress.svg: stacked charts (losses; mean Dice, EMA and per-channel Dice; lr) as one SVG.
std::string progress_svg(const std::vector<EpochRecord>& records);

}  // namespace mlseg
