// mlseg find-best-config DATASET: score every trained configuration and pair ensemble on the
// cross-validation predictions, pick the best, decide the postprocessing, write the predict
// commands (nnUNetv2_find_best_configuration; exit 0 written, 2 bad input).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "mlseg/cli/commands.h"
#include "mlseg/io/json_file.h"
#include "mlseg/postprocessing/find_best_configuration.h"

namespace mlseg::cli {
namespace {

void add_find_best_config_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string dataset;
    FindBestConfigOptions options;
    bool no_ensembles = false;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command =
      app.add_subcommand("find-best-config",
                         "Score every trained configuration and every pair ensemble on the cross-validation predictions, pick the best by "
                         "mean foreground Dice, decide connected-component postprocessing, and write the predict commands "
                         "(WORK/<dataset>/model_selection/)");
  command->add_option("dataset", state->dataset, "Raw dataset folder (the one the configurations were trained on)")->required();
  command->add_option("-c,--configurations", state->options.configurations,
                      "Configurations to compare (default: every one under WORK/<dataset>/results with final validations)");
  command->add_option("-f,--folds", state->options.folds,
                      "Folds whose validation cases are scored (default: those every configuration has)");
  command->add_flag("--no-ensembles", state->no_ensembles, "Score single configurations only");
  command->add_flag("--nnunet-defaults", state->options.nnunet_defaults,
                    "nnU-Net's postprocessing choices only (keep the largest component), no small-component removal");
  command->add_option("--work-dir", state->options.work_dir, "Work folder (default: $MLSEG_WORK, else ./mlseg_work)");
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    FindBestConfigOptions options = state->options;
    options.ensembles = !state->no_ensembles;
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    const ModelSelection selection = find_best_configuration(state->dataset, options);
    if (state->common.json) {
      std::cout << read_json_file(selection.output_dir / kInferenceInformationFile).dump(2) << "\n";
    } else if (!state->common.quiet) {
      std::cout << format_model_selection(selection);
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderFindBestConfig, add_find_best_config_command);
}  // namespace

}  // namespace mlseg::cli
