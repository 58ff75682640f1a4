// mlseg predict's inputs: the cases of an input folder (nnU-Net's CASE_XXXX naming), their images
// stacked, and the checkpoints of a model folder (declared in predict.h).
#include <algorithm>
#include <map>
#include <optional>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/inference/nnunet_model.h"
#include "mlseg/inference/predict.h"
#include "mlseg/io/image_io.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

constexpr int kChannelDigits = 4;  // nnU-Net's CASE_0000 naming

/// "CASE_0001.nii.gz" → {"CASE", 1}; nullopt for other names.
std::optional<std::pair<std::string, int>> split_image_name(const fs::path& path) {
  if (!is_supported_image_file(path)) return std::nullopt;
  const std::string name = path.filename().string();
  const std::string ending = full_extension(path);
  const std::string stem = name.substr(0, name.size() - ending.size());
  if (stem.size() < kChannelDigits + 2 || stem[stem.size() - kChannelDigits - 1] != '_') return std::nullopt;
  const std::string digits = stem.substr(stem.size() - kChannelDigits);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return std::make_pair(stem.substr(0, stem.size() - kChannelDigits - 1), std::stoi(digits));
}

}  // namespace

Image read_input_case(const InputCase& input) {
  Image image;
  std::vector<torch::Tensor> channels;
  for (const auto& file : input.images) {
    Image part = read_image(file);
    if (channels.empty()) {
      image = part;
    } else if (part.shape_zyx() != image.shape_zyx() || !spacing_matches(part.geometry, image.geometry) ||
               !origin_matches(part.geometry, image.geometry) || !direction_matches(part.geometry, image.geometry)) {
      throw Error("channel file " + file.filename().string() + " has another grid than " + input.images.front().filename().string(),
                  "all channel files of a case must share shape, spacing, origin and direction", {file.string(), input.case_id, ""});
    }
    channels.push_back(part.data);
  }
  image.data = channels.size() == 1 ? channels.front() : torch::cat(channels, 0);
  return image;
}

std::vector<InputCase> list_input_cases(const fs::path& input, std::int64_t expected_channels) {
  std::map<std::string, std::map<int, fs::path>> found;
  std::error_code ec;
  fs::path folder = input;
  std::optional<std::string> only_case;
  if (fs::is_regular_file(input, ec)) {
    const auto parts = split_image_name(input);
    if (!parts) {
      throw Error("input file " + input.filename().string() + " is not named CASE_XXXX<ending> (nnU-Net imagesTs naming)",
                  "rename it, e.g. to case_0000.nii.gz (one file per modality: _0000, _0001, ...)", {input.string(), "", ""});
    }
    folder = input.parent_path().empty() ? fs::path(".") : input.parent_path();
    only_case = parts->first;
  } else if (!fs::is_directory(input, ec)) {
    throw Error("input " + input.string() + " does not exist", "pass a folder of images (e.g. DATASET/imagesTs) or one image file",
                {input.string(), "", ""});
  } else if (fs::is_regular_file(input / "dataset.json", ec) && fs::is_directory(input / "imagesTs", ec)) {
    folder = input / "imagesTs";
  }
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (!entry.is_regular_file()) continue;
    const auto parts = split_image_name(entry.path());
    if (!parts || (only_case && parts->first != *only_case)) continue;
    found[parts->first][parts->second] = entry.path();
  }
  if (found.empty()) {
    throw Error("no images named CASE_XXXX<ending> in " + folder.string(),
                "nnU-Net's imagesTs naming: one file per case and modality, e.g. case_0000.nii.gz", {folder.string(), "", ""});
  }
  std::vector<InputCase> cases;
  for (const auto& [case_id, files] : found) {
    InputCase c;
    c.case_id = case_id;
    int expected_index = 0;
    for (const auto& [index, path] : files) {
      if (index != expected_index) {
        throw Error("case " + case_id + " has channel file _" + std::to_string(index) + " but no _" + std::to_string(expected_index),
                    "channel files must be numbered _0000, _0001, ... without gaps", {path.string(), case_id, ""});
      }
      c.images.push_back(path);
      ++expected_index;
    }
    if (expected_channels > 0 && static_cast<std::int64_t>(c.images.size()) != expected_channels) {
      throw Error("case " + case_id + " has " + std::to_string(c.images.size()) + " channel file(s), the model was trained on " +
                      std::to_string(expected_channels),
                  "give every case one file per modality (_0000 .. _" + std::to_string(expected_channels - 1) + ") as in training",
                  {c.images.front().string(), case_id, ""});
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

std::vector<fs::path> find_checkpoints(const fs::path& model_dir, const std::vector<std::string>& folds, const std::string& name) {
  if (name != "final" && name != "best" && name != "latest") {
    throw Error("--checkpoint is '" + name + "'", "use final, best or latest");
  }
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    throw Error("model folder " + model_dir.string() + " does not exist",
                "pass WORK/<dataset>/results/<configuration> (the folder holding fold_0, fold_1, ...)", {model_dir.string(), "", ""});
  }
  // nnU-Net v2's model folders hold checkpoint_<name>.pth (nnUNetTrainer.save_checkpoint).
  const std::string file = "checkpoint_" + name + (is_nnunet_model_folder(model_dir) ? ".pth" : ".pt");
  std::vector<fs::path> checkpoints;
  if (!folds.empty()) {
    for (const auto& fold : folds) {
      const fs::path path = model_dir / ("fold_" + fold) / file;
      if (!fs::is_regular_file(path, ec)) {
        throw Error("fold " + fold + " has no " + file, "train that fold, or choose other folds (-f) or --checkpoint best|latest",
                    {path.string(), "", ""});
      }
      checkpoints.push_back(path);
    }
    return checkpoints;
  }
  std::vector<std::string> available;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    const std::string folder = entry.path().filename().string();
    if (entry.is_directory() && folder.rfind("fold_", 0) == 0 && fs::is_regular_file(entry.path() / file, ec)) {
      checkpoints.push_back(entry.path() / file);
      available.push_back(folder);
    }
  }
  std::sort(checkpoints.begin(), checkpoints.end());
  if (checkpoints.empty()) {
    throw Error("no fold_*/" + file + " in " + model_dir.string(), "train a fold first, or pass --checkpoint best|latest",
                {model_dir.string(), "", ""});
  }
  return checkpoints;
}

}  // namespace mlseg
