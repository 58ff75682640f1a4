#include "mlseg/io/dataset.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/io/pixel_io.h"
#include "mlseg/io/json_file.h"

namespace mlseg {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr int kChannelSuffixDigits = 4;  // nnU-Net's CASE_0000 naming

bool ends_with(const std::string& text, const std::string& ending) {
  return text.size() >= ending.size() && text.compare(text.size() - ending.size(), ending.size(), ending) == 0;
}

bool is_hidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

std::int64_t integer_value(const json& value, const std::string& source, const std::string& key) {
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) {
    const double number = value.get<double>();
    // Range first: converting a double beyond int64 is undefined (found by tests/fuzz/dataset_json_fuzz).
    constexpr double kInt64Limit = 9.2e18;
    if (std::abs(number) < kInt64Limit && number == std::trunc(number)) return static_cast<std::int64_t>(number);
  }
  throw Error("\"" + key + "\" must be an integer (got " + value.dump() + ")",
              "write label values as integers", {source, "", ""});
}

std::vector<std::string> parse_channel_names(const json& root, const std::string& source) {
  const char* key = root.contains("channel_names") ? "channel_names" : "modality";
  if (!root.contains(key) || !root[key].is_object() || root[key].empty()) {
    throw Error("\"channel_names\" is missing or empty",
                "add e.g. \"channel_names\": {\"0\": \"CT\"} (one entry per image file of a case)",
                {source, "", ""});
  }
  std::map<int, std::string> by_index;
  for (const auto& [index_text, name] : root[key].items()) {
    int index = -1;
    try {
      std::size_t used = 0;
      index = std::stoi(index_text, &used);
      if (used != index_text.size()) index = -1;
    } catch (...) {
    }
    if (index < 0 || index > 9999) {
      throw Error("channel_names key \"" + index_text + "\" is not a channel index 0..9999",
                  "number the image channels \"0\", \"1\", ...", {source, "", ""});
    }
    by_index[index] = name.is_string() ? name.get<std::string>() : name.dump();
  }
  std::vector<std::string> names;
  for (const auto& [index, name] : by_index) {
    if (index != static_cast<int>(names.size())) {
      throw Error("channel_names must be numbered 0, 1, 2, ... without gaps (missing " +
                      std::to_string(names.size()) + ")",
                  "renumber channel_names consecutively from 0", {source, "", ""});
    }
    names.push_back(name);
  }
  return names;
}

}  // namespace

LabelSpec parse_label_spec(const json& root, const std::string& source,
                           const std::vector<std::string>& mask_names) {
  const ErrorLocation where{source, "", ""};
  LabelSpec spec;
  if (root.contains("label_format")) {
    const auto format = root["label_format"].is_string()
                            ? parse_label_format(root["label_format"].get<std::string>())
                            : std::nullopt;
    if (!format) {
      throw Error("unknown \"label_format\" " + root["label_format"].dump(),
                  "use one of \"label_map\", \"bitmask\", \"multihot4d\", \"channel_masks\"", where);
    }
    spec.format = *format;
  }
  const bool has_labels = root.contains("labels");
  if (!has_labels && spec.format == LabelFormat::channel_masks) {
    for (const auto& name : mask_names) spec.channels.push_back({name, {}});
    spec.validate(source);
    return spec;
  }
  if (!has_labels || !root["labels"].is_object()) {
    throw Error("\"labels\" is missing or not an object",
                "add e.g. \"labels\": {\"background\": 0, \"liver\": 1}", where);
  }
  bool saw_background = false;
  for (const auto& [name, value] : root["labels"].items()) {
    if (name == "background") {
      if (!(value.is_number() && integer_value(value, source, name) == 0)) {
        throw Error("\"background\" must be 0 (nnU-Net requires it)", "set \"background\": 0", where);
      }
      saw_background = true;
      continue;
    }
    if (name == "ignore") {
      spec.ignore_value = integer_value(value, source, name);
      continue;
    }
    LabelChannel channel{name, {}};
    if (value.is_array()) {
      if (spec.format != LabelFormat::label_map) {
        throw Error("label \"" + name + "\" is a list (a region), which only label_map datasets support",
                    "give the channel's single " +
                        std::string(spec.format == LabelFormat::bitmask ? "bit value" : "index"),
                    {source, "", name});
      }
      for (const auto& element : value) channel.raw_values.push_back(integer_value(element, source, name));
      if (channel.raw_values.empty()) {
        throw Error("region \"" + name + "\" lists no labels", "list the labels the region joins", {source, "", name});
      }
    } else if (value.is_number()) {
      if (spec.format != LabelFormat::channel_masks) channel.raw_values.push_back(integer_value(value, source, name));
    } else {
      throw Error("label \"" + name + "\" must be an integer or a list of integers (got " + value.dump() + ")",
                  "fix the \"labels\" entry", {source, "", name});
    }
    spec.channels.push_back(std::move(channel));
  }
  if (!saw_background && spec.format != LabelFormat::channel_masks) {
    throw Error("\"labels\" has no \"background\": 0 entry", "add \"background\": 0 first in \"labels\"", where);
  }
  if (root.contains("regions_class_order")) {
    if (!root["regions_class_order"].is_array()) {
      throw Error("\"regions_class_order\" must be a list", "list one label per region", where);
    }
    for (const auto& value : root["regions_class_order"]) {
      spec.regions_class_order.push_back(integer_value(value, source, "regions_class_order"));
    }
  }
  spec.validate(source);
  return spec;
}

