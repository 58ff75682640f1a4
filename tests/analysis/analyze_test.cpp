#include <gtest/gtest.h>

#include <fstream>

#include "mlseg/analysis/analyze.h"
#include "mlseg/core/error.h"
#include "mlseg/io/json_file.h"
#include "mlseg/synth/phantom.h"
#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;

AnalyzeOptions quiet(const testing::TempDir& dir) {
  AnalyzeOptions options;
  options.work_dir = (dir / "work").string();
  options.threads = 2;
  options.show_progress = false;
  options.foreground_samples = 200'000;
  return options;
}

int channel(const AnalysisResult& result, const std::string& name) {
  for (std::size_t c = 0; c < result.channel_names.size(); ++c) {
    if (result.channel_names[c] == name) return static_cast<int>(c);
  }
  ADD_FAILURE() << "no channel " << name;
  return 0;
}

const ChannelRelation* relation(const AnalysisResult& result, ChannelRelation::Kind kind, const std::string& a,
                                const std::string& b) {
  for (const auto& r : result.relations) {
    if (r.kind == kind && result.channel_names[r.first] == a && result.channel_names[r.second] == b) return &r;
  }
  return nullptr;
}

TEST(AnalyzePhantom, TenChannelBitmaskCountsAreExact) {
  testing::TempDir dir;
  PhantomOptions phantom;
  phantom.num_cases = 12;
  phantom.num_channels = 10;
  phantom.shape_zyx = {10, 24, 24};
  phantom.label_format = PhantomLabelFormat::bitmask;
  phantom.show_progress = false;
  write_phantom_dataset(dir / "Dataset950_Bits", phantom);
  AnalyzeOptions options = quiet(dir);
  options.min_combo_cases = 3;
  const AnalysisResult result = analyze_dataset(dir / "Dataset950_Bits", options);

  // Expected by construction: count the generator's own codes.
  std::vector<std::int64_t> voxels(10, 0), cases(10, 0);
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> combos;  // code -> (voxels, cases)
  for (int i = 0; i < phantom.num_cases; ++i) {
    const PhantomCase truth = make_phantom_case(i, phantom);
    const torch::Tensor masks = decode_channels(truth.code).to(torch::kInt64);
    for (int c = 0; c < 10; ++c) {
      const auto n = masks[c].sum().item<std::int64_t>();
      voxels[c] += n;
      cases[c] += n > 0;
    }
    const auto [unique, inverse, counts] = torch::_unique2(truth.code.words.to(torch::kInt64).flatten(), true, false, true);
    for (std::int64_t k = 0; k < unique.numel(); ++k) {
      auto& entry = combos[unique[k].item<std::int64_t>()];
      entry.first += counts[k].item<std::int64_t>();
      entry.second += 1;
    }
  }
  ASSERT_EQ(result.channels.size(), 10u);
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(result.channels[c].voxels, voxels[c]) << c;
    EXPECT_EQ(result.channels[c].cases_present, cases[c]) << c;
  }
  EXPECT_EQ(result.channels[channel(result, "rare")].cases_present, 3);  // cases 0, 4, 8
  EXPECT_EQ(result.background_voxels, combos[0].first);
  EXPECT_EQ(result.combinations.size(), combos.size() - 1);
  for (const auto& combo : result.combinations) {
    const auto& expected = combos.at(static_cast<std::int64_t>(combo.key[0]));
    EXPECT_EQ(combo.voxels, expected.first);
    EXPECT_EQ(combo.cases, expected.second);
    EXPECT_EQ(combo.rare, expected.first < options.min_combo_voxels || expected.second < 3);
  }
  // Sorted by voxels, most first.
  for (std::size_t i = 1; i < result.combinations.size(); ++i) {
    EXPECT_GE(result.combinations[i - 1].voxels, result.combinations[i].voxels);
  }
  EXPECT_NE(relation(result, ChannelRelation::Kind::inside, "organ", "body"), nullptr);
  EXPECT_NE(relation(result, ChannelRelation::Kind::inside, "lesion", "organ"), nullptr);
  EXPECT_NE(relation(result, ChannelRelation::Kind::partial, "organ", "vessel"), nullptr);
  EXPECT_EQ(relation(result, ChannelRelation::Kind::inside, "vessel", "body"), nullptr);
  const auto* cyst = relation(result, ChannelRelation::Kind::disjoint, "organ", "cyst");
  ASSERT_NE(cyst, nullptr);
  EXPECT_EQ(cyst->overlap_voxels, 0);
  // About twenty of the 1024 possible combinations occur: one class per combination fits.
  EXPECT_EQ(result.recommended_encoding, "powerset");
  EXPECT_NE(result.encoding_reason.find("one class per combination"), std::string::npos);
  // Stratified folds: the rare channel (3 cases) is in 3 different validation folds.
  int folds_with_rare = 0;
  for (std::size_t f = 0; f < result.folds.size(); ++f) folds_with_rare += result.fold_coverage[channel(result, "rare")][f] > 0;
  EXPECT_EQ(folds_with_rare, 3);
  bool warned = false;
  for (const auto& warning : result.warnings) warned |= warning.find("\"rare\" is present in only 3 cases") != std::string::npos;
  EXPECT_TRUE(warned);
  // Files in the work folder.
  const fs::path out = dir / "work/Dataset950_Bits";
  const auto labels = read_json_file(out / "analysis/labels.json");
  EXPECT_EQ(labels["channels"][0]["voxels"].get<std::int64_t>(), voxels[0]);
  EXPECT_EQ(read_json_file(out / "splits_final.json").size(), 5u);
  EXPECT_TRUE(read_json_file(out / "analysis/fingerprint.json").contains("foreground_intensity_properties_per_channel"));
  const std::string report = format_analysis_report(result);
  EXPECT_EQ(report.find("nan"), std::string::npos);
  EXPECT_NE(report.find("lesion lies inside organ in every case"), std::string::npos);
}

