#pragma once
// Preprocessing of an image without labels, for prediction: the steps of `mlseg preprocess`
// (transpose → crop to nonzero → normalise → resample, nnU-Net's order) composed from
// preprocessing/'s pieces, with the plan read from a model's plans.json; and the way back
// (resample the logits to the cropped original shape, nonlinearity, uncrop, transpose back).
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/core/image.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/labels/label_encoding.h"
#include "mlseg/preprocessing/image_steps.h"
#include "mlseg/preprocessing/normalize.h"
#include "mlseg/preprocessing/resample.h"

namespace mlseg {

/// What preprocessing an image for one configuration needs, from plans.json.
struct InferencePlan : ImagePreprocessingPlan {
  std::vector<std::int64_t> patch_size;  ///< 3 (zyx) or 2 (yx)
};

struct PlansFile;
/// Configuration `configuration` of `plans` (read and checked by plans_from_json). Throws
/// mlseg::Error naming the plans' source and the configurations there are.
InferencePlan inference_plan_from_plans(const PlansFile& plans, const std::string& configuration);

struct PreprocessedImage {
  torch::Tensor image;        ///< float32 [C, Z, Y, X], planned axes, at the target spacing
  CaseProperties properties;  ///< geometry, transposes, crop box, shapes (no label fields)
};

/// Throws mlseg::Error (naming the case) when the channel count differs from the plan's.
PreprocessedImage preprocess_image(const std::string& case_id, const Image& image, const InferencePlan& plan);

/// Logits [K, planned, resampled shape] → probabilities float32 [K, original Z, Y, X]: resampled to
/// the cropped shape with nnU-Net's resampling_fn_probabilities (linear, nearest along the
/// anisotropic axis), then the encoding's sigmoid / softmax (nnU-Net's order), put back into the
/// original extent (0 outside the crop box; class outputs: background 1) and transposed back.
/// `threads`: resampling.
torch::Tensor logits_to_original_probabilities(const torch::Tensor& logits, const CaseProperties& properties,
                                               const LabelEncoding& encoding, double anisotropy_threshold = kDefaultAnisotropyThreshold,
                                               int threads = 0);

}  // namespace mlseg
