#pragma once
// What a training run sets up once, before its first step: the dataset, plans.json and the
// preprocessed store (preprocessing first when it is missing or of another encoding), the fold's
// cases, the model description and network, the loss and the rank's share of each batch.
// Internal to training/ (trainer.cpp).
#include <torch/types.h>

#include <array>
#include <filesystem>
#include <memory>
#include <vector>

#include "mlseg/data/preprocessed_store.h"
#include "mlseg/io/dataset.h"
#include "mlseg/nn/checkpoint.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/training/fold_cases.h"
#include "mlseg/training/loss_options.h"
#include "mlseg/training/trainer.h"

namespace mlseg {

/// The fold folder's training log (one JSON line per epoch).
inline constexpr const char* kTrainLogFile = "log.jsonl";

/// What a run sets up once from the dataset, plans.json and the store.
struct RunSetup {
  Dataset dataset;
  std::filesystem::path dataset_work, fold_dir, log_path;
  PlansFile plans;
  std::unique_ptr<PreprocessedStore> store;
  FoldCases fold;
  ModelDescription model;
  /// Built from plans.json's network_class_name (prepare_run); initialised by start_or_resume.
  SegmentationNetwork network;
  PatchShapeZyx patch{};
  int dimension = 3;
  std::int64_t batch_size = 2;
  Remedies remedies;
  LossOptions loss_options;
  std::vector<std::array<double, 3>> scales;  // deep-supervision target scales
  torch::Device device = torch::kCPU;
  int threads = 1;
  RankShare share;  ///< this rank's samples of each global batch
};

/// Checks the options, resolves the device, preprocesses when needed (rank 0 first), reads the
/// plans and the store, and builds the network of plans.json's network_class_name (not yet
/// initialised: start_or_resume does that). Throws mlseg::Error naming the fix.
RunSetup prepare_run(const std::filesystem::path& dataset_dir, const TrainOptions& options, const RunContext& context);

}  // namespace mlseg
