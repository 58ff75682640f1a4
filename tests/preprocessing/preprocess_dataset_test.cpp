// mlseg preprocess on whole datasets: the store's files, resuming, failures, anisotropic and 2D
// data, and the CLI.
#include <gtest/gtest.h>

#include <fstream>

#include "mlseg/core/error.h"
#include "mlseg/inference/preprocess_image.h"
#include "mlseg/io/json_file.h"
#include "mlseg/io/npy.h"
#include "mlseg/io/store_layout.h"
#include "mlseg/planning/plans_file.h"
#include "mlseg/preprocessing/preprocess.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace {

using namespace mlseg;
using mlseg::testing::TempDir;
namespace fs = std::filesystem;

PhantomOptions small_phantom(int cases = 4) {
  PhantomOptions options;
  options.num_cases = cases;
  options.shape_zyx = {12, 24, 24};
  options.spacing_zyx_mm = {2.0, 1.0, 1.0};
  options.show_progress = false;
  options.threads = 1;
  return options;
}

PreprocessOptions quiet(const fs::path& work) {
  PreprocessOptions options;
  options.work_dir = work.string();
  options.show_progress = false;
  options.threads = 2;
  return options;
}

TEST(PreprocessDataset, WritesAStoreNumpyCanRead) {
  TempDir dir;
  write_phantom_dataset(dir / "raw/Dataset900_Phantom", small_phantom());
  const auto run = preprocess_dataset(dir / "raw/Dataset900_Phantom", quiet(dir / "work"));
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(run.ran_plan) << "plans.json was missing, so plan (and analyze) ran first";
  ASSERT_EQ(run.configurations.size(), 1u);
  EXPECT_EQ(run.configurations[0].configuration, "3d_fullres");
  EXPECT_EQ(run.configurations[0].preprocessed, 4);
  const fs::path store = dir / "work/Dataset900_Phantom/preprocessed/3d_fullres";
  const auto info = store_info_from_json(read_json_file(store / "store.json"), "store.json");
  EXPECT_EQ(info.cases.size(), 4u);
  EXPECT_EQ(info.channel_names.size(), 6u);
  EXPECT_EQ(info.code_descr, "|u1");
  for (const auto& case_id : info.cases) {
    const auto properties = case_properties_from_json(read_json_file(store_properties_file(store, case_id)), case_id);
    const auto image = read_npy(store_image_file(store, case_id));
    const auto codes = read_npy(store_codes_file(store, case_id));
    const auto rows = read_npy(store_locations_file(store, case_id));
    EXPECT_EQ(image.sizes(), (std::vector<int64_t>{1, properties.shape_after_resample[0], properties.shape_after_resample[1],
                                                   properties.shape_after_resample[2]}));
    EXPECT_EQ(codes.scalar_type(), torch::kUInt8);
    EXPECT_EQ(codes.size(0), 1);
    EXPECT_NEAR(image.mean().item<double>(), 0.0, 1e-3) << "zscore";
    EXPECT_EQ(rows.scalar_type(), torch::kInt);
    EXPECT_EQ(rows.size(1), 3);
    ASSERT_FALSE(properties.locations.empty());
    for (const auto& group : properties.locations) {
      for (int64_t r = group.offset; r < group.offset + group.count; r += 97) {
        const auto z = rows[r][0].item<int>(), y = rows[r][1].item<int>(), x = rows[r][2].item<int>();
        const int code = codes[0][z][y][x].item<int>();
        if (group.kind == "channel") {
          EXPECT_TRUE((code >> group.channel) & 1) << case_id << " " << group.name;
        } else {
          EXPECT_EQ(static_cast<std::uint64_t>(code), group.code_words.at(0)) << case_id << " " << group.name;
        }
      }
    }
  }
}

