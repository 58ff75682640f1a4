// mlseg evaluate --ref REF_DIR --pred PRED_DIR: per case and channel metrics, summary.json and
// metrics_per_case.csv (exit 0 scored, 2 bad input).
#include <iostream>
#include <memory>
#include <sstream>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/evaluation/evaluate.h"
#include "mlseg/evaluation/evaluation_report.h"

namespace mlseg::cli {

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

// "1" (every channel) or "1,ET=2,TC=1.5": a default and/or NAME=T entries.
void parse_nsd_tolerances(const std::string& text, EvaluateOptions& options) {
  const auto bad = [&] {
    return Error("--nsd-tolerance-mm '" + text + "' is not understood",
                 "pass a distance in mm (e.g. 1) and/or per channel NAME=MM entries (e.g. 1,ET=2)");
  };
  for (const std::string& item : split_commas(text)) {
    const auto equals = item.find('=');
    try {
      std::size_t used = 0;
      const std::string number = equals == std::string::npos ? item : item.substr(equals + 1);
      const double mm = std::stod(number, &used);
      if (used != number.size()) throw bad();
      if (equals == std::string::npos) {
        options.nsd_tolerance_mm = mm;
      } else {
        options.nsd_tolerance_mm_per_channel[item.substr(0, equals)] = mm;
      }
    } catch (const std::logic_error&) {
      throw bad();
    }
  }
}

void add_evaluate_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string reference;
    std::string prediction;
    std::string output;
    std::string channels;
    std::string nsd_tolerance = "1";
    std::string empty_policy = to_string(kDefaultEmptyPolicy);
    std::string hd_empty_penalty = "none";
    std::string dataset_json;
    EvaluateOptions options;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  std::ostringstream default_tolerance;
  default_tolerance << kDefaultNsdToleranceMm;
  state->nsd_tolerance = default_tolerance.str();
  CLI::App* command = app.add_subcommand(
      "evaluate",
      "Score predictions against references per case and channel: Dice, IoU, precision, recall, volumes, HD, HD95, "
      "ASSD, NSD; writes summary.json (nnU-Net's keys) and metrics_per_case.csv");
  command->add_option("--ref", state->reference, "Reference labels folder (or a dataset folder: its labelsTr)")->required();
  command->add_option("--pred", state->prediction, "Prediction folder (same file names as the references)")->required();
  command->add_option("--dataset-json", state->dataset_json,
                      "dataset.json defining labels and file endings (default: REF/, REF/.., PRED/)");
  command->add_option("--pred-dataset-json", state->options.prediction_dataset_json,
                      "dataset.json of the prediction folder when it uses another label format (e.g. PRED/dataset.json "
                      "that mlseg predict wrote); channels must match the reference's");
  command->add_option("--channels", state->channels, "Comma-separated channel names to score (default: all)");
  command->add_option("--metrics", state->options.metrics,
                      "Comma-separated: dice, iou, precision, recall, volume, hd, hd95, assd, nsd, all")
      ->capture_default_str();
  command->add_option("--nsd-tolerance-mm", state->nsd_tolerance, "NSD tolerance in mm; per channel: 1,ET=2")
      ->capture_default_str();
  command->add_option("--surface-connectivity", state->options.surface_connectivity,
                      "Boundary voxel neighbourhood: 6 (MONAI) or 26")
      ->capture_default_str();
  command->add_option("--empty-policy", state->empty_policy,
                      "What n/a becomes in aggregates of Dice/IoU/precision/recall/NSD: exclude | one | zero")
      ->capture_default_str();
  command->add_option("--hd-empty-penalty", state->hd_empty_penalty,
                      "HD/HD95/ASSD when exactly one side is empty: none (n/a) | diagonal | MM")
      ->capture_default_str();
  command->add_flag("--missing-as-empty", state->options.missing_as_empty,
                    "Count a reference case without prediction as an empty prediction (default: error)");
  command->add_option("-o,--output", state->output, "summary.json path (default: PRED/summary.json); the CSV goes next to it");
  add_common_flags(*command, state->common, true);

  registry.add(command, [state] {
    EvaluateOptions options = state->options;
    options.dataset_json = state->dataset_json;
    options.channels = split_commas(state->channels);
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    parse_nsd_tolerances(state->nsd_tolerance, options);
    const auto policy = parse_empty_policy(state->empty_policy);
    if (!policy) {
      throw Error("--empty-policy '" + state->empty_policy + "' is not one of exclude, one, zero",
                  "pass --empty-policy exclude (default), one or zero");
    }
    options.empty_policy = *policy;
    options.hd_empty_penalty = parse_hd_empty_penalty(state->hd_empty_penalty);
    const EvaluationResult result = evaluate_folders(state->reference, state->prediction, options);
    const std::filesystem::path summary =
        state->output.empty() ? std::filesystem::path(state->prediction) / kSummaryFileName : std::filesystem::path(state->output);
    write_evaluation_outputs(result, summary);
    if (state->common.json) {
      std::cout << evaluation_to_json(result).dump(2) << "\n";
    } else if (!state->common.quiet) {
      std::cout << format_evaluation_report(result) << "\nwrote " << summary.string() << " and "
                << (summary.parent_path() / kPerCaseCsvFileName).string() << "\n";
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderEvaluate, add_evaluate_command);
}  // namespace

}  // namespace mlseg::cli
