#pragma once
// Final validation (nnU-Net's perform_actual_validation): every validation case of a trained
// fold predicted whole, by sliding window with the fold's checkpoint, written to
// fold_<k>/validation/ in the dataset's own label format, and scored against the references
// with the metrics engine (every metric, per case and per channel, explicit empty semantics):
// fold_<k>/validation/summary.json and metrics_per_case.csv. The score is always of what the
// network predicted per channel (thresholded sigmoid, softmax argmax, decoded powerset), never of
// a label map that collapsed overlapping channels.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/evaluation/evaluate.h"
#include "mlseg/inference/predict.h"

namespace mlseg {

struct FinalValidationOptions {
  std::string checkpoint = "final";  ///< nnU-Net validates checkpoint_final
  /// Format of the files written to validation/; unset = the dataset's own (dataset_prediction_format).
  std::optional<PredictionFormat> format;
  PredictOptions predict;            ///< step 0.5, Gaussian, mirroring (nnU-Net's final validation)
  std::string device = "auto";
  /// The network's arithmetic (predict's --precision): float32 by default, as nnU-Net validates, so
  /// that the scores compare with nnU-Net's; `mlseg train --precision bf16` validates in bf16.
  std::string precision = "fp32";
  /// `mlseg train --save-probabilities` (nnU-Net's --npz): CASE_probabilities.npy beside each
  /// validation prediction, for `mlseg find-best-config`'s ensembles.
  bool save_probabilities = false;
  int threads = 0;
  std::string metrics = kDefaultMetrics;
  bool show_progress = true;
  /// Several ranks: each predicts its share of the cases (PredictFolderOptions::rank), then
  /// rank 0 scores them all; `wait_for_ranks` (a barrier of the run's process group) is called
  /// on every rank before and after the predictions. Other ranks return without an evaluation.
  int rank = 0;
  int world_size = 1;
  std::function<void()> wait_for_ranks;
};

struct FinalValidation {
  std::filesystem::path folder;  ///< fold_<k>/validation
  /// What was scored: `folder`, or, when the chosen format is a label map that cannot hold the
  /// model's overlapping channels, the lossless per-channel copy in folder/per_channel_codes.
  std::filesystem::path scored_folder;
  PredictRun prediction;
  EvaluationResult evaluation;
};

/// The prediction format that round-trips through the dataset's own reader (label_map →
/// labelmap, bitmask → bitmask, multihot4d → multihot4d, channel_masks → per-channel).
PredictionFormat dataset_prediction_format(LabelFormat format);

/// Predicts `validation_cases` (training cases of `dataset_dir`) with `fold_dir`'s checkpoint and
/// scores them. Throws mlseg::Error naming what is missing.
FinalValidation run_final_validation(const std::filesystem::path& dataset_dir, const std::filesystem::path& fold_dir,
                                     const std::vector<std::string>& validation_cases,
                                     const FinalValidationOptions& options = {});

/// The validation case ids of `fold` ("0".."4" or "all") from WORK/<dataset>/splits_final.json.
std::vector<std::string> fold_validation_cases(const std::filesystem::path& dataset_work_dir, const std::string& fold);

}  // namespace mlseg
