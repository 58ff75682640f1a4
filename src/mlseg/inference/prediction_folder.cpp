#include "mlseg/inference/prediction_folder.h"

#include "mlseg/core/error.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/label_folder.h"
#include "mlseg/io/npy.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr const char* kInfoFormat = "mlseg prediction folder 1";
constexpr const char* kPredictAgain = "predict the cases again with this version of mlseg (it writes prediction.json)";

}  // namespace

Json prediction_info_json(const ModelDescription& model, const ExportOptions& options) {
  Json json;
  json["format"] = kInfoFormat;
  json["configuration"] = model.configuration;
  json["channel_names"] = model.channel_names;
  model.encoding.write_json(json, model.channel_names);
  json["export_format"] = to_string(options.format);
  json["file_ending"] = prediction_file_ending(model, options);
  json["probabilities"] =
      options.save_probabilities ? (options.probabilities_format == ProbabilitiesFormat::npy ? "npy" : "nifti") : "none";
  json["dataset_json"] = model.dataset_json;
  return json;
}

PredictionFolderInfo read_prediction_folder(const fs::path& folder) {
  const fs::path info_file = folder / kPredictionInfoFileName, dataset_file = folder / "dataset.json";
  if (!fs::is_directory(folder)) {
    throw Error("prediction folder " + folder.string() + " does not exist", "pass a folder `mlseg predict` wrote",
                {folder.string(), "", ""});
  }
  if (!fs::is_regular_file(info_file))
    throw Error("no " + std::string(kPredictionInfoFileName) + " in the prediction folder", kPredictAgain, {info_file.string(), "", ""});
  if (!fs::is_regular_file(dataset_file))
    throw Error("no dataset.json in the prediction folder", kPredictAgain, {dataset_file.string(), "", ""});
  const Json json = read_json_file(info_file);
  const std::string source = info_file.string();
  if (json.value("format", std::string()) != kInfoFormat) {
    throw Error("not an mlseg prediction.json (format '" + json.value("format", std::string()) + "')", kPredictAgain, {source, "", ""});
  }
  PredictionFolderInfo info;
  info.folder = folder;
  try {
    info.model.configuration = json.value("configuration", std::string());
    info.model.channel_names = json.at("channel_names").get<std::vector<std::string>>();
    info.model.encoding = LabelEncoding::from_json(json, info.model.channel_names, source);
    info.model.num_outputs = info.model.encoding.num_outputs();
    info.model.dataset_json = json.at("dataset_json");
    const auto format = parse_prediction_format(json.at("export_format").get<std::string>());
    if (!format) throw Error("unknown export_format " + json.at("export_format").dump(), kPredictAgain, {source, "", ""});
    info.export_options.format = *format;
    info.export_options.file_ending = json.at("file_ending").get<std::string>();
    const std::string probabilities = json.value("probabilities", std::string("none"));
    info.export_options.save_probabilities = probabilities != "none";
    info.export_options.probabilities_format = probabilities == "nifti" ? ProbabilitiesFormat::nifti : ProbabilitiesFormat::npy;
  } catch (const Json::exception& e) {
    throw Error(std::string("broken prediction.json: ") + e.what(), kPredictAgain, {source, "", ""});
  }
  info.labels = label_folder_dataset(folder, read_json_file(dataset_file), dataset_file.string(), info.model.channel_names);
  return info;
}

std::vector<PredictionFolderCase> list_prediction_cases(const PredictionFolderInfo& info) {
  const bool masks = info.export_options.format == PredictionFormat::per_channel;
  std::vector<PredictionFolderCase> cases;
  for (const LabelFolderCase& found : list_label_folder_cases(info.folder, info.labels.label_file_ending, masks, "prediction")) {
    PredictionFolderCase c{found.case_id, found.path, {}};
    if (masks && found.path.filename().string().find('.') != std::string::npos) continue;  // a .partial folder
    for (const std::string& ending : {std::string(".npy"), std::string(".nii.gz"), std::string(".nii")}) {
      const fs::path candidate = info.folder / (found.case_id + "_probabilities" + ending);
      if (fs::is_regular_file(candidate)) {
        c.probabilities = candidate;
        break;
      }
    }
    // CASE_probabilities.nii.gz itself ends like a label file: not a case.
    if (found.case_id.size() > 14 && found.case_id.compare(found.case_id.size() - 14, 14, "_probabilities") == 0) continue;
    cases.push_back(std::move(c));
  }
  return cases;
}

CaseLabels read_prediction_case(const PredictionFolderInfo& info, const PredictionFolderCase& prediction_case) {
  return read_case_labels(info.labels, label_case_files({prediction_case.case_id, prediction_case.path}, info.labels));
}

torch::Tensor read_prediction_probabilities(const PredictionFolderInfo& info, const PredictionFolderCase& prediction_case) {
  if (prediction_case.probabilities.empty()) {
    throw Error("no saved probabilities for this case in " + info.folder.string(),
                "predict with --save-probabilities (final validation: mlseg train --save-probabilities)",
                {info.folder.string(), prediction_case.case_id, ""});
  }
  if (prediction_case.probabilities.extension() == ".npy") return read_npy(prediction_case.probabilities).to(torch::kFloat);
  return read_image(prediction_case.probabilities).data.to(torch::kFloat);
}

}  // namespace mlseg
