#pragma once
// Predicting one case with one or several models (folds): the library behind `mlseg predict`
// and the trainer's full-case validation.
//
//   raw image → preprocess_image → sliding_window_logits (tiles, mirrors, folds averaged)
//             → logits_to_original_probabilities → per-channel probabilities + channel code
//
// Everything comes back in the raw image's exact grid and geometry.
#include <torch/types.h>

#include <string>
#include <vector>

#include "mlseg/core/image.h"
#include "mlseg/inference/preprocess_image.h"
#include "mlseg/inference/sliding_window.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/nn/checkpoint.h"

namespace mlseg {

/// Flag defaults of `mlseg predict` (and of the library).
struct PredictOptions {
  double step_size = kDefaultStepSize;  ///< --step-size
  bool use_mirroring = true;            ///< --tta (default) / --disable-tta: over the model's mirror_axes
  int tile_batch = 1;                   ///< --tile-batch
  torch::Device device = torch::Device(torch::kCPU);
  int threads = 0;                      ///< resampling workers (0 = all cores); the network uses at::get_num_threads()
  bool show_progress = false;           ///< progress over tiles
  bool fused_forward = true;            ///< CPU: fused InstanceNorm + LeakyReLU forward (the network's fused_forward)
  /// GPU: image and accumulators on the device, on the CPU after an out-of-memory (SlidingWindowOptions).
  bool perform_everything_on_device = true;
  /// The network's arithmetic (SlidingWindowOptions::precision); `mlseg predict` resolves
  /// --precision (default auto, nn/precision.h) into it. The library default is float32.
  Precision precision = Precision::fp32;
};

struct PredictedCase {
  std::string case_id;
  /// float32 [K, Z, Y, X] in the raw image's grid: sigmoid: K = C channel probabilities;
  /// softmax: K = C + 1 class probabilities, background first; powerset: K = C channel marginals
  /// (the summed probabilities of the combinations that hold the channel).
  torch::Tensor probabilities;
  /// Per-channel binary prediction (sigmoid > 0.5, softmax argmax = channel + 1, powerset the
  /// argmax combination's channels), bit c = channel c.
  CodeVolume code;
  Geometry geometry;  ///< the raw image's
  LabelEncoding encoding;
  std::vector<std::string> channel_names;
};

/// The SlidingWindowOptions for a model's configuration and these options.
SlidingWindowOptions sliding_window_options(const ModelDescription& model, const InferencePlan& plan, const PredictOptions& options);

/// Predicts `raw_image` ([C, Z, Y, X] with its geometry, as read_case_images returns it) with
/// `networks` (all of the same description `model`; logits averaged). Throws mlseg::Error for a
/// channel count the model does not take.
PredictedCase predict_case(const std::vector<SegmentationNetwork>& networks, const ModelDescription& model, const Image& raw_image,
                           const PredictOptions& options = {}, const std::string& case_id = "");

/// The same with loaded checkpoints (folds). Throws mlseg::Error when their configurations,
/// channels or encodings differ.
PredictedCase predict_case(const std::vector<LoadedCheckpoint>& models, const Image& raw_image, const PredictOptions& options = {},
                           const std::string& case_id = "");

/// Class probabilities [K, Z, Y, X] (from logits_to_original_probabilities) → the PredictedCase
/// fields: the code (LabelEncoding::code_from_outputs) and the probabilities to keep (powerset:
/// the channel marginals, else unchanged).
void set_prediction(PredictedCase& predicted, torch::Tensor class_probabilities);

/// [C, Z, Y, X] bool/uint8 binary masks → code (no ignore flags).
CodeVolume code_from_masks(const torch::Tensor& masks);

/// Checks that `models` can be averaged and returns their shared description (the first).
const ModelDescription& shared_model_description(const std::vector<LoadedCheckpoint>& models);

}  // namespace mlseg
