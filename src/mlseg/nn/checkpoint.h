#pragma once
// The checkpoint format: one file (`checkpoint_{latest,best,final}.pt`, a LibTorch archive)
// holding the network's parameters and buffers (by parameter name), optionally the optimizer's state, and a JSON
// document with everything needed to rebuild and use the network without the work folder:
// plans.json, the configuration, channel names, label encoding, the dataset's label definition
// and the trainer's progress. Written atomically (temporary name, then rename).
#include <nlohmann/json.hpp>
#include <torch/optim/optimizer.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/labels/label_encoding.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/nn/segmentation_network.h"

namespace mlseg {

/// Written into every checkpoint's metadata as "format"; readers refuse other values.
inline constexpr const char* kCheckpointFormat = "mlseg-checkpoint-1";

/// What a checkpoint says about its model (the "model" object of the metadata).
struct ModelDescription {
  PlansFile plans;                ///< the plans.json the network was built from, checked (plans_from_json) on load
  std::string configuration;      ///< e.g. "3d_fullres"
  std::int64_t input_channels = 1;
  std::int64_t num_outputs = 1;   ///< network outputs (= encoding.num_outputs())
  LabelEncoding encoding;         ///< what the outputs stand for (powerset: with its combination table)
  std::vector<std::string> channel_names;      ///< label channels in ARCHITECTURE.md's order
  std::vector<std::string> image_channel_names;  ///< modalities, in input order
  /// The raw dataset.json (labels, regions_class_order, label_format, file_ending, ...), so that
  /// predictions can be exported in the dataset's own label format.
  nlohmann::ordered_json dataset_json;
  /// Spatial axes mirrored during training (tensor axes of the patch: 0 = z, 1 = y, 2 = x); the
  /// test-time augmentation mirrors over the same ones.
  std::vector<int> mirror_axes;
  /// A cascade stage: the configuration (a sibling model folder) whose prediction is appended to
  /// the image as `prior_channels` binary input channels (one per label channel of that model:
  /// thresholded sigmoid, softmax one-hot or the powerset's channels); empty otherwise.
  std::string previous_stage;
  std::int64_t prior_channels = 0;
  /// Channels read from image files: input_channels - prior_channels.
  std::int64_t image_input_channels() const { return input_channels - prior_channels; }
};

nlohmann::ordered_json model_description_to_json(const ModelDescription& model);
/// Throws mlseg::Error naming the missing key.
ModelDescription model_description_from_json(const nlohmann::ordered_json& json);

/// Network of `model` (plans' network_class_name, freshly initialised; deep supervision as asked).
SegmentationNetwork build_network(const ModelDescription& model, bool deep_supervision);

/// Writes the checkpoint atomically. `metadata` is stored as is, with "format" and "model"
/// (from `model`) set; `optimizer` may be null (inference-only checkpoint). Beside it goes
/// PATH.check (its size and content hash), which every reader verifies, so a truncated or
/// damaged checkpoint is named as such. `keep_previous`: the checkpoint it replaces is kept as
/// previous_checkpoint_path(path) (with its check), for --resume to fall back to.
void save_checkpoint(const std::filesystem::path& path, SegmentationNetworkImpl& network, const ModelDescription& model,
                     nlohmann::ordered_json metadata, torch::optim::Optimizer* optimizer, bool keep_previous = false);

/// "checkpoint_latest.pt" → "checkpoint_latest.previous.pt".
std::filesystem::path previous_checkpoint_path(const std::filesystem::path& path);

/// Throws mlseg::Error naming the file when PATH.check exists and the file's size or content
/// hash differs from it (truncated by a full disk or a cut copy, or damaged). Checkpoints without
/// a check file (written before it existed) pass.
void verify_checkpoint_file(const std::filesystem::path& path);

/// A checkpoint read back: the network rebuilt from its description and loaded (on CPU whatever
/// device wrote it: map_location CPU; deep supervision off, eval mode), and the metadata.
struct LoadedCheckpoint {
  SegmentationNetwork network;
  ModelDescription model;
  nlohmann::ordered_json metadata;
  bool has_optimizer_state = false;
};

/// Throws mlseg::Error naming the file when it is missing, not a checkpoint, of another format
/// version, or its parameters do not match the described network.
LoadedCheckpoint load_checkpoint(const std::filesystem::path& path);

/// Loads the optimizer state stored in `path` into `optimizer` (built over the same network's
/// parameters), on the parameters' device whatever device wrote it. Throws mlseg::Error when the
/// checkpoint has none.
void load_optimizer_state(const std::filesystem::path& path, torch::optim::Optimizer& optimizer);

/// Only the metadata (cheap: the parameters are not rebuilt into a network).
nlohmann::ordered_json read_checkpoint_metadata(const std::filesystem::path& path);

}  // namespace mlseg
