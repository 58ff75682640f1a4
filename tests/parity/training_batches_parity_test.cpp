// Parity (g): training batches end to end. mlseg's trainer pipeline (training_pipeline +
// PatchSampler + make_step_batch: sampling, augmentation, label interpolation, loss targets) against
// nnU-Net's nnUNetTrainer.get_dataloaders (nnUNetDataLoader + get_training_transforms), each side on
// its own preprocessing of the same raw cases with mlseg's plans.json. The parts are compared one by
// one elsewhere (sampler: e, augmentation: d, preprocessing: b); this compares what the loss sees
// after all of them together: per target channel how often a patch holds it and its share of the
// patch's voxels, per image channel the patches' mean and standard deviation. Each statistic is a
// mean over patches; the two sides must agree within kMaxZ standard errors of the difference.
// Peer: tests/parity/peer/training_batches.py.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

#include "mlseg/data/patch_sampler.h"
#include "mlseg/io/json_file.h"
#include "mlseg/training/run_context.h"
#include "mlseg/training/run_setup.h"
#include "mlseg/training/training_pipeline.h"
#include "parity/parity_support.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mlseg {
namespace {

/// Largest |difference of the two sides' means| / its standard error. Ten statistics per dataset:
/// under equal distributions all stay below 4 with probability > 0.999.
constexpr double kMaxZ = 4.0;
constexpr std::uint64_t kSeed = 1234;

/// Per patch: the statistics both sides write.
struct PatchStatistics {
  torch::Tensor present, fraction, image_mean, image_std;  // [N, K], [N, K], [N, C], [N, C] float64
};

PatchStatistics mlseg_batches(const fs::path& dataset, const fs::path& work, std::int64_t batches) {
  TrainOptions options;
  options.work_dir = work.string();
  options.configuration = "3d_fullres";
  options.fold = "all";
  options.seed = kSeed;
  options.show_progress = false;
  const RunContext context;
  const RunSetup run = prepare_run(dataset, options, context);
  const TrainingPipeline pipeline = training_pipeline(run, options);
  const PatchSampler sampler(*run.store, pipeline.sampler_options, run.fold.train);
  const bool classes = run.model.encoding.kind() != EncodingKind::sigmoid;
  const std::int64_t channels = static_cast<std::int64_t>(run.model.channel_names.size());
  std::vector<torch::Tensor> present, fraction, image_mean, image_std;
  for (std::int64_t i = 0; i < batches; ++i) {
    const Batch batch = make_step_batch(*run.store, sampler, pipeline.batch_options, run, i);
    const torch::Tensor image = batch.tensors.at(0).to(torch::kFloat64);
    torch::Tensor target = batch.tensors.at(1);  // full resolution: [B, K, ...] float, or [B, 1, ...] classes
    if (classes) {
      std::vector<torch::Tensor> one_hot;
      for (std::int64_t c = 1; c <= channels; ++c) one_hot.push_back(target.eq(c));
      target = torch::cat(one_hot, 1);
    }
    const torch::Tensor positive = target.gt(0).to(torch::kFloat64).flatten(2);
    present.push_back(positive.amax(2));
    fraction.push_back(positive.mean(2));
    image_mean.push_back(image.flatten(2).mean(2));
    image_std.push_back(image.flatten(2).std(2, /*unbiased=*/false));
  }
  return {torch::cat(present), torch::cat(fraction), torch::cat(image_mean), torch::cat(image_std)};
}

PatchStatistics nnunet_batches(const fs::path& dataset, const fs::path& plans, const std::vector<std::string>& cases, std::int64_t batches,
                               const fs::path& out) {
  std::vector<std::string> arguments{
      plans.string(), (dataset / "dataset.json").string(), "3d_fullres", out.string(), std::to_string(batches), std::to_string(kSeed)};
  for (const auto& spec : parity::raw_case_arguments(dataset, cases)) arguments.push_back(spec);
  const auto peer = parity::run_peer("training_batches.py", arguments, out);
  auto as_double = [&](const char* name) { return peer.array(name).to(torch::kFloat64); };
  return {as_double("present"), as_double("fraction"), as_double("image_mean"), as_double("image_std")};
}

/// z of the difference of two columns' means (Welch); 0 when both are constant and equal.
double difference_z(const torch::Tensor& a, const torch::Tensor& b) {
  const double difference = a.mean().item<double>() - b.mean().item<double>();
  const double variance = a.var().item<double>() / a.numel() + b.var().item<double>() / b.numel();
  if (variance <= 0) return difference == 0 ? 0.0 : INFINITY;
  return difference / std::sqrt(variance);
}

void compare(const fs::path& source, const std::vector<std::string>& cases, const std::string& plan_flags, std::int64_t batches,
             const std::string& what) {
  testing::TempDir tmp;
  const fs::path dataset = parity::link_dataset_subset(source, cases, tmp / "ds");
  const fs::path work = tmp / "work";
  auto r = testing::run_mlseg("plan '" + dataset.string() + "' --work-dir '" + work.string() + "' -q " + plan_flags);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path plans_path = work / "ds" / "plans.json";
  {  // A small patch and batch keep the peer's augmentation affordable; both sides read these plans.
    auto plans = read_json_file(plans_path);
    auto& configuration = plans["configurations"]["3d_fullres"];
    if (configuration["patch_size"][0].get<int>() > 64) configuration["patch_size"] = {64, 64, 64};
    configuration["batch_size"] = 2;
    parity::write_json(plans_path, plans);
  }
  r = testing::run_mlseg("preprocess '" + dataset.string() + "' -c 3d_fullres --work-dir '" + work.string() + "' -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  const PatchStatistics ours = mlseg_batches(dataset, work, batches);
  const PatchStatistics theirs = nnunet_batches(dataset, plans_path, cases, batches, tmp / "peer");
  ASSERT_EQ(ours.present.sizes(), theirs.present.sizes()) << "patches x target channels";
  ASSERT_EQ(ours.image_mean.sizes(), theirs.image_mean.sizes()) << "patches x image channels";

  std::ostringstream report;
  report << "[parity] " << what << ", " << ours.present.size(0) << " patches per side (mlseg | nnU-Net):";
  double worst = 0;
  auto check = [&](const torch::Tensor& a, const torch::Tensor& b, const std::string& name) {
    const double z = difference_z(a, b);
    worst = std::max(worst, std::abs(z));
    EXPECT_LE(std::abs(z), kMaxZ) << what << ": " << name << " mlseg " << a.mean().item<double>() << " vs nnU-Net "
                                  << b.mean().item<double>() << " (nnUNetTrainer.get_dataloaders, z = " << z << ")";
    report << "\n  " << name << " " << a.mean().item<double>() << " | " << b.mean().item<double>() << " (z " << z << ")";
  };
  for (std::int64_t k = 0; k < ours.present.size(1); ++k) {
    const std::string channel = "target channel " + std::to_string(k);
    check(ours.present.select(1, k), theirs.present.select(1, k), channel + ": patches holding it");
    check(ours.fraction.select(1, k), theirs.fraction.select(1, k), channel + ": share of voxels");
  }
  for (std::int64_t c = 0; c < ours.image_mean.size(1); ++c) {
    const std::string channel = "image channel " + std::to_string(c);
    check(ours.image_mean.select(1, c), theirs.image_mean.select(1, c), channel + ": patch mean");
    check(ours.image_std.select(1, c), theirs.image_std.select(1, c), channel + ": patch std");
  }
  std::cout << report.str() << "\n  largest |z| " << worst << "\n";
}

TEST(ParityTrainingBatches, BratsRegionsCarryWhatNnUNetsDataLoaderCarries) {
  MLSEG_REQUIRE_SHARED_DATA();
  MLSEG_REQUIRE_PEER();
  compare(testing::shared_data_dir() / "Dataset001_BraTS2015", {"BRATS_0002", "BRATS_0005"}, "--encoding sigmoid", 400, "BraTS regions");
}

TEST(ParityTrainingBatches, HippocampusLabelsCarryWhatNnUNetsDataLoaderCarries) {
  MLSEG_REQUIRE_SHARED_DATA();
  MLSEG_REQUIRE_PEER();
  compare(testing::shared_data_dir() / "Dataset004_Hippocampus", {"hippocampus_001", "hippocampus_003", "hippocampus_004"}, "", 400,
          "Hippocampus labels");
}

}  // namespace
}  // namespace mlseg