TEST(PreprocessDataset, ResumesAndRedoesOnlyChangedCases) {
  TempDir dir;
  write_phantom_dataset(dir / "raw/Dataset900_Phantom", small_phantom(3));
  auto options = quiet(dir / "work");
  ASSERT_TRUE(preprocess_dataset(dir / "raw/Dataset900_Phantom", options).ok());
  const auto again = preprocess_dataset(dir / "raw/Dataset900_Phantom", options);
  EXPECT_EQ(again.configurations[0].unchanged, 3);
  EXPECT_EQ(again.configurations[0].preprocessed, 0);
  // Touch one input: only that case is redone.
  const fs::path image = dir / "raw/Dataset900_Phantom/imagesTr/phantom_0001_0000.nii.gz";
  fs::last_write_time(image, fs::last_write_time(image) + std::chrono::seconds(5));
  const auto third = preprocess_dataset(dir / "raw/Dataset900_Phantom", options);
  EXPECT_EQ(third.configurations[0].unchanged, 2);
  EXPECT_EQ(third.configurations[0].preprocessed, 1);
  // A different policy changes the plan identity: everything is redone.
  options.rare_policy = RareCombinationPolicy::ignore;
  EXPECT_EQ(preprocess_dataset(dir / "raw/Dataset900_Phantom", options).configurations[0].preprocessed, 3);
}

TEST(PreprocessDataset, ABrokenCaseIsNamedAndNoStoreJsonIsWritten) {
  TempDir dir;
  write_phantom_dataset(dir / "raw/Dataset900_Phantom", small_phantom(3));
  const fs::path image = dir / "raw/Dataset900_Phantom/imagesTr/phantom_0002_0000.nii.gz";
  auto options = quiet(dir / "work");
  // Plan on the intact data first, then break one case.
  ASSERT_TRUE(preprocess_dataset(dir / "raw/Dataset900_Phantom", options).ok());
  options.overwrite = true;
  fs::resize_file(image, fs::file_size(image) / 2);
  const auto run = preprocess_dataset(dir / "raw/Dataset900_Phantom", options);
  EXPECT_FALSE(run.ok());
  ASSERT_EQ(run.configurations[0].failures.size(), 1u);
  EXPECT_EQ(run.configurations[0].failures[0].case_id, "phantom_0002");
  EXPECT_NE(run.configurations[0].failures[0].message.find("phantom_0002"), std::string::npos);
  EXPECT_EQ(run.configurations[0].preprocessed, 2);
  const fs::path store = dir / "work/Dataset900_Phantom/preprocessed/3d_fullres";
  EXPECT_FALSE(fs::exists(store / "store.json"));
  EXPECT_FALSE(fs::exists(store / "phantom_0002.json"));
  const std::string report = format_preprocess_report(run);
  EXPECT_NE(report.find("FAILED phantom_0002"), std::string::npos) << report;
  for (const auto& entry : fs::directory_iterator(store)) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << "no temporary file left: " << entry.path();
  }
}

TEST(PreprocessDataset, AnisotropicCaseIsTransposedAndResampledApart) {
  // z coarse (5 mm) with x finer than y: the planned spacing puts the coarse axis first.
  Image image;
  image.data = torch::rand({1, 10, 40, 40}) + 1.0f;
  image.geometry.spacing_zyx_mm = {5.0, 1.0, 1.0};
  CodeVolume code = empty_code_volume({10, 40, 40}, 2);
  code.words.slice(1, 2, 8).slice(2, 10, 30).slice(3, 10, 30).fill_(1);
  code.words.slice(1, 4, 6).slice(2, 15, 25).slice(3, 15, 25).fill_(3);
  CasePreprocessingPlan plan;
  plan.spacing_mm = {5.0, 0.5, 0.5};
  plan.normalization = {ChannelNormalization{"zscore"}};
  plan.channel_names = {"outer", "inner"};
  plan.resample.threads = 1;
  const auto result = preprocess_case("aniso", image, code, plan);
  EXPECT_EQ(result.properties.separate_axis, 0);
  EXPECT_EQ(result.properties.shape_after_resample, (std::array<int64_t, 3>{10, 80, 80}));
  EXPECT_EQ(result.image.sizes(), (std::vector<int64_t>{1, 10, 80, 80}));
  // Volumes scale by 4 in-plane; nested stays nested.
  const auto outer = result.code.words.bitwise_and(1).sum().item<int64_t>();
  const auto inner = result.code.words.bitwise_and(2).gt(0).sum().item<int64_t>();
  EXPECT_NEAR(static_cast<double>(outer), 6 * 20 * 20 * 4, 6 * 20 * 20 * 4 * 0.02);
  EXPECT_NEAR(static_cast<double>(inner), 2 * 10 * 10 * 4, 2 * 10 * 10 * 4 * 0.05);
  EXPECT_EQ(result.code.words.eq(2).sum().item<int64_t>(), 0) << "inner without outer";

  // A transposed plan: planned axes (y, z, x) of the image.
  plan.transpose_forward = {1, 0, 2};
  plan.transpose_backward = {1, 0, 2};
  plan.spacing_mm = {1.0, 5.0, 1.0};
  const auto transposed = preprocess_case("aniso", image, code, plan);
  EXPECT_EQ(transposed.properties.shape_after_crop, (std::array<int64_t, 3>{40, 10, 40}));
  EXPECT_EQ(transposed.properties.spacing_after_crop_mm, (std::array<double, 3>{1.0, 5.0, 1.0}));
}

