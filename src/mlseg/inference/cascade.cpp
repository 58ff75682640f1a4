#include "mlseg/inference/cascade.h"

#include <torch/torch.h>

#include "mlseg/core/error.h"
#include "mlseg/inference/predict.h"
#include "mlseg/inference/sliding_window.h"
#include "mlseg/preprocessing/resample.h"

namespace mlseg {
namespace fs = std::filesystem;

fs::path next_stage_prior_dir(const fs::path& dataset_work_dir, const std::string& previous_stage, const std::string& configuration) {
  return dataset_work_dir / "results" / previous_stage / kNextStageFolder / configuration;
}

torch::Tensor previous_stage_masks(const torch::Tensor& logits, const LabelEncoding& encoding, const std::array<double, 3>& from_spacing_mm,
                                   const std::array<std::int64_t, 3>& target_shape_zyx, const std::array<double, 3>& to_spacing_mm,
                                   double anisotropy_threshold, int threads) {
  torch::Tensor data = logits.to(torch::kCPU, torch::kFloat);
  const std::array<std::int64_t, 3> shape{data.size(1), data.size(2), data.size(3)};
  if (shape == target_shape_zyx) return encoding.channel_masks_from_logits(data.unsqueeze(0))[0].contiguous();
  ResampleOptions options;
  options.image_interpolation = ImageInterpolation::linear;  // nnU-Net's resampling_fn_probabilities
  options.threads = threads;
  const int axis = separate_axis_for(from_spacing_mm, to_spacing_mm, anisotropy_threshold);
  if (encoding.outputs_are_classes()) {
    // The argmax needs every class at a voxel: all outputs resampled together.
    return encoding.channel_masks_from_logits(resample_image(data, target_shape_zyx, axis, options).unsqueeze(0))[0].contiguous();
  }
  // Independent sigmoids: one channel at a time, so only one float32 channel exists on the
  // next stage's (larger) grid at once, beside the uint8 masks.
  torch::Tensor masks = torch::empty({data.size(0), target_shape_zyx[0], target_shape_zyx[1], target_shape_zyx[2]}, torch::kUInt8);
  for (std::int64_t c = 0; c < data.size(0); ++c) {
    const torch::Tensor channel = resample_image(data.narrow(0, c, 1), target_shape_zyx, axis, options);
    masks[c].copy_(encoding.channel_masks_from_logits(channel.unsqueeze(0))[0][0]);
  }
  return masks;
}

torch::Tensor append_previous_stage(const torch::Tensor& image, const torch::Tensor& masks, const std::string& case_id) {
  if (image.dim() != 4 || masks.dim() != 4 || image.sizes().slice(1) != masks.sizes().slice(1)) {
    throw Error("the previous stage's prediction has another grid than the image it joins",
                "predict the previous stage on the same case's preprocessed grid", {"", case_id, ""});
  }
  return torch::cat({image.to(torch::kFloat), masks.to(image.device(), torch::kFloat)}, 0);
}

PreviousStage load_stage_checkpoints(const std::vector<fs::path>& checkpoints, const PredictOptions& options) {
  PreviousStage previous;
  previous.checkpoints = checkpoints;
  std::vector<LoadedCheckpoint> loaded;
  for (const fs::path& path : checkpoints) loaded.push_back(load_checkpoint(path));
  previous.model = shared_model_description(loaded);
  previous.plan = inference_plan_from_plans(previous.model.plans, previous.model.configuration);
  previous.plan.resample.threads = 1;
  previous.window = sliding_window_options(previous.model, previous.plan, options);
  previous.window.show_progress(false);
  for (LoadedCheckpoint& model : loaded) {
    model.network->module().eval();
    model.network->set_deep_supervision(false);
    if (options.device != torch::Device(torch::kCPU)) model.network->module().to(options.device);
    previous.networks.push_back(model.network);
  }
  return previous;
}

PreviousStage load_previous_stage(const fs::path& cascade_model_dir, const ModelDescription& cascade, const std::vector<std::string>& folds,
                                  const std::string& checkpoint_name, const PredictOptions& options) {
  const fs::path model_dir = cascade_model_dir.parent_path() / cascade.previous_stage;
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    throw Error("the cascade " + cascade.configuration + " needs its first stage " + cascade.previous_stage + ", and " +
                    model_dir.string() + " does not exist",
                "train `mlseg train DATASET -c " + cascade.previous_stage + " -f 0..4` beside it (the same work folder)",
                {model_dir.string(), "", ""});
  }
  PreviousStage previous = load_stage_checkpoints(find_checkpoints(model_dir, folds, checkpoint_name), options);
  previous.model_dir = model_dir;
  if (previous.model.channel_names != cascade.channel_names ||
      static_cast<std::int64_t>(previous.model.channel_names.size()) != cascade.prior_channels) {
    throw Error(model_dir.string() + " predicts other channels than the cascade was trained with",
                "retrain " + cascade.previous_stage + " and the cascade on the same plans", {model_dir.string(), "", ""});
  }
  return previous;
}

torch::Tensor predict_previous_stage(const PreviousStage& previous, const torch::Tensor& first_image, const CaseProperties& first,
                                     const CaseProperties& next, int threads) {
  if (first.crop_begin != next.crop_begin || first.crop_end != next.crop_end || first.transpose_forward != next.transpose_forward) {
    throw Error("the two stages of the cascade cropped or transposed the image differently",
                "train both stages on the same plans.json (and rerun `mlseg preprocess --overwrite` for both)", {"", next.case_id, ""});
  }
  const torch::Tensor logits = sliding_window_logits(previous.networks, first_image, previous.window);
  return previous_stage_masks(logits, previous.model.encoding, first.spacing_mm, next.shape_after_resample, next.spacing_mm,
                              previous.plan.anisotropy_threshold, threads);
}

torch::Tensor cascade_input(const PreviousStage& previous, const Image& raw_image, const PreprocessedImage& next, const std::string& case_id,
                            int threads) {
  const PreprocessedImage first = preprocess_image(case_id, raw_image, previous.plan);
  return append_previous_stage(next.image, predict_previous_stage(previous, first.image, first.properties, next.properties, threads), case_id);
}

}  // namespace mlseg
