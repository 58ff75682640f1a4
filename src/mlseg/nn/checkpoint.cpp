#include "mlseg/nn/checkpoint.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <system_error>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/nn/network_from_plans.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "metadata";
constexpr const char* kModelKey = "model";
constexpr const char* kOptimizerKey = "optimizer";
constexpr const char* kRetrainFix = "use a checkpoint written by `mlseg train`, or retrain";

template <typename T>
T required(const Json& json, const std::string& key) {
  if (!json.contains(key)) throw Error("checkpoint metadata has no model." + key, kRetrainFix);
  try {
    return json.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error("checkpoint metadata model." + key + " is " + json.at(key).dump().substr(0, 80), kRetrainFix);
  }
}

// `device`: where the tensors land (map_location), whatever device wrote them; the CPU by default,
// so that a checkpoint trained on a GPU loads on a machine without CUDA.
torch::serialize::InputArchive open_archive(const std::filesystem::path& path, const torch::Device& device = torch::kCPU) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error("checkpoint not found", "train the model first (`mlseg train`) or pass the right model folder",
                {path.string(), "", ""});
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string(), device);
  } catch (const c10::Error& e) {
    throw Error("not a readable checkpoint (" + std::string(e.what_without_backtrace()).substr(0, 200) + ")",
                "the file is damaged or was not written by mlseg: retrain or copy it again", {path.string(), "", ""});
  }
  return archive;
}

Json metadata_of(torch::serialize::InputArchive& archive, const std::filesystem::path& path) {
  c10::IValue value;
  if (!archive.try_read(kMetadataKey, value) || !value.isString()) {
    throw Error("the file has no mlseg metadata", kRetrainFix, {path.string(), "", ""});
  }
  Json metadata;
  try {
    metadata = Json::parse(value.toStringRef());
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("checkpoint metadata is not valid JSON (") + e.what() + ")", kRetrainFix, {path.string(), "", ""});
  }
  const std::string format = metadata.value("format", std::string());
  if (format != kCheckpointFormat) {
    throw Error("checkpoint format is '" + format + "', this mlseg reads '" + kCheckpointFormat + "'",
                "retrain with this version of mlseg", {path.string(), "", ""});
  }
  return metadata;
}

}  // namespace

Json model_description_to_json(const ModelDescription& model) {
  Json json;
  json["configuration"] = model.configuration;
  json["input_channels"] = model.input_channels;
  json["num_outputs"] = model.num_outputs;
  model.encoding.write_json(json, model.channel_names);
  json["channel_names"] = model.channel_names;
  json["image_channel_names"] = model.image_channel_names;
  json["mirror_axes"] = model.mirror_axes;
  json["dataset_json"] = model.dataset_json;
  json["plans"] = model.plans.json;
  return json;
}

ModelDescription model_description_from_json(const Json& json) {
  ModelDescription model;
  model.configuration = required<std::string>(json, "configuration");
  model.input_channels = required<std::int64_t>(json, "input_channels");
  model.num_outputs = required<std::int64_t>(json, "num_outputs");
  model.channel_names = required<std::vector<std::string>>(json, "channel_names");
  required<std::string>(json, "label_encoding");
  model.encoding = LabelEncoding::from_json(json, model.channel_names, "checkpoint metadata");
  model.image_channel_names = json.value("image_channel_names", std::vector<std::string>{});
  model.mirror_axes = json.value("mirror_axes", std::vector<int>{});
  model.dataset_json = json.value("dataset_json", Json::object());
  if (!json.contains("plans") || !json["plans"].is_object()) throw Error("checkpoint metadata has no model.plans", kRetrainFix);
  // No source here: the caller locates errors at the checkpoint's path (load_checkpoint).
  model.plans = plans_from_json(json["plans"], "");
  if (model.num_outputs != model.encoding.num_outputs()) {
    throw Error("checkpoint metadata has " + std::to_string(model.num_outputs) + " outputs, its " + model.encoding.name() +
                    " encoding " + std::to_string(model.encoding.num_outputs()),
                kRetrainFix);
  }
  if (model.input_channels < 1 || model.num_outputs < 1) {
    throw Error("checkpoint metadata has " + std::to_string(model.input_channels) + " inputs and " +
                    std::to_string(model.num_outputs) + " outputs",
                kRetrainFix);
  }
  return model;
}

