#include "mlseg/inference/nnunet_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "mlseg/core/error.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/labels/label_encoding.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/nn/nnunet_checkpoint.h"
#include "mlseg/nn/state_dict.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr const char* kModelFolderFix =
    "pass nnU-Net's trained-model folder DatasetXXX_Name/Trainer__Plans__configuration as it was written (plans.json, "
    "dataset.json, fold_N/checkpoint_final.pth)";

/// The architecture of plans written before nnU-Net 2.2 (TotalSegmentator's v2 weights use them):
/// UNet_class_name, UNet_base_num_features, unet_max_num_features, conv_kernel_sizes,
/// pool_op_kernel_sizes, n_conv_per_stage_encoder / _decoder (nnU-Net's old get_network_from_plans:
/// PlainConvUNet or ResidualEncoderUNet, whose n_conv_per_stage_encoder are blocks per stage).
Json architecture_from_old_keys(const Json& c, const std::string& at, const std::string& source) {
  for (const char* key : {"UNet_class_name", "UNet_base_num_features", "unet_max_num_features", "conv_kernel_sizes",
                          "pool_op_kernel_sizes", "n_conv_per_stage_encoder", "n_conv_per_stage_decoder"}) {
    if (!c.contains(key)) {
      throw Error(at + " has UNet_class_name but no " + key + " (an incomplete old-format plans.json)", kModelFolderFix,
                  {source, "", ""});
    }
  }
  const std::string class_name = c["UNet_class_name"].get<std::string>();
  const bool residual = class_name == "ResidualEncoderUNet";
  if (class_name != "PlainConvUNet" && !residual) {
    throw Error(at + ".UNet_class_name is '" + class_name + "'; mlseg runs PlainConvUNet and ResidualEncoderUNet",
                "use a model trained with one of nnU-Net's networks", {source, "", ""});
  }
  const auto kernels = c["conv_kernel_sizes"];
  const std::int64_t n_stages = static_cast<std::int64_t>(kernels.size());
  const std::int64_t base = c["UNet_base_num_features"].get<std::int64_t>();
  const std::int64_t most = c["unet_max_num_features"].get<std::int64_t>();
  std::vector<std::int64_t> features;
  for (std::int64_t s = 0; s < n_stages; ++s) features.push_back(std::min(base << std::min<std::int64_t>(s, 30), most));
  const bool three_d = !kernels.empty() && kernels[0].size() == 3;
  Json arch;
  arch["network_class_name"] = residual ? kResidualEncoderUNetClass : kPlainConvUNetClass;
  arch["arch_kwargs"] = {{"n_stages", n_stages},
                         {"features_per_stage", features},
                         {"conv_op", three_d ? "torch.nn.modules.conv.Conv3d" : "torch.nn.modules.conv.Conv2d"},
                         {"kernel_sizes", kernels},
                         {"strides", c["pool_op_kernel_sizes"]},
                         {residual ? "n_blocks_per_stage" : "n_conv_per_stage", c["n_conv_per_stage_encoder"]},
                         {"n_conv_per_stage_decoder", c["n_conv_per_stage_decoder"]},
                         {"conv_bias", true},
                         {"norm_op", three_d ? "torch.nn.modules.instancenorm.InstanceNorm3d"
                                             : "torch.nn.modules.instancenorm.InstanceNorm2d"},
                         {"norm_op_kwargs", {{"eps", 1e-5}, {"affine", true}}},
                         {"dropout_op", nullptr},
                         {"dropout_op_kwargs", nullptr},
                         {"nonlin", "torch.nn.LeakyReLU"},
                         {"nonlin_kwargs", {{"inplace", true}}}};
  arch["_kw_requires_import"] = {"conv_op", "norm_op", "dropout_op", "nonlin"};
  return arch;
}

std::string supported_class_list() {
  std::string list;
  for (const std::string& name : supported_network_classes()) list += (list.empty() ? "" : ", ") + name.substr(name.rfind('.') + 1);
  return list;
}

