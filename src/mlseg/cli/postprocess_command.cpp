// mlseg postprocess -i IN -o OUT --plan postprocessing.json: connected-component postprocessing
// of a prediction folder (nnUNetv2_apply_postprocessing; exit 0 written, 2 bad input).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/postprocessing/postprocessing.h"

namespace mlseg::cli {
namespace {

void add_postprocess_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string input;
    std::string output;
    std::string plan;
    std::string format;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command =
      app.add_subcommand("postprocess",
                         "Apply a postprocessing.json (from find-best-config) to a prediction folder: keep the largest component or remove "
                         "small components, per channel (26-connectivity in 3D, 8 in 2D)");
  command->add_option("-i,--input", state->input, "Prediction folder (written by mlseg predict or ensemble)")->required();
  command->add_option("-o,--output", state->output, "Output folder")->required();
  command->add_option("--plan", state->plan, "postprocessing.json (find-best-config writes it)")->required();
  command->add_option("--format", state->format, "bitmask | multihot4d | per-channel | labelmap (default: the input's)");
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    const PostprocessingPlan plan = postprocessing_plan_from_json(read_json_file(state->plan), state->plan);
    PostprocessFolderOptions options;
    if (!state->format.empty()) options.format = prediction_format_flag(state->format);
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    const PostprocessFolderResult result = postprocess_folder(state->input, state->output, plan, options);
    if (state->common.json) {
      nlohmann::json removed = nlohmann::json::object();
      for (std::size_t c = 0; c < plan.channel_names.size(); ++c) removed[plan.channel_names[c]] = result.voxels_removed[c];
      std::cout << nlohmann::json{{"output", state->output},
                                  {"cases", result.cases},
                                  {"plan", plan.describe()},
                                  {"voxels_removed", removed}}
                       .dump(2)
                << "\n";
    } else if (!state->common.quiet) {
      std::cout << "postprocessed " << result.cases << " cases into " << state->output << " (" << plan.describe() << ")\n";
      for (std::size_t c = 0; c < plan.channel_names.size(); ++c) {
        if (result.voxels_removed[c] > 0)
          std::cout << "  " << plan.channel_names[c] << ": " << result.voxels_removed[c] << " voxels removed\n";
      }
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderPostprocess, add_postprocess_command);
}  // namespace

}  // namespace mlseg::cli
