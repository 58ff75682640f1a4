#include "mlseg/training/cascade_priors.h"

#include <torch/torch.h>

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

}  // namespace

fs::path ensure_previous_stage_predictions(const fs::path& dataset_work_dir, const PlansFile& plans, const std::string& configuration,
                                           const PreprocessedStore& store, const CascadePriorOptions& options) {
  const PlannedConfiguration& cascade = plans.configuration(configuration);
  const std::string& previous = cascade.previous_stage;
  if (previous.empty()) throw Error(configuration + " is not a cascade stage", "this is a bug in the caller; report it");
  const fs::path prior_dir = next_stage_prior_dir(dataset_work_dir, previous, configuration);
  fs::create_directories(prior_dir);
  const fs::path splits_path = dataset_work_dir / "splits_final.json";
  const std::vector<Fold> folds = folds_from_json(read_json_file(splits_path), splits_path.string());
  const fs::path sources_path = prior_dir / kSourcesFile;
  auto fold_checkpoint = [&](std::size_t fold) {
    return dataset_work_dir / "results" / previous / ("fold_" + std::to_string(fold)) / "checkpoint_final.pt";
  };
  Json sources = fs::exists(sources_path) ? read_json_file(sources_path) : Json::object();

  // Per fold: the cases it validated that need a (new) prediction.
  std::map<std::size_t, std::vector<std::string>> todo;
  std::set<std::string> missing_folds;
  std::size_t total = 0;
  for (const std::string& id : store.case_ids()) {
    std::size_t fold = folds.size();
    for (std::size_t k = 0; k < folds.size() && fold == folds.size(); ++k) {
      for (const std::string& v : folds[k].val) {
        if (v == id) fold = k;
      }
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
    const std::string key = std::to_string(fold);
    const bool current = sources.value(key, std::string()) == checkpoint_identity(checkpoint);
    if (!current || !fs::exists(store_prior_file(prior_dir, id))) {
      todo[fold].push_back(id);
      ++total;
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
                "train them first: " + commands, {(dataset_work_dir / "results" / previous).string(), "", ""});
  }
  if (total == 0) return prior_dir;

  const PreprocessedStore first_store(store_dir_for(dataset_work_dir, plans.configuration(previous).data_configuration));
  Progress progress("cascade: " + previous + " predictions for " + configuration, static_cast<std::int64_t>(total), "cases",
                    ProgressOptions{options.show_progress});
  torch::NoGradGuard no_grad;
  for (const auto& [fold, ids] : todo) {
    const fs::path checkpoint = fold_checkpoint(fold);
    LoadedCheckpoint loaded = load_checkpoint(checkpoint);
    if (loaded.model.channel_names != store.info().channel_names) {
      throw Error(previous + " was trained on other label channels than " + configuration + "'s data",
                  "retrain " + previous + " after `mlseg preprocess --overwrite`", {checkpoint.string(), "", ""});
    }
    loaded.network->module().eval();
    loaded.network->set_deep_supervision(false);
    loaded.network->module().to(options.device);
    const InferencePlan plan = inference_plan_from_plans(loaded.model.plans, loaded.model.configuration);
    PredictOptions predict;  // nnU-Net's validation: step 0.5, Gaussian, mirroring, fp32
    predict.device = options.device;
    const SlidingWindowOptions window = sliding_window_options(loaded.model, plan, predict);
    for (const std::string& id : ids) {
      const StoredCase& low = first_store.stored_case(first_store.case_index(id));
      const StoredCase& high = store.stored_case(store.case_index(id));
      const CaseProperties& a = low.properties();
      const CaseProperties& b = high.properties();
      if (a.crop_begin != b.crop_begin || a.crop_end != b.crop_end) {
        throw Error(previous + " and " + configuration + " cropped the case differently",
                    "rerun `mlseg preprocess --overwrite -c " + previous + "` and `-c " + cascade.data_configuration + "`",
                    {first_store.dir().string(), id, ""});
      }
      const torch::Tensor logits = sliding_window_logits(std::vector<SegmentationNetwork>{loaded.network}, low.image(), window);
      const torch::Tensor masks = previous_stage_masks(logits, loaded.model.encoding, a.spacing_mm, b.shape_after_resample, b.spacing_mm,
                                                       plan.anisotropy_threshold, options.threads);
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
