// mlseg analyze DATASET_DIR: fingerprint, label statistics, combinations, co-occurrence,
// recommendations and stratified folds.
#include <iostream>
#include <memory>

#include "mlseg/analysis/analyze.h"
#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"

namespace mlseg::cli {
namespace {

void add_analyze_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string dataset;
    AnalyzeOptions options;
    std::string splits = "stratified";
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "analyze", "Fingerprint, per-channel statistics, channel combinations, nesting, recommendations and stratified folds");
  command->add_option("dataset", state->dataset, "Raw dataset folder")->required();
  command->add_option("--work-dir", state->options.work_dir, "Work folder (default: $MLSEG_WORK, else ./mlseg_work)");
  command->add_option("--folds", state->options.num_folds, "Cross-validation folds")->capture_default_str();
  command->add_option("--splits", state->splits, "stratified (by channel and rare-combination presence) | random (nnU-Net's KFold)")
      ->capture_default_str();
  command->add_option("--split-seed", state->options.split_seed, "Seed of the folds")->capture_default_str();
  command->add_flag("--overwrite-splits", state->options.overwrite_splits, "Replace an existing splits_final.json");
  command->add_option("--min-combo-voxels", state->options.min_combo_voxels, "Combinations with fewer voxels are rare")
      ->capture_default_str();
  command->add_option("--min-combo-cases", state->options.min_combo_cases, "Combinations in fewer cases are rare")
      ->capture_default_str();
  command->add_option("--foreground-samples", state->options.foreground_samples,
                      "Foreground voxels sampled for intensity statistics (nnU-Net: 10e7)")
      ->capture_default_str();
  command->add_option("--seed", state->options.seed, "Intensity sampling seed")->capture_default_str();
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    AnalyzeOptions options = state->options;
    if (state->splits == "random") {
      options.splits = SplitMethod::random;
    } else if (state->splits != "stratified") {
      throw Error("unknown --splits '" + state->splits + "'", "use stratified or random", {});
    }
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    const AnalysisResult result = analyze_dataset(state->dataset, options);
    if (state->common.json) {
      std::cout << labels_to_json(result, options).dump(2) << "\n";
    } else {
      std::cout << format_analysis_report(result, state->common.verbose);
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderAnalyze, add_analyze_command);
}  // namespace

}  // namespace mlseg::cli
