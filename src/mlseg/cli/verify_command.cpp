// mlseg verify DATASET_DIR: every integrity problem of a raw dataset, collected.
#include <iostream>
#include <memory>

#include "mlseg/cli/commands.h"
#include "mlseg/verify/verify.h"

namespace mlseg::cli {

namespace {
void add_verify_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string dataset;
    bool strict = false;
    bool no_duplicates = false;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "verify", "Check a raw dataset: files, geometry, label values, NaN/Inf, duplicates (exit 0 clean, 1 warnings with --strict, 2 errors)");
  command->add_option("dataset", state->dataset, "Raw dataset folder (dataset.json, imagesTr/, labelsTr/)")->required();
  command->add_flag("--strict", state->strict, "Exit 1 when there are warnings");
  command->add_flag("--no-duplicates", state->no_duplicates, "Skip the duplicate-content check");
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    VerifyOptions options;
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    options.check_duplicates = !state->no_duplicates;
    const VerifyReport report = verify_dataset(state->dataset, options);
    if (state->common.json) {
      std::cout << verify_report_to_json(report).dump(2) << "\n";
    } else {
      std::cout << format_verify_report(report, state->common.verbose ? 100000 : 60);
    }
    return report.exit_code(state->strict);
  });
}

const RegisterCommand registered(kOrderVerify, add_verify_command);
}  // namespace

}  // namespace mlseg::cli