std::vector<std::string> image_channel_names(const Json& dataset_json, const std::string& source) {
  const char* key = dataset_json.contains("channel_names") ? "channel_names" : "modality";
  if (!dataset_json.contains(key) || !dataset_json[key].is_object() || dataset_json[key].empty()) {
    throw Error("dataset.json has no channel_names", kModelFolderFix, {source, "", ""});
  }
  std::map<int, std::string> by_index;
  for (const auto& [index, name] : dataset_json[key].items()) {
    try {
      by_index[std::stoi(index)] = name.get<std::string>();
    } catch (const std::exception&) {
      throw Error("dataset.json " + std::string(key) + " has the key '" + index + "', not a channel number", kModelFolderFix,
                  {source, "", ""});
    }
  }
  std::vector<std::string> names;
  for (const auto& [index, name] : by_index) {
    if (index != static_cast<int>(names.size())) {
      throw Error("dataset.json channel_names are not numbered 0, 1, ...", kModelFolderFix, {source, "", ""});
    }
    names.push_back(name);
  }
  return names;
}

Json adapted_plans(const Json& nnunet_plans, const Json& dataset_json, const std::string& configuration, const std::string& source);

}  // namespace

bool is_nnunet_model_folder(const fs::path& model_dir) {
  std::error_code ec;
  if (!fs::is_regular_file(model_dir / "plans.json", ec) || !fs::is_regular_file(model_dir / "dataset.json", ec)) return false;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    if (!entry.is_directory() || entry.path().filename().string().rfind("fold_", 0) != 0) continue;
    for (const auto& file : fs::directory_iterator(entry.path(), ec)) {
      const std::string name = file.path().filename().string();
      if (name.rfind("checkpoint_", 0) == 0 && file.path().extension() == ".pth") return true;
    }
  }
  return false;
}

std::string nnunet_configuration_from_folder_name(const fs::path& model_dir) {
  const std::string name = (model_dir.filename().empty() ? model_dir.parent_path() : model_dir).filename().string();
  const auto last = name.rfind("__");
  if (last == std::string::npos || name.find("__") == last) return {};
  return name.substr(last + 2);
}

Json mlseg_plans_for_nnunet_model(const Json& nnunet_plans, const Json& dataset_json, const std::string& configuration,
                                  const std::string& source) {
  try {
    return adapted_plans(nnunet_plans, dataset_json, configuration, source);
  } catch (const Json::exception& e) {
    throw Error(std::string("plans.json or dataset.json does not have nnU-Net's form (") + e.what() + ")", kModelFolderFix,
                {source, "", ""});
  }
}

namespace {

Json adapted_plans(const Json& nnunet_plans, const Json& dataset_json, const std::string& configuration, const std::string& source) {
  if (!nnunet_plans.contains("configurations") || !nnunet_plans["configurations"].is_object()) {
    throw Error("plans.json has no configurations", kModelFolderFix, {source, "", ""});
  }
  Json resolved = resolve_inherited_configuration(nnunet_plans["configurations"], configuration, source, kModelFolderFix);
  const std::string at = "configurations." + configuration;
  if (resolved.contains("previous_stage") && !resolved["previous_stage"].is_null()) {
    throw Error(at + " is a cascade stage: it takes the predictions of " + resolved["previous_stage"].dump() +
                    " as extra input channels, which mlseg does not run",
                "predict with the model's 3d_fullres or 3d_lowres configuration folder instead", {source, "", ""});
  }
  if (!resolved.contains("architecture")) {
    if (!resolved.contains("UNet_class_name")) {
      throw Error(at + " has neither architecture nor UNet_class_name", kModelFolderFix, {source, "", ""});
    }
    resolved["architecture"] = architecture_from_old_keys(resolved, at, source);
  }

  Json plans = nnunet_plans;
  plans["configurations"] = Json::object();
  plans["configurations"][configuration] = resolved;

  const LabelSpec spec = parse_label_spec(dataset_json, source);
  if (spec.format != LabelFormat::label_map) {
    throw Error("dataset.json says label_format " + to_string(spec.format) + "; nnU-Net models predict label maps",
                kModelFolderFix, {source, "", ""});
  }
  std::vector<std::string> channel_names;
  for (const auto& channel : spec.channels) channel_names.push_back(channel.name);
  const bool regions = spec.is_region_based();
  if (!regions) {
    // nnU-Net's softmax output k is label value k (its labels are consecutive); mlseg's output
    // c + 1 is channel c, in dataset.json's order.
    for (std::size_t c = 0; c < spec.channels.size(); ++c) {
      const auto& values = spec.channels[c].raw_values;
      if (values.size() != 1 || values[0] != static_cast<std::int64_t>(c) + 1) {
        throw Error("dataset.json lists label '" + spec.channels[c].name + "' at position " + std::to_string(c + 1) +
                        " with value " + (values.empty() ? std::string("none") : std::to_string(values[0])) +
                        "; nnU-Net's outputs follow the values 1, 2, ...",
                    "copy the model folder and list dataset.json's labels by value (background 0 first)", {source, "", ""});
      }
    }
  }
  const LabelEncoding encoding = regions ? LabelEncoding::sigmoid(static_cast<int>(channel_names.size()))
                                         : LabelEncoding::softmax(static_cast<int>(channel_names.size()));
  encoding.write_json(plans, channel_names);
  plans["label_encoding_source"] = regions ? "nnU-Net model: regions, one sigmoid per region"
                                           : "nnU-Net model: labels, softmax with background";
  plans["channel_names"] = channel_names;
  plans["image_channel_names"] = image_channel_names(dataset_json, source);
  return plans;
}

}  // namespace

