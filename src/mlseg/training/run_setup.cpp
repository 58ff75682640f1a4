#include "mlseg/training/run_setup.h"

#include <iostream>

#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/inference/cascade.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/nn/device.h"
#include "mlseg/nn/network_from_plans.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/training/cascade_priors.h"
#include "mlseg/training/training_step.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

ModelDescription describe_model(const PlansFile& plans, const std::string& configuration, const PreprocessedStore& store,
                                const Dataset& dataset, int dimension) {
  ModelDescription model;
  model.plans = plans;
  model.configuration = configuration;
  model.input_channels = store.num_input_channels();
  if (store.prior_channels() > 0) {
    model.previous_stage = plans.configuration(configuration).previous_stage;
    model.prior_channels = store.prior_channels();
  }
  model.channel_names = store.info().channel_names;
  if (model.channel_names.empty()) throw Error("the preprocessed store lists no label channels", "rerun `mlseg preprocess`");
  model.encoding = plans.encoding;
  model.num_outputs = model.encoding.num_outputs();
  model.image_channel_names = store.info().image_channels;
  model.dataset_json = dataset.json;
  model.mirror_axes = dimension == 2 ? std::vector<int>{1, 2} : std::vector<int>{0, 1, 2};
  return model;
}

// Runs `mlseg preprocess` for the configuration when its store is missing or was written for
// another label encoding (labels resample differently per encoding).
void ensure_preprocessed(const fs::path& dataset_dir, const fs::path& store_dir, const std::string& plans_encoding,
                         const TrainOptions& options) {
  std::string reason = "no preprocessed store for " + options.configuration;
  if (fs::exists(store_dir / kStoreFile)) {
    const std::string stored = read_json_file(store_dir / kStoreFile).value("label_encoding", std::string("sigmoid"));
    if (stored == plans_encoding) return;
    reason = "the preprocessed store was written for the " + stored + " encoding, plans.json now says " + plans_encoding;
  }
  if (options.show_progress) std::cout << reason << ": running mlseg preprocess\n";
  PreprocessOptions preprocess;
  preprocess.work_dir = options.work_dir;
  preprocess.configurations = {options.configuration};
  preprocess.threads = options.threads;
  preprocess.show_progress = options.show_progress;
  const PreprocessRun run = preprocess_dataset(dataset_dir, preprocess);
  if (!run.ok()) {
    std::cout << format_preprocess_report(run);
    throw Error("preprocessing failed for some cases", "fix the cases listed above (see `mlseg verify`) and rerun");
  }
}

}  // namespace

RunSetup prepare_run(const fs::path& dataset_dir, const TrainOptions& options, const RunContext& context) {
  if (options.epochs < 1 || options.iterations_per_epoch < 1) {
    throw Error("--epochs and --iters-per-epoch must be at least 1", "pass positive numbers");
  }
  if (options.loader_workers < 0) {
    throw Error("--loader-workers is " + std::to_string(options.loader_workers), "pass auto (cores - 1) or a number >= 1");
  }
  RunSetup run;
  // Before any work: a wrong --device fails at once. Ranks on one machine take one GPU each.
  run.device = resolve_device_for_rank(options.device, context.local_rank());
  run.dataset = load_dataset(dataset_dir);
  run.dataset_work = dataset_work_dir(resolve_work_dir(options.work_dir), run.dataset.name);
  const fs::path plans_path = run.dataset_work / "plans.json";
  // Before preprocessing (which plans when plans.json is missing): the encoding the store must
  // have, and where a cascade stage's data is (its parent's: nnU-Net's inherited data_identifier).
  std::string data_configuration = options.configuration;
  std::string planned_encoding = "sigmoid";
  if (fs::exists(plans_path)) {
    const PlansFile plans = read_plans(plans_path);
    planned_encoding = plans.json.value("label_encoding", planned_encoding);
    if (plans.has_configuration(options.configuration)) data_configuration = plans.configuration(options.configuration).data_configuration;
  }
  const fs::path store_dir = store_dir_for(run.dataset_work, data_configuration);
  // Rank 0 alone preprocesses and writes splits_final.json; the others then read both.
  context.main_first("preprocessing and the splits", [&] {
    ensure_preprocessed(dataset_dir, store_dir, planned_encoding, options);
    if (context.distributed()) fold_cases(PreprocessedStore(store_dir), run.dataset_work, options.fold);
  });
  run.plans = read_plans(plans_path);
  run.store = std::make_unique<PreprocessedStore>(store_dir);
  run.fold = fold_cases(*run.store, run.dataset_work, options.fold);
  run.fold_dir = run.dataset_work / "results" / options.configuration / fold_folder_name(options.fold);
  run.log_path = run.fold_dir / kTrainLogFile;

  // The network and what it is trained on.
  const PlannedConfiguration& configuration = run.plans.configuration(options.configuration);
  if (!configuration.previous_stage.empty()) {
    // The cascade: the previous stage's cross-validation predictions as extra input channels.
    if (configuration.dimension() != 3) throw Error("a cascade stage must be 3D", "rerun `mlseg plan`", {plans_path.string(), "", ""});
    const fs::path prior_dir = next_stage_prior_dir(run.dataset_work, configuration.previous_stage, options.configuration);
    context.main_first("the previous stage's predictions", [&] {
      CascadePriorOptions priors;
      priors.device = run.device;
      priors.show_progress = options.show_progress && context.is_main();
      priors.threads = options.threads;
      ensure_previous_stage_predictions(run.dataset_work, run.plans, options.configuration, *run.store, priors);
    });
    run.store->attach_previous_stage(prior_dir, run.store->num_channels());
  }
  if (!run.plans.channel_names.empty() && run.plans.channel_names != run.store->info().channel_names) {
    throw Error("plans.json and the preprocessed store list different label channels",
                "rerun `mlseg preprocess --overwrite` after changing the plans", {plans_path.string(), "", ""});
  }
  run.dimension = configuration.dimension();
  run.model = describe_model(run.plans, options.configuration, *run.store, run.dataset, run.dimension);
  run.network = network_from_plans(run.plans, options.configuration, static_cast<int>(run.model.input_channels),
                                   static_cast<int>(run.model.num_outputs), /*deep_supervision=*/true);
  run.patch = configuration.patch_zyx();
  run.batch_size = configuration.batch_size;
  const LabelEncoding& encoding = run.model.encoding;
  run.remedies = resolve_remedies(run.plans.json, encoding, run.model.channel_names, options.remedies, plans_path.string());
  run.loss_options.kind(encoding.loss_kind()).batch_dice(configuration.batch_dice);
  if (encoding.kind() == EncodingKind::powerset) run.loss_options.powerset_membership(encoding.membership());
  run.loss_options.pos_weight(run.remedies.bce_pos_weight).channel_weights(run.remedies.loss_channel_weights);
  if (context.distributed() && configuration.batch_dice) {
    run.loss_options.batch_sum_across_ranks([&context](const torch::Tensor& t) { return context.sum_across_ranks_with_grad(t); });
  }
  run.share = rank_batch_share(run.batch_size, context.world_size(), context.rank());
  run.scales = network_deep_supervision_scales(run.network->strides(), run.dimension);
  // Ranks on one machine share its cores.
  run.threads = options.threads > 0 ? options.threads : std::max(1, default_thread_count() / context.local_world_size());
  return run;
}

}  // namespace mlseg
