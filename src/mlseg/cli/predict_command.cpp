// mlseg predict -i IMAGES -o OUT -m MODEL_DIR: sliding-window prediction with a trained model's folds.
#include <iostream>
#include <memory>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/inference/predict.h"
#include "mlseg/nn/device.h"
#include "mlseg/training/run_context.h"

namespace mlseg::cli {
namespace {

void add_predict_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string input, output, model_dir;
    PredictFolderOptions options;
    std::string format;
    std::string probabilities_format = "npy";
    bool tta = false, disable_tta = false;
    CommonFlags common;
    DistributedFlags distributed;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "predict", "Predict images with a trained model (sliding window, Gaussian weighting, mirroring, folds averaged)");
  command->add_option("-i,--input", state->input, "Folder of images in nnU-Net naming (CASE_0000<ending>, ...), or one image file")
      ->required();
  command->add_option("-o,--output", state->output, "Output folder (gets a dataset.json describing the written format)")->required();
  command->add_option("-m,--model", state->model_dir, "Model folder: mlseg's WORK/<dataset>/results/<configuration>, or an nnU-Net v2 model folder Trainer__Plans__configuration (plans.json, dataset.json, fold_N/checkpoint_final.pth)")
      ->required();
  command->add_option("-f,--folds", state->options.folds, "Folds to average, e.g. -f 0 1 2 3 4, or all (default: every trained fold)");
  command->add_option("--checkpoint", state->options.checkpoint, "final | best | latest")->capture_default_str();
  command->add_option("--format", state->format,
                      "bitmask (sigmoid default, lossless, <= 64 channels) | multihot4d | per-channel | labelmap (softmax default; "
                      "overlaps collapsed as nnU-Net does, loss reported)");
  command->add_option("--file-ending", state->options.file_ending, "Ending of written images (default: the dataset's file_ending)");
  command->add_flag("--save-probabilities", state->options.save_probabilities,
                    "Also write per-channel (sigmoid) or class (softmax) probabilities: CASE_probabilities.npy / .nii.gz");
  command->add_option("--probabilities-format", state->probabilities_format, "npy | nifti")->capture_default_str();
  command->add_option("--step-size", state->options.predict.step_size, "Tile step as a fraction of the patch (nnU-Net: 0.5)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));
  command->add_option("--tile-batch", state->options.predict.tile_batch, "Tiles per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_flag("--tta", state->tta, "Mirroring test-time augmentation over the trained mirror axes (the default)");
  command->add_flag("--disable-tta", state->disable_tta, "No mirroring (8x faster in 3D)");
  command->add_option("--device", state->options.device, kDeviceFlagHelp)->capture_default_str();
  command->add_option("--precision", state->options.precision,
                      "auto (bf16 on a CPU with AVX512-BF16 or AMX-BF16, else fp32) | fp32 | bf16")
      ->capture_default_str();
  command->add_option("--memory-budget-gb", state->options.memory_budget_gb,
                      "Memory for one case, GB: a case whose whole-volume prediction is estimated above it is predicted in z slabs "
                      "(same result, less memory; the choice is printed). 0 = auto: 80 % of the available memory")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->add_flag("--continue", state->options.continue_prediction, "Skip cases whose output already exists");
  add_common_flags(*command, state->common, true);
  add_distributed_flags(*command, state->distributed);

  registry.add(command, [state] {
    if (const std::optional<int> launched = launch_ranks_if_requested(state->distributed)) return *launched;
    PredictFolderOptions options = state->options;
    if (state->tta && state->disable_tta) throw Error("--tta and --disable-tta both given", "choose one");
    options.predict.use_mirroring = !state->disable_tta;
    if (!state->format.empty()) options.format = prediction_format_flag(state->format);
    if (state->probabilities_format == "npy") {
      options.probabilities_format = ProbabilitiesFormat::npy;
    } else if (state->probabilities_format == "nifti") {
      options.probabilities_format = ProbabilitiesFormat::nifti;
    } else {
      throw Error("unknown --probabilities-format '" + state->probabilities_format + "'", "use npy or nifti");
    }
    if (options.folds.size() == 1 && options.folds.front() == "all") options.folds = {"all"};
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet && !state->common.json;
    options.predict.show_progress = state->common.verbose && options.show_progress;
    // Several ranks: each predicts its share of the cases; rank 0 reports the totals.
    const LaunchEnvironment environment = launch_environment();
    if (environment.distributed()) {
      options.device = resolve_device_for_rank(options.device, environment.local_rank).str();
      options.rank = environment.rank;
      options.world_size = environment.world_size;
      if (options.threads == 0) options.threads = std::max(1, default_thread_count() / environment.local_world_size);
    }
    DistributedOptions distributed;
    distributed.collective_timeout_seconds = state->distributed.timeout_seconds;
    const RunContext context = RunContext::join(environment, resolve_device(options.device), distributed);
    PredictRun run;
    try {
      run = predict_folder(state->input, state->output, state->model_dir, options);
    } catch (const Error& error) {
      context.report_failure(error.problem());
      throw;
    }
    bool all_ok = run.ok();
    if (context.distributed()) {
      torch::Tensor totals = torch::tensor({std::int64_t{run.predicted}, std::int64_t{run.skipped},
                                            static_cast<std::int64_t>(run.failures.size())}, torch::kInt64);
      context.all_reduce_sum(totals, "the prediction counts");
      if (!context.is_main()) {
        for (const auto& failure : run.failures) std::cerr << context.describe() << ": " << failure.case_id << ": " << failure.message << "\n";
        return run.ok() ? 0 : 1;
      }
      if (!state->common.json) std::cout << "all " << context.world_size() << " ranks: " << totals[0].item<std::int64_t>() << " predicted, "
                << totals[1].item<std::int64_t>() << " skipped, " << totals[2].item<std::int64_t>() << " failed"
                << " (the report below is rank 0's share)\n";
      all_ok = totals[2].item<std::int64_t>() == 0;
    }
    if (state->common.json) {
      std::cout << predict_run_to_json(run).dump(2) << "\n";
    } else if (!state->common.quiet || !run.ok()) {
      std::cout << format_predict_report(run);
    }
    return all_ok ? 0 : 1;
  });
}

const RegisterCommand registered(kOrderPredict, add_predict_command);
}  // namespace

}  // namespace mlseg::cli
