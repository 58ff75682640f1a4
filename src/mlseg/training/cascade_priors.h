#pragma once
// The cascade's training input (nnU-Net: the lowres stage's perform_actual_validation exports
// predicted_next_stage): every training case's previous-stage prediction, made by the previous
// stage's fold that validated the case (cross-validation, so the cascade trains on predictions as
// flawed as those it meets at test time), carried onto the cascade's grid (inference/cascade.h)
// and stored as codes beside the previous stage's results. Made once per case; remade when the
// fold's checkpoint_final.pt changes.
#include <torch/types.h>

#include <filesystem>
#include <string>

#include "mlseg/data/preprocessed_store.h"
#include "mlseg/planning/plans_file.h"

namespace mlseg {

struct CascadePriorOptions {
  torch::Device device = torch::kCPU;
  bool show_progress = true;
  int threads = 0;  ///< resampling (0 = all cores)
};

/// Makes the missing previous-stage predictions of `store`'s cases for cascade configuration
/// `configuration` of `plans` and returns their folder (next_stage_prior_dir). Throws mlseg::Error
/// naming the folds to train when a fold of the previous stage has no checkpoint_final.pt, or
/// naming the case when it is in no fold's validation set.
std::filesystem::path ensure_previous_stage_predictions(const std::filesystem::path& dataset_work_dir, const PlansFile& plans,
                                                        const std::string& configuration, const PreprocessedStore& store,
                                                        const CascadePriorOptions& options = {});

}  // namespace mlseg