namespace {

// nnU-Net v2's layout: image files CASE_XXXX<ending> in `folder`.
std::map<std::string, std::map<int, fs::path>> list_channel_files(const fs::path& folder, const std::string& ending,
                                                                   std::vector<fs::path>& unmatched) {
  std::map<std::string, std::map<int, fs::path>> cases;
  if (!fs::is_directory(folder)) return cases;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (is_hidden(entry.path()) || !entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    const std::size_t suffix = static_cast<std::size_t>(kChannelSuffixDigits) + 1 + ending.size();
    bool matched = false;
    if (ends_with(name, ending) && name.size() > suffix && name[name.size() - suffix] == '_') {
      const std::string digits = name.substr(name.size() - suffix + 1, kChannelSuffixDigits);
      if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        cases[name.substr(0, name.size() - suffix)][std::stoi(digits)] = entry.path();
        matched = true;
      }
    }
    if (!matched) unmatched.push_back(entry.path());
  }
  return cases;
}

std::vector<std::string> sorted_mask_stems(const fs::path& folder, const std::string& ending) {
  std::vector<std::string> stems;
  if (!fs::is_directory(folder)) return stems;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (is_hidden(entry.path()) || !entry.is_regular_file() || !ends_with(name, ending)) continue;
    stems.push_back(name.substr(0, name.size() - ending.size()));
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

fs::path resolve(const Dataset& dataset, const std::string& path) {
  fs::path resolved(path);
  return resolved.is_absolute() ? resolved : dataset.root / resolved;
}

void add_problem(Dataset& dataset, LayoutProblem::Kind kind, const std::string& case_id, const fs::path& file,
                 const std::string& message, const std::string& fix) {
  dataset.layout_problems.push_back({kind, case_id, file, message, fix});
}

void list_from_folders(Dataset& dataset) {
  const int num_image_channels = static_cast<int>(dataset.image_channel_names.size());
  const bool masks = dataset.labels.format == LabelFormat::channel_masks;
  auto collect = [&](const fs::path& folder, std::vector<CaseFiles>& cases, bool with_labels) {
    std::vector<fs::path> unmatched;
    auto listed = list_channel_files(folder, dataset.file_ending, unmatched);
    for (const auto& file : unmatched) {
      add_problem(dataset, LayoutProblem::Kind::orphan_image, "", file,
                  "file does not follow the CASE_XXXX" + dataset.file_ending + " naming of image files",
                  "rename it (e.g. CASE_0000" + dataset.file_ending + ") or move it out of " +
                      folder.filename().string());
    }
    for (auto& [case_id, channel_files] : listed) {
      CaseFiles files;
      files.case_id = case_id;
      for (const auto& [channel, path] : channel_files) {
        if (channel >= num_image_channels) {
          add_problem(dataset, LayoutProblem::Kind::orphan_image, case_id, path,
                      "image channel " + std::to_string(channel) + " is not declared in channel_names (" +
                          std::to_string(num_image_channels) + " channels)",
                      "add the channel to channel_names or remove the file");
        }
      }
      for (int channel = 0; channel < num_image_channels; ++channel) {
        char suffix[16];
        std::snprintf(suffix, sizeof suffix, "_%04d", channel);
        const fs::path expected = folder / (case_id + suffix + dataset.file_ending);
        files.images.push_back(expected);
        if (!channel_files.count(channel)) {
          add_problem(dataset, LayoutProblem::Kind::missing_image, case_id, expected,
                      "image channel " + std::to_string(channel) + " (" + dataset.image_channel_names[channel] +
                          ") is missing",
                      "add the file, or remove the case's other files");
        }
      }
      if (with_labels) {
        const fs::path label = dataset.root / "labelsTr" / (case_id + (masks ? "" : dataset.label_file_ending));
        files.label = label;
        files.has_label = masks ? fs::is_directory(label) : fs::exists(label);
        if (!files.has_label) {
          add_problem(dataset, LayoutProblem::Kind::missing_label, case_id, label,
                      masks ? "the case has no mask folder in labelsTr" : "the case has no label file",
                      "add the label, or move the case's images to imagesTs if it is unlabelled");
        }
      }
      cases.push_back(std::move(files));
    }
  };
  collect(dataset.root / "imagesTr", dataset.training, true);
  collect(dataset.root / "imagesTs", dataset.test, false);

  // Labels without images.
  std::set<std::string> known;
  for (const auto& files : dataset.training) known.insert(files.case_id);
  const fs::path labels_folder = dataset.root / "labelsTr";
  if (fs::is_directory(labels_folder)) {
    for (const auto& entry : fs::directory_iterator(labels_folder)) {
      if (is_hidden(entry.path())) continue;
      const std::string name = entry.path().filename().string();
      std::string case_id;
      if (masks && entry.is_directory()) {
        case_id = name;
      } else if (!masks && entry.is_regular_file() && ends_with(name, dataset.label_file_ending)) {
        case_id = name.substr(0, name.size() - dataset.label_file_ending.size());
      } else {
        if (name == "dataset.json") continue;  // some conversions leave a copy here; harmless
        add_problem(dataset, LayoutProblem::Kind::orphan_label, "", entry.path(),
                    masks ? "not a per-case mask folder" : "not a label file (expected ending " + dataset.label_file_ending + ")",
                    "remove it from labelsTr");
        continue;
      }
      if (!known.count(case_id)) {
        add_problem(dataset, LayoutProblem::Kind::orphan_label, case_id, entry.path(),
                    "label without images in imagesTr",
                    "add the case's images, or remove the label");
      }
    }
  }
}

void list_from_explicit_entries(Dataset& dataset) {
  const json& entries = dataset.json["dataset"];
  const std::string source = (dataset.root / "dataset.json").string();
  if (!entries.is_object()) {
    throw Error("\"dataset\" must map case ids to {\"images\": [...], \"label\": ...}",
                "fix the \"dataset\" entry (see nnU-Net's dataset_format.md)", {source, "", ""});
  }
  const bool masks = dataset.labels.format == LabelFormat::channel_masks;
  for (const auto& [case_id, entry] : entries.items()) {
    CaseFiles files;
    files.case_id = case_id;
    if (!entry.is_object() || !entry.contains("images") || !entry["images"].is_array()) {
      throw Error("entry needs \"images\": a list of image files, one per channel",
                  "fix the case's entry under \"dataset\"", {source, case_id, ""});
    }
    for (const auto& image : entry["images"]) files.images.push_back(resolve(dataset, image.get<std::string>()));
    if (files.images.size() != dataset.image_channel_names.size()) {
      add_problem(dataset, LayoutProblem::Kind::missing_image, case_id, "",
                  "lists " + std::to_string(files.images.size()) + " image files but channel_names declares " +
                      std::to_string(dataset.image_channel_names.size()),
                  "list one image file per channel, in channel order");
    }
    for (const auto& image : files.images) {
      if (!fs::exists(image)) {
        add_problem(dataset, LayoutProblem::Kind::missing_image, case_id, image, "listed image file does not exist",
                    "fix the path in dataset.json (paths are relative to the dataset folder)");
      }
    }
    if (!entry.contains("label")) {
      add_problem(dataset, LayoutProblem::Kind::missing_label, case_id, "", "entry has no \"label\"",
                  "add the case's label");
    } else if (masks && entry["label"].is_object()) {
      // {"channel name": "path", ...}: one explicit file per channel.
      files.channel_mask_files.assign(dataset.labels.channels.size(), fs::path());
      for (const auto& [channel_name, path] : entry["label"].items()) {
        const int channel = dataset.labels.find_channel(channel_name);
        if (channel < 0) {
          add_problem(dataset, LayoutProblem::Kind::unexpected_mask_file, case_id, resolve(dataset, path.get<std::string>()),
                      "mask for \"" + channel_name + "\", which is not a declared channel",
                      "add the channel to \"labels\" or drop the entry");
          continue;
        }
        files.channel_mask_files[channel] = resolve(dataset, path.get<std::string>());
      }
      files.has_label = true;
    } else {
      files.label = resolve(dataset, entry["label"].get<std::string>());
      files.has_label = masks ? fs::is_directory(files.label) : fs::exists(files.label);
      if (!files.has_label) {
        add_problem(dataset, LayoutProblem::Kind::missing_label, case_id, files.label,
                    masks ? "listed mask folder does not exist" : "listed label file does not exist",
                    "fix the path in dataset.json (paths are relative to the dataset folder)");
      }
    }
    dataset.training.push_back(std::move(files));
  }
}

}  // namespace

