// verify_dataset() on the real datasets in ../shared/data: the nnU-Net folders as they are, and the
// other real folders (TotalSegmentator masks, DRIVE, ISIC) through dataset.json files that list
// their files explicitly (nnU-Net's "dataset" key plus mlseg's channel_masks label format).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "mlseg/io/image_io.h"
#include "mlseg/synth/phantom.h"
#include "mlseg/verify/verify.h"
#include "test_support.h"
#include "verify/verify_test_support.h"

namespace {
namespace fs = std::filesystem;
using mlseg::Severity;
using mlseg::VerifyOptions;
using mlseg::VerifyProblem;
using mlseg::VerifyReport;
using mlseg::testing::shared_data_dir;
using mlseg::testing::TempDir;

VerifyOptions quiet_options() { return mlseg::testing::quiet_verify_options(); }

std::int64_t count_code(const VerifyReport& report, const std::string& code) {
  return std::count_if(report.problems.begin(), report.problems.end(),
                       [&](const VerifyProblem& p) { return p.code == code; });
}

using mlseg::testing::describe;

const mlseg::ChannelPresence* find_channel(const VerifyReport& report, const std::string& name) {
  for (const auto& channel : report.channels) {
    if (channel.name == name) return &channel;
  }
  return nullptr;
}

void write_json(const fs::path& path, const nlohmann::ordered_json& json) {
  std::ofstream stream(path);
  stream << json.dump(2) << "\n";
}

std::string two_digits(int number) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%02d", number);
  return buffer;
}

// ---------------------------------------------------------------------------------------------
// The nnU-Net folders as they are.

TEST(VerifyRealData, HippocampusIsClean) {
  MLSEG_REQUIRE_SHARED_DATA();
  const VerifyReport report = mlseg::verify_dataset(shared_data_dir() / "Dataset004_Hippocampus", quiet_options());
  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  EXPECT_EQ(report.num_warnings(), 0) << describe(report);
  EXPECT_EQ(report.exit_code(false), 0);
  EXPECT_EQ(report.exit_code(true), 0);
  EXPECT_EQ(report.num_training_cases, 200);
  EXPECT_EQ(report.num_test_cases, 0);
  EXPECT_EQ(report.label_format, "label_map");
  EXPECT_EQ(report.image_channels, std::vector<std::string>{"MRI"});
  ASSERT_EQ(report.channels.size(), 2u);
  EXPECT_EQ(report.channels[0].name, "anterior");
  EXPECT_EQ(report.channels[1].name, "posterior");
  for (const auto& channel : report.channels) {
    EXPECT_EQ(channel.cases_present, 200) << channel.name;
    // Each hippocampus part is a few hundred to a few thousand voxels per case.
    EXPECT_GT(channel.voxels, 200 * 100) << channel.name;
    EXPECT_LT(channel.voxels, 200 * 10000) << channel.name;
  }
  // The JSON form says the same.
  const auto json = mlseg::verify_report_to_json(report);
  EXPECT_EQ(json["errors"], 0);
  EXPECT_EQ(json["warnings"], 0);
  EXPECT_EQ(json["num_training_cases"], 200);
  EXPECT_EQ(json["channels"][0]["cases_present"], 200);
  const std::string text = mlseg::format_verify_report(report);
  EXPECT_NE(text.find("0 errors, 0 warnings"), std::string::npos) << text;
  EXPECT_NE(text.find("the dataset is clean"), std::string::npos) << text;
  EXPECT_NE(text.find("200/200"), std::string::npos) << text;
}

