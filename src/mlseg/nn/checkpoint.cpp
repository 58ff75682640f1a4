#include "mlseg/nn/checkpoint.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/content_hash.h"
#include "mlseg/core/error.h"
#include "mlseg/core/fault_injection.h"
#include "mlseg/io/json_file.h"
#include "mlseg/nn/network_from_plans.h"

namespace mlseg {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "metadata";
constexpr const char* kModelKey = "model";
constexpr const char* kOptimizerKey = "optimizer";
constexpr const char* kRetrainFix = "use a checkpoint written by `mlseg train`, or retrain";
constexpr const char* kCheckSuffix = ".check";
constexpr const char* kCheckFormat = "mlseg-checkpoint-check-1";
constexpr std::size_t kHashChunkBytes = std::size_t{8} << 20;

std::filesystem::path check_path(const std::filesystem::path& path) { return path.string() + kCheckSuffix; }

// The content hash of check files: hash_bytes over kHashChunkBytes chunks, each seeding the next.
std::uint64_t hash_chunked(const char* data, std::size_t size, std::uint64_t hash = 0) {
  for (std::size_t offset = 0; offset < size; offset += kHashChunkBytes) {
    hash = hash_bytes(data + offset, std::min(kHashChunkBytes, size - offset), hash);
  }
  return hash;
}

std::string hash_text(std::uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

// Writes `bytes` to `file` and flushes it to the disk, or throws naming `target` and the reason
// (ENOSPC: the disk is full).
void write_all_or_throw(const std::filesystem::path& file, const std::string& bytes, const std::filesystem::path& target) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::size_t written = 0;
  int error = fd < 0 ? errno : 0;
  while (error == 0 && written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : ENOSPC;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (fd >= 0 && ::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    throw Error("could not write the checkpoint (" + std::string(std::strerror(error)) + " after " + std::to_string(written) +
                    " of " + std::to_string(bytes.size()) + " bytes)",
                error == ENOSPC ? "free disk space (the previous checkpoint is intact), then rerun with --resume"
                                : "check write permission and the disk (the previous checkpoint is intact)",
                {target.string(), "", ""});
  }
}

struct FileCheck {
  std::uintmax_t bytes = 0;
  std::string hash;
};

// Size and content hash of a file, read in chunks (each chunk's hash seeds the next).
FileCheck check_of(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the file to check it", "check read permission", {path.string(), "", ""});
  FileCheck check;
  std::uint64_t hash = 0;
  std::vector<char> buffer(kHashChunkBytes);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    hash = hash_chunked(buffer.data(), static_cast<std::size_t>(n), hash);  // one chunk: save_checkpoint's hash
    check.bytes += static_cast<std::uintmax_t>(n);
  }
  check.hash = hash_text(hash);
  return check;
}

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
  verify_checkpoint_file(path);
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
  if (!model.previous_stage.empty()) {
    json["previous_stage"] = model.previous_stage;
    json["prior_channels"] = model.prior_channels;
  }
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
  model.previous_stage = json.value("previous_stage", std::string());
  model.prior_channels = json.value("prior_channels", std::int64_t{0});
  if (model.prior_channels < 0 || model.prior_channels >= model.input_channels || model.previous_stage.empty() != (model.prior_channels == 0)) {
    throw Error("checkpoint metadata has previous_stage '" + model.previous_stage + "' with " + std::to_string(model.prior_channels) +
                    " prior channel(s) of " + std::to_string(model.input_channels) + " inputs",
                kRetrainFix);
  }
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

std::filesystem::path previous_checkpoint_path(const std::filesystem::path& path) {
  return path.parent_path() / (path.stem().string() + ".previous" + path.extension().string());
}

void verify_checkpoint_file(const std::filesystem::path& path) {
  const std::filesystem::path check_file = check_path(path);
  std::error_code ec;
  if (!std::filesystem::exists(check_file, ec)) return;
  FileCheck expected;
  try {
    const Json check = read_json_file(check_file);
    if (check.value("format", std::string()) != kCheckFormat) return;  // a later format: not ours to judge
    expected.bytes = check.at("bytes").get<std::uintmax_t>();
    expected.hash = check.at("hash64").get<std::string>();
  } catch (const std::exception&) {
    return;  // an unreadable check file says nothing about the checkpoint
  }
  const std::uintmax_t bytes = std::filesystem::file_size(path, ec);
  if (!ec && bytes != expected.bytes) {
    throw Error("the checkpoint is damaged: " + std::to_string(bytes) + " bytes where " + std::to_string(expected.bytes) +
                    " were written (truncated: a full disk, a killed copy?)",
                "use the previous checkpoint (`mlseg train --resume` falls back to checkpoint_latest.previous.pt by itself) "
                "or retrain",
                {path.string(), "", ""});
  }
  if (check_of(path).hash != expected.hash) {
    throw Error("the checkpoint is damaged: its content differs from what was written (hash mismatch)",
                "use the previous checkpoint (`mlseg train --resume` falls back to checkpoint_latest.previous.pt by itself) "
                "or retrain",
                {path.string(), "", ""});
  }
}

void save_checkpoint(const std::filesystem::path& path, SegmentationNetworkImpl& network, const ModelDescription& model,
                     Json metadata, torch::optim::Optimizer* optimizer, bool keep_previous) {
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
  // Serialised in memory first: LibTorch's archive writer throws from its destructor when the
  // disk fills up while it finishes the file, which aborts the process; our own write reports it.
  std::ostringstream bytes_stream;
  archive.save_to(bytes_stream);
  const std::string bytes = bytes_stream.str();
  AtomicOutput output(path);
  write_all_or_throw(output.temp_path(), bytes, path);
  FileCheck check;
  check.bytes = bytes.size();
  check.hash = hash_text(hash_chunked(bytes.data(), bytes.size()));
  Json check_json;
  check_json["format"] = kCheckFormat;
  check_json["bytes"] = check.bytes;
  check_json["hash64"] = check.hash;
  AtomicOutput check_output(check_path(path));
  write_all_or_throw(check_output.temp_path(), check_json.dump() + "\n", path);
  fault_point("checkpoint_write");
  // Everything that needs disk space is written; from here on only renames. Their order makes a
  // kill at any point safe: the old file moves aside first, the new check comes into place before
  // the new checkpoint, so a reader finds a checkpoint matching its check, or none (and falls back
  // to the previous one).
  if (keep_previous && std::filesystem::exists(path, ec)) {
    const std::filesystem::path previous = previous_checkpoint_path(path);
    std::filesystem::remove(check_path(previous), ec);
    std::filesystem::rename(path, previous, ec);
    if (!ec && std::filesystem::exists(check_path(path))) std::filesystem::rename(check_path(path), check_path(previous), ec);
  }
  check_output.commit();
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
