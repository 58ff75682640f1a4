#pragma once
// mlseg predict: every case of a folder (nnU-Net imagesTs naming, CASE_XXXX<ending>) or one
// case, with the folds of a model folder (WORK/<dataset>/results/<config>) averaged, written in
// one of export_prediction.h's formats. Preprocessing of the next case and writing of the last
// run beside the network's work; --continue skips cases whose output exists.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/inference/export_prediction.h"
#include "mlseg/inference/memory_plan.h"
#include "mlseg/inference/predict_case.h"
#include "mlseg/nn/device.h"

namespace mlseg {

/// nnU-Net's default checkpoint for prediction.
inline constexpr const char* kDefaultCheckpointName = "final";
/// --precision of `mlseg predict`.
inline constexpr const char* kDefaultPredictPrecision = "auto";

struct PredictFolderOptions {
  /// -f: folds ("0".."4" or "all"); empty = every fold_* folder that has the checkpoint.
  std::vector<std::string> folds;
  std::string checkpoint = kDefaultCheckpointName;  ///< --checkpoint final | best | latest
  std::optional<PredictionFormat> format;           ///< --format; unset = default_prediction_format
  std::string file_ending;                          ///< --file-ending; empty = the dataset's
  bool save_probabilities = false;                  ///< --save-probabilities
  ProbabilitiesFormat probabilities_format = ProbabilitiesFormat::npy;  ///< --probabilities-format npy | nifti
  std::string device = kDefaultDevice;              ///< --device (nn/device.h: resolve_device)
  int threads = 0;                                  ///< --threads: network threads (0 = all cores)
  /// --precision auto | fp32 | bf16 (nn/precision.h resolve_precision): auto = bf16 on a CPU with
  /// AVX512-BF16 or AMX-BF16, else fp32. Replaces predict.precision.
  std::string precision = kDefaultPredictPrecision;
  PredictOptions predict;                           ///< --step-size, --tile-batch, --tta / --disable-tta
  /// --memory-budget-gb: a case whose whole-volume prediction is estimated above this many GB is
  /// predicted in z slabs (memory_plan.h; same result, less memory). 0 = auto: 80 % of the
  /// memory available when the case starts.
  double memory_budget_gb = kDefaultMemoryBudgetGb;
  bool continue_prediction = false;                 ///< --continue
  /// Also write every case, losslessly per channel (bitmask up to 64 channels, else multihot4d),
  /// into this folder (with its dataset.json): final validation scores this copy when the chosen
  /// format is a label map that cannot hold overlapping channels. Empty: no copy.
  std::filesystem::path lossless_copy_dir;
  bool show_progress = true;
  /// Several ranks (`--nproc-per-node`, torchrun, srun): this process predicts the cases whose
  /// position in the sorted case list is rank mod world_size, so ranks never do the same case.
  int rank = 0;
  int world_size = 1;
};

/// One case to predict: its image files, channel order.
struct InputCase {
  std::string case_id;
  std::vector<std::filesystem::path> images;
};

/// Cases of `input`: a folder of CASE_XXXX<ending> files (or a dataset folder: its imagesTs), or
/// one file CASE_XXXX<ending> (its sibling channel files join it). Throws mlseg::Error when
/// nothing is found or a case's channel files are not 0000 .. n-1, or n differs from
/// `expected_channels` (when > 0).
std::vector<InputCase> list_input_cases(const std::filesystem::path& input, std::int64_t expected_channels = 0);

/// The case's channel files stacked as one image [C, Z, Y, X] (the first file's geometry). Throws
/// mlseg::Error naming the file when a channel's grid differs from the first's.
Image read_input_case(const InputCase& input);

/// The checkpoints of `model_dir`: fold_<f>/checkpoint_<name>.pt for each fold (see options.folds).
std::vector<std::filesystem::path> find_checkpoints(const std::filesystem::path& model_dir, const std::vector<std::string>& folds,
                                                    const std::string& checkpoint_name);

struct PredictRun {
  std::filesystem::path model_dir, output_dir;
  std::vector<std::filesystem::path> checkpoints;
  std::string format;
  std::string device;
  std::string precision;  ///< the resolved --precision with its reason
  int predicted = 0, skipped = 0;
  struct CaseResult {
    std::string case_id;
    std::vector<std::filesystem::path> files;
    std::int64_t voxels_lost_overlap = 0;
    double seconds = 0;
    std::string strategy;               ///< "whole volume" | "z slabs"
    double estimated_peak_gb = 0;       ///< memory_plan.h's estimate for the strategy
  };
  std::vector<CaseResult> cases;
  struct Failure {
    std::string case_id, message;
  };
  std::vector<Failure> failures;
  std::int64_t voxels_lost_overlap = 0;  ///< labelmap: summed over cases
  double seconds = 0;
  bool ok() const { return failures.empty(); }
};

/// Predicts every case of `input` into `output_dir` (which also gets a dataset.json describing the
/// written format). Per-case failures are collected; problems that stop everything throw mlseg::Error.
PredictRun predict_folder(const std::filesystem::path& input, const std::filesystem::path& output_dir,
                          const std::filesystem::path& model_dir, const PredictFolderOptions& options);

std::string format_predict_report(const PredictRun& run);
nlohmann::ordered_json predict_run_to_json(const PredictRun& run);

}  // namespace mlseg