std::vector<LoadedCheckpoint> load_nnunet_model(const fs::path& model_dir, const std::vector<fs::path>& checkpoints) {
  if (checkpoints.empty()) throw Error("no checkpoint to load", "pass at least one fold", {model_dir.string(), "", ""});
  const fs::path plans_path = model_dir / "plans.json";
  const fs::path dataset_path = model_dir / "dataset.json";
  const Json nnunet_plans = read_json_file(plans_path);
  const Json dataset_json = read_json_file(dataset_path);

  std::vector<NnunetCheckpoint> folds;
  for (const auto& path : checkpoints) folds.push_back(read_nnunet_checkpoint(path));
  for (std::size_t i = 1; i < folds.size(); ++i) {
    if (folds[i].trainer_name != folds[0].trainer_name ||
        folds[i].inference_allowed_mirroring_axes != folds[0].inference_allowed_mirroring_axes) {
      throw Error("the folds were trained differently (trainer " + folds[0].trainer_name + " and " + folds[i].trainer_name +
                      ", or other mirroring axes)",
                  "ensemble folds of one training run only", {checkpoints[i].string(), "", ""});
    }
  }
  std::string configuration = folds[0].configuration;
  if (configuration.empty()) configuration = nnunet_configuration_from_folder_name(model_dir);
  if (configuration.empty()) {
    throw Error("neither the checkpoint nor the folder name says the configuration", kModelFolderFix,
                {checkpoints[0].string(), "", ""});
  }

  ModelDescription model;
  try {
    model.plans = plans_from_json(mlseg_plans_for_nnunet_model(nnunet_plans, dataset_json, configuration, plans_path.string()),
                                  plans_path.string());
  } catch (const Error& e) {
    throw e.located({plans_path.string(), "", ""});
  }
  model.configuration = configuration;
  model.channel_names = model.plans.channel_names;
  model.image_channel_names = model.plans.image_channel_names;
  model.input_channels = static_cast<std::int64_t>(model.image_channel_names.size());
  model.encoding = model.plans.encoding;
  model.num_outputs = model.encoding.num_outputs();
  model.dataset_json = dataset_json;
  // None: trained without mirroring, so no test-time mirroring (nnU-Net's predictor does the same).
  model.mirror_axes = folds[0].inference_allowed_mirroring_axes.value_or(std::vector<int>{});

  std::vector<LoadedCheckpoint> loaded;
  for (std::size_t i = 0; i < folds.size(); ++i) {
    LoadedCheckpoint fold;
    fold.model = model;
    fold.network = build_network(model, /*deep_supervision=*/false);
    try {
      load_named_tensors(fold.network->module(), folds[i].network_weights, checkpoints[i].string());
    } catch (const Error& e) {
      if (folds[i].trainer_name.empty() || folds[i].trainer_name == "nnUNetTrainer") throw;
      throw Error(e.problem() + " (the checkpoint's trainer " + folds[i].trainer_name +
                      " may build its own network; mlseg builds the plans' network_class_name, supported: " +
                      supported_class_list() + ")",
                  e.fix(), e.where());
    }
    fold.network->module().eval();
    fold.metadata = {{"format", "nnunet-v2-checkpoint"},
                     {"nnunet", {{"trainer_name", folds[i].trainer_name}, {"epochs_trained", folds[i].epochs_trained}}}};
    loaded.push_back(std::move(fold));
  }
  return loaded;
}

}  // namespace mlseg