TEST(AnalyzePhantom, FingerprintShapesSpacingAndIntensities) {
  testing::TempDir dir;
  PhantomOptions phantom;
  phantom.num_cases = 3;
  phantom.num_channels = 2;
  phantom.shape_zyx = {6, 20, 16};
  phantom.spacing_zyx_mm = {3.0, 0.5, 0.5};
  phantom.noise_std = 0.0;  // body = 1.0, organ adds 0.8: intensities are known exactly
  phantom.label_format = PhantomLabelFormat::multihot4d;
  phantom.show_progress = false;
  write_phantom_dataset(dir / "Dataset951_Known", phantom);
  const AnalysisResult result = analyze_dataset(dir / "Dataset951_Known", quiet(dir));
  ASSERT_EQ(result.cases.size(), 3u);
  EXPECT_EQ(result.cases[0].shape_zyx, (std::array<std::int64_t, 3>{6, 20, 16}));
  EXPECT_EQ(result.cases[0].spacing_zyx_mm, (std::array<double, 3>{3.0, 0.5, 0.5}));
  // Nonzero image voxels are exactly the body: the crop box is the body's bounding box.
  const torch::Tensor body = decode_channels(make_phantom_case(0, phantom).code)[0];
  const torch::Tensor where = body.nonzero();
  for (int axis = 0; axis < 3; ++axis) {
    const auto extent = where.select(1, axis).max().item<std::int64_t>() - where.select(1, axis).min().item<std::int64_t>() + 1;
    EXPECT_EQ(result.cases[0].shape_after_crop_zyx[axis], extent);
  }
  const IntensityStatistics& s = result.intensity.at(0);
  ASSERT_TRUE(s.defined);
  EXPECT_EQ(s.num_samples, 200'000 / 3 * 3);
  EXPECT_FLOAT_EQ(static_cast<float>(s.min), 1.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(s.max), 1.8f);
  EXPECT_GT(s.mean, 1.0);
  EXPECT_LT(s.mean, 1.8);
  // ml volumes use the spacing: 3 * 0.5 * 0.5 mm^3 per voxel.
  const auto& ch = result.channels[0];
  EXPECT_NEAR(ch.volume_ml_max, ch.volume_voxels_max * 0.75 / 1000.0, 1e-12);
  EXPECT_EQ(result.recommended_encoding, "powerset");
  EXPECT_NE(relation(result, ChannelRelation::Kind::inside, "organ", "body"), nullptr);
}

TEST(AnalyzePhantom, KeepsExistingSplitsUnlessAskedAndRejectsForeignIds) {
  testing::TempDir dir;
  PhantomOptions phantom;
  phantom.num_cases = 6;
  phantom.shape_zyx = {4, 12, 12};
  phantom.show_progress = false;
  write_phantom_dataset(dir / "Dataset952_Splits", phantom);
  AnalyzeOptions options = quiet(dir);
  options.splits = SplitMethod::random;
  const AnalysisResult first = analyze_dataset(dir / "Dataset952_Splits", options);
  EXPECT_EQ(first.split_method, "random");
  options.splits = SplitMethod::stratified;
  const AnalysisResult second = analyze_dataset(dir / "Dataset952_Splits", options);
  EXPECT_EQ(second.split_method, "existing");
  EXPECT_EQ(folds_to_json(second.folds), folds_to_json(first.folds));
  options.overwrite_splits = true;
  EXPECT_EQ(analyze_dataset(dir / "Dataset952_Splits", options).split_method, "stratified");
  write_json_file(dir / "work/Dataset952_Splits/splits_final.json",
                  nlohmann::ordered_json::parse(R"([{"train": ["phantom_0000"], "val": ["someone_else"]}])"));
  options.overwrite_splits = false;
  EXPECT_THROW(analyze_dataset(dir / "Dataset952_Splits", options), Error);
}

TEST(AnalyzeRealData, HippocampusLabelsAndRegions) {
  MLSEG_REQUIRE_SHARED_DATA();
  testing::TempDir dir;
  const fs::path source = testing::shared_data_dir() / "Dataset004_Hippocampus";
  const AnalysisResult labels = analyze_dataset(source, quiet(dir));
  EXPECT_EQ(labels.cases.size(), 200u);
  EXPECT_EQ(labels.recommended_encoding, "softmax");
  EXPECT_EQ(labels.channels[0].cases_present, 200);
  EXPECT_NE(relation(labels, ChannelRelation::Kind::disjoint, "anterior", "posterior"), nullptr);
  // The same files as regions: whole = {1, 2}, posterior = {2}.
  fs::create_directories(dir / "Dataset104_HippocampusRegions");
  fs::create_directory_symlink(source / "imagesTr", dir / "Dataset104_HippocampusRegions/imagesTr");
  fs::create_directory_symlink(source / "labelsTr", dir / "Dataset104_HippocampusRegions/labelsTr");
  nlohmann::ordered_json json = read_json_file(source / "dataset.json");
  json["labels"] = nlohmann::ordered_json::parse(R"({"background": 0, "whole": [1, 2], "posterior": 2})");
  json["regions_class_order"] = {1, 2};
  write_json_file(dir / "Dataset104_HippocampusRegions/dataset.json", json);
  const AnalysisResult regions = analyze_dataset(dir / "Dataset104_HippocampusRegions", quiet(dir));
  const auto* nested = relation(regions, ChannelRelation::Kind::inside, "posterior", "whole");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->overlap_voxels, labels.channels[1].voxels);
  EXPECT_EQ(regions.channels[0].voxels, labels.channels[0].voxels + labels.channels[1].voxels);
}

