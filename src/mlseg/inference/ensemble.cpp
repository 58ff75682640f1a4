#include "mlseg/inference/ensemble.h"

#include <torch/torch.h>

#include <map>
#include <mutex>
#include <sstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/case_loop.h"
#include "mlseg/core/error.h"
#include "mlseg/inference/prediction_folder.h"
#include "mlseg/labels/label_code.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

// Softmax folders hold class probabilities (background first); the others per-channel ones.
bool holds_classes(const PredictionFolderInfo& info) { return info.model.encoding.kind() == EncodingKind::softmax; }

// The folders' prediction.json, checked: two or more, each with probabilities, the same
// channels and the same kind of probabilities, none of them the output.
std::vector<PredictionFolderInfo> read_ensemble_inputs(const std::vector<fs::path>& inputs, const fs::path& output) {
  if (inputs.size() < 2) throw Error("an ensemble needs two or more prediction folders", "pass several -i folders");
  std::vector<PredictionFolderInfo> infos;
  for (const auto& input : inputs) {
    infos.push_back(read_prediction_folder(input));
    const PredictionFolderInfo& info = infos.back();
    if (!info.export_options.save_probabilities) {
      throw Error("the folder has no saved probabilities",
                  "predict it with --save-probabilities (final validation: mlseg train --save-probabilities)", {input.string(), "", ""});
    }
    if (info.model.channel_names != infos.front().model.channel_names) {
      throw Error("the folder's channels differ from " + inputs.front().string() + "'s", "ensemble predictions of the same dataset",
                  {input.string(), "", ""});
    }
    if (holds_classes(info) != holds_classes(infos.front())) {
      throw Error(
          "softmax class probabilities cannot be averaged with per-channel (sigmoid / powerset) ones (" + inputs.front().string() + ")",
          "ensemble folders of models with the same kind of output", {input.string(), "", ""});
    }
    if (fs::exists(output) && fs::equivalent(input, output)) {
      throw Error("the output folder is one of the inputs", "write the ensemble to another folder (-o)", {output.string(), "", ""});
    }
  }
  return infos;
}

// Each folder's cases by id; every folder must hold every case.
std::vector<std::map<std::string, PredictionFolderCase>> cases_in_every_folder(const std::vector<fs::path>& inputs,
                                                                               const std::vector<PredictionFolderInfo>& infos) {
  std::vector<std::map<std::string, PredictionFolderCase>> cases_of(infos.size());
  for (std::size_t f = 0; f < infos.size(); ++f) {
    for (auto& c : list_prediction_cases(infos[f])) cases_of[f][c.case_id] = c;
  }
  for (std::size_t f = 0; f < infos.size(); ++f) {
    for (const auto& [id, c] : cases_of[f]) {
      for (std::size_t g = 0; g < infos.size(); ++g) {
        if (!cases_of[g].count(id)) {
          throw Error("case is in " + inputs[f].string() + " but not in " + inputs[g].string(), "predict the same cases into every folder",
                      {inputs[g].string(), id, ""});
        }
      }
    }
  }
  return cases_of;
}

}  // namespace

EnsembleResult ensemble_folders(const std::vector<fs::path>& inputs, const fs::path& output, const EnsembleOptions& options) {
  const std::vector<PredictionFolderInfo> infos = read_ensemble_inputs(inputs, output);
  const std::vector<std::map<std::string, PredictionFolderCase>> cases_of = cases_in_every_folder(inputs, infos);
  std::vector<std::string> case_ids;
  for (const auto& [id, c] : cases_of.front()) case_ids.push_back(id);
  const PredictionFolderInfo& first = infos.front();
  ModelDescription model = first.model;
  ExportOptions export_options = first.export_options;
  if (options.format) export_options.format = *options.format;
  export_options.save_probabilities = options.save_probabilities;
  export_options.probabilities_format = ProbabilitiesFormat::npy;
  fs::create_directories(output);
  write_text_file_atomically(output / "dataset.json", prediction_dataset_json(model, export_options).dump(2) + "\n");
  nlohmann::ordered_json info_json = prediction_info_json(model, export_options);
  info_json["ensemble_of"] = nlohmann::ordered_json::array();
  for (const auto& input : inputs) info_json["ensemble_of"].push_back(input.string());
  write_text_file_atomically(output / kPredictionInfoFileName, info_json.dump(2) + "\n");

  EnsembleResult result;
  result.cases = static_cast<std::int64_t>(case_ids.size());
  std::mutex mutex;
  const CaseLoopOptions loop{"ensemble", "cases", options.threads, options.show_progress};
  for_each_case(
      case_ids.size(), loop,
      [&](std::size_t i) {
        const std::string& id = case_ids[i];
        torch::Tensor sum;
        Geometry geometry;
        for (std::size_t f = 0; f < infos.size(); ++f) {
          const PredictionFolderCase& c = cases_of[f].at(id);
          torch::Tensor probabilities = read_prediction_probabilities(infos[f], c);
          if (f == 0) {
            geometry = read_prediction_case(infos[f], c).geometry;
            sum = probabilities.to(torch::kDouble);
          } else if (probabilities.sizes() != sum.sizes()) {
            std::ostringstream shapes;
            shapes << "probabilities of shape " << probabilities.sizes() << " differ from " << inputs.front().string() << "'s "
                   << sum.sizes();
            throw Error(shapes.str(), "ensemble predictions of the same cases on the same grid", {c.probabilities.string(), id, ""});
          } else {
            sum.add_(probabilities.to(torch::kDouble));
          }
        }
        const torch::Tensor mean = (sum / static_cast<double>(infos.size())).to(torch::kFloat);
        PredictedCase prediction;
        prediction.case_id = id;
        prediction.geometry = geometry;
        prediction.encoding = model.encoding;
        prediction.channel_names = model.channel_names;
        prediction.probabilities = mean;
        if (holds_classes(first)) {
          prediction.code = model.encoding.code_from_outputs(mean, /*are_logits=*/false);
        } else {
          prediction.code = code_from_masks(mean.gt(0.5));
        }
        const ExportResult written = export_prediction(prediction, output, model, export_options);
        std::lock_guard<std::mutex> lock(mutex);
        result.files.insert(result.files.end(), written.files.begin(), written.files.end());
      },
      [&](std::size_t i) {
        return ErrorLocation{output.string(), case_ids[i], ""};
      });
  return result;
}

}  // namespace mlseg
