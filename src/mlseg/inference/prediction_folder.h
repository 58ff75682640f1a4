#pragma once
// A prediction folder read back (`mlseg ensemble`, `mlseg postprocess`, find-best-config):
// `mlseg predict` writes prediction.json beside the images (the channels, the model's encoding,
// its raw dataset.json, the format and file ending, whether probabilities were saved), so that
// the folder can be read, combined and written again in any format without the model.
#include <torch/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/inference/export_prediction.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"

namespace mlseg {

inline constexpr const char* kPredictionInfoFileName = "prediction.json";

struct PredictionFolderInfo {
  std::filesystem::path folder;
  /// The model's channel names, encoding and raw dataset.json (no plans, no network): enough for
  /// export_prediction.
  ModelDescription model;
  ExportOptions export_options;  ///< how the folder was written
  Dataset labels;                ///< reads the folder's label files (its dataset.json)
};

/// prediction.json of a folder written with `model` and `options`.
nlohmann::ordered_json prediction_info_json(const ModelDescription& model, const ExportOptions& options);

/// Reads FOLDER/prediction.json and FOLDER/dataset.json. Throws mlseg::Error naming the file and
/// the fix (predict again with this mlseg) when either is missing or broken.
PredictionFolderInfo read_prediction_folder(const std::filesystem::path& folder);

struct PredictionFolderCase {
  std::string case_id;
  std::filesystem::path path;           ///< the label file or per-channel folder
  std::filesystem::path probabilities;  ///< CASE_probabilities.npy / .nii.gz; empty when absent
};

/// The folder's cases, sorted by id.
std::vector<PredictionFolderCase> list_prediction_cases(const PredictionFolderInfo& info);

/// A case's predicted channels as a code volume with the file's geometry.
CaseLabels read_prediction_case(const PredictionFolderInfo& info, const PredictionFolderCase& prediction_case);

/// A case's saved probabilities, float32 [K, Z, Y, X]. Throws mlseg::Error naming the fix
/// (predict with --save-probabilities) when there are none.
torch::Tensor read_prediction_probabilities(const PredictionFolderInfo& info, const PredictionFolderCase& prediction_case);

}  // namespace mlseg