TEST(VerifyRealData, BratsRegionsAreClean) {
  MLSEG_REQUIRE_SHARED_DATA();
  const VerifyReport report = mlseg::verify_dataset(shared_data_dir() / "Dataset001_BraTS2015", quiet_options());
  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  EXPECT_EQ(report.num_warnings(), 0) << describe(report);
  EXPECT_EQ(report.num_training_cases, 5);
  EXPECT_EQ(report.label_format, "label_map");
  EXPECT_EQ(report.image_channels, (std::vector<std::string>{"FLAIR", "T1c"}));
  ASSERT_EQ(report.channels.size(), 3u);
  EXPECT_EQ(report.channels[0].name, "whole_tumor");
  EXPECT_EQ(report.channels[1].name, "tumor_core");
  EXPECT_EQ(report.channels[2].name, "enhancing_tumor");
  for (const auto& channel : report.channels) EXPECT_EQ(channel.cases_present, 5) << channel.name;
  // Nested regions: enhancing {4} within core {1,3,4} within whole {1,2,3,4}.
  EXPECT_GT(report.channels[0].voxels, report.channels[1].voxels);
  EXPECT_GT(report.channels[1].voxels, report.channels[2].voxels);
  EXPECT_GT(report.channels[2].voxels, 0);
}

// ---------------------------------------------------------------------------------------------
// TotalSegmentator: one CT, one mask file per structure; channels are the sorted mask names.

fs::path totalseg() { return shared_data_dir() / "totalsegmentator_ct"; }

nlohmann::ordered_json single_case_mask_folder_json(const fs::path& image, const fs::path& mask_folder) {
  nlohmann::ordered_json json;
  json["name"] = "TotalSegmentatorExample";
  json["channel_names"] = {{"0", "CT"}};
  json["file_ending"] = ".nii.gz";
  json["label_format"] = "channel_masks";
  json["numTraining"] = 1;
  json["dataset"] = {{"s0001", {{"images", {image.string()}}, {"label", mask_folder.string()}}}};
  return json;
}

TEST(VerifyRealData, TotalSegmentatorMasksFolder) {
  MLSEG_REQUIRE_SHARED_DATA();
  TempDir dir;
  const fs::path masks = totalseg() / "example_seg_v1_at_2515ad4";
  write_json(dir / "dataset.json", single_case_mask_folder_json(totalseg() / "example_ct.nii.gz", masks));
  const VerifyReport report = mlseg::verify_dataset(dir.path(), quiet_options());

  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  EXPECT_EQ(report.label_format, "channel_masks");
  EXPECT_EQ(report.num_training_cases, 1);
  ASSERT_EQ(report.channels.size(), 107u);
  // Channels are the mask files' stems, sorted.
  std::vector<std::string> stems;
  for (const auto& entry : fs::directory_iterator(masks)) {
    const std::string name = entry.path().filename().string();
    stems.push_back(name.substr(0, name.size() - std::string(".nii.gz").size()));
  }
  std::sort(stems.begin(), stems.end());
  for (std::size_t c = 0; c < stems.size(); ++c) EXPECT_EQ(report.channels[c].name, stems[c]);

  std::int64_t present = 0;
  for (const auto& channel : report.channels) present += channel.cases_present;
  // PROVENANCE.md: 107 binary masks, 62 non-empty.
  EXPECT_EQ(present, 62);
  EXPECT_EQ(count_code(report, "channel_never_present"), 107 - 62) << describe(report);
  EXPECT_EQ(report.num_warnings(), 107 - 62) << describe(report);
  for (const auto& problem : report.problems) {
    EXPECT_EQ(problem.severity, Severity::warning);
    EXPECT_EQ(problem.file, "dataset.json");
  }
  // Overlapping masks: the lung is the union of its five lobes.
  const auto* lung = find_channel(report, "lung");
  if (lung != nullptr && lung->voxels > 0) {
    std::int64_t lobes = 0;
    for (const char* lobe : {"lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right",
                             "lung_middle_lobe_right", "lung_lower_lobe_right"}) {
      const auto* channel = find_channel(report, lobe);
      ASSERT_NE(channel, nullptr) << lobe;
      lobes += channel->voxels;
    }
    EXPECT_EQ(lung->voxels, lobes);
  }
  EXPECT_EQ(report.exit_code(false), 0);
  EXPECT_EQ(report.exit_code(true), 1);
}