namespace {
Dataset load_dataset_checked(const fs::path& root_argument);
}  // namespace

Dataset load_dataset(const fs::path& root_argument) {
  // A field of the wrong JSON type anywhere (e.g. "label_format": {...}) is the user's error
  // to fix, never an escaping nlohmann::type_error (found by tests/fuzz/dataset_json_fuzz).
  try {
    return load_dataset_checked(root_argument);
  } catch (const nlohmann::json::exception& error) {
    throw Error(std::string("dataset.json has a field of the wrong type (") + error.what() + ")",
                "compare it with the dataset.json format in the README (strings, numbers, objects where they belong)",
                {(root_argument / "dataset.json").string(), "", ""});
  }
}

namespace {
Dataset load_dataset_checked(const fs::path& root_argument) {
  Dataset dataset;
  dataset.root = root_argument;
  std::error_code ignored;
  if (!fs::is_directory(dataset.root)) {
    throw Error("not a dataset folder (does not exist or is not a folder)",
                "pass the folder that holds dataset.json, imagesTr/ and labelsTr/", {dataset.root.string(), "", ""});
  }
  dataset.name = fs::weakly_canonical(dataset.root, ignored).filename().string();
  if (dataset.name.empty()) dataset.name = dataset.root.filename().string();
  const fs::path json_path = dataset.root / "dataset.json";
  const std::string source = json_path.string();
  if (!fs::exists(json_path)) {
    throw Error("dataset.json is missing",
                "create it (channel_names, labels, numTraining, file_ending; see README)", {source, "", ""});
  }
  dataset.json = read_json_file(json_path);
  if (!dataset.json.is_object()) throw Error("dataset.json must be a JSON object", "fix the file", {source, "", ""});
  dataset.image_channel_names = parse_channel_names(dataset.json, source);
  if (!dataset.json.contains("file_ending") || !dataset.json["file_ending"].is_string()) {
    throw Error("\"file_ending\" is missing", "add e.g. \"file_ending\": \".nii.gz\"", {source, "", ""});
  }
  dataset.file_ending = dataset.json["file_ending"].get<std::string>();
  if (!is_supported_image_file("x" + dataset.file_ending)) {
    throw Error("unsupported file_ending \"" + dataset.file_ending + "\"",
                "use .nii.gz, .nii, .nrrd, .mha, .png, .tif, .jpg or .bmp", {source, "", ""});
  }
  dataset.label_file_ending = dataset.json.value("label_file_ending", dataset.file_ending);
  if (dataset.json.contains("numTraining")) {
    if (!dataset.json["numTraining"].is_number_integer()) {
      throw Error("\"numTraining\" must be an integer", "set it to the number of training cases", {source, "", ""});
    }
    dataset.num_training = dataset.json["numTraining"].get<std::int64_t>();
  }
  dataset.explicit_file_list = dataset.json.contains("dataset");

  // channel_masks without "labels": channels are the sorted union of mask file names.
  const bool masks = dataset.json.value("label_format", std::string()) == "channel_masks";
  std::vector<std::string> mask_names;
  if (masks && !dataset.json.contains("labels")) {
    std::set<std::string> union_of_names;
    auto add_folder = [&](const fs::path& folder) {
      for (const auto& stem : sorted_mask_stems(folder, dataset.label_file_ending)) union_of_names.insert(stem);
    };
    if (dataset.explicit_file_list && dataset.json["dataset"].is_object()) {
      for (const auto& [case_id, entry] : dataset.json["dataset"].items()) {
        if (entry.contains("label") && entry["label"].is_string()) add_folder(resolve(dataset, entry["label"].get<std::string>()));
        if (entry.contains("label") && entry["label"].is_object()) {
          for (const auto& [name, path] : entry["label"].items()) union_of_names.insert(name);
        }
      }
    } else if (fs::is_directory(dataset.root / "labelsTr")) {
      for (const auto& entry : fs::directory_iterator(dataset.root / "labelsTr")) {
        if (entry.is_directory() && !is_hidden(entry.path())) add_folder(entry.path());
      }
    }
    mask_names.assign(union_of_names.begin(), union_of_names.end());
    if (mask_names.empty()) {
      throw Error("\"labels\" is absent and no mask files ending in " + dataset.label_file_ending + " were found",
                  "list the channels under \"labels\" or put one mask file per channel in labelsTr/CASE/",
                  {source, "", ""});
    }
  }
  dataset.labels = parse_label_spec(dataset.json, source, mask_names);

  if (dataset.explicit_file_list) {
    list_from_explicit_entries(dataset);
  } else {
    if (!fs::is_directory(dataset.root / "imagesTr")) {
      throw Error("imagesTr/ is missing", "put the training images in DATASET/imagesTr/ (CASE_0000" +
                                              dataset.file_ending + ")", {dataset.root.string(), "", ""});
    }
    list_from_folders(dataset);
  }
  auto by_id = [](const CaseFiles& a, const CaseFiles& b) { return a.case_id < b.case_id; };
  std::sort(dataset.training.begin(), dataset.training.end(), by_id);
  std::sort(dataset.test.begin(), dataset.test.end(), by_id);

  // channel_masks from folders: each case's file per channel.
  if (dataset.labels.format == LabelFormat::channel_masks) {
    for (auto& files : dataset.training) {
      if (!files.channel_mask_files.empty() || files.label.empty()) continue;
      std::set<std::string> expected;
      for (const auto& channel : dataset.labels.channels) {
        files.channel_mask_files.push_back(files.label / (channel.name + dataset.label_file_ending));
        expected.insert(channel.name);
      }
      if (!files.has_label) continue;
      for (const auto& stem : sorted_mask_stems(files.label, dataset.label_file_ending)) {
        if (!expected.count(stem)) {
          add_problem(dataset, LayoutProblem::Kind::unexpected_mask_file, files.case_id,
                      files.label / (stem + dataset.label_file_ending),
                      "mask file for \"" + stem + "\", which is not a declared channel",
                      "add \"" + stem + "\" to \"labels\", or remove the file");
        }
      }
    }
  }
  return dataset;
}
}  // namespace

}  // namespace mlseg
