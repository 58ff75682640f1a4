#include "mlseg/inference/predict_case.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "mlseg/core/error.h"

namespace mlseg {

SlidingWindowOptions sliding_window_options(const ModelDescription& model, const InferencePlan& plan, const PredictOptions& options) {
  SlidingWindowOptions window(plan.patch_size);
  window.step_size(options.step_size).tile_batch(options.tile_batch).device(options.device).show_progress(options.show_progress);
  window.fused_forward(options.fused_forward).precision(options.precision).perform_everything_on_device(options.perform_everything_on_device);
  if (options.use_mirroring) window.mirror_axes(model.mirror_axes);
  return window;
}

PredictedCase predict_case(const std::vector<SegmentationNetwork>& networks, const ModelDescription& model, const Image& raw_image,
                           const PredictOptions& options, const std::string& case_id) {
  if (!model.previous_stage.empty()) {
    throw Error("the model is the cascade stage " + model.configuration + ": it needs " + model.previous_stage + "'s prediction first",
                "predict with predict_folder / `mlseg predict -m` on the cascade's model folder, which runs both stages",
                {"", case_id, ""});
  }
  InferencePlan plan = inference_plan_from_plans(model.plans, model.configuration);
  plan.resample.threads = options.threads;
  if (raw_image.num_channels() != model.input_channels) {
    throw Error("the image has " + std::to_string(raw_image.num_channels()) + " channel(s), the model takes " +
                    std::to_string(model.input_channels),
                "give one file per modality (CASE_0000, CASE_0001, ...) as in the training data", {"", case_id, ""});
  }
  const PreprocessedImage preprocessed = preprocess_image(case_id, raw_image, plan);
  const torch::Tensor logits = sliding_window_logits(networks, preprocessed.image, sliding_window_options(model, plan, options));
  PredictedCase result;
  result.case_id = case_id;
  result.encoding = model.encoding;
  result.channel_names = model.channel_names;
  result.geometry = raw_image.geometry;
  set_prediction(result, logits_to_original_probabilities(logits, preprocessed.properties, model.encoding,
                                                          plan.anisotropy_threshold, options.threads));
  return result;
}

const ModelDescription& shared_model_description(const std::vector<LoadedCheckpoint>& models) {
  if (models.empty()) throw Error("no model to predict with", "pass at least one checkpoint (fold)");
  const ModelDescription& first = models.front().model;
  for (const auto& loaded : models) {
    const ModelDescription& m = loaded.model;
    if (m.configuration != first.configuration || m.encoding.name() != first.encoding.name() || m.encoding.combinations() != first.encoding.combinations() ||
        m.channel_names != first.channel_names || m.input_channels != first.input_channels ||
        m.plans.json["configurations"].value(m.configuration, nlohmann::ordered_json()) !=
            first.plans.json["configurations"].value(first.configuration, nlohmann::ordered_json())) {
      throw Error("the folds' models differ (configuration, label encoding, channels or plans)",
                  "ensemble only folds of one training run (same plans.json and configuration)");
    }
  }
  return first;
}

PredictedCase predict_case(const std::vector<LoadedCheckpoint>& models, const Image& raw_image, const PredictOptions& options,
                           const std::string& case_id) {
  const ModelDescription& model = shared_model_description(models);
  std::vector<SegmentationNetwork> networks;
  for (const auto& loaded : models) networks.push_back(loaded.network);
  return predict_case(networks, model, raw_image, options, case_id);
}

CodeVolume code_from_masks(const torch::Tensor& masks) {
  const int channels = static_cast<int>(masks.size(0));
  const CodeLayout layout = code_layout(channels);
  const torch::Tensor bytes = masks.to(torch::kCPU, torch::kUInt8).contiguous();
  const std::int64_t voxels = bytes.numel() / std::max<std::int64_t>(1, channels);
  std::vector<torch::Tensor> words;
  std::vector<std::uint64_t> word(static_cast<std::size_t>(voxels));
  for (int w = 0; w < layout.num_words; ++w) {
    std::fill(word.begin(), word.end(), 0);
    for (int c = 64 * w; c < std::min(channels, 64 * (w + 1)); ++c) {
      const std::uint8_t* m = bytes.data_ptr<std::uint8_t>() + static_cast<std::int64_t>(c) * voxels;
      const std::uint64_t bit = std::uint64_t{1} << (c - 64 * w);
      for (std::int64_t i = 0; i < voxels; ++i) word[static_cast<std::size_t>(i)] |= m[i] ? bit : 0;
    }
    torch::Tensor t = torch::empty({voxels}, torch::kLong);
    std::memcpy(t.data_ptr<std::int64_t>(), word.data(), sizeof(std::uint64_t) * static_cast<std::size_t>(voxels));
    words.push_back(t.to(layout.dtype));
  }
  CodeVolume code;
  code.num_channels = channels;
  code.words = torch::stack(words).view({layout.num_words, masks.size(1), masks.size(2), masks.size(3)});
  return code;
}

void set_prediction(PredictedCase& predicted, torch::Tensor class_probabilities) {
  predicted.code = predicted.encoding.code_from_outputs(class_probabilities, /*are_logits=*/false);
  predicted.probabilities = predicted.encoding.kind() == EncodingKind::powerset
                                ? predicted.encoding.channel_probabilities(class_probabilities, 0).contiguous()
                                : std::move(class_probabilities);
}

}  // namespace mlseg