TEST(VerifyRealData, TotalSegmentatorAllEmptyMasksFolder) {
  MLSEG_REQUIRE_SHARED_DATA();
  // example_seg_lung_vessels/ was produced from example_ct_sm.nii.gz (PROVENANCE.md); its grid is
  // that CT's, not example_ct.nii.gz's.
  const fs::path masks = totalseg() / "example_seg_lung_vessels";
  const auto ct = mlseg::read_image_header(totalseg() / "example_ct_sm.nii.gz");
  const auto mask = mlseg::read_image_header(masks / "lung_veins.nii.gz");
  ASSERT_EQ(ct.shape_zyx, mask.shape_zyx);

  TempDir dir;
  write_json(dir / "dataset.json", single_case_mask_folder_json(totalseg() / "example_ct_sm.nii.gz", masks));
  const VerifyReport report = mlseg::verify_dataset(dir.path(), quiet_options());
  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  ASSERT_EQ(report.channels.size(), 4u);
  EXPECT_EQ(report.channels[0].name, "lung_airways");
  EXPECT_EQ(report.channels[3].name, "lung_veins");
  ASSERT_EQ(count_code(report, "empty_label"), 1) << describe(report);
  EXPECT_EQ(count_code(report, "channel_never_present"), 4) << describe(report);
  EXPECT_EQ(report.num_warnings(), 5) << describe(report);
  for (const auto& problem : report.problems) {
    if (problem.code != "empty_label") continue;
    EXPECT_EQ(problem.severity, Severity::warning);
    EXPECT_EQ(problem.case_id, "s0001");
    EXPECT_NE(problem.file.find("example_seg_lung_vessels"), std::string::npos) << problem.file;
  }
}

TEST(VerifyRealData, TotalSegmentatorMasksOnWrongCtGrid) {
  MLSEG_REQUIRE_SHARED_DATA();
  // The all-empty lung-vessel masks paired with the full CT (30 vs 112 slices): every mask is
  // reported, none is silently accepted.
  TempDir dir;
  write_json(dir / "dataset.json", single_case_mask_folder_json(totalseg() / "example_ct.nii.gz",
                                                                totalseg() / "example_seg_lung_vessels"));
  const VerifyReport report = mlseg::verify_dataset(dir.path(), quiet_options());
  EXPECT_EQ(count_code(report, "label_shape_mismatch"), 4) << describe(report);
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyRealData, TotalSegmentatorFastMasksOnSmallCt) {
  MLSEG_REQUIRE_SHARED_DATA();
  TempDir dir;
  write_json(dir / "dataset.json", single_case_mask_folder_json(totalseg() / "example_ct_sm.nii.gz",
                                                                totalseg() / "example_seg_fast"));
  const VerifyReport report = mlseg::verify_dataset(dir.path(), quiet_options());
  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  // PROVENANCE.md: 117 binary masks, 40 non-empty.
  ASSERT_EQ(report.channels.size(), 117u);
  std::int64_t present = 0;
  for (const auto& channel : report.channels) present += channel.cases_present;
  EXPECT_EQ(present, 40);
  EXPECT_EQ(count_code(report, "channel_never_present"), 117 - 40);
}

// ---------------------------------------------------------------------------------------------
// 2D datasets with explicit per-channel mask files.

nlohmann::ordered_json two_d_json(const std::string& name, const std::string& image_channel,
                                  const std::string& file_ending, const std::vector<std::string>& channels) {
  nlohmann::ordered_json json;
  json["name"] = name;
  json["channel_names"] = {{"0", image_channel}};
  nlohmann::ordered_json labels = nlohmann::ordered_json::object();
  for (std::size_t c = 0; c < channels.size(); ++c) labels[channels[c]] = static_cast<int>(c + 1);
  json["labels"] = labels;
  json["label_format"] = "channel_masks";
  json["file_ending"] = file_ending;
  json["label_file_ending"] = ".png";
  json["dataset"] = nlohmann::ordered_json::object();
  return json;
}

