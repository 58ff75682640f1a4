#pragma once
// The training and validation cases of one fold (-f K of splits_final.json, or all), as indices
// of the preprocessed store. Internal to training/.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "mlseg/data/preprocessed_store.h"

namespace mlseg {

/// A fold's cases as store indices.
struct FoldCases {
  std::string name;  // "fold 0" / "fold all"
  std::vector<std::size_t> train, val;
};

/// The cases of `fold_name` ("0".."K-1" or "all") from WORK/<dataset>/splits_final.json; when the
/// file is missing, kDefaultNumFolds stratified folds are written first (nnU-Net's seed). Throws mlseg::Error for
/// a fold that does not exist, a case the store lacks, or a fold without training cases.
FoldCases fold_cases(const PreprocessedStore& store, const std::filesystem::path& dataset_work, const std::string& fold_name);

}  // namespace mlseg
