#pragma once
// Connected-component postprocessing of predicted channels: nnU-Net's "keep only the largest
// component" (of the whole foreground, then per class or region), and removing components below a
// size. Every step acts on channels independently: removing a component from one channel never
// touches another's voxels, so a structure inside another keeps its own components. The plan is
// decided on cross-validation predictions (determine_postprocessing.h), written as
// postprocessing.json, and applied by `mlseg postprocess`.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/inference/export_prediction.h"

namespace mlseg {

inline constexpr const char* kPostprocessingFileName = "postprocessing.json";

enum class PostprocessingKind {
  /// nnU-Net's first step: the union of all channels keeps only its largest component; every
  /// channel loses its voxels outside it.
  keep_largest_foreground,
  /// One channel keeps only its largest component (nnU-Net's per-class / per-region step).
  keep_largest,
  /// One channel loses its components of fewer than min_voxels voxels.
  remove_small,
};
/// "keep_largest_foreground" | "keep_largest" | "remove_small".
std::string to_string(PostprocessingKind kind);

struct PostprocessingStep {
  PostprocessingKind kind = PostprocessingKind::keep_largest;
  int channel = -1;              ///< index in the plan's channel_names; -1 for keep_largest_foreground
  std::int64_t min_voxels = 0;   ///< remove_small
  /// "keep the largest foreground component", "tumor: keep the largest component",
  /// "tumor: remove components under 100 voxels".
  std::string describe(const std::vector<std::string>& channel_names) const;
};

struct PostprocessingPlan {
  std::vector<std::string> channel_names;
  std::vector<PostprocessingStep> steps;  ///< applied in order
  /// The steps, "; "-separated, or "none".
  std::string describe() const;
};

nlohmann::ordered_json postprocessing_plan_json(const PostprocessingPlan& plan);
/// Reads the "channel_names" and "steps" of a postprocessing.json. Throws mlseg::Error naming
/// `source` for unknown kinds, channels or a negative size.
PostprocessingPlan postprocessing_plan_from_json(const nlohmann::ordered_json& json, const std::string& source);

/// Applies the plan's steps in order to `masks` [C, Z, Y, X] (C = the plan's channels; any dtype,
/// nonzero = inside). Returns uint8 [C, Z, Y, X].
torch::Tensor apply_postprocessing(const PostprocessingPlan& plan, const torch::Tensor& masks);

struct PostprocessFolderOptions {
  /// Format of the written files; unset = the input folder's own.
  std::optional<PredictionFormat> format;
  int threads = 0;  ///< cases at once (0 = all cores)
  bool show_progress = true;
};

struct PostprocessFolderResult {
  std::int64_t cases = 0;
  std::vector<std::int64_t> voxels_removed;  ///< per channel, over all cases
  std::vector<std::filesystem::path> files;
};

/// `mlseg postprocess`: every case of the prediction folder `input` (written by `mlseg predict`)
/// postprocessed with `plan` and written to `output` (each file atomically, with its geometry,
/// plus dataset.json and prediction.json). Throws mlseg::Error when the folder's channels are not
/// the plan's, naming both.
PostprocessFolderResult postprocess_folder(const std::filesystem::path& input, const std::filesystem::path& output,
                                           const PostprocessingPlan& plan, const PostprocessFolderOptions& options = {});

}  // namespace mlseg
