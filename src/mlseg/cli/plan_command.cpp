// mlseg plan DATASET_DIR: nnU-Net v2's default planner (or its ResEnc M/L/XL presets, --planner) on
// the analysis files -> plans.json;
// --check validates an edited plans.json.
#include <filesystem>
#include <iostream>
#include <memory>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/planning/planner.h"
#include "mlseg/planning/plans_json.h"

namespace mlseg::cli {
namespace {

void add_plan_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string dataset;
    PlanOptions options;
    std::string preset = "gpu";
    std::string planner = "default";
    bool check = false;
    int max_features = 0;  // 0: PlanOptions' per-dimension defaults
    std::string plans_file;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "plan", "nnU-Net's planner: target spacing, patch, network, batch size, normalisation, encoding -> plans.json");
  command->add_option("dataset", state->dataset, "Raw dataset folder")->required();
  command->add_option("--work-dir", state->options.work_dir, "Work folder (default: $MLSEG_WORK, else ./mlseg_work)");
  command->add_option("--gpu-memory-gb", state->options.gpu_memory_gb, "GPU memory the patch and batch size are planned for")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--planner", state->planner,
                      "default (nnU-Net's ExperimentPlanner, PlainConvUNet) | resenc-m | resenc-l | resenc-xl (nnU-Net's "
                      "Residual Encoder presets: ResidualEncoderUNet, planned for 8 / 24 / 40 GB unless --gpu-memory-gb is given)")
      ->capture_default_str();
  command->add_option("--preset", state->preset, "gpu (nnU-Net's budget) | cpu (a small budget for a 2-core CPU)")
      ->capture_default_str();
  command->add_option("--cpu-budget-fraction", state->options.cpu_budget_fraction,
                      "--preset cpu: the feature-map budget as a fraction of nnU-Net's 8 GB one (smaller: smaller patches, "
                      "faster iterations)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--base-features", state->options.base_features,
                      "Features of the first stage, doubled per stage (nnU-Net: 32; smaller trains faster on a CPU)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--max-features", state->max_features, "Cap on features per stage (default: 320 in 3D, 512 in 2D)")
      ->check(CLI::PositiveNumber);
  command->add_option("--encoding", state->options.encoding, "auto (analyze's recommendation) | sigmoid | softmax | powerset")
      ->capture_default_str();
  command->add_flag("--check", state->check, "Validate an (edited) plans.json instead of planning; exit 2 on problems");
  command->add_option("--plans", state->plans_file, "plans.json to check (default: WORK/<dataset>/plans.json)");
  add_common_flags(*command, state->common, true);

  registry.add(command, [state, command] {
    PlanOptions options = with_network_planner(state->options, parse_network_planner(state->planner),
                                                /*keep_gpu_memory=*/command->count("--gpu-memory-gb") > 0);
    if (state->max_features > 0) options.max_features_3d = options.max_features_2d = state->max_features;
    if (state->preset == "cpu") {
      options.preset = PlanPreset::cpu;
    } else if (state->preset != "gpu") {
      throw Error("unknown --preset '" + state->preset + "'", "use gpu or cpu");
    }
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    if (state->check) {
      const std::filesystem::path file =
          state->plans_file.empty() ? plans_file_for(state->dataset, options.work_dir) : std::filesystem::path(state->plans_file);
      if (!std::filesystem::exists(file)) {
        throw Error("no plans.json to check", "run mlseg plan " + state->dataset + " first, or pass --plans FILE",
                    {file.string(), "", ""});
      }
      const auto problems = check_plans(read_json_file(file));
      if (state->common.json) {
        nlohmann::ordered_json out = {{"file", file.string()}, {"problems", nlohmann::ordered_json::array()}};
        for (const auto& p : problems) out["problems"].push_back({{"key", p.key}, {"problem", p.problem}, {"fix", p.fix}});
        std::cout << out.dump(2) << "\n";
      } else if (problems.empty()) {
        std::cout << "plans.json OK: " << file.string() << "\n";
      } else {
        std::cout << file.string() << ": " << problems.size() << " problem" << (problems.size() == 1 ? "" : "s") << "\n";
        for (const auto& p : problems) std::cout << "  " << p.key << ": " << p.problem << "\n    fix: " << p.fix << "\n";
      }
      return problems.empty() ? 0 : 2;
    }
    const PlanRun run = plan_dataset(state->dataset, options);
    if (state->common.json) {
      std::cout << run.json.dump(2) << "\n";
    } else if (!state->common.quiet) {
      std::cout << format_plans_report(run);
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderPlan, add_plan_command);
}  // namespace

}  // namespace mlseg::cli
