#pragma once
// nnU-Net v2 trained models, run by mlseg without Python: `mlseg predict -m MODEL_FOLDER` where
// MODEL_FOLDER is nnU-Net's `DatasetXXX_Name/Trainer__Plans__configuration` holding plans.json,
// dataset.json and fold_N/checkpoint_final.pth (nnUNetTrainer.save_checkpoint).
//
// The model becomes an mlseg model (ModelDescription + networks): nnU-Net's plans with the
// configuration's `inherits_from` resolved and the pre-2.2 architecture keys (UNet_class_name, ...)
// converted, plus the keys mlseg's plans carry (label channels, image channels, label encoding:
// softmax over labels, sigmoid per region as nnU-Net trains regions); the weights load by name.
// Prediction then runs mlseg's own pipeline, which follows nnU-Net's (preprocessing, sliding window,
// resampling back, regions_class_order).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/nn/checkpoint.h"

namespace mlseg {

/// Whether `model_dir` looks like an nnU-Net v2 model folder: plans.json, dataset.json and at least
/// one fold_*/checkpoint_*.pth (mlseg's own folders hold checkpoint_*.pt and no plans.json).
bool is_nnunet_model_folder(const std::filesystem::path& model_dir);

/// The configuration of an nnU-Net model folder named Trainer__Plans__configuration; empty when
/// the name has another form.
std::string nnunet_configuration_from_folder_name(const std::filesystem::path& model_dir);

/// nnU-Net's plans as mlseg reads them, for `configuration`: its inheritance resolved (nnU-Net's
/// shallow update of the parent), an old-format architecture converted to
/// architecture.network_class_name / arch_kwargs, and channel_names, image_channel_names and
/// label_encoding added from `dataset_json`. Throws mlseg::Error located at `source` for a cascade
/// stage (it needs the low-resolution stage's predictions), an unknown configuration, or labels
/// nnU-Net itself would refuse.
nlohmann::ordered_json mlseg_plans_for_nnunet_model(const nlohmann::ordered_json& nnunet_plans,
                                                    const nlohmann::ordered_json& dataset_json,
                                                    const std::string& configuration, const std::string& source);

/// Loads `checkpoints` (fold_N/checkpoint_*.pth of one nnU-Net model folder) as mlseg models: the
/// shared description (plans as above, the checkpoint's mirroring axes, none when it says None)
/// and each fold's network with its weights. Throws mlseg::Error naming the file and the fix when
/// the trainer built another network than the plans describe, or the folds disagree.
std::vector<LoadedCheckpoint> load_nnunet_model(const std::filesystem::path& model_dir,
                                                const std::vector<std::filesystem::path>& checkpoints);

}  // namespace mlseg
