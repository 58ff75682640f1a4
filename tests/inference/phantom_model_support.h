#pragma once
// A trained phantom model for the inference tests (predict_test, predict_precision_test): the
// model description of a preprocessed phantom dataset with sigmoid outputs, and a network trained
// a few SGD steps on whole preprocessed cases, so that it predicts the phantom's masks.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/inference/predict_case.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/labels/label_code.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/training/losses.h"

namespace mlseg::testing {

/// `volume` [C, Z, Y, X] cut or zero-padded (at the far end) to `patch` [Z, Y, X].
inline torch::Tensor pad_crop_to(const torch::Tensor& volume, const std::vector<std::int64_t>& patch) {
  torch::Tensor out = torch::zeros({volume.size(0), patch[0], patch[1], patch[2]}, volume.options());
  const std::int64_t z = std::min(patch[0], volume.size(1)), y = std::min(patch[1], volume.size(2)), x = std::min(patch[2], volume.size(3));
  out.slice(1, 0, z).slice(2, 0, y).slice(3, 0, x).copy_(volume.slice(1, 0, z).slice(2, 0, y).slice(3, 0, x));
  return out;
}

/// The 3d_fullres model of a preprocessed dataset (`dataset_work` holds plans.json) with one
/// sigmoid output per channel, whatever analyze recommended; mirroring over z, y, x.
inline ModelDescription sigmoid_phantom_model(const std::filesystem::path& dataset_work, const std::filesystem::path& raw) {
  const nlohmann::ordered_json plans = read_json_file(dataset_work / "plans.json");
  ModelDescription model;
  model.configuration = "3d_fullres";
  model.channel_names = plans.at("channel_names").get<std::vector<std::string>>();
  model.encoding = LabelEncoding::sigmoid(static_cast<int>(model.channel_names.size()));
  nlohmann::ordered_json sigmoid_plans = plans;
  model.encoding.write_json(sigmoid_plans, model.channel_names);
  model.plans = plans_from_json(sigmoid_plans, (dataset_work / "plans.json").string());
  model.image_channel_names = plans.value("image_channel_names", std::vector<std::string>{});
  model.input_channels = 1;
  model.num_outputs = model.encoding.num_outputs();
  model.dataset_json = read_json_file(raw / "dataset.json");
  model.mirror_axes = {0, 1, 2};
  return model;
}

/// A network of `model` (seed 0) trained `steps` SGD steps (lr 0.01, Nesterov momentum 0.9,
/// BCE + Dice) on the preprocessed cases `case_ids` of `dataset_work`, each cut to the plan's
/// patch; returned in eval mode. `last_loss` (optional) receives the last step's loss.
inline SegmentationNetwork train_phantom_network(const ModelDescription& model, const std::filesystem::path& dataset_work,
                                                 const std::vector<std::string>& case_ids, int steps, double* last_loss = nullptr) {
  torch::manual_seed(0);
  SegmentationNetwork network = build_network(model, /*deep_supervision=*/false);
  const std::vector<std::int64_t> patch = model.plans.configuration(model.configuration).patch_size;
  const std::filesystem::path store = dataset_work / "preprocessed" / model.configuration;
  std::vector<torch::Tensor> images, targets;
  for (const std::string& case_id : case_ids) {
    images.push_back(pad_crop_to(read_npy(store / (case_id + "_img.npy")), patch).unsqueeze(0));
    const CodeVolume code{read_npy(store / (case_id + "_seg.npy")), static_cast<int>(model.channel_names.size())};
    targets.push_back(pad_crop_to(decode_channels(code).to(torch::kFloat), patch).unsqueeze(0));
  }
  const torch::Tensor image_batch = torch::cat(images), target_batch = torch::cat(targets);
  torch::optim::SGD optimizer(network->module().parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).nesterov(true));
  network->module().train();
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    const torch::Tensor loss = bce_and_dice_loss(network->forward(image_batch).front(), target_batch, torch::Tensor());
    loss.backward();
    optimizer.step();
    if (last_loss) *last_loss = loss.item<double>();
  }
  network->module().eval();
  return network;
}

}  // namespace mlseg::testing