// The image resampling order lives in plans.json, where prediction reads it: preprocess follows it,
// and a --image-interpolation that disagrees is refused (training and prediction would differ).
TEST(PreprocessDataset, ImageInterpolationFollowsThePlansOrderThatPredictionReads) {
  TempDir dir;
  const fs::path raw = dir / "raw/Dataset900_Phantom";
  write_phantom_dataset(raw, small_phantom(2));
  ASSERT_TRUE(preprocess_dataset(raw, quiet(dir / "work")).ok());
  const fs::path plans_path = dir / "work/Dataset900_Phantom/plans.json";
  auto json = read_json_file(plans_path);
  auto& configuration = json["configurations"]["3d_fullres"];
  ASSERT_EQ(configuration["resampling_fn_data_kwargs"]["order"], 3);
  PreprocessOptions linear = quiet(dir / "work");
  linear.image_interpolation = ImageInterpolation::linear;
  try {
    preprocess_dataset(raw, linear);
    FAIL() << "linear was accepted against order 3";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("resampling_fn_data_kwargs.order"), std::string::npos) << e.what();
  }
  // Order 1 and a finer spacing (so that images are resampled): preprocess and prediction's
  // preprocessing give the same image.
  configuration["resampling_fn_data_kwargs"]["order"] = 1;
  configuration["spacing"] = {1.5, 0.75, 0.75};
  write_json_file(plans_path, json);
  ASSERT_TRUE(preprocess_dataset(raw, linear).ok());
  const InferencePlan plan = inference_plan_from_plans(read_plans(plans_path), "3d_fullres");
  EXPECT_EQ(plan.resample.image_interpolation, ImageInterpolation::linear);
  const PhantomCase phantom = make_phantom_case(0, small_phantom(2));
  const PreprocessedImage predicted = preprocess_image(phantom.case_id, phantom.image, plan);
  const auto stored = read_npy(store_image_file(dir / "work/Dataset900_Phantom/preprocessed/3d_fullres", phantom.case_id));
  ASSERT_EQ(stored.sizes(), predicted.image.sizes());
  EXPECT_GT(stored.size(1), 12) << "resampled to the finer spacing";
  EXPECT_TRUE(torch::allclose(stored, predicted.image, 1e-4, 1e-4));
}

TEST(PreprocessDataset, TwoDConfigurationKeepsEachCasesZ) {
  Image image;
  image.data = torch::rand({1, 6, 30, 30}) + 1.0f;
  image.geometry.spacing_zyx_mm = {3.0, 0.8, 0.8};
  CodeVolume code = empty_code_volume({6, 30, 30}, 1);
  code.words.slice(2, 5, 25).slice(3, 5, 25).fill_(1);
  CasePreprocessingPlan plan;
  plan.spacing_mm = {1.6, 1.6};  // 2d: y, x
  plan.normalization = {ChannelNormalization{"zscore"}};
  plan.channel_names = {"a"};
  const auto result = preprocess_case("flat", image, code, plan);
  EXPECT_EQ(result.properties.shape_after_resample, (std::array<int64_t, 3>{6, 15, 15}));
  EXPECT_EQ(result.properties.spacing_mm, (std::array<double, 3>{3.0, 1.6, 1.6}));
}

