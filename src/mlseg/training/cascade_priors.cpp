#include "mlseg/training/cascade_priors.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "mlseg/analysis/splits.h"
#include "mlseg/core/atomic_file.h"
#include "mlseg/core/error.h"
#include "mlseg/core/progress.h"
#include "mlseg/inference/cascade.h"
#include "mlseg/inference/predict_case.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/nn/checkpoint.h"

namespace mlseg {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

/// Which checkpoint made each fold's predictions (prior folder / this file).
constexpr const char* kSourcesFile = "sources.json";

/// The checkpoint's identity: its check file's content hash (size and time where there is none).
std::string checkpoint_identity(const fs::path& checkpoint) {
  const fs::path check = checkpoint.string() + ".check";
  std::error_code ec;
  if (fs::exists(check, ec)) {
    const Json json = read_json_file(check);
    if (json.contains("hash64")) return json["hash64"].dump() + "/" + json.value("bytes", Json()).dump();
  }
  return std::to_string(fs::file_size(checkpoint, ec)) + "@" +
         std::to_string(fs::last_write_time(checkpoint, ec).time_since_epoch().count());
}

/// The cases whose previous-stage prediction is missing or stale, by the fold that validated them.
struct PriorWork {
  std::map<std::size_t, std::vector<std::string>> cases_by_fold;
  std::size_t total = 0;
};

/// Which fold validated each of `case_ids` (splits_final.json) and which of them need a
/// prediction: no file yet, or made by another checkpoint than the fold's current one
/// (`sources`). Throws mlseg::Error naming the folds to train, or a case no fold validates.
PriorWork find_prior_work(const std::vector<std::string>& case_ids, const std::vector<Fold>& folds, const fs::path& splits_path,
                          const Json& sources, const fs::path& prior_dir, const std::string& previous, const std::string& configuration,
                          const std::function<fs::path(std::size_t)>& fold_checkpoint) {
  PriorWork work;
  std::set<std::string> missing_folds;
  for (const std::string& id : case_ids) {
    std::size_t fold = folds.size();
    for (std::size_t k = 0; k < folds.size() && fold == folds.size(); ++k) {
      if (std::find(folds[k].val.begin(), folds[k].val.end(), id) != folds[k].val.end()) fold = k;
    }
    if (fold == folds.size()) {
      throw Error("case '" + id + "' is in no fold's validation set, so " + previous + " has no cross-validation prediction of it",
                  "rerun `mlseg analyze` to rewrite splits_final.json", {splits_path.string(), id, ""});
    }
    const fs::path checkpoint = fold_checkpoint(fold);
    if (!fs::exists(checkpoint)) {
      missing_folds.insert(std::to_string(fold));
      continue;
    }
    const bool current = sources.value(std::to_string(fold), std::string()) == checkpoint_identity(checkpoint);
    if (!current || !fs::exists(store_prior_file(prior_dir, id))) {
      work.cases_by_fold[fold].push_back(id);
      ++work.total;
    }
  }
  if (!missing_folds.empty()) {
    std::string list, commands;
    for (const std::string& f : missing_folds) {
      list += (list.empty() ? "" : ", ") + f;
      commands += (commands.empty() ? "" : "; ") + std::string("mlseg train DATASET -c ") + previous + " -f " + f;
    }
    throw Error("the cascade " + configuration + " trains on " + previous + "'s cross-validation predictions, and " + previous +
                    " fold(s) " + list + " have no checkpoint_final.pt",
                "train them first: " + commands, {fold_checkpoint(0).parent_path().parent_path().string(), "", ""});
  }
  return work;
}

}  // namespace

fs::path ensure_previous_stage_predictions(const fs::path& dataset_work_dir, const PlansFile& plans, const std::string& configuration,
                                           const PreprocessedStore& store, const CascadePriorOptions& options) {
  const PlannedConfiguration& cascade = plans.configuration(configuration);
  const std::string& previous = cascade.previous_stage;
  if (previous.empty()) throw Error(configuration + " is not a cascade stage", "this is a bug in the caller; report it");
  const fs::path prior_dir = next_stage_prior_dir(dataset_work_dir, previous, configuration);
  fs::create_directories(prior_dir);
  const fs::path splits_path = dataset_work_dir / "splits_final.json";
  const fs::path sources_path = prior_dir / kSourcesFile;
  Json sources = fs::exists(sources_path) ? read_json_file(sources_path) : Json::object();
  auto fold_checkpoint = [&](std::size_t fold) {
    return dataset_work_dir / "results" / previous / ("fold_" + std::to_string(fold)) / "checkpoint_final.pt";
  };
  const PriorWork work = find_prior_work(store.case_ids(), folds_from_json(read_json_file(splits_path), splits_path.string()), splits_path,
                                         sources, prior_dir, previous, configuration, fold_checkpoint);
  if (work.total == 0) return prior_dir;

  const PreprocessedStore first_store(store_dir_for(dataset_work_dir, plans.configuration(previous).data_configuration));
  Progress progress("cascade: " + previous + " predictions for " + configuration, static_cast<std::int64_t>(work.total), "cases",
                    ProgressOptions{options.show_progress});
  torch::NoGradGuard no_grad;
  PredictOptions predict;  // nnU-Net's validation: step 0.5, Gaussian, mirroring, fp32
  predict.device = options.device;
  for (const auto& [fold, ids] : work.cases_by_fold) {
    const fs::path checkpoint = fold_checkpoint(fold);
    const PreviousStage stage = load_stage_checkpoints({checkpoint}, predict);
    if (stage.model.channel_names != store.info().channel_names) {
      throw Error(previous + " was trained on other label channels than " + configuration + "'s data",
                  "retrain " + previous + " after `mlseg preprocess --overwrite`", {checkpoint.string(), "", ""});
    }
    for (const std::string& id : ids) {
      const StoredCase& low = first_store.stored_case(first_store.case_index(id));
      const StoredCase& high = store.stored_case(store.case_index(id));
      const torch::Tensor masks = predict_previous_stage(stage, low.image(), low.properties(), high.properties(), options.threads);
      write_npy(store_prior_file(prior_dir, id), code_from_masks(masks).words, /*as_unsigned=*/true);
      progress.advance();
    }
    sources[std::to_string(fold)] = checkpoint_identity(checkpoint);
    write_text_file_atomically(sources_path, sources.dump(2) + "\n");
  }
  progress.finish();
  return prior_dir;
}

}  // namespace mlseg