TEST(VerifyRealData, DriveRgbTifWithPngMasks) {
  MLSEG_REQUIRE_SHARED_DATA();
  const fs::path drive = shared_data_dir() / "drive_2d" / "training";
  auto json = two_d_json("DRIVE", "fundus_rgb", ".tif", {"vessel", "fov"});
  for (int n = 21; n <= 40; ++n) {
    const std::string id = two_digits(n);
    json["dataset"][id] = {
        {"images", {(drive / "images" / (id + "_training.tif")).string()}},
        {"label",
         {{"vessel", (drive / "1st_manual" / (id + "_manual1.png")).string()},
          {"fov", (drive / "mask" / (id + "_training_mask.png")).string()}}}};
  }
  json["numTraining"] = 20;
  TempDir dir;
  write_json(dir / "dataset.json", json);
  const VerifyReport report = mlseg::verify_dataset(dir.path(), quiet_options());

  EXPECT_EQ(report.num_training_cases, 20);
  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  EXPECT_EQ(report.num_warnings(), 0) << describe(report);
  EXPECT_EQ(count_code(report, "spacing_mismatch"), 0) << describe(report);
  ASSERT_EQ(report.channels.size(), 2u);
  EXPECT_EQ(report.channels[0].name, "vessel");
  EXPECT_EQ(report.channels[1].name, "fov");
  EXPECT_EQ(report.channels[0].cases_present, 20);
  EXPECT_EQ(report.channels[1].cases_present, 20);
  // Vessels lie (almost all) inside the field of view, which covers most of the 565 x 584 image.
  EXPECT_LT(report.channels[0].voxels, report.channels[1].voxels);
  EXPECT_GT(report.channels[1].voxels, 20 * 565 * 584 / 2);
  EXPECT_LT(report.channels[1].voxels, 20 * 565 * 584);

  // The RGB fundus image is one file with three components.
  const auto header = mlseg::read_image_header(drive / "images" / "21_training.tif");
  EXPECT_EQ(header.num_channels, 3);
  EXPECT_EQ(header.shape_zyx, (std::array<std::int64_t, 3>{1, 584, 565}));
}

TEST(VerifyRealData, DriveTifAndPngHeadersAgreeOnSpacing) {
  MLSEG_REQUIRE_SHARED_DATA();
  // A .tif and a .png of the same 565 x 584 grid must come back with the same in-plane spacing,
  // or every DRIVE case would be a spacing mismatch. The TIFFs carry XResolution = YResolution =
  // 0/1 per inch (unknown) and the PNGs no pHYs chunk: both mean "no physical size", i.e. 1.
  const fs::path drive = shared_data_dir() / "drive_2d" / "training";
  const auto image = mlseg::read_image_header(drive / "images" / "21_training.tif");
  const auto vessel = mlseg::read_image_header(drive / "1st_manual" / "21_manual1.png");
  const auto fov = mlseg::read_image_header(drive / "mask" / "21_training_mask.png");
  EXPECT_EQ(image.shape_zyx, vessel.shape_zyx);
  EXPECT_EQ(image.shape_zyx, fov.shape_zyx);
  for (int axis = 1; axis < 3; ++axis) {
    EXPECT_DOUBLE_EQ(image.geometry.spacing_zyx_mm[axis], vessel.geometry.spacing_zyx_mm[axis]) << axis;
    EXPECT_DOUBLE_EQ(image.geometry.spacing_zyx_mm[axis], fov.geometry.spacing_zyx_mm[axis]) << axis;
    EXPECT_DOUBLE_EQ(image.geometry.spacing_zyx_mm[axis], 1.0) << axis;
    EXPECT_TRUE(std::isfinite(image.geometry.spacing_zyx_mm[axis]));
  }
}

