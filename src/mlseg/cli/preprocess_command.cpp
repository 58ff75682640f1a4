// mlseg preprocess DATASET_DIR -c CONFIG: the preprocessed store the trainer reads.
#include <iostream>
#include <memory>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/preprocessing/preprocess.h"

namespace mlseg::cli {
namespace {

void add_preprocess_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string dataset;
    PreprocessOptions options;
    std::string rare = "keep";
    std::string interpolation;  ///< empty: plans.json's order
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "preprocess", "Crop, normalise and resample every training case -> WORK/<dataset>/preprocessed/<config>/ (.npy store)");
  command->add_option("dataset", state->dataset, "Raw dataset folder")->required();
  command->add_option("-c,--configuration", state->options.configurations,
                      "Configuration(s) of plans.json (default: 3d_fullres, or 2d for 2D data)");
  command->add_option("--rare-combos", state->rare,
                      "Rare channel combinations: keep | ignore (flag their voxels ignored) | merge (into the most frequent combination they contain)")
      ->capture_default_str();
  command->add_option("--image-interpolation", state->interpolation,
                      "cubic (order 3) | linear (order 1); must agree with plans.json's resampling_fn_data_kwargs.order, "
                      "which prediction uses (default: that order, 3 as planned)");
  command->add_option("--work-dir", state->options.work_dir, "Work folder (default: $MLSEG_WORK, else ./mlseg_work)");
  command->add_flag("--overwrite", state->options.overwrite, "Redo every case (default: skip cases whose inputs did not change)");
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    PreprocessOptions options = state->options;
    options.rare_policy = parse_rare_policy(state->rare);
    if (state->interpolation.empty()) {
      // plans.json's order
    } else if (state->interpolation == "cubic") {
      options.image_interpolation = ImageInterpolation::cubic;
    } else if (state->interpolation == "linear") {
      options.image_interpolation = ImageInterpolation::linear;
    } else {
      throw Error("unknown --image-interpolation '" + state->interpolation + "'", "use cubic or linear");
    }
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    const PreprocessRun run = preprocess_dataset(state->dataset, options);
    if (state->common.json) {
      std::cout << preprocess_run_to_json(run).dump(2) << "\n";
    } else if (!state->common.quiet || !run.ok()) {
      std::cout << format_preprocess_report(run);
    }
    return run.ok() ? 0 : 1;
  });
}

const RegisterCommand registered(kOrderPreprocess, add_preprocess_command);
}  // namespace

}  // namespace mlseg::cli
