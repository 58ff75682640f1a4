#pragma once
// Writing a predicted case in one of `mlseg predict`'s formats, atomically, with the input's
// exact geometry; and the dataset.json that lets the dataset model (and `mlseg evaluate`) read
// the prediction folder back.
//
//   bitmask      OUT/CASE<ending>: one integer map, bit c = channel c (lossless, <= 64 channels)
//   multihot4d   OUT/CASE<ending>: 4D uint8 volume, volume c = channel c (lossless)
//   per-channel  OUT/CASE/<channel name><ending>: one binary uint8 file per channel (lossless)
//   labelmap     OUT/CASE<ending>: softmax argmax, or overlapping channels collapsed in channel
//                order with regions_class_order exactly as nnU-Net does (lossy: counted)
//   --save-probabilities  OUT/CASE_probabilities.npy ([K, Z, Y, X] float32) or .nii.gz (4D float)
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/inference/predict_case.h"
#include "mlseg/labels/label_spec.h"

namespace mlseg {

enum class PredictionFormat { bitmask, multihot4d, per_channel, labelmap };

/// "bitmask" | "multihot4d" | "per-channel" | "labelmap".
std::string to_string(PredictionFormat format);
std::optional<PredictionFormat> parse_prediction_format(const std::string& text);
/// The value of a --format flag; throws mlseg::Error naming the formats for anything else.
PredictionFormat prediction_format_flag(const std::string& text);

/// The most channels the bitmask format holds (one 64-bit integer per voxel).
inline constexpr int kMaxBitmaskChannels = 64;

/// The encoding's default export: labelmap for softmax models; bitmask for sigmoid and powerset
/// models with <= 64 channels, multihot4d above (lossless for overlapping channels).
PredictionFormat default_prediction_format(const LabelEncoding& encoding);

enum class ProbabilitiesFormat { npy, nifti };

struct ExportOptions {
  PredictionFormat format = PredictionFormat::bitmask;
  /// File ending of the written images; empty: the dataset's file_ending (multihot4d and
  /// probabilities in NIfTI need a 3D format: .nii.gz when the dataset's is 2D-only).
  std::string file_ending;
  bool save_probabilities = false;  ///< --save-probabilities
  ProbabilitiesFormat probabilities_format = ProbabilitiesFormat::npy;
};

/// The file ending the export uses for `format` (see ExportOptions::file_ending).
std::string prediction_file_ending(const ModelDescription& model, const ExportOptions& options);

/// The label definition a labelmap export uses: the training dataset's own (label_map datasets:
/// label values, regions and regions_class_order) or, for other label formats, label c + 1 for
/// channel c, overlaps resolved by channel order.
LabelSpec labelmap_spec(const ModelDescription& model);

/// dataset.json describing a prediction folder written in `format` (the channel names in order,
/// the label format and file ending), so that load-time readers see the predictions as a dataset.
nlohmann::ordered_json prediction_dataset_json(const ModelDescription& model, const ExportOptions& options);

/// The file (or, per-channel, folder) whose presence marks the case as done (--continue).
std::filesystem::path prediction_output_path(const std::filesystem::path& output_dir, const std::string& case_id,
                                             const ModelDescription& model, const ExportOptions& options);

struct ExportResult {
  std::vector<std::filesystem::path> files;
  /// labelmap: voxels whose predicted channel set the written label cannot represent.
  std::int64_t voxels_lost_overlap = 0;
};

/// [1, Z, Y, X] int64 label map of `code` collapsed as nnU-Net does: softmax codes (one channel)
/// map to the channel's label; otherwise every channel in order overwrites with its
/// regions_class_order label (plain labels: the channel's value). `voxels_lost` (if given) counts
/// voxels where the label's channel set differs from the code's.
torch::Tensor collapse_to_label_map(const CodeVolume& code, const LabelSpec& spec, std::int64_t* voxels_lost = nullptr);

/// Writes `prediction` into `output_dir` (created if needed); every file atomically.
ExportResult export_prediction(const PredictedCase& prediction, const std::filesystem::path& output_dir,
                               const ModelDescription& model, const ExportOptions& options);

}  // namespace mlseg