TEST(AnalyzeRealData, BratsRegionsNestInsideEachOther) {
  MLSEG_REQUIRE_SHARED_DATA();
  testing::TempDir dir;
  const AnalysisResult result = analyze_dataset(testing::shared_data_dir() / "Dataset001_BraTS2015", quiet(dir));
  EXPECT_NE(relation(result, ChannelRelation::Kind::inside, "enhancing_tumor", "tumor_core"), nullptr);
  EXPECT_NE(relation(result, ChannelRelation::Kind::inside, "tumor_core", "whole_tumor"), nullptr);
  EXPECT_NE(relation(result, ChannelRelation::Kind::inside, "enhancing_tumor", "whole_tumor"), nullptr);
  EXPECT_EQ(result.combinations.size(), 3u);
  EXPECT_EQ(result.intensity.size(), 2u);
  EXPECT_EQ(result.folds.size(), 5u);
}

TEST(AnalyzeRealData, TotalSegmentatorMasksLungIsUnionOfLobes) {
  MLSEG_REQUIRE_SHARED_DATA();
  testing::TempDir dir;
  const fs::path data = testing::shared_data_dir() / "totalsegmentator_ct";
  nlohmann::ordered_json json;
  json["channel_names"] = {{"0", "CT"}};
  json["file_ending"] = ".nii.gz";
  json["label_format"] = "channel_masks";
  json["numTraining"] = 1;
  json["dataset"] = {{"s0001", {{"images", {(data / "example_ct.nii.gz").string()}},
                                {"label", (data / "example_seg_v1_at_2515ad4").string()}}}};
  fs::create_directories(dir / "Dataset105_TotalSeg");
  write_json_file(dir / "Dataset105_TotalSeg/dataset.json", json);
  const AnalysisResult result = analyze_dataset(dir / "Dataset105_TotalSeg", quiet(dir));
  ASSERT_EQ(result.channel_names.size(), 107u);
  const int lung = channel(result, "lung");
  std::int64_t lobes = 0;
  for (const char* lobe : {"lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right",
                           "lung_middle_lobe_right", "lung_lower_lobe_right"}) {
    const auto& lobe_stats = result.channels[channel(result, lobe)];
    lobes += lobe_stats.voxels;
    if (lobe_stats.voxels == 0) continue;  // this CT is a crop: the right upper lobe is not in it
    EXPECT_NE(relation(result, ChannelRelation::Kind::inside, lobe, "lung"), nullptr) << lobe;
  }
  EXPECT_EQ(result.channels[lung].voxels, lobes);
  int never_present = 0;
  for (const auto& ch : result.channels) never_present += ch.cases_present == 0;
  EXPECT_EQ(never_present, 45);
  int warnings = 0;
  for (const auto& w : result.warnings) warnings += w.find("is empty in every case") != std::string::npos;
  EXPECT_EQ(warnings, 45);
  EXPECT_TRUE(result.folds.empty());  // one case: no folds
}

}  // namespace
}  // namespace mlseg
