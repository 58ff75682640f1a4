// mlseg report RUN_DIR -o report.html: one self-contained HTML page of a run (exit 0 written,
// 2 bad input).
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/report/html_report.h"
#include "mlseg/report/run_layout.h"

namespace mlseg::cli {
namespace {

void add_report_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string run_dir;
    std::string output;
    ReportOptions options;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "report",
      "One self-contained HTML page: dataset, label statistics, fold coverage, training curves, validation, "
      "evaluation and slice images (inline SVG and PNG, no scripts)");
  command->add_option("run_dir", state->run_dir,
                      "WORK/<dataset> (or its results/<config>[/fold_<k>] folder, or the raw dataset folder with --work-dir)")
      ->required();
  command->add_option("-o,--output", state->output, "HTML file to write (default: WORK/<dataset>/report.html)");
  command->add_option("--fold", state->options.fold, "Report only this fold (0, 1, ... or all; default: every fold found)");
  command->add_option("--config", state->options.configuration,
                      "Configuration under results/ (default: the one RUN_DIR names, else 3d_fullres, else the first)");
  command->add_option("--dataset", state->options.raw_dataset_dir,
                      "Raw dataset folder for the slice images (default: from validation/summary.json, or WORK/raw/<dataset>)");
  command->add_option("--work-dir", state->options.work_dir,
                      "Work folder when RUN_DIR is the raw dataset (default: $MLSEG_WORK, else ./mlseg_work)");
  command->add_option("--slice-cases", state->options.max_slice_cases, "Validation cases shown as slice images")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    const RunLayout layout = locate_run(state->run_dir, state->options);
    const std::filesystem::path output =
        state->output.empty() ? layout.dataset_work_dir / "report.html" : std::filesystem::path(state->output);
    if (std::filesystem::is_directory(output)) {
      throw Error("-o " + output.string() + " is a folder", "pass the HTML file to write, e.g. -o " +
                                                                 (output / "report.html").string());
    }
    write_report(state->run_dir, output, state->options);
    const auto bytes = std::filesystem::file_size(output);
    if (state->common.json) {
      std::cout << nlohmann::json{{"report", output.string()}, {"bytes", bytes}}.dump(2) << "\n";
    } else if (!state->common.quiet) {
      std::cout << "wrote " << output.string() << " (" << (bytes + 1023) / 1024 << " KiB)\n";
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderReport, add_report_command);
}  // namespace

}  // namespace mlseg::cli
