#include "mlseg/evaluation/final_validation.h"

#include <algorithm>
#include <system_error>

#include "mlseg/analysis/splits.h"
#include "mlseg/core/error.h"
#include "mlseg/evaluation/evaluation_report.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

// Links to the validation cases' files, beside (not inside) the prediction folder, which
// evaluate lists.
constexpr const char* kStaging = ".final_validation_staging";

/// A link to `target` in `folder` (a copy where links are not allowed).
void stage(const fs::path& target, const fs::path& folder) {
  const fs::path link = folder / target.filename();
  std::error_code ec;
  fs::create_symlink(fs::absolute(target), link, ec);
  if (!ec) return;
  if (fs::is_directory(target)) {
    fs::copy(target, link, fs::copy_options::recursive);
  } else {
    fs::copy_file(target, link, fs::copy_options::overwrite_existing);
  }
}

/// Removes the staging folders whatever happens.
struct StagingCleanup {
  std::vector<fs::path> folders;
  ~StagingCleanup() {
    std::error_code ec;
    for (const fs::path& f : folders) fs::remove_all(f, ec);
  }
};

}  // namespace

PredictionFormat dataset_prediction_format(LabelFormat format) {
  switch (format) {
    case LabelFormat::label_map: return PredictionFormat::labelmap;
    case LabelFormat::bitmask: return PredictionFormat::bitmask;
    case LabelFormat::multihot4d: return PredictionFormat::multihot4d;
    case LabelFormat::channel_masks: return PredictionFormat::per_channel;
  }
  return PredictionFormat::bitmask;
}

std::vector<std::string> fold_validation_cases(const fs::path& dataset_work_dir, const std::string& fold) {
  const fs::path splits_path = dataset_work_dir / "splits_final.json";
  if (!fs::exists(splits_path)) {
    throw Error("splits_final.json not found", "run `mlseg analyze` (or `mlseg train`, which writes it)", {splits_path.string(), "", ""});
  }
  const std::vector<Fold> folds = folds_from_json(read_json_file(splits_path), splits_path.string());
  if (fold == "all") {
    std::vector<std::string> all = folds.empty() ? std::vector<std::string>{} : folds[0].train;
    if (!folds.empty()) all.insert(all.end(), folds[0].val.begin(), folds[0].val.end());
    std::sort(all.begin(), all.end());
    return all;
  }
  std::size_t k = 0;
  try {
    k = static_cast<std::size_t>(std::stoul(fold));
  } catch (const std::exception&) {
    throw Error("fold '" + fold + "' is not a number or all", "pass -f 0..4 or all");
  }
  if (k >= folds.size()) {
    throw Error("fold " + fold + " does not exist (" + std::to_string(folds.size()) + " folds)", "pass an existing fold",
                {splits_path.string(), "", ""});
  }
  return folds[k].val;
}

FinalValidation run_final_validation(const fs::path& dataset_dir, const fs::path& fold_dir,
                                     const std::vector<std::string>& validation_cases,
                                     const FinalValidationOptions& options) {
  if (validation_cases.empty()) throw Error("no validation case to predict", "check splits_final.json");
  const Dataset dataset = load_dataset(dataset_dir);
  const std::string fold_name = fold_dir.filename().string();
  if (fold_name.rfind("fold_", 0) != 0) {
    throw Error(fold_dir.string() + " is not a fold folder (fold_<k>)", "pass WORK/<dataset>/results/<config>/fold_<k>");
  }
  FinalValidation out;
  out.folder = fold_dir / "validation";
  fs::create_directories(out.folder);
  StagingCleanup cleanup;
  const bool main = options.rank == 0;
  // Every rank stages every case in its own folder; predict_folder then takes the rank's share.
  const fs::path staging = fold_dir / (std::string(kStaging) + (main ? std::string() : "_rank" + std::to_string(options.rank)));
  const fs::path inputs = staging / "images", references = staging / "labels";
  cleanup.folders = {staging};
  fs::remove_all(staging);
  fs::create_directories(inputs);
  fs::create_directories(references);
  for (const std::string& id : validation_cases) {
    const auto found = std::find_if(dataset.training.begin(), dataset.training.end(),
                                    [&](const CaseFiles& c) { return c.case_id == id; });
    if (found == dataset.training.end() || !found->has_label) {
      throw Error("validation case '" + id + "' is not a labelled training case of the dataset",
                  "rerun `mlseg analyze` to rewrite splits_final.json", {dataset_dir.string(), id, ""});
    }
    for (const fs::path& image : found->images) stage(image, inputs);
    if (!found->label.empty()) {
      if (main) stage(found->label, references);
    } else {
      throw Error("validation case '" + id + "' lists its channel masks explicitly; final validation needs a mask folder per case",
                  "store each case's masks in labelsTr/<case>/", {dataset_dir.string(), id, ""});
    }
  }

  PredictFolderOptions predict;
  predict.folds = {fold_name.substr(5)};
  predict.checkpoint = options.checkpoint;
  predict.format = options.format.value_or(dataset_prediction_format(dataset.labels.format));
  // A label map holds one label per voxel: lossless only for a softmax model. Otherwise score a
  // per-channel copy of the same predictions.
  const std::vector<fs::path> checkpoints = find_checkpoints(fold_dir.parent_path(), predict.folds, predict.checkpoint);
  const bool one_label_per_voxel = read_checkpoint_metadata(checkpoints.front())["model"].value("label_encoding", "") == "softmax";
  out.scored_folder = out.folder;
  if (*predict.format == PredictionFormat::labelmap && !one_label_per_voxel) {
    out.scored_folder = out.folder / "per_channel_codes";
    if (main) fs::remove_all(out.scored_folder);
    predict.lossless_copy_dir = out.scored_folder;
  }
  if (options.wait_for_ranks) options.wait_for_ranks();  // rank 0's clean-up before anyone writes
  predict.device = options.device;
  predict.precision = options.precision;
  predict.save_probabilities = options.save_probabilities;
  predict.threads = options.threads;
  predict.predict = options.predict;
  predict.show_progress = options.show_progress && main;
  predict.rank = options.rank;
  predict.world_size = options.world_size;
  out.prediction = predict_folder(inputs, out.folder, fold_dir.parent_path(), predict);
  if (!out.prediction.ok()) {
    throw Error("final validation could not predict " + std::to_string(out.prediction.failures.size()) + " case(s): " +
                    out.prediction.failures.front().case_id + ": " + out.prediction.failures.front().message,
                "see the message; the predictions that worked are in " + out.folder.string());
  }
  if (options.wait_for_ranks) options.wait_for_ranks();  // every rank's cases written
  if (!main) return out;

  EvaluateOptions evaluate;
  evaluate.dataset_json = dataset_dir / "dataset.json";
  evaluate.prediction_dataset_json = out.scored_folder / "dataset.json";
  evaluate.metrics = options.metrics;
  evaluate.threads = options.threads;
  evaluate.show_progress = options.show_progress;
  out.evaluation = evaluate_folders(references, out.scored_folder, evaluate);
  write_evaluation_outputs(out.evaluation, out.folder / "summary.json");
  return out;
}

}  // namespace mlseg
