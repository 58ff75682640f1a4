#pragma once
// Training's log.jsonl (one JSON object per epoch) read into plain structs. Absent or null values
// stay absent, with the reason the log gives; the reader never invents a number.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlseg {

/// A number that may be undefined, with the log's reason (e.g. "absent_from_validation").
struct LoggedValue {
  std::optional<double> value;
  std::string reason;
};

struct ChannelEpochLog {
  std::string name;
  LoggedValue dice;
  std::int64_t tp = 0, fp = 0, fn = 0;
  std::optional<std::int64_t> patches_with_channel;
};

struct EpochLog {
  std::int64_t epoch = 0;
  LoggedValue train_loss, val_loss, lr, epoch_seconds;
  std::optional<std::int64_t> iterations, skipped_steps;
  bool has_validation = false;
  std::optional<std::int64_t> validation_patches;
  LoggedValue mean_dice, ema_mean_dice;
  std::optional<std::int64_t> mean_over_channels;  ///< channels the mean covers
  std::vector<ChannelEpochLog> channels;
  bool best = false;
  /// Training coverage ("train_coverage"): patches drawn this epoch, and per channel how many
  /// contained it, in the log's order.
  std::optional<std::int64_t> train_patches;
  std::vector<std::pair<std::string, std::int64_t>> train_patches_with_channel;
  /// The remedies for rare channels the run applied ("remedies"), one line each; empty: none
  /// (nnU-Net's behaviour) or a log written before remedies existed.
  std::vector<std::string> remedies;
};

struct TrainingLog {
  std::filesystem::path file;
  std::vector<EpochLog> epochs;  ///< in file order
  int unreadable_lines = 0;      ///< not JSON objects (e.g. a line cut off by a crash)
  std::string first_problem;     ///< the first unreadable line's problem, for the report
};

/// Reads `path` line by line; lines that are not JSON objects are counted, not fatal. Throws
/// mlseg::Error only when the file cannot be opened.
TrainingLog read_training_log(const std::filesystem::path& path);

}  // namespace mlseg
