#pragma once
// The dataset model: nnU-Net v2's raw layout, read unchanged, plus mlseg's multi-label formats.
//
//   DATASET/dataset.json
//   DATASET/imagesTr/CASE_0000.nii.gz, CASE_0001.nii.gz, ...   (one file per image channel)
//   DATASET/labelsTr/CASE.nii.gz                                (label_map, bitmask, multihot4d)
//   DATASET/labelsTr/CASE/<channel name><label_file_ending>     (channel_masks)
//   DATASET/imagesTs/CASE_0000.nii.gz                           (optional test images)
//
// dataset.json keys: nnU-Net's channel_names (or v1 "modality"), labels, regions_class_order,
// file_ending, numTraining, the optional "dataset" key listing files explicitly (paths relative to
// the dataset folder), and mlseg's "label_format" (label_map | bitmask | multihot4d |
// channel_masks, default label_map) and "label_file_ending" (default: file_ending). See README.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mlseg/labels/label_spec.h"

namespace mlseg {

struct CaseFiles {
  std::string case_id;
  std::vector<std::filesystem::path> images;  ///< one per image channel, channel order
  /// label_map / bitmask / multihot4d: the label file. channel_masks: the case's mask folder
  /// (empty when masks are listed explicitly).
  std::filesystem::path label;
  /// channel_masks: one file per label channel, channel order (a path that may not exist).
  std::vector<std::filesystem::path> channel_mask_files;
  bool has_label = false;
};

/// A problem with the folder layout found while listing cases (verify reports these).
struct LayoutProblem {
  enum class Kind { orphan_image, orphan_label, missing_image, missing_label, unexpected_mask_file, other };
  Kind kind = Kind::other;
  std::string case_id;
  std::filesystem::path file;
  std::string message;
  std::string fix;
};

struct Dataset {
  std::filesystem::path root;
  std::string name;  ///< the folder's name, e.g. Dataset004_Hippocampus
  nlohmann::ordered_json json;
  std::vector<std::string> image_channel_names;  ///< channel_names, in index order
  LabelSpec labels;
  std::string file_ending;        ///< images
  std::string label_file_ending;  ///< label files / mask files
  std::optional<std::int64_t> num_training;
  bool explicit_file_list = false;  ///< dataset.json had the "dataset" key
  std::vector<CaseFiles> training;  ///< sorted by case id
  std::vector<CaseFiles> test;      ///< imagesTs, sorted by case id
  std::vector<LayoutProblem> layout_problems;
};

/// Reads dataset.json and lists the cases. A broken dataset.json throws mlseg::Error; problems
/// with individual files are collected in Dataset::layout_problems instead.
Dataset load_dataset(const std::filesystem::path& root);

/// Builds the LabelSpec from dataset.json's label keys. For channel_masks without "labels",
/// `mask_names` (sorted file stems found on disk) become the channels.
LabelSpec parse_label_spec(const nlohmann::ordered_json& json, const std::string& source,
                           const std::vector<std::string>& mask_names = {});

}  // namespace mlseg
