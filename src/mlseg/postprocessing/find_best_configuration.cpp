#include "mlseg/postprocessing/find_best_configuration.h"

#include <algorithm>
#include <iomanip>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>

#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/inference/ensemble.h"
#include "mlseg/inference/prediction_folder.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr const char* kFoldPrefix = "fold_";

// The folder final validation scored: validation/per_channel_codes when the dataset's label map
// could not hold the model's channels, else validation/ itself.
fs::path scored_validation_folder(const fs::path& fold_dir) {
  const fs::path lossless = fold_dir / "validation" / "per_channel_codes";
  if (fs::is_regular_file(lossless / kPredictionInfoFileName)) return lossless;
  return fold_dir / "validation";
}

// Folds of `config_dir` with a final validation that wrote prediction.json ("0", "1", ...).
std::vector<std::string> validated_folds(const fs::path& config_dir) {
  std::vector<std::string> folds;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(config_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind(kFoldPrefix, 0) != 0 || name == "fold_all") continue;
    if (fs::is_regular_file(scored_validation_folder(entry.path()) / kPredictionInfoFileName)) folds.push_back(name.substr(5));
  }
  std::sort(folds.begin(), folds.end());
  return folds;
}

void link_or_copy(const fs::path& from, const fs::path& to) {
  if (fs::is_directory(from)) {
    fs::create_directories(to);
    for (const auto& entry : fs::directory_iterator(from)) link_or_copy(entry.path(), to / entry.path().filename());
    return;
  }
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

// One folder of every fold's validation predictions of a configuration (hard links), with the
// probabilities when every case has them.
ModelCandidate merge_cross_validation(const fs::path& config_dir, const std::string& configuration, const std::vector<std::string>& folds,
                                      const fs::path& output) {
  fs::remove_all(output);
  fs::create_directories(output);
  ModelCandidate candidate;
  candidate.name = configuration;
  candidate.members = {configuration};
  candidate.predictions = output;
  candidate.has_probabilities = true;
  std::optional<PredictionFolderInfo> first;
  std::set<std::string> seen;
  for (const std::string& fold : folds) {
    const fs::path fold_dir = config_dir / (kFoldPrefix + fold);
    const PredictionFolderInfo info = read_prediction_folder(scored_validation_folder(fold_dir));
    if (first && info.model.channel_names != first->model.channel_names) {
      throw Error("fold " + fold + "'s validation predictions have other channels than fold " + folds.front() + "'s",
                  "train every fold of a configuration on the same dataset", {info.folder.string(), "", ""});
    }
    if (!first) first = info;
    for (const PredictionFolderCase& c : list_prediction_cases(info)) {
      if (!seen.insert(c.case_id).second) {
        throw Error("case validated by two folds", "use one splits_final.json for every fold", {info.folder.string(), c.case_id, ""});
      }
      link_or_copy(c.path, output / c.path.filename());
      const fs::path probabilities = fold_dir / "validation" / (c.case_id + "_probabilities.npy");
      if (fs::is_regular_file(probabilities)) {
        link_or_copy(probabilities, output / probabilities.filename());
      } else {
        candidate.has_probabilities = false;
      }
    }
  }
  ExportOptions options = first->export_options;
  options.save_probabilities = candidate.has_probabilities;
  options.probabilities_format = ProbabilitiesFormat::npy;
  link_or_copy(first->folder / "dataset.json", output / "dataset.json");
  write_text_file_atomically(output / kPredictionInfoFileName, prediction_info_json(first->model, options).dump(2) + "\n");
  return candidate;
}

Json score_json(const ModelCandidate& candidate, const std::vector<std::string>& channels) {
  auto value = [](const MetricValue& v) { return v.defined() ? Json(v.value()) : Json(nullptr); };
  Json json;
  json["members"] = candidate.members;
  json["cross_validation_predictions"] = candidate.predictions.string();
  json["has_probabilities"] = candidate.has_probabilities;
  json["cases"] = candidate.score.cases;
  json["foreground_dice"] = value(candidate.score.foreground);
  if (!candidate.score.foreground.defined()) json["foreground_dice_reason"] = "no channel has a defined Dice";
  Json per_channel = Json::object();
  for (std::size_t c = 0; c < channels.size(); ++c) per_channel[channels[c]] = value(candidate.score.dice[c]);
  json["dice"] = per_channel;
  return json;
}

std::string instructions_text(const ModelSelection& selection, const fs::path& postprocessing_file) {
  const ModelCandidate& best = selection.candidates[selection.best];
  const std::string folds = join(selection.folds, " ");
  std::ostringstream out;
  out << "# mlseg find-best-config " << selection.dataset_dir.string() << "\n"
      << "# best: " << best.name << " (cross-validation foreground Dice " << best.score.foreground.format(4) << ", folds " << folds << ")\n"
      << "# Replace INPUT_FOLDER (images named CASE_0000<ending>, ...) and OUTPUT_FOLDER.\n";
  const bool postprocess = !selection.postprocessing.plan.steps.empty();
  const std::string predicted = postprocess ? "OUTPUT_FOLDER_RAW" : "OUTPUT_FOLDER";
  if (best.members.size() == 1) {
    out << "mlseg predict -i INPUT_FOLDER -o " << predicted << " -m " << (selection.results_dir / best.members[0]).string() << " -f "
        << folds << "\n";
  } else {
    std::vector<std::string> outputs;
    for (const auto& member : best.members) {
      outputs.push_back("OUTPUT_FOLDER_" + member);
      out << "mlseg predict -i INPUT_FOLDER -o " << outputs.back() << " -m " << (selection.results_dir / member).string() << " -f " << folds
          << " --save-probabilities\n";
    }
    out << "mlseg ensemble -i " << join(outputs, " ") << " -o " << predicted << "\n";
  }
  if (postprocess) {
    out << "mlseg postprocess -i " << predicted << " -o OUTPUT_FOLDER --plan " << postprocessing_file.string() << "\n";
  } else {
    out << "# no postprocessing: no step raised the cross-validation Dice\n";
  }
  return out.str();
}

using ConfigurationFolds = std::vector<std::pair<std::string, std::vector<std::string>>>;

// The configurations asked for (all under results/ when none) with their validated folds; a
// configuration asked for by name must have one.
ConfigurationFolds trained_configurations(const fs::path& results_dir, const std::vector<std::string>& requested,
                                          const std::string& train_fix) {
  ConfigurationFolds configurations;
  std::vector<std::string> names = requested;
  if (names.empty()) {
    for (const auto& entry : fs::directory_iterator(results_dir)) {
      if (entry.is_directory()) names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
  }
  for (const std::string& name : names) {
    const std::vector<std::string> folds = validated_folds(results_dir / name);
    if (folds.empty()) {
      if (!requested.empty()) {
        throw Error("configuration " + name + " has no fold with a final validation", train_fix, {(results_dir / name).string(), "", ""});
      }
      continue;
    }
    configurations.emplace_back(name, folds);
  }
  if (configurations.empty()) throw Error("no configuration has a fold with a final validation", train_fix, {results_dir.string(), "", ""});
  return configurations;
}

// The folds every configuration has validated.
std::vector<std::string> shared_folds(const ConfigurationFolds& configurations) {
  std::vector<std::string> shared = configurations.front().second;
  for (const auto& [name, folds] : configurations) {
    std::vector<std::string> common;
    std::set_intersection(shared.begin(), shared.end(), folds.begin(), folds.end(), std::back_inserter(common));
    shared = common;
  }
  if (shared.empty()) {
    std::string listed;
    for (const auto& [name, folds] : configurations) listed += (listed.empty() ? "" : "; ") + name + ": " + join(folds, " ");
    throw Error("the configurations share no validated fold (" + listed + ")", "train the same folds of each, or choose with -c / -f");
  }
  return shared;
}

// Every pair of the selection's single configurations, ensembled and scored on the same cases.
void add_pair_ensembles(ModelSelection& selection, const Dataset& dataset, const FindBestConfigOptions& options) {
  const std::size_t singles = selection.candidates.size();
  for (std::size_t a = 0; a < singles; ++a) {
    for (std::size_t b = a + 1; b < singles; ++b) {
      const ModelCandidate first = selection.candidates[a], second = selection.candidates[b];
      const std::string name = "ensemble " + first.name + " + " + second.name;
      if (!first.has_probabilities || !second.has_probabilities) {
        selection.notes.push_back(name + ": not scored, " + (first.has_probabilities ? second.name : first.name) +
                                  " saved no probabilities (train it with --save-probabilities)");
        continue;
      }
      ModelCandidate ensemble;
      ensemble.name = name;
      ensemble.members = {first.name, second.name};
      ensemble.predictions = selection.output_dir / ("ensemble_" + first.name + "__" + second.name) / "crossval";
      EnsembleOptions ensemble_options;
      ensemble_options.threads = options.threads;
      ensemble_options.show_progress = options.show_progress;
      try {
        fs::remove_all(ensemble.predictions);
        ensemble_folders({first.predictions, second.predictions}, ensemble.predictions, ensemble_options);
      } catch (const Error& error) {
        selection.notes.push_back(name + ": not scored, " + error.problem());
        continue;
      }
      ensemble.score =
          score_cross_validation(read_prediction_folder(ensemble.predictions), dataset, options.threads, options.show_progress);
      selection.candidates.push_back(std::move(ensemble));
    }
  }
}

// postprocessing.json, inference_instructions.txt and inference_information.json.
void write_selection_files(ModelSelection& selection, const Dataset& dataset) {
  const fs::path postprocessing_file = fs::absolute(selection.output_dir / kPostprocessingFileName);
  write_text_file_atomically(postprocessing_file, postprocessing_decision_json(selection.postprocessing).dump(2) + "\n");
  selection.instructions = instructions_text(selection, postprocessing_file);
  write_text_file_atomically(selection.output_dir / kInferenceInstructionsFile, selection.instructions);
  Json info;
  info["dataset"] = dataset.name;
  info["folds"] = selection.folds;
  info["dice_rule"] = kPostprocessingDiceRule;
  info["selected_by"] = "mean foreground Dice over the cross-validation cases";
  Json candidates = Json::object();
  for (const auto& candidate : selection.candidates)
    candidates[candidate.name] = score_json(candidate, selection.postprocessing.plan.channel_names);
  info["candidates"] = candidates;
  info["best"] = {{"name", selection.candidates[selection.best].name}, {"members", selection.candidates[selection.best].members}};
  info["postprocessing"] = postprocessing_decision_json(selection.postprocessing);
  info["postprocessing_file"] = postprocessing_file.string();
  info["notes"] = selection.notes;
  info["instructions"] = selection.instructions;
  write_text_file_atomically(selection.output_dir / kInferenceInformationFile, info.dump(2) + "\n");
}

}  // namespace

ModelSelection find_best_configuration(const fs::path& dataset_dir, const FindBestConfigOptions& options) {
  const Dataset dataset = load_dataset(dataset_dir);
  ModelSelection selection;
  selection.dataset_dir = dataset_dir;
  const fs::path dataset_work = dataset_work_dir(resolve_work_dir(options.work_dir), dataset.name);
  selection.results_dir = fs::absolute(dataset_work / "results");
  selection.output_dir = dataset_work / kModelSelectionFolder;
  const std::string train_fix = "train the configurations first (mlseg train DATASET -c CONFIG -f FOLD, which runs the final validation)";
  if (!fs::is_directory(selection.results_dir))
    throw Error("no results folder: nothing is trained", train_fix, {selection.results_dir.string(), "", ""});

  const ConfigurationFolds configurations = trained_configurations(selection.results_dir, options.configurations, train_fix);
  selection.folds = options.folds.empty() ? shared_folds(configurations) : options.folds;
  fs::create_directories(selection.output_dir);
  for (const auto& [name, folds] : configurations) {
    std::vector<std::string> missing;
    for (const auto& fold : selection.folds) {
      if (std::find(folds.begin(), folds.end(), fold) == folds.end()) missing.push_back(fold);
    }
    if (!missing.empty()) {
      selection.notes.push_back(name + ": left out, no final validation of fold " + join(missing, ", "));
      continue;
    }
    ModelCandidate candidate =
        merge_cross_validation(selection.results_dir / name, name, selection.folds, selection.output_dir / name / "crossval");
    candidate.score =
        score_cross_validation(read_prediction_folder(candidate.predictions), dataset, options.threads, options.show_progress);
    selection.candidates.push_back(std::move(candidate));
  }
  if (selection.candidates.empty()) {
    throw Error("no configuration has final validations of folds " + join(selection.folds, ", "), train_fix,
                {selection.results_dir.string(), "", ""});
  }
  if (options.ensembles) add_pair_ensembles(selection, dataset, options);
  // The best by foreground Dice (the first of equals: single configurations before ensembles).
  for (std::size_t i = 0; i < selection.candidates.size(); ++i) {
    const MetricValue& value = selection.candidates[i].score.foreground;
    const MetricValue& best = selection.candidates[selection.best].score.foreground;
    if (value.defined() && (!best.defined() || value.value() > best.value())) selection.best = i;
  }
  DeterminePostprocessingOptions postprocessing;
  postprocessing.allow_remove_small = !options.nnunet_defaults;
  postprocessing.threads = options.threads;
  postprocessing.show_progress = options.show_progress;
  selection.postprocessing =
      determine_postprocessing(read_prediction_folder(selection.candidates[selection.best].predictions), dataset, postprocessing);

  write_selection_files(selection, dataset);
  return selection;
}

std::string format_model_selection(const ModelSelection& selection) {
  std::ostringstream out;
  std::vector<std::string> channels = selection.postprocessing.plan.channel_names;
  out << "model selection on folds " << join(selection.folds, " ") << " (" << selection.candidates.front().score.cases
      << " cross-validation cases; " << kPostprocessingDiceRule << "):\n";
  std::size_t width = 10;
  for (const auto& candidate : selection.candidates) width = std::max(width, candidate.name.size() + 2);
  out << "  " << std::left << std::setw(static_cast<int>(width)) << "candidate" << std::setw(12) << "foreground";
  for (const auto& channel : channels) out << std::setw(static_cast<int>(std::max<std::size_t>(channel.size() + 2, 10))) << channel;
  out << "\n";
  for (std::size_t i = 0; i < selection.candidates.size(); ++i) {
    const auto& candidate = selection.candidates[i];
    out << (i == selection.best ? "* " : "  ") << std::setw(static_cast<int>(width)) << candidate.name << std::setw(12)
        << candidate.score.foreground.format(4);
    for (std::size_t c = 0; c < channels.size(); ++c) {
      out << std::setw(static_cast<int>(std::max<std::size_t>(channels[c].size() + 2, 10))) << candidate.score.dice[c].format(4);
    }
    out << "\n";
  }
  for (const auto& note : selection.notes) out << "  note: " << note << "\n";
  out << "best: " << selection.candidates[selection.best].name << "\n" << format_postprocessing_decision(selection.postprocessing);
  out << "wrote " << (selection.output_dir / kInferenceInformationFile).string() << ", " << kPostprocessingFileName << " and "
      << kInferenceInstructionsFile << ":\n"
      << selection.instructions;
  return out.str();
}

}  // namespace mlseg
