#include "mlseg/preprocessing/image_steps.h"

#include "mlseg/core/error.h"
#include "mlseg/preprocessing/crop.h"

namespace mlseg {

torch::Tensor permute_spatial(const torch::Tensor& data, const std::array<int, 3>& order) {
  return data.permute({0, 1 + order[0], 1 + order[1], 1 + order[2]});
}

torch::Tensor preprocess_image_data(const std::string& case_id, const Image& image, const ImagePreprocessingPlan& plan,
                                    CaseProperties& p) {
  p.case_id = case_id;
  p.original_shape_zyx = image.shape_zyx();
  p.original_geometry = image.geometry;
  p.transpose_forward = plan.transpose_forward;
  p.transpose_backward = plan.transpose_backward;

  // Transpose: planned axis i is the image's axis transpose_forward[i].
  const auto& t = plan.transpose_forward;
  torch::Tensor data = permute_spatial(image.data.to(torch::kFloat), t).contiguous();
  std::array<double, 3> spacing{};
  for (int i = 0; i < 3; ++i) spacing[i] = image.geometry.spacing_zyx_mm[t[i]];

  // Crop to the nonzero box of the images.
  const CropBox box = nonzero_bounding_box(data);
  data = crop_to_box(data, box);
  p.crop_begin = box.begin;
  p.crop_end = box.end;
  p.shape_after_crop = box.shape();
  p.spacing_after_crop_mm = spacing;

  // Normalise (before resampling, as nnU-Net does).
  const torch::Tensor mask = plan.use_mask_for_norm ? filled_nonzero_mask(data) : torch::Tensor();
  try {
    normalize_channels(data, plan.normalization, mask);
  } catch (const Error& error) {
    throw error.located({"", case_id, ""});
  }

  // Resample to the configuration's spacing (2d: the z spacing stays the case's own).
  std::array<double, 3> target = spacing;
  if (plan.spacing_mm.size() == 3) {
    target = {plan.spacing_mm[0], plan.spacing_mm[1], plan.spacing_mm[2]};
  } else {
    target = {spacing[0], plan.spacing_mm[0], plan.spacing_mm[1]};
  }
  const auto new_shape = resampled_shape(p.shape_after_crop, spacing, target);
  p.separate_axis = separate_axis_for(spacing, target, plan.anisotropy_threshold);
  p.spacing_mm = target;
  p.shape_after_resample = new_shape;
  if (new_shape != p.shape_after_crop) data = resample_image(data, new_shape, p.separate_axis, plan.resample);
  return data;
}

}  // namespace mlseg
