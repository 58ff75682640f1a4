#include "mlseg/training/fold_cases.h"

#include <algorithm>
#include <iostream>

#include "mlseg/analysis/splits.h"
#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"

namespace mlseg {
namespace fs = std::filesystem;

namespace {

std::vector<std::size_t> store_indices(const PreprocessedStore& store, const std::vector<std::string>& ids, const fs::path& splits_path) {
  std::vector<std::size_t> out;
  for (const std::string& id : ids) {
    try {
      out.push_back(store.case_index(id));
    } catch (const Error&) {
      throw Error("splits name case '" + id + "', which the preprocessed store does not have",
                  "rerun `mlseg analyze` to rewrite the splits, or `mlseg preprocess` if cases were added", {splits_path.string(), id, ""});
    }
  }
  return out;
}

}  // namespace

FoldCases fold_cases(const PreprocessedStore& store, const fs::path& dataset_work, const std::string& fold_name) {
  FoldCases fold;
  fold.name = "fold " + fold_name;
  if (fold_name == "all") {
    for (std::size_t i = 0; i < store.num_cases(); ++i) fold.train.push_back(i);
    fold.val = fold.train;  // nnU-Net: fold "all" validates on its training cases
    return fold;
  }
  int k = -1;
  try {
    std::size_t used = 0;
    k = std::stoi(fold_name, &used);
    if (used != fold_name.size()) k = -1;
  } catch (const std::exception&) {
    k = -1;
  }
  if (k < 0) throw Error("-f " + fold_name + " is not a fold", "pass a fold number (0-4) or all");
  const fs::path splits_path = dataset_work / "splits_final.json";
  std::vector<Fold> folds;
  if (fs::exists(splits_path)) {
    folds = folds_from_json(read_json_file(splits_path), splits_path.string());
  } else {
    const int n = static_cast<int>(std::min<std::size_t>(kDefaultNumFolds, store.num_cases()));
    if (n < 2) throw Error("only " + std::to_string(store.num_cases()) + " case: no cross-validation fold possible", "train with -f all");
    std::vector<std::vector<int>> labels;
    for (std::size_t i = 0; i < store.num_cases(); ++i) {
      std::vector<int> present;
      const auto& voxels = store.stored_case(i).properties().channel_voxels;
      for (int c = 0; c < store.num_channels() && c < static_cast<int>(voxels.size()); ++c) {
        if (voxels[static_cast<std::size_t>(c)] > 0) present.push_back(c);
      }
      labels.push_back(present);
    }
    folds = stratified_folds(store.case_ids(), labels, n, kNnUNetSplitSeed);
    write_json_file(splits_path, folds_to_json(folds));
    std::cout << "no splits_final.json: wrote " << n << " stratified folds to " << splits_path.string() << "\n";
  }
  if (k >= static_cast<int>(folds.size())) {
    throw Error("fold " + fold_name + " does not exist: splits_final.json has " + std::to_string(folds.size()) + " folds",
                "pass -f 0.." + std::to_string(folds.size() - 1) + " or -f all", {splits_path.string(), "", ""});
  }
  fold.train = store_indices(store, folds[static_cast<std::size_t>(k)].train, splits_path);
  fold.val = store_indices(store, folds[static_cast<std::size_t>(k)].val, splits_path);
  if (fold.train.empty())
    throw Error("fold " + fold_name + " has no training case", "check splits_final.json", {splits_path.string(), "", ""});
  return fold;
}

}  // namespace mlseg
