// mlseg demo: the whole pipeline on a synthetic multi-label dataset that reproduces the seed
// scenario (10 bit-encoded channels: nested, overlapping and rare structures, rare combinations
// in a handful of cases), or on a real dataset with --dataset, in about --minutes on a CPU:
// synth → verify → analyze → plan → preprocess → train → predict → evaluate → report.
#include <CLI/CLI.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "mlseg/analysis/analyze.h"
#include "mlseg/cli/commands.h"
#include "mlseg/core/error.h"
#include "mlseg/core/progress.h"
#include "mlseg/core/work_dir.h"
#include "mlseg/evaluation/evaluation_report.h"
#include "mlseg/evaluation/final_validation.h"
#include "mlseg/io/dataset.h"
#include "mlseg/io/json_file.h"
#include "mlseg/planning/planner.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/report/html_report.h"
#include "mlseg/synth/phantom.h"
#include "mlseg/training/trainer.h"
#include "mlseg/verify/verify.h"

namespace mlseg::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// --minutes: the whole demo's wall-clock target on a 2-core CPU.
constexpr double kDefaultDemoMinutes = 8.0;
/// Minutes the stages other than training take on the demo dataset (measured on 2 cores).
constexpr double kDemoOverheadMinutes = 2.0;
constexpr int kDemoChannels = 10;
constexpr int kDemoCases = 20;
constexpr int kDemoTestCases = 2;
/// "rare" is in 5 of the 20 cases: one in each fold's validation set (stratified folds).
constexpr int kDemoRareEvery = 4;
/// Volumes several times the patch, so where patches are centred matters.
constexpr std::array<std::int64_t, 3> kDemoShapeZyx{40, 112, 112};
/// A quarter of --preset cpu's budget: with the small network a patch of about 32x64x64, a quarter
/// of the volume, and about 1 s per iteration on 2 cores.
constexpr double kDemoCpuBudgetFraction = 1.0 / 64;
/// The phantom's encoding (a real --dataset keeps analyze's recommendation).
constexpr const char* kDemoEncoding = "sigmoid";
/// A small network (8 → 64 features) so a CPU trains it for many iterations in a few minutes.
constexpr int kDemoBaseFeatures = 8;
constexpr int kDemoMaxFeatures = 64;
constexpr std::int64_t kDemoIterationsPerEpoch = 25;
constexpr std::int64_t kDemoValIterations = 10;
constexpr std::int64_t kDemoValMinPatches = 3;
constexpr const char* kDemoDatasetName = "Dataset901_MultiLabelDemo";

