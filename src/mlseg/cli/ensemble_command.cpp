// mlseg ensemble -i A B [C ...] -o OUT: the mean of several prediction folders' saved
// probabilities, exported in any format (exit 0 written, 2 bad input).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/inference/ensemble.h"

namespace mlseg::cli {
namespace {

void add_ensemble_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::vector<std::string> inputs;
    std::string output;
    std::string format;
    EnsembleOptions options;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command =
      app.add_subcommand("ensemble",
                         "Average the probabilities of several prediction folders (each predicted with --save-probabilities) and export "
                         "(nnUNetv2_ensemble): softmax models by argmax, sigmoid / powerset models per channel at 0.5");
  command->add_option("-i,--input", state->inputs, "Two or more prediction folders")->required()->expected(2, -1);
  command->add_option("-o,--output", state->output, "Output folder")->required();
  command->add_option("--format", state->format, "bitmask | multihot4d | per-channel | labelmap (default: the first input folder's)");
  command->add_flag("--save-probabilities", state->options.save_probabilities, "Write the averaged probabilities too (npy)");
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    EnsembleOptions options = state->options;
    if (!state->format.empty()) options.format = prediction_format_flag(state->format);
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    std::vector<std::filesystem::path> inputs(state->inputs.begin(), state->inputs.end());
    const EnsembleResult result = ensemble_folders(inputs, state->output, options);
    if (state->common.json) {
      std::cout << nlohmann::json{{"output", state->output}, {"cases", result.cases}, {"files", result.files.size()}}.dump(2) << "\n";
    } else if (!state->common.quiet) {
      std::cout << "ensembled " << result.cases << " cases of " << inputs.size() << " folders into " << state->output << "\n";
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderEnsemble, add_ensemble_command);
}  // namespace

}  // namespace mlseg::cli
