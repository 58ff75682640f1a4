// Writes the fuzz targets' seed corpora (tiny valid files, made by mlseg's own writers so they
// follow the formats as mlseg reads them) into FOLDER/<target>/. scripts/fuzz.sh --make-corpus
// runs it into tests/fuzz/corpus/; the committed corpus is its output.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mlseg/analysis/splits.h"
#include "mlseg/core/image.h"
#include "mlseg/io/image_io.h"
#include "mlseg/io/nifti_format.h"
#include "mlseg/io/npy.h"
#include "mlseg/planning/planner.h"
#include "mlseg/planning/plans_json.h"

namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

mlseg::Image tiny_image(std::vector<std::int64_t> shape_czyx, torch::ScalarType dtype) {
  mlseg::Image image;
  image.data = torch::arange(torch::tensor(shape_czyx).prod().item<std::int64_t>()).remainder(4).reshape(shape_czyx).to(dtype);
  image.geometry.spacing_zyx_mm = {2.0, 0.5, 0.75};
  image.geometry.origin_zyx_mm = {-3.0, 10.0, 4.5};
  return image;
}

void nifti(const fs::path& folder) {
  mlseg::write_image(tiny_image({1, 2, 3, 4}, torch::kUInt8), folder / "label_map_u8.nii", {false});
  mlseg::write_image(tiny_image({1, 2, 3, 4}, torch::kInt16), folder / "int16.nii.gz");
  mlseg::write_image(tiny_image({1, 1, 3, 2}, torch::kFloat), folder / "float32_2d.nii", {false});
  mlseg::write_image(tiny_image({2, 2, 2, 2}, torch::kFloat64), folder / "two_volumes_f64.nii", {false});
  // NIfTI-2 (an extent past NIfTI-1's 32767), one row of bytes.
  mlseg::NiftiWriteInput wide;
  std::vector<std::uint8_t> row(32768, 1);
  wide.shape_zyx = {1, 1, 32768};
  wide.data = row.data();
  mlseg::write_nifti(folder / "nifti2_wide.nii.gz", wide);
}

void npy(const fs::path& folder) {
  mlseg::write_npy(folder / "f4_czyx.npy", torch::arange(24, torch::kFloat).reshape({1, 2, 3, 4}));
  mlseg::write_npy(folder / "u1.npy", torch::arange(6, torch::kUInt8).reshape({2, 3}));
  mlseg::write_npy(folder / "u2_codes.npy", torch::arange(8, torch::kInt16).reshape({2, 2, 2}), true);
  mlseg::write_npy(folder / "i8.npy", torch::arange(3, torch::kLong));
  mlseg::write_npy(folder / "f8_scalar.npy", torch::tensor(1.5, torch::kDouble));
}

void dataset_json(const fs::path& folder) {
  write_text(folder / "label_map.json", R"({"channel_names": {"0": "T2"}, "labels": {"background": 0, "anterior": 1, "posterior": 2},
 "numTraining": 0, "file_ending": ".nii.gz"})");
  write_text(folder / "regions.json", R"({"channel_names": {"0": "FLAIR", "1": "T1"}, "labels": {"background": 0, "whole": [1, 2, 3],
 "core": [2, 3], "enhancing": 3}, "regions_class_order": [1, 2, 3], "numTraining": 0, "file_ending": ".nii.gz"})");
  write_text(folder / "bitmask.json", R"({"modality": {"0": "CT"}, "label_format": "bitmask", "labels": {"liver": 1, "spleen": 2, "kidney": 4},
 "file_ending": ".nii", "label_file_ending": ".nii.gz"})");
  write_text(folder / "channel_masks.json", R"({"channel_names": {"0": "RGB"}, "label_format": "channel_masks", "labels": ["vessel", "disc"],
 "file_ending": ".png", "dataset": {"case_1": {"images": ["imagesTr/case_1_0000.png"], "label": {"vessel": "labelsTr/case_1/vessel.png"}}}})");
  write_text(folder / "multihot4d.json", R"({"channel_names": {"0": "MR"}, "label_format": "multihot4d", "labels": {"a": 0, "b": 1},
 "numTraining": 0, "file_ending": ".nii.gz"})");
}

void plans_json(const fs::path& folder) {
  mlseg::PlanningInput input;
  input.dataset_name = "Dataset999_Fuzz";
  for (int i = 0; i < 4; ++i) {
    input.spacings_zyx.push_back({3.0, 1.0, 1.0});
    input.shapes_after_crop_zyx.push_back({20, 48, 40});
  }
  input.image_channel_names = {"MR"};
  input.foreground_intensity_properties["0"] = {{"max", 255.0}, {"mean", 100.0}, {"median", 90.0}, {"min", 0.0},
                                                {"percentile_00_5", 1.0}, {"percentile_99_5", 250.0}, {"std", 30.0}};
  for (const std::string name : {"edema", "core"}) {
    input.channel_names.push_back(name);
    input.channels.push_back({name, 0.5, 1.0, 0.01});
    input.bce_pos_weight.push_back(9.0);
    input.sampling_weights.push_back(1.0);
  }
  for (const std::string encoding : {"softmax", "sigmoid"}) {
    input.recommended_encoding = encoding;
    const mlseg::PlanOptions options;
    const auto plans = mlseg::plan_experiment(input, options);
    write_text(folder / (encoding + ".json"), mlseg::plans_to_json(plans, input, options).dump());
  }
}

void splits_json(const fs::path& folder) {
  write_text(folder / "five_folds.json", mlseg::folds_to_json(mlseg::random_kfold({"a", "b", "c", "d", "e", "f"}, 5)).dump());
  write_text(folder / "two_folds.json", mlseg::folds_to_json(mlseg::random_kfold({"case_1", "case_2", "case_3"}, 2)).dump(1));
}

void image_2d(const fs::path& folder) {
  mlseg::write_image(tiny_image({1, 1, 3, 4}, torch::kUInt8), folder / "gray.png");
  mlseg::write_image(tiny_image({3, 1, 2, 2}, torch::kUInt8), folder / "rgb.png");
  mlseg::write_image(tiny_image({1, 1, 3, 4}, torch::kUInt8), folder / "gray.tif");
  mlseg::write_image(tiny_image({1, 1, 2, 3}, torch::kFloat), folder / "float32.tif");
  mlseg::write_image(tiny_image({3, 1, 2, 2}, torch::kUInt8), folder / "rgb.tif", {false});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_fuzz_corpus FOLDER\n";
    return 2;
  }
  const fs::path root = argv[1];
  const std::vector<std::pair<std::string, void (*)(const fs::path&)>> makers = {
      {"nifti_fuzz", nifti}, {"npy_fuzz", npy}, {"dataset_json_fuzz", dataset_json},
      {"plans_json_fuzz", plans_json}, {"splits_json_fuzz", splits_json}, {"image_2d_fuzz", image_2d}};
  for (const auto& [target, make] : makers) {
    fs::create_directories(root / target);
    make(root / target);
  }
  return 0;
}
