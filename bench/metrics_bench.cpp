// issue 4's workload: 20 synthetic 160³ cases, 3 nested regions, predictions = an independent
// phantom (different seed) with the same case names and grid. 2 threads throughout.
//   ./build/bench/mlseg_bench --benchmark_filter=Evaluate
// nnU-Net's compute_metrics_on_folder (1 process, Dice/IoU): 2.15 s end to end, 1.05 s in-process
// of which 0.20 s reading files.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "mlseg/core/parallel.h"
#include "mlseg/evaluation/evaluate.h"
#include "mlseg/evaluation/evaluation_report.h"
#include "mlseg/io/case_reader.h"
#include "mlseg/io/dataset.h"
#include "mlseg/metrics/case_metrics.h"
#include "mlseg/metrics/surface_metrics.h"
#include "mlseg/synth/phantom.h"

namespace {
namespace fs = std::filesystem;

constexpr int kThreads = 2;
constexpr int kCases = 20;

struct EvaluateWorkload {
  fs::path root = fs::temp_directory_path() / "mlseg_bench_evaluate_160";
  fs::path reference = root / "reference";
  fs::path prediction = root / "prediction";
  fs::path output = root / "out" / "summary.json";

  EvaluateWorkload() {
    if (fs::exists(root / "ready")) return;
    fs::remove_all(root);
    mlseg::PhantomOptions options;
    options.num_cases = kCases;
    options.shape_zyx = {160, 160, 160};
    options.spacing_zyx_mm = {1.0, 1.0, 1.0};
    options.num_channels = 3;
    options.label_format = mlseg::PhantomLabelFormat::regions;
    options.show_progress = false;
    mlseg::write_phantom_dataset(reference, options);
    options.seed += 1;
    mlseg::write_phantom_dataset(prediction, options);
    fs::create_directories(root / "out");
    std::ofstream(root / "ready") << "ok\n";
  }
};

const EvaluateWorkload& workload() {
  static const EvaluateWorkload instance;
  return instance;
}

mlseg::EvaluateOptions options_for(const std::string& metrics) {
  mlseg::EvaluateOptions options;
  options.metrics = metrics;
  options.threads = kThreads;
  options.show_progress = false;
  return options;
}

// Read, score, aggregate and write summary.json + CSV (what `mlseg evaluate` does, minus startup).
void BM_EvaluateEndToEnd(benchmark::State& state, const std::string& metrics) {
  const EvaluateWorkload& w = workload();
  const mlseg::EvaluateOptions options = options_for(metrics);
  for (auto _ : state) {
    const auto result = mlseg::evaluate_folders(w.reference, w.prediction / "labelsTr", options);
    mlseg::write_evaluation_outputs(result, w.output);
  }
}
BENCHMARK_CAPTURE(BM_EvaluateEndToEnd, dice_iou, std::string("dice,iou"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EvaluateEndToEnd, dice_iou_hd95_nsd, std::string("dice,iou,hd95,nsd"))
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// The command as users run it, in a new process each time: start-up (the mlseg executable does
// not load LibTorch), reading, scoring, summary.json + CSV. nnU-Net: 2.15 s.
void BM_EvaluateCommand(benchmark::State& state, const std::string& metrics) {
  const EvaluateWorkload& w = workload();
  const std::string command = std::string(MLSEG_EXECUTABLE) + " evaluate --ref '" + w.reference.string() +
                              "' --pred '" + (w.prediction / "labelsTr").string() + "' --metrics " + metrics +
                              " --threads " + std::to_string(kThreads) + " -q -o '" + w.output.string() + "' > /dev/null";
  for (auto _ : state) {
    if (std::system(command.c_str()) != 0) state.SkipWithError(("failed: " + command).c_str());
  }
}
BENCHMARK_CAPTURE(BM_EvaluateCommand, dice_iou, std::string("dice,iou"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EvaluateCommand, dice_iou_hd95_nsd, std::string("dice,iou,hd95,nsd"))
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Scoring alone: codes already in memory, count + metrics + aggregation over 20 cases.
struct InMemoryCases {
  std::vector<mlseg::CaseLabels> reference, prediction;
  std::vector<int> channels{0, 1, 2};
  InMemoryCases() {
    const EvaluateWorkload& w = workload();
    const mlseg::Dataset ref_dataset = mlseg::load_dataset(w.reference);
    const mlseg::Dataset pred_dataset = mlseg::load_dataset(w.prediction);
    for (std::size_t i = 0; i < ref_dataset.training.size(); ++i) {
      reference.push_back(mlseg::read_case_labels(ref_dataset, ref_dataset.training[i]));
      prediction.push_back(mlseg::read_case_labels(pred_dataset, pred_dataset.training[i]));
    }
  }
};

void BM_EvaluateInProcessScoring(benchmark::State& state, const std::string& metrics) {
  static const InMemoryCases cases;
  mlseg::EvaluateOptions options = options_for(metrics);
  mlseg::CaseMetricOptions case_options;
  case_options.metrics = mlseg::parse_metric_selection(metrics);
  case_options.surface.threads = 1;
  for (auto _ : state) {
    mlseg::EvaluationResult result;
    result.options = options;
    result.metrics = case_options.metrics;
    result.cases.resize(cases.reference.size());
    mlseg::parallel_for(cases.reference.size(), kThreads, [&](std::size_t i) {
      result.cases[i].channels = mlseg::case_metrics(cases.prediction[i].code, cases.reference[i].code,
                                                     cases.reference[i].geometry.spacing_zyx_mm, cases.channels, case_options);
    });
    for (int c : cases.channels) result.channels.push_back({c, "channel" + std::to_string(c), std::nullopt, {}, {}, {}});
    mlseg::summarize_evaluation(result);
    benchmark::DoNotOptimize(result.foreground_mean.size());
  }
}
BENCHMARK_CAPTURE(BM_EvaluateInProcessScoring, dice_iou, std::string("dice,iou"))
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EvaluateInProcessScoring, dice_iou_hd95, std::string("dice,iou,hd95"))
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EvaluateInProcessScoring, dice_iou_hd95_nsd, std::string("dice,iou,hd95,nsd"))
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Surface metrics alone: the three channels of every case, one thread. Per case, the body channel
// is a ~130 x 145 x 145 box with ~47k boundary voxels per mask and dominates.
void BM_SurfaceMetricsSerial(benchmark::State& state) {
  static const InMemoryCases cases;
  mlseg::SurfaceMetricOptions options;
  options.threads = 1;
  for (auto _ : state) {
    for (std::size_t i = 0; i < cases.reference.size(); ++i) {
      const auto metrics = mlseg::surface_metrics_codes(cases.prediction[i].code, cases.reference[i].code,
                                                        cases.reference[i].geometry.spacing_zyx_mm, cases.channels, options);
      benchmark::DoNotOptimize(metrics.data());
    }
  }
}
BENCHMARK(BM_SurfaceMetricsSerial)->Unit(benchmark::kMillisecond)->UseRealTime();

// Reading alone (both folders into codes, 2 threads): the part nnU-Net spends 0.20 s on.
void BM_EvaluateReadingOnly(benchmark::State& state) {
  const EvaluateWorkload& w = workload();
  const mlseg::Dataset ref_dataset = mlseg::load_dataset(w.reference);
  const mlseg::Dataset pred_dataset = mlseg::load_dataset(w.prediction);
  for (auto _ : state) {
    mlseg::parallel_for(ref_dataset.training.size(), kThreads, [&](std::size_t i) {
      benchmark::DoNotOptimize(mlseg::read_case_labels(ref_dataset, ref_dataset.training[i]).code.words.data_ptr());
      benchmark::DoNotOptimize(mlseg::read_case_labels(pred_dataset, pred_dataset.training[i]).code.words.data_ptr());
    });
  }
}
BENCHMARK(BM_EvaluateReadingOnly)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
