#include "mlseg/inference/preprocess_image.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "mlseg/core/error.h"
#include "mlseg/preprocessing/crop.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;
constexpr const char* kReplan = "the model's plans.json is damaged: retrain, or re-run `mlseg plan` and retrain";

std::array<int, 3> read_transpose(const Json& plans, const char* key, const std::string& source) {
  std::array<int, 3> transpose{0, 1, 2};
  if (!plans.contains(key)) return transpose;
  try {
    transpose = plans.at(key).get<std::array<int, 3>>();
  } catch (const Json::exception&) {
    throw Error(std::string(key) + " is not a list of three axes", kReplan).located({source, "", ""});
  }
  std::array<int, 3> sorted = transpose;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != std::array<int, 3>{0, 1, 2}) throw Error(std::string(key) + " is not a permutation of 0, 1, 2", kReplan).located({source, "", ""});
  return transpose;
}

}  // namespace

InferencePlan inference_plan_from_plans(const Json& plans, const std::string& configuration, const std::string& source) {
  InferencePlan plan;
  plan.configuration = configuration;
  const Json configurations = plans.value("configurations", Json::object());
  if (!configurations.contains(configuration)) {
    throw Error("plans.json has no configuration \"" + configuration + "\"", kReplan).located({source, "", ""});
  }
  const Json& config = configurations[configuration];
  plan.transpose_forward = read_transpose(plans, "transpose_forward", source);
  plan.transpose_backward = read_transpose(plans, "transpose_backward", source);
  try {
    plan.spacing_mm = config.at("spacing").get<std::vector<double>>();
    plan.patch_size = config.at("patch_size").get<std::vector<std::int64_t>>();
  } catch (const Json::exception&) {
    throw Error("configurations." + configuration + ".spacing or .patch_size is missing or malformed", kReplan).located({source, "", ""});
  }
  const std::size_t axes = plan.spacing_mm.size();
  if ((axes != 2 && axes != 3) || plan.patch_size.size() != axes ||
      std::any_of(plan.spacing_mm.begin(), plan.spacing_mm.end(), [](double s) { return !(s > 0) || !std::isfinite(s); }) ||
      std::any_of(plan.patch_size.begin(), plan.patch_size.end(), [](std::int64_t p) { return p < 1; })) {
    throw Error("configurations." + configuration + " has spacing and patch_size of different or invalid axes", kReplan)
        .located({source, "", ""});
  }
  plan.normalization = normalization_from_plans(plans, configuration, source);
  plan.use_mask_for_norm = std::any_of(plan.normalization.begin(), plan.normalization.end(),
                                       [](const ChannelNormalization& n) { return n.scheme == "zscore" && n.use_mask; });
  const Json kwargs = config.value("resampling_fn_data_kwargs", Json::object());
  plan.resample.image_interpolation = kwargs.value("order", 3) == 1 ? ImageInterpolation::linear : ImageInterpolation::cubic;
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