SegmentationNetwork build_network(const ModelDescription& model, bool deep_supervision) {
  return network_from_plans(model.plans, model.configuration, static_cast<int>(model.input_channels),
                            static_cast<int>(model.num_outputs), deep_supervision);
}

void save_checkpoint(const std::filesystem::path& path, SegmentationNetworkImpl& network, const ModelDescription& model,
                     Json metadata, torch::optim::Optimizer* optimizer) {
  metadata["format"] = kCheckpointFormat;
  metadata["model"] = model_description_to_json(model);
  torch::serialize::OutputArchive archive;
  archive.write(kMetadataKey, c10::IValue(metadata.dump()));
  torch::serialize::OutputArchive model_archive;
  network.module().save(model_archive);
  archive.write(kModelKey, model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write(kOptimizerKey, optimizer_archive);
  }
  std::error_code ec;
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path(), ec);
  AtomicOutput output(path);
  try {
    archive.save_to(output.temp_path().string());
  } catch (const c10::Error& e) {
    throw Error("could not write the checkpoint (" + std::string(e.what_without_backtrace()).substr(0, 200) + ")",
                "check free disk space and write permission", {path.string(), "", ""});
  }
  output.commit();
}

LoadedCheckpoint load_checkpoint(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive = open_archive(path);
  LoadedCheckpoint loaded;
  loaded.metadata = metadata_of(archive, path);
  try {
    loaded.model = model_description_from_json(loaded.metadata.value("model", Json::object()));
    loaded.model.plans.source = path.string() + " (model.plans)";
    loaded.network = build_network(loaded.model, /*deep_supervision=*/false);
  } catch (const Error& e) {
    throw e.located({path.string(), "", ""});
  }
  torch::serialize::InputArchive model_archive;
  if (!archive.try_read(kModelKey, model_archive)) throw Error("the file holds no network", kRetrainFix, {path.string(), "", ""});
  try {
    loaded.network->module().load(model_archive);
  } catch (const c10::Error& e) {
    throw Error("the stored parameters do not fit the described network (" +
                    std::string(e.what_without_backtrace()).substr(0, 200) + ")",
                kRetrainFix, {path.string(), "", ""});
  }
  loaded.network->module().eval();
  torch::serialize::InputArchive optimizer_archive;
  loaded.has_optimizer_state = archive.try_read(kOptimizerKey, optimizer_archive);
  return loaded;
}

void load_optimizer_state(const std::filesystem::path& path, torch::optim::Optimizer& optimizer) {
  // LibTorch's Optimizer::load keeps the state where the archive puts it (unlike PyTorch's
  // load_state_dict, which casts it to the parameters): map it onto the parameters' device.
  torch::Device device = torch::kCPU;
  for (const auto& group : optimizer.param_groups()) {
    if (!group.params().empty()) {
      device = group.params().front().device();
      break;
    }
  }
  torch::serialize::InputArchive archive = open_archive(path, device);
  metadata_of(archive, path);
  torch::serialize::InputArchive optimizer_archive;
  if (!archive.try_read(kOptimizerKey, optimizer_archive)) {
    throw Error("the checkpoint holds no optimizer state", "resume from checkpoint_latest.pt", {path.string(), "", ""});
  }
  try {
    optimizer.load(optimizer_archive);
  } catch (const c10::Error& e) {
    throw Error("the optimizer state does not fit this optimizer (" +
                    std::string(e.what_without_backtrace()).substr(0, 200) + ")",
                "resume with the same --optimizer as the run that wrote it", {path.string(), "", ""});
  }
}

Json read_checkpoint_metadata(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive = open_archive(path);
  return metadata_of(archive, path);
}

}  // namespace mlseg