TEST(VerifyRealData, IsicJpgWithLesionAndPigmentNetworkMasks) {
  MLSEG_REQUIRE_SHARED_DATA();
  const fs::path isic = shared_data_dir() / "isic2018_sample_2d";
  auto json = two_d_json("ISIC2018", "dermoscopy_rgb", ".jpg", {"lesion", "pigment_network"});
  std::vector<std::string> ids;
  for (const auto& entry : fs::directory_iterator(isic / "original")) ids.push_back(entry.path().stem().string());
  std::sort(ids.begin(), ids.end());
  ASSERT_EQ(ids.size(), 6u);
  for (const auto& id : ids) {
    json["dataset"][id] = {
        {"images", {(isic / "original" / (id + ".jpg")).string()}},
        {"label",
         {{"lesion", (isic / "segmentation" / (id + "_Segmentation.png")).string()},
          {"pigment_network", (isic / "pigment-network" / (id + "_attribute_pigment_network.png")).string()}}}};
  }
  json["numTraining"] = 6;
  TempDir dir;
  write_json(dir / "dataset.json", json);
  const VerifyReport report = mlseg::verify_dataset(dir.path(), quiet_options());

  EXPECT_EQ(report.num_training_cases, 6);
  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  // Pigment network is absent from some lesions: that is not a problem for a dataset.
  EXPECT_EQ(count_code(report, "channel_never_present"), 0) << describe(report);
  EXPECT_EQ(count_code(report, "empty_label"), 0) << describe(report);
  EXPECT_EQ(report.num_warnings(), 0) << describe(report);
  ASSERT_EQ(report.channels.size(), 2u);
  EXPECT_EQ(report.channels[0].name, "lesion");
  EXPECT_EQ(report.channels[0].cases_present, 6);
  EXPECT_GE(report.channels[1].cases_present, 1);
  EXPECT_LE(report.channels[1].cases_present, 6);
  EXPECT_GT(report.channels[0].voxels, report.channels[1].voxels);
}

// ---------------------------------------------------------------------------------------------
// Phantoms: every label format verifies clean as written.

class VerifyPhantomFormats : public ::testing::TestWithParam<mlseg::PhantomLabelFormat> {};

TEST_P(VerifyPhantomFormats, WrittenPhantomIsClean) {
  TempDir dir;
  mlseg::PhantomOptions options;
  options.num_cases = 4;
  options.num_test_cases = 1;
  options.shape_zyx = {8, 20, 20};
  options.num_channels = 4;
  options.num_image_channels = 2;
  options.label_format = GetParam();
  options.threads = 2;
  options.show_progress = false;
  mlseg::write_phantom_dataset(dir / "ds", options);
  const VerifyReport report = mlseg::verify_dataset(dir / "ds", quiet_options());
  EXPECT_EQ(report.num_errors(), 0) << describe(report);
  EXPECT_EQ(report.num_warnings(), 0) << describe(report);
  EXPECT_EQ(report.num_training_cases, 4);
  EXPECT_EQ(report.num_test_cases, 1);
  EXPECT_EQ(report.image_channels.size(), 2u);
  ASSERT_EQ(report.channels.size(), 4u);
  EXPECT_EQ(report.channels[0].name, "body");
  EXPECT_EQ(report.channels[0].cases_present, 4);
  // Nesting survives every format: organ inside body, lesion inside organ.
  EXPECT_GT(report.channels[0].voxels, report.channels[1].voxels);
  EXPECT_GT(report.channels[1].voxels, report.channels[2].voxels);
  EXPECT_GT(report.channels[3].voxels, 0);
}

// (The instantiation name starts with Verify so that --gtest_filter='Verify*' selects these too.)
INSTANTIATE_TEST_SUITE_P(VerifyFormats, VerifyPhantomFormats,
                         ::testing::Values(mlseg::PhantomLabelFormat::label_map, mlseg::PhantomLabelFormat::regions,
                                           mlseg::PhantomLabelFormat::bitmask,
                                           mlseg::PhantomLabelFormat::multihot4d,
                                           mlseg::PhantomLabelFormat::channel_masks),
                         [](const auto& info) { return mlseg::to_string(info.param); });

}  // namespace