struct DemoOptions {
  fs::path out = "mlseg_demo";  ///< --out
  double minutes = kDefaultDemoMinutes;
  fs::path dataset;             ///< --dataset: a real nnU-Net-layout dataset instead of the phantom
  std::string fold = "0";
  int threads = 0;
  bool quiet = false;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class StageLine {
 public:
  StageLine(int index, const char* name) : index_(index), name_(name), start_(Clock::now()) {
    std::cout << "[" << index_ << "/9] " << name_ << " ..." << std::endl;
  }
  void done(const std::string& detail) {
    std::cout << "[" << index_ << "/9] " << name_ << ": " << detail << " (" << format_duration(seconds_since(start_)) << ")"
              << std::endl;
  }

 private:
  int index_;
  const char* name_;
  Clock::time_point start_;
};

int run_demo(const DemoOptions& options) {
  const auto start = Clock::now();
  const fs::path out = fs::absolute(options.out);
  const fs::path work = out / "work";
  fs::create_directories(out);
  fs::path dataset_dir = options.dataset;
  const bool phantom = dataset_dir.empty();
  std::cout << "mlseg demo: " << (phantom ? "synthetic multi-label dataset" : dataset_dir.string()) << ", about "
            << options.minutes << " min, outputs in " << out.string() << "\n\n";

  {
    StageLine line(1, "synth");
    if (phantom) {
      dataset_dir = out / "raw" / kDemoDatasetName;
      fs::remove_all(dataset_dir);
      PhantomOptions synth;
      synth.num_cases = kDemoCases;
      synth.num_test_cases = kDemoTestCases;
      synth.num_channels = kDemoChannels;
      synth.label_format = PhantomLabelFormat::bitmask;
      synth.rare_every = kDemoRareEvery;
      synth.shape_zyx = kDemoShapeZyx;
      synth.dataset_name = kDemoDatasetName;
      synth.threads = options.threads;
      synth.show_progress = false;
      write_phantom_dataset(dataset_dir, synth);
      line.done(std::to_string(kDemoCases) + " cases with " + std::to_string(kDemoChannels) +
                " bit-encoded channels (nested, overlapping, rare) -> " + dataset_dir.string());
    } else {
      line.done("skipped: using " + dataset_dir.string());
    }
  }
  {
    StageLine line(2, "verify");
    VerifyOptions verify;
    verify.threads = options.threads;
    verify.show_progress = false;
    const VerifyReport report = verify_dataset(dataset_dir, verify);
    if (report.num_errors() > 0) {
      std::cout << format_verify_report(report);
      throw Error("the dataset has " + std::to_string(report.num_errors()) + " error(s)", "fix them (listed above) and rerun");
    }
    line.done(std::to_string(report.num_training_cases) + " cases, " + std::to_string(report.channels.size()) +
              " channels, 0 errors, " + std::to_string(report.num_warnings()) + " warnings");
  }
  {
    StageLine line(3, "analyze");
    AnalyzeOptions analyze;
    analyze.work_dir = work.string();
    analyze.threads = options.threads;
    analyze.show_progress = false;
    analyze.overwrite_splits = true;
    const AnalysisResult analysis = analyze_dataset(dataset_dir, analyze);
    line.done(std::to_string(analysis.channels.size()) + " channels, " + std::to_string(analysis.warnings.size()) +
              " warnings (rare channels and combinations, folds without a channel); stratified folds written");
  }
  {
    StageLine line(4, "plan");
    PlanOptions plan;
    plan.work_dir = work.string();
    plan.preset = PlanPreset::cpu;
    plan.base_features = kDemoBaseFeatures;
    plan.cpu_budget_fraction = kDemoCpuBudgetFraction;
    // Measured (bench/rare_channel.sh): in a few hundred iterations one sigmoid output per channel
    // learns far faster than powerset's softmax over ~30 combinations; the phantom needs no more.
    if (phantom) plan.encoding = kDemoEncoding;
    plan.max_features_3d = plan.max_features_2d = kDemoMaxFeatures;
    plan.show_progress = false;
    const PlanRun run = plan_dataset(dataset_dir, plan);
    const auto& configurations = run.json["configurations"];
    const std::string configuration = configurations.contains("3d_fullres") ? "3d_fullres" : "2d";
    line.done(configuration + " patch " + configurations[configuration]["patch_size"].dump() + ", batch " +
              configurations[configuration]["batch_size"].dump() + ", " +
              run.json.value("label_encoding", std::string("sigmoid")) + " encoding, a small U-Net (" +
              std::to_string(kDemoBaseFeatures) + "-" + std::to_string(kDemoMaxFeatures) + " features) for the CPU");
  }
  const Dataset dataset = load_dataset(dataset_dir);
  const fs::path dataset_work = dataset_work_dir(work, dataset.name);
  const PlansFile plans = read_plans(dataset_work / "plans.json");
  const std::string configuration = plans.has_configuration("3d_fullres") ? "3d_fullres" : "2d";
  {
    StageLine line(5, "preprocess");
    PreprocessOptions preprocess;
    preprocess.work_dir = work.string();
    preprocess.configurations = {configuration};
    preprocess.threads = options.threads;
    preprocess.show_progress = false;
    preprocess.overwrite = true;
    const PreprocessRun run = preprocess_dataset(dataset_dir, preprocess);
    if (!run.ok()) {
      std::cout << format_preprocess_report(run);
      throw Error("preprocessing failed", "see the cases listed above");
    }
    line.done(std::to_string(run.configurations.at(0).preprocessed) + " cases -> " + run.configurations.at(0).store_dir.string());
  }
  TrainResult trained;
  {
    StageLine line(6, "train");
    TrainOptions train_options;
    train_options.work_dir = work.string();
    train_options.configuration = configuration;
    train_options.fold = options.fold;
    train_options.epochs = kDefaultEpochs;
    train_options.iterations_per_epoch = kDemoIterationsPerEpoch;
    train_options.val_iterations = kDemoValIterations;
    train_options.val_iterations_auto = true;
    train_options.val_min_patches_per_channel = kDemoValMinPatches;
    const double elapsed_min = seconds_since(start) / 60.0;
    train_options.time_budget_minutes = std::max(0.5, options.minutes - kDemoOverheadMinutes - elapsed_min);
    train_options.threads = options.threads;
    train_options.overwrite = true;
    train_options.checkpoint_every = kDefaultCheckpointEvery;
    train_options.show_progress = !options.quiet;
    std::cout << "      training fold " << options.fold << " for " << std::fixed << std::setprecision(1)
              << train_options.time_budget_minutes << " min (--time-budget-min), validating a fixed stratified patch set every epoch\n";
    std::cout.unsetf(std::ios::fixed);
    trained = train(dataset_dir, train_options);
    line.done(std::to_string(trained.epochs_completed) + " epochs x " + std::to_string(kDemoIterationsPerEpoch) +
              " iterations, best EMA Dice " +
              (trained.best_ema ? format_mean(trained.best_ema, 0, 0).substr(0, 6) : std::string("n/a (none yet)")));
  }
  FinalValidation validation;
  {
    StageLine line(7, "predict");
    FinalValidationOptions final_options;
    final_options.threads = options.threads;
    final_options.show_progress = false;
    final_options.metrics = "dice,iou,hd95,nsd";
    // nnU-Net's final validation mirrors 8x: 3.7 of the demo's 8 minutes on 2 cores at 40x112x112.
    final_options.predict.use_mirroring = false;
    validation = run_final_validation(dataset_dir, trained.fold_dir, fold_validation_cases(dataset_work, options.fold),
                                      final_options);
    line.done(std::to_string(validation.prediction.predicted) + " validation cases, whole, by sliding window (no mirroring, to save the demo's minutes) -> " +
              validation.folder.string());
  }
  {
    StageLine line(8, "evaluate");
    line.done("per case and per channel, every metric -> " + (validation.folder / "summary.json").string());
  }
  const fs::path report_path = out / "report.html";
  {
    StageLine line(9, "report");
    ReportOptions report;
    report.raw_dataset_dir = dataset_dir;
    report.fold = options.fold;
    write_report(dataset_work, report_path, report);
    line.done(report_path.string());
  }

  // The summary: each channel's Dice beside the remedies that acted on it.
  std::ostringstream dice_table;
  int defined = 0;
  const Remedies& remedies = trained.remedies;
  for (std::size_t c = 0; c < validation.evaluation.channels.size(); ++c) {
    const ChannelSummary& channel = validation.evaluation.channels[c];
    const auto found = channel.aggregates.find(Metric::dice);
    if (found == channel.aggregates.end()) continue;
    if (found->second.mean.defined()) ++defined;
    std::ostringstream remedy;
    remedy << std::fixed << std::setprecision(2);
    if (remedies.sample_channels_by_weight && channel.channel < static_cast<int>(remedies.sampling_weights.size())) {
      remedy << "sampling weight " << remedies.sampling_weights[static_cast<std::size_t>(channel.channel)];
    }
    if (!remedies.bce_pos_weight.empty()) {
      remedy << (remedy.tellp() > 0 ? ", " : "") << "pos_weight " << remedies.bce_pos_weight[static_cast<std::size_t>(channel.channel)];
    }
    if (!remedies.loss_channel_weights.empty()) {
      remedy << (remedy.tellp() > 0 ? ", " : "") << "loss weight " << remedies.loss_channel_weights[static_cast<std::size_t>(channel.channel)];
    }
    char row[160];
    std::snprintf(row, sizeof row, "    %-12s %-24s %s\n", channel.name.c_str(), found->second.mean.format(2).c_str(),
                  remedy.tellp() > 0 ? remedy.str().c_str() : "-");
    dice_table << row;
  }
  std::vector<std::string> absent;
  if (trained.final_validation) {
    for (std::size_t c = 0; c < trained.final_validation->channel_names.size(); ++c) {
      const MetricValue& d = trained.final_validation->dice[c];
      if (!d.defined() && d.reason() == UndefinedReason::absent_from_validation) absent.push_back(trained.final_validation->channel_names[c]);
    }
  }
  std::ostringstream absent_line;
  for (const std::string& a : absent) absent_line << (absent_line.tellp() > 0 ? ", " : "") << a;
  std::cout << "\nSummary (" << format_duration(seconds_since(start)) << ")\n";
  std::cout << "  " << trained.encoding << " encoding; " << remedies.summary() << "\n";
  for (const std::string& line : remedies.active) std::cout << "    " << line << "\n";
  std::cout << "  validation Dice per channel (whole cases, mean over cases) and the remedies on it:\n" << dice_table.str();
  std::cout << "  channels with a Dice: " << defined << " of " << validation.evaluation.channels.size()
            << "; absent from fold " << options.fold << "'s validation cases: "
            << (absent.empty() ? std::string("none") : absent_line.str() + " (reported as n/a (absent_from_validation), never NaN)") << "\n";
  std::cout << "  no NaN anywhere: undefined values carry their reason in the console, log.jsonl and summary.json\n";
  std::cout << "  model: " << trained.fold_dir.string() << "\n";
  std::cout << "  report: " << report_path.string() << "  (open it in a browser)\n";
  return 0;
}

void add_demo_command(CLI::App& app, CommandRegistry& registry) {
  struct State {
    DemoOptions options;
    CommonFlags common;
  };
  auto state = std::make_shared<State>();
  CLI::App* command = app.add_subcommand(
      "demo", "The whole pipeline on a synthetic 10-channel multi-label dataset (or --dataset) in a few minutes on a CPU");
  command->add_option("--out", state->options.out, "Output folder (dataset, work folder, report.html)")->capture_default_str();
  command->add_option("--minutes", state->options.minutes, "Wall-clock target of the whole demo")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--dataset", state->options.dataset, "Run on this nnU-Net-layout dataset instead of the phantom");
  command->add_option("-f,--fold", state->options.fold, "Fold to train and validate")->capture_default_str();
  add_common_flags(*command, state->common, false);
  registry.add(command, [state] {
    DemoOptions options = state->options;
    options.threads = state->common.threads;
    options.quiet = state->common.quiet;
    return run_demo(options);
  });
}

const RegisterCommand registered(kOrderDemo, add_demo_command);
}  // namespace

}  // namespace mlseg::cli
