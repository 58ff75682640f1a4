#pragma once
// Options of `mlseg report` (one field per CLI flag, same names and defaults).
#include <filesystem>
#include <string>

namespace mlseg {

struct ReportOptions {
  /// --fold K: report only results/<config>/fold_K ("0".."4" or "all"); empty = every fold found.
  std::string fold;
  /// --config C: the configuration under results/; empty = the one the path names, else
  /// 3d_fullres if trained, else the first found.
  std::string configuration;
  /// --dataset RAW_DIR: the raw dataset (for validation slice images); empty = found from the
  /// validation summary.json, or WORK/raw/<dataset>.
  std::filesystem::path raw_dataset_dir;
  /// --work-dir: where to find WORK/<dataset> when RUN_DIR is the raw dataset folder itself
  /// (empty = $MLSEG_WORK, else ./mlseg_work).
  std::string work_dir;
  /// --slice-cases N: validation cases shown as slice images per fold.
  int max_slice_cases = 3;
  /// Epoch rows shown in the training table (the last ones; best epochs are always listed).
  int max_epoch_rows = 20;
};

}  // namespace mlseg
