#pragma once
// A folder of label files read through a dataset.json that describes them (a reference folder
// such as labelsTr, or a prediction folder `mlseg predict` wrote): its cases, one label file per
// case or, for channel_masks, one sub-folder of per-channel mask files per case.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlseg/io/dataset.h"

namespace mlseg {

struct LabelFolderCase {
  std::string case_id;
  std::filesystem::path path;  ///< label file or per-case mask folder
};

/// The cases of `folder`, sorted by id: files ending in `ending`, or (`masks`) sub-folders.
/// Throws mlseg::Error naming `role` ("reference", "prediction") when the folder does not exist.
std::vector<LabelFolderCase> list_label_folder_cases(const std::filesystem::path& folder, const std::string& ending, bool masks,
                                                     const char* role);

/// The CaseFiles that read_case_codes / read_case_labels read for `folder_case` of `dataset`.
CaseFiles label_case_files(const LabelFolderCase& folder_case, const Dataset& dataset);

/// A Dataset that reads the label files of `folder` as `json` (a dataset.json: labels,
/// label_format, file_ending) describes them; `source` names the json in errors; `mask_names`
/// as parse_label_spec. Throws mlseg::Error when the json has no file ending.
Dataset label_folder_dataset(const std::filesystem::path& folder, const nlohmann::ordered_json& json, const std::string& source,
                             const std::vector<std::string>& mask_names = {});

}  // namespace mlseg
