#pragma once
// `mlseg ensemble` (nnU-Net's nnUNetv2_ensemble): the saved probabilities of several prediction
// folders (each written with --save-probabilities, by different configurations or trainers)
// averaged case by case, then exported in any format. Softmax models average class
// probabilities and take the argmax; sigmoid and powerset models average per-channel
// probabilities (powerset folders hold the channel marginals) and threshold at 0.5, so
// overlapping channels stay overlapping.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "mlseg/inference/export_prediction.h"

namespace mlseg {

struct EnsembleOptions {
  /// Format of the written files; unset = the first input folder's.
  std::optional<PredictionFormat> format;
  bool save_probabilities = false;  ///< --save-probabilities: the averaged probabilities too (npy)
  int threads = 0;                  ///< cases at once (0 = all cores)
  bool show_progress = true;
};

struct EnsembleResult {
  std::int64_t cases = 0;
  std::vector<std::filesystem::path> files;
};

/// Averages the probabilities of `inputs` (two or more prediction folders) into `output`. Throws
/// mlseg::Error naming the folder, the case and the fix when a folder has no probabilities, the
/// folders' channels or kinds of probabilities differ, a case is missing from one of them, or
/// two cases' grids differ.
EnsembleResult ensemble_folders(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& output,
                                const EnsembleOptions& options = {});

}  // namespace mlseg
