#pragma once
// `mlseg find-best-config DATASET` (nnUNetv2_find_best_configuration): every trained
// configuration's cross-validation predictions (the final validation of each fold, merged into
// one folder per configuration) scored against the references, every pair of configurations
// ensembled on the same cases when both saved probabilities (`mlseg train --save-probabilities`),
// the best by mean foreground Dice (determine_postprocessing.h's rule), then the postprocessing
// decided on the best one's predictions. Written to WORK/<dataset>/model_selection/:
// inference_information.json (every score, the choice, the postprocessing), postprocessing.json,
// and inference_instructions.txt with the exact predict / ensemble / postprocess commands.
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/postprocessing/determine_postprocessing.h"

namespace mlseg {

inline constexpr const char* kModelSelectionFolder = "model_selection";
inline constexpr const char* kInferenceInformationFile = "inference_information.json";
inline constexpr const char* kInferenceInstructionsFile = "inference_instructions.txt";

struct FindBestConfigOptions {
  std::string work_dir;                     ///< --work-dir (empty: $MLSEG_WORK, else ./mlseg_work)
  std::vector<std::string> configurations;  ///< -c; empty: every configuration under results/ with final validations
  std::vector<std::string> folds;           ///< -f; empty: the folds every chosen configuration has validated
  bool ensembles = true;                    ///< --no-ensembles: single configurations only
  bool nnunet_defaults = false;             ///< --nnunet-defaults: postprocessing without remove_small
  int threads = 0;
  bool show_progress = true;
};

/// One configuration or ensemble, scored on the cross-validation cases.
struct ModelCandidate {
  std::string name;                  ///< "3d_fullres", "ensemble 2d + 3d_fullres"
  std::vector<std::string> members;  ///< its configurations
  std::filesystem::path predictions; ///< the merged cross-validation prediction folder
  bool has_probabilities = false;
  CrossValidationScore score;
};

struct ModelSelection {
  std::filesystem::path dataset_dir;
  std::filesystem::path output_dir;  ///< WORK/<dataset>/model_selection
  std::filesystem::path results_dir; ///< WORK/<dataset>/results
  std::vector<std::string> folds;
  std::vector<ModelCandidate> candidates;  ///< configurations, then ensembles
  std::size_t best = 0;
  PostprocessingDecision postprocessing;
  std::vector<std::string> notes;  ///< configurations left out and why, ensembles not possible
  std::string instructions;        ///< the text of inference_instructions.txt
};

/// Runs the selection and writes its files. Throws mlseg::Error naming the fix when no
/// configuration has final validations of the folds asked for.
ModelSelection find_best_configuration(const std::filesystem::path& dataset_dir, const FindBestConfigOptions& options = {});

/// The table (candidate, foreground Dice, per channel Dice), the choice, the postprocessing and
/// where the files are.
std::string format_model_selection(const ModelSelection& selection);

}  // namespace mlseg
