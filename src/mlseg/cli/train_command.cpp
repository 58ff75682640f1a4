// mlseg train DATASET_DIR -c CONFIG -f FOLD: one fold of nnU-Net-style training with NaN-free,
// coverage-checked validation.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/core/parallel.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/evaluation/evaluation_report.h"
#include "mlseg/evaluation/final_validation.h"
#include "mlseg/io/dataset.h"
#include "mlseg/metrics/empty_policy.h"
#include "mlseg/nn/device.h"
#include "mlseg/training/run_context.h"
#include "mlseg/training/trainer.h"

namespace mlseg::cli {
namespace {

// nnU-Net's final validation after a finished run: whole validation cases, sliding window, every
// metric. Ranks predict their share; rank 0 scores them all and returns the result.
std::optional<FinalValidation> run_final_validation_share(const std::string& dataset, const TrainResult& result,
                                                          const TrainOptions& options, bool skip, bool save_probabilities,
                                                          const RunContext& context) {
  const bool finished = result.stop_reason.rfind("stopped after", 0) != 0;
  if (!finished || skip || options.fold == "all") return std::nullopt;
  if (context.is_main()) {
    std::cout << "\nfinal validation: predicting the fold's validation cases with checkpoint_final\n" << std::flush;
  }
  FinalValidationOptions final_options;
  final_options.device = options.device;
  final_options.precision = to_string(options.precision);
  final_options.save_probabilities = save_probabilities;
  final_options.threads = options.threads > 0 ? options.threads : std::max(1, default_thread_count() / context.local_world_size());
  final_options.show_progress = options.show_progress && context.is_main();
  final_options.rank = context.rank();
  final_options.world_size = context.world_size();
  if (context.distributed()) final_options.wait_for_ranks = [&context] { context.barrier("final validation"); };
  // checkpoint_final is rank 0's to write: the others read it only after it is there.
  context.barrier("checkpoint_final");
  try {
    const auto dataset_work = dataset_work_dir(resolve_work_dir(options.work_dir), load_dataset(dataset).name);
    FinalValidation validation =
        run_final_validation(dataset, result.fold_dir, fold_validation_cases(dataset_work, options.fold), final_options);
    if (!context.is_main()) return std::nullopt;
    return validation;
  } catch (const Error& error) {
    context.report_failure(error.problem());
    throw;
  }
}

void add_train_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    std::string dataset;
    TrainOptions options;
    std::string val_iterations = std::to_string(kDefaultValidationIterations);
    std::string val_mode = "patches";
    std::string precision = "fp32";
    std::string optimizer = "sgd";
    std::string empty_policy = to_string(kDefaultEmptyPolicy);
    std::string sampling = "plan";
    std::string loader_workers = "auto";
    std::uint64_t seed = kDefaultTrainingSeed;
    double lr = 0;
    bool skip_final_validation = false;
    bool save_probabilities = false;
    CommonFlags common;
    DistributedFlags distributed;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "train", "Train one fold -> WORK/<dataset>/results/<config>/fold_<k>/ (checkpoints, log.jsonl, progress.svg)");
  TrainOptions& o = state->options;
  command->add_option("dataset", state->dataset, "Raw dataset folder")->required();
  command->add_option("-c,--configuration", o.configuration, "Configuration of plans.json")->capture_default_str();
  command->add_option("-f,--fold", o.fold, "Fold of splits_final.json (0-4), or all")->capture_default_str();
  command->add_option("--epochs", o.epochs, "Epochs (nnU-Net: 1000)")->capture_default_str();
  command->add_option("--iters-per-epoch", o.iterations_per_epoch, "Training iterations per epoch (nnU-Net: 250)")
      ->capture_default_str();
  command->add_option("--val-iterations", state->val_iterations,
                      "Validation batches per pass (nnU-Net: 50), or auto: as many as per-channel coverage needs")
      ->capture_default_str();
  command->add_option("--val-min-patches-per-channel", o.val_min_patches_per_channel,
                      "Fixed validation patches centred on each channel present in the validation cases")
      ->capture_default_str();
  command->add_option("--val-mode", state->val_mode, "patches (fixed patch set) | full (whole validation cases by sliding window) | both")
      ->capture_default_str();
  command->add_option("--val-every", o.val_every, "Validate every N epochs (and after the last)")->capture_default_str();
  command->add_flag("--nnunet-compatible-validation", o.nnunet_compatible_validation,
                    "Validate like nnU-Net: fresh random foreground-biased batches every epoch (undefined Dice still n/a)");
  command->add_option("--empty-policy", state->empty_policy, "What n/a Dice becomes in the mean: exclude | one | zero")
      ->capture_default_str();
  command->add_option("--time-budget-min", o.time_budget_minutes,
                      "Stop cleanly (validation, checkpoint_final) when this many minutes are spent; 0 = no limit")
      ->capture_default_str();
  command->add_option("--precision", state->precision, "fp32 | bf16 (autocast)")->capture_default_str();
  command->add_option("--device", o.device, kDeviceFlagHelp)->capture_default_str();
  command->add_option("--optimizer", state->optimizer, "sgd (Nesterov, nnU-Net) | adamw")->capture_default_str();
  command->add_option("--lr", state->lr, "Initial learning rate (default: 1e-2, nnU-Net's)");
  command->add_option("--sampling", state->sampling,
                      "Forced-patch channel choice: plan (plans.json remedies.sampling) | uniform (nnU-Net) | "
                      "inverse_frequency (plans.json sampling_weights)")
      ->capture_default_str();
  command->add_flag("--nnunet-defaults", o.remedies.nnunet_defaults,
                    "nnU-Net's behaviour: no remedies for rare channels (uniform forced-channel choice, no loss weights)");
  command->add_option("--checkpoint-every", o.checkpoint_every, "checkpoint_latest every N epochs (nnU-Net: 50)")
      ->capture_default_str();
  command->add_option("--loader-workers", state->loader_workers, "Data loader threads: N, or auto = cores - 1 (at least 1)")
      ->capture_default_str();
  command->add_option("--seed", state->seed, "Seed of sampling, augmentation and the validation set")->capture_default_str();
  command->add_flag("--resume", o.resume, "Continue from checkpoint_latest.pt exactly");
  command->add_option("--stop-after-epoch", o.stop_after_epoch,
                      "End this run after epoch N with checkpoint_latest (train in chunks; --resume continues)");
  command->add_flag("--overwrite", o.overwrite, "Start over in a fold folder that already holds a run");
  command->add_flag("--skip-final-validation", state->skip_final_validation,
                    "Do not predict and score the whole validation cases after the last epoch (nnU-Net does)");
  command->add_flag("--save-probabilities", state->save_probabilities,
                    "Final validation also writes each case's probabilities (nnU-Net's --npz), for find-best-config's ensembles");
  command->add_option("--work-dir", o.work_dir, "Work folder (default: $MLSEG_WORK, else ./mlseg_work)");
  add_common_flags(*command, state->common, false);
  add_distributed_flags(*command, state->distributed);

