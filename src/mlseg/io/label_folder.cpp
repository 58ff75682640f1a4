#include "mlseg/io/label_folder.h"

#include <algorithm>

#include "mlseg/core/error.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

bool ends_with_text(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<LabelFolderCase> list_label_folder_cases(const fs::path& folder, const std::string& ending, bool masks, const char* role) {
  if (!fs::is_directory(folder)) {
    throw Error(std::string(role) + " folder " + folder.string() + " does not exist",
                "pass the folder that holds the " + std::string(role) + " label files", {folder.string(), "", ""});
  }
  std::vector<LabelFolderCase> cases;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (masks) {
      if (entry.is_directory()) cases.push_back({name, entry.path()});
    } else if (entry.is_regular_file() && ends_with_text(name, ending) && name.size() > ending.size()) {
      cases.push_back({name.substr(0, name.size() - ending.size()), entry.path()});
    }
  }
  std::sort(cases.begin(), cases.end(), [](const LabelFolderCase& a, const LabelFolderCase& b) { return a.case_id < b.case_id; });
  return cases;
}

CaseFiles label_case_files(const LabelFolderCase& folder_case, const Dataset& dataset) {
  CaseFiles files;
  files.case_id = folder_case.case_id;
  files.label = folder_case.path;
  files.has_label = true;
  if (dataset.labels.format == LabelFormat::channel_masks) {
    for (const auto& channel : dataset.labels.channels) {
      files.channel_mask_files.push_back(folder_case.path / (channel.name + dataset.label_file_ending));
    }
  }
  return files;
}

Dataset label_folder_dataset(const fs::path& folder, const nlohmann::ordered_json& json, const std::string& source,
                             const std::vector<std::string>& mask_names) {
  Dataset dataset;
  dataset.root = folder;
  dataset.json = json;
  dataset.label_file_ending = json.value("label_file_ending", json.value("file_ending", std::string()));
  if (dataset.label_file_ending.empty()) {
    throw Error("dataset.json has neither \"label_file_ending\" nor \"file_ending\"", "add e.g. \"file_ending\": \".nii.gz\"",
                {source, "", ""});
  }
  dataset.labels = parse_label_spec(json, source, mask_names);
  return dataset;
}

}  // namespace mlseg
