#pragma once
// A tiny preprocessed phantom with a network small enough to train in seconds on a CPU, for the
// trainer's tests: synth → preprocess (which runs analyze and plan), then plans.json's
// 3d_fullres shrunk to a 3-stage, 4-feature network on 8x16x16 patches.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "mlseg/io/json_file.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/planning/planner.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace mlseg::testing {

struct TinyTrainingDataset {
  std::filesystem::path raw;   ///< raw dataset folder
  std::filesystem::path work;  ///< --work-dir
  std::filesystem::path dataset_work;
};

inline void shrink_plans_network(const std::filesystem::path& plans_path) {
  nlohmann::ordered_json plans = read_json_file(plans_path);
  auto& config = plans["configurations"]["3d_fullres"];
  config["patch_size"] = {8, 16, 16};
  config["batch_size"] = 2;
  auto& kwargs = config["architecture"]["arch_kwargs"];
  kwargs["n_stages"] = 3;
  kwargs["features_per_stage"] = {4, 8, 16};
  kwargs["kernel_sizes"] = {{3, 3, 3}, {3, 3, 3}, {3, 3, 3}};
  kwargs["strides"] = {{1, 1, 1}, {2, 2, 2}, {2, 2, 2}};
  kwargs["n_conv_per_stage"] = {1, 1, 1};
  kwargs["n_conv_per_stage_decoder"] = {1, 1};
  write_json_file(plans_path, plans);
}

/// `channels` phantom channels in `format`, `cases` cases of 16x24x24, preprocessed, tiny network.
inline TinyTrainingDataset make_tiny_training_dataset(const std::filesystem::path& dir, int channels,
                                                      PhantomLabelFormat format, int cases = 8) {
  TinyTrainingDataset out;
  out.raw = dir / "raw" / "Dataset900_Phantom";
  out.work = dir / "work";
  out.dataset_work = out.work / "Dataset900_Phantom";
  PhantomOptions phantom;
  phantom.num_cases = cases;
  phantom.num_test_cases = 1;
  phantom.shape_zyx = {16, 24, 24};
  phantom.num_channels = channels;
  phantom.label_format = format;
  phantom.show_progress = false;
  phantom.threads = 1;
  write_phantom_dataset(out.raw, phantom);
  PreprocessOptions preprocess;
  preprocess.work_dir = out.work.string();
  preprocess.show_progress = false;
  preprocess.threads = 1;
  if (!preprocess_dataset(out.raw, preprocess).ok()) throw std::runtime_error("tiny dataset: preprocessing failed");
  shrink_plans_network(out.dataset_work / "plans.json");
  return out;
}

/// Re-plans the tiny dataset with `encoding` (train rebuilds a store of another encoding) and
/// shrinks the network again.
inline void replan_tiny_dataset(const TinyTrainingDataset& data, const std::string& encoding) {
  PlanOptions plan;
  plan.work_dir = data.work.string();
  plan.encoding = encoding;
  plan.show_progress = false;
  plan.threads = 1;
  plan_dataset(data.raw, plan);
  shrink_plans_network(data.dataset_work / "plans.json");
}

/// Largest absolute difference between two checkpoints' parameters (same network, same names).
inline double max_parameter_difference(const std::filesystem::path& a, const std::filesystem::path& b) {
  const LoadedCheckpoint first = load_checkpoint(a), second = load_checkpoint(b);
  auto other = second.network->module().named_parameters();
  double largest = 0;
  for (const auto& item : first.network->module().named_parameters()) {
    largest = std::max(largest, (item.value() - other[item.key()]).abs().max().item<double>());
  }
  return largest;
}

}  // namespace mlseg::testing
