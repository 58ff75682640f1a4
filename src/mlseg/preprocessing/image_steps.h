#pragma once
// The image half of nnU-Net's preprocessing (default_preprocessor.py:55-89), shared by
// `mlseg preprocess` (training cases, whose labels follow the same crop and grid) and
// `mlseg predict` (images only): transpose → crop to the nonzero box → normalise → resample to
// the configuration's spacing.
#include <torch/types.h>

#include <array>
#include <string>
#include <vector>

#include "mlseg/core/image.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/preprocessing/normalize.h"
#include "mlseg/preprocessing/resample.h"

namespace mlseg {

/// What the image steps need from one configuration of plans.json.
struct ImagePreprocessingPlan {
  std::string configuration;
  std::array<int, 3> transpose_forward{0, 1, 2};
  std::array<int, 3> transpose_backward{0, 1, 2};
  std::vector<double> spacing_mm;  ///< plans' spacing: 3 values, or 2 for 2d (z keeps the case's own)
  std::vector<ChannelNormalization> normalization;
  bool use_mask_for_norm = false;  ///< some channel normalises inside the nonzero mask
  ResampleOptions resample;        ///< images: cubic unless plans say order 1
  double anisotropy_threshold = kDefaultAnisotropyThreshold;
};

/// `image` ([C, Z, Y, X]) through the four steps: float32 [C, Z', Y', X'] in planned axes at the
/// target spacing. Fills `properties`' case id, original shape and geometry, transposes, crop box,
/// spacings and shapes after crop and resampling, and separate axis. Normalisation errors name
/// the case.
torch::Tensor preprocess_image_data(const std::string& case_id, const Image& image, const ImagePreprocessingPlan& plan,
                                    CaseProperties& properties);

/// [C, Z, Y, X] `data` with spatial axis i taken from axis order[i] (a view, no copy).
torch::Tensor permute_spatial(const torch::Tensor& data, const std::array<int, 3>& order);

}  // namespace mlseg
