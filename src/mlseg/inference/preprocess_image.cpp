#include "mlseg/inference/preprocess_image.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/preprocessing/crop.h"

namespace mlseg {
InferencePlan inference_plan_from_plans(const PlansFile& plans, const std::string& configuration) {
  const PlannedConfiguration& planned = plans.configuration(configuration);
  InferencePlan plan;
  plan.configuration = configuration;
  plan.transpose_forward = plans.transpose_forward;
  plan.transpose_backward = plans.transpose_backward;
  plan.spacing_mm = planned.spacing_mm;
  plan.patch_size = planned.patch_size;
  plan.normalization = planned.normalization;
  plan.use_mask_for_norm = planned.use_mask_for_norm();
  plan.resample.image_interpolation = planned.image_interpolation();
  return plan;
}

PreprocessedImage preprocess_image(const std::string& case_id, const Image& image, const InferencePlan& plan) {
  if (image.num_channels() != static_cast<std::int64_t>(plan.normalization.size())) {
    throw Error("the image has " + std::to_string(image.num_channels()) + " channel(s), the model was trained on " +
                    std::to_string(plan.normalization.size()),
                "give one file per modality (CASE_0000, CASE_0001, ...) as in the training data", {"", case_id, ""});
  }
  PreprocessedImage result;
  result.image = preprocess_image_data(case_id, image, plan, result.properties);
  return result;
}

torch::Tensor logits_to_original_probabilities(const torch::Tensor& logits, const CaseProperties& p, const LabelEncoding& encoding,
                                               double anisotropy_threshold, int threads) {
  torch::Tensor data = logits.to(torch::kCPU, torch::kFloat);
  const std::array<std::int64_t, 3> planned{data.size(1), data.size(2), data.size(3)};
  if (planned != p.shape_after_resample) {
    throw Error("the logits' shape " + format_shape(planned) + " differs from the preprocessed image's " + format_shape(p.shape_after_resample),
                "pass the logits of this case's preprocessed image", {"", p.case_id, ""});
  }
  if (planned != p.shape_after_crop) {
    // nnU-Net's resampling_fn_probabilities: order 1, order_z 0, from the target spacing back.
    ResampleOptions options;
    options.image_interpolation = ImageInterpolation::linear;
    options.threads = threads;
    const int axis = separate_axis_for(p.spacing_mm, p.spacing_after_crop_mm, anisotropy_threshold);
    data = resample_image(data, p.shape_after_crop, axis, options);
  }
  data = encoding.probabilities(data, 0);
  std::array<std::int64_t, 3> full{};
  for (int i = 0; i < 3; ++i) full[i] = p.original_shape_zyx[p.transpose_forward[i]];
  const CropBox box{p.crop_begin, p.crop_end};
  const bool cropped = box.shape() != full;
  if (cropped) {
    torch::Tensor uncropped = uncrop_from_box(data, box, full, 0.0);
    if (encoding.outside_value(0) != 0.0) {
      uncropped.slice(0, 0, 1).copy_(uncrop_from_box(data.slice(0, 0, 1), box, full, encoding.outside_value(0)));
    }
    data = uncropped;
  }
  return permute_spatial(data, p.transpose_backward).contiguous();
}

}  // namespace mlseg