TEST(PreprocessDataset, CropRemovesTheZeroBorderAndIsRecorded) {
  Image image;
  image.data = torch::zeros({2, 8, 20, 20});
  image.data.slice(1, 2, 6).slice(2, 3, 15).slice(3, 4, 18).uniform_(1, 2);
  CodeVolume code = empty_code_volume({8, 20, 20}, 1);
  code.words.slice(1, 3, 5).slice(2, 5, 10).slice(3, 5, 10).fill_(1);
  CasePreprocessingPlan plan;
  plan.spacing_mm = {1, 1, 1};
  plan.normalization = {ChannelNormalization{"noNorm"}, ChannelNormalization{"noNorm"}};
  plan.channel_names = {"a"};
  const auto result = preprocess_case("c", image, code, plan);
  EXPECT_EQ(result.properties.crop_begin, (std::array<int64_t, 3>{2, 3, 4}));
  EXPECT_EQ(result.properties.crop_end, (std::array<int64_t, 3>{6, 15, 18}));
  EXPECT_EQ(result.code.words.sum().item<int64_t>(), 2 * 5 * 5) << "no label lost by the crop";
  EXPECT_THROW(preprocess_case("c", image, empty_code_volume({8, 20, 19}, 1), plan), Error);
}

TEST(PreprocessCli, PreprocessReportsAndRejectsUnknownConfigurations) {
  TempDir dir;
  write_phantom_dataset(dir / "raw/Dataset900_Phantom", small_phantom(3));
  const std::string dataset = (dir / "raw/Dataset900_Phantom").string();
  const std::string work = " --work-dir " + (dir / "work").string();
  const auto ok = mlseg::testing::run_mlseg("preprocess " + dataset + work + " -c 3d_fullres --rare-combos merge -q");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  const auto report = mlseg::testing::run_mlseg("preprocess " + dataset + work + " -c 3d_fullres --rare-combos merge");
  EXPECT_EQ(report.exit_code, 0) << report.output;
  EXPECT_NE(report.output.find("3 unchanged (skipped)"), std::string::npos) << report.output;
  const auto bad = mlseg::testing::run_mlseg("preprocess " + dataset + work + " -c 3d_cascade_fullres_typo");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("has no configuration"), std::string::npos) << bad.output;
  const auto bad_policy = mlseg::testing::run_mlseg("preprocess " + dataset + work + " --rare-combos drop");
  EXPECT_EQ(bad_policy.exit_code, 2) << bad_policy.output;
  EXPECT_EQ(report.output.find("nan"), std::string::npos);
}

TEST(PreprocessRealData, HippocampusCasesMatchNnunetsShapes) {
  MLSEG_REQUIRE_SHARED_DATA();
  TempDir dir;
  // A 3-case copy keeps the test short.
  const fs::path source = mlseg::testing::shared_data_dir() / "Dataset004_Hippocampus";
  const fs::path copy = dir / "Dataset004_Hippocampus";
  fs::create_directories(copy / "imagesTr");
  fs::create_directories(copy / "labelsTr");
  fs::copy_file(source / "dataset.json", copy / "dataset.json");
  for (const std::string id : {"hippocampus_001", "hippocampus_003", "hippocampus_004"}) {
    fs::copy_file(source / "imagesTr" / (id + "_0000.nii.gz"), copy / "imagesTr" / (id + "_0000.nii.gz"));
    fs::copy_file(source / "labelsTr" / (id + ".nii.gz"), copy / "labelsTr" / (id + ".nii.gz"));
  }
  // numTraining in the copied dataset.json says 260: fix it for the copy.
  auto json = read_json_file(copy / "dataset.json");
  json["numTraining"] = 3;
  write_json_file(copy / "dataset.json", json);
  const auto run = preprocess_dataset(copy, quiet(dir / "work"));
  ASSERT_TRUE(run.ok()) << format_preprocess_report(run);
  const fs::path store = dir / "work/Dataset004_Hippocampus/preprocessed/3d_fullres";
  const auto properties = case_properties_from_json(read_json_file(store / "hippocampus_003.json"), "json");
  EXPECT_EQ(properties.spacing_mm, (std::array<double, 3>{1.0, 1.0, 1.0}));
  // hippocampus_003 is float32-stored labels: still two channels present.
  EXPECT_GE(properties.locations.size(), 2u);
}

}  // namespace