  registry.add(command, [state] {
    if (const std::optional<int> launched = launch_ranks_if_requested(state->distributed)) return *launched;
    TrainOptions options = state->options;
    options.seed = state->seed;
    if (state->val_iterations == "auto") {
      options.val_iterations_auto = true;
    } else {
      try {
        options.val_iterations = std::stoll(state->val_iterations);
      } catch (const std::exception&) {
        throw Error("--val-iterations " + state->val_iterations + " is not a number", "pass a positive number or auto");
      }
      if (options.val_iterations < 1) throw Error("--val-iterations must be at least 1", "pass a positive number or auto");
    }
    options.val_mode = parse_validation_mode(state->val_mode);
    options.loader_workers = parse_loader_workers(state->loader_workers);
    options.precision = parse_precision(state->precision);
    options.optimizer.kind(parse_optimizer_kind(state->optimizer));
    if (state->lr > 0) options.optimizer.initial_lr(state->lr);
    const auto policy = parse_empty_policy(state->empty_policy);
    if (!policy) throw Error("unknown --empty-policy '" + state->empty_policy + "'", "use exclude, one or zero");
    options.empty_policy = *policy;
    options.remedies.sampling = parse_sampling_choice(state->sampling);
    options.threads = state->common.threads;
    options.show_progress = !state->common.quiet;
    // One rank of a multi-process run (torchrun's variables) joins its group; else one process.
    const LaunchEnvironment environment = launch_environment();
    if (environment.distributed()) options.device = resolve_device_for_rank(options.device, environment.local_rank).str();
    DistributedOptions distributed;
    distributed.collective_timeout_seconds = state->distributed.timeout_seconds;
    const RunContext context = RunContext::join(environment, resolve_device(options.device), distributed);
    TrainResult result;
    try {
      result = train(state->dataset, options, context);
    } catch (const Error& error) {
      context.report_failure(error.problem());  // lets the other ranks name this one
      throw;
    }
    if (!context.is_main()) {
      run_final_validation_share(state->dataset, result, options, state->skip_final_validation, state->save_probabilities, context);
      return 0;
    }
    std::cout << "trained " << result.epochs_completed << " epochs (stopped: " << result.stop_reason << ") in "
              << format_duration(result.seconds);
    if (result.best_ema) {
      std::cout << "; best EMA Dice " << *result.best_ema << " at epoch " << result.best_epoch + 1;
    } else {
      std::cout << "; no finite validation Dice yet (best checkpoint not written)";
    }
    if (result.skipped_steps > 0) std::cout << "; " << result.skipped_steps << " non-finite steps skipped";
    std::cout << "\n";
    if (result.final_validation) {
      const ValidationResult& v = *result.final_validation;
      std::cout << "last validation: mean Dice "
                << format_mean(v.mean_dice, v.channels_in_mean, static_cast<int>(v.channel_names.size())) << "\n";
      for (std::size_t c = 0; c < v.channel_names.size(); ++c) {
        std::cout << "  " << v.channel_names[c] << ": " << v.dice[c].format(4) << "\n";
      }
    }
    std::cout << "outputs: " << result.fold_dir.string() << " (checkpoint_final.pt, checkpoint_best.pt, log.jsonl, progress.svg)\n";
    if (const std::optional<FinalValidation> validation =
            run_final_validation_share(state->dataset, result, options, state->skip_final_validation, state->save_probabilities, context)) {
      if (options.show_progress) std::cout << format_evaluation_report(validation->evaluation);
      std::cout << "final validation: " << (validation->folder / "summary.json").string() << "\n";
    }
    return 0;
  });
}

const RegisterCommand registered(kOrderTrain, add_train_command);
}  // namespace

}  // namespace mlseg::cli
