#pragma once
// The cascade (nnU-Net's 3d_lowres → 3d_cascade_fullres): the previous stage's prediction,
// carried onto the next stage's preprocessed grid, becomes extra input channels of the next
// stage's network — one binary channel per label channel of the previous model (thresholded
// sigmoid, softmax one-hot, the powerset's channels), never a collapsed label map, so that
// overlapping structures reach the second stage as they were predicted.
//
// Both stages preprocess the same raw image with the same transposes and crop box; only the
// spacing differs, so carrying the prediction over is one resampling of the logits (nnU-Net's
// resample_and_save: linear, nearest along an anisotropic axis) followed by the threshold.
// Training uses the previous stage's cross-validation predictions made this way
// (training/cascade_priors.h); prediction runs the previous stage's folds first, the same way.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/inference/predict_case.h"
#include "mlseg/nn/checkpoint.h"

namespace mlseg {

/// nnU-Net's folder name for a stage's predictions made for the next one.
inline constexpr const char* kNextStageFolder = "predicted_next_stage";

/// WORK/<dataset>/results/<previous_stage>/predicted_next_stage/<configuration>: the previous
/// stage's cross-validation predictions on `configuration`'s grid (store_prior_file per case).
std::filesystem::path next_stage_prior_dir(const std::filesystem::path& dataset_work_dir, const std::string& previous_stage,
                                           const std::string& configuration);

/// Previous-stage logits [K, z, y, x] on its preprocessed grid (spacing `from_spacing_mm`) →
/// uint8 [C, target_shape_zyx] binary channel masks on the next stage's preprocessed grid
/// (spacing `to_spacing_mm`; same crop). `threads`: resampling (0 = all cores).
torch::Tensor previous_stage_masks(const torch::Tensor& logits, const LabelEncoding& encoding, const std::array<double, 3>& from_spacing_mm,
                                   const std::array<std::int64_t, 3>& target_shape_zyx, const std::array<double, 3>& to_spacing_mm,
                                   double anisotropy_threshold, int threads = 0);

/// `image` [C, Z, Y, X] float32 with `masks` [K, Z, Y, X] appended as float32 0/1 channels.
/// Throws mlseg::Error (naming the case) when their grids differ.
torch::Tensor append_previous_stage(const torch::Tensor& image, const torch::Tensor& masks, const std::string& case_id = "");

/// The previous stage of a cascade model, loaded for prediction: its folds' networks, plan and
/// sliding-window options.
struct PreviousStage {
  std::filesystem::path model_dir;
  std::vector<std::filesystem::path> checkpoints;
  ModelDescription model;
  std::vector<SegmentationNetwork> networks;
  InferencePlan plan;
  SlidingWindowOptions window{std::vector<std::int64_t>{1, 1, 1}};
};

/// The previous stage made of `checkpoints` (folds of one model, averaged), ready on
/// `options.device`: eval mode, no deep supervision, its plan and sliding-window options.
PreviousStage load_stage_checkpoints(const std::vector<std::filesystem::path>& checkpoints, const PredictOptions& options);

/// The sibling model folder `cascade_model_dir`/../<cascade.previous_stage> with the same folds
/// (`folds` empty: every fold it has) and checkpoint, ready on `options.device`. Throws
/// mlseg::Error naming the folder and the fix when it is missing or was trained on other channels.
PreviousStage load_previous_stage(const std::filesystem::path& cascade_model_dir, const ModelDescription& cascade,
                                  const std::vector<std::string>& folds, const std::string& checkpoint_name, const PredictOptions& options);

/// The previous stage's prediction of `first_image` (preprocessed for it, with `first`'s
/// properties) on the next stage's grid (`next`'s properties): uint8 [C, next shape] channel masks.
/// Throws mlseg::Error naming the case when the two preprocessings cropped or transposed differently.
torch::Tensor predict_previous_stage(const PreviousStage& previous, const torch::Tensor& first_image, const CaseProperties& first,
                                     const CaseProperties& next, int threads = 0);

/// The cascade's full input for `raw_image`: `next` (the raw image preprocessed for the cascade's
/// configuration) with the previous stage's prediction appended (its folds averaged). Throws
/// mlseg::Error naming the case when the two preprocessings disagree on the crop.
torch::Tensor cascade_input(const PreviousStage& previous, const Image& raw_image, const PreprocessedImage& next,
                            const std::string& case_id = "", int threads = 0);

}  // namespace mlseg
