// verify_dataset() on broken copies: a small real Hippocampus subset (and phantoms for the
// multi-label formats) copied into a temporary folder, then corrupted, one problem per test. Each
// test asserts the exact problem codes, their severity and where they point.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
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

using mlseg::testing::describe;

std::vector<std::string> codes(const VerifyReport& report) {
  std::vector<std::string> result;
  for (const auto& p : report.problems) result.push_back(p.code);
  return result;
}

const VerifyProblem* find_problem(const VerifyReport& report, const std::string& code) {
  for (const auto& p : report.problems) {
    if (p.code == code) return &p;
  }
  return nullptr;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::int64_t peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// A 6-case copy of Dataset004_Hippocampus (hippocampus_003 has a float32 label; 011's label is
// byte-identical to bad_inputs/label_hippocampus_010).
class HippocampusCopy {
 public:
  static inline const std::vector<std::string> kIds{"hippocampus_001", "hippocampus_003", "hippocampus_004",
                                                    "hippocampus_006", "hippocampus_007", "hippocampus_011"};

  HippocampusCopy() : root_(dir_ / "Dataset004_Hippocampus") {
    const fs::path source = shared_data_dir() / "Dataset004_Hippocampus";
    fs::create_directories(root_ / "imagesTr");
    fs::create_directories(root_ / "labelsTr");
    for (const auto& id : kIds) {
      copy(source / "imagesTr" / (id + "_0000.nii.gz"), image(id));
      copy(source / "labelsTr" / (id + ".nii.gz"), label(id));
    }
    std::ifstream stream(source / "dataset.json");
    json_ = nlohmann::ordered_json::parse(stream);
    set_num_training(static_cast<int>(kIds.size()));
  }

  const fs::path& root() const { return root_; }
  fs::path image(const std::string& id) const { return root_ / "imagesTr" / (id + "_0000.nii.gz"); }
  fs::path label(const std::string& id) const { return root_ / "labelsTr" / (id + ".nii.gz"); }
  nlohmann::ordered_json& json() { return json_; }
  void set_num_training(int count) {
    json_["numTraining"] = count;
    write_json();
  }
  void write_json() const {
    std::ofstream stream(root_ / "dataset.json");
    stream << json_.dump(2) << "\n";
  }
  VerifyReport verify() const { return mlseg::verify_dataset(root_, quiet_options()); }

  static void copy(const fs::path& from, const fs::path& to) {
    fs::create_directories(to.parent_path());
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
  }

 private:
  TempDir dir_;
  fs::path root_;
  nlohmann::ordered_json json_;
};

fs::path bad_inputs() { return shared_data_dir() / "bad_inputs" / "hippocampus"; }

void truncate_to_half(const fs::path& path) {
  const auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
}

// Rewrites a label through mlseg's own reader and writer with `change` applied (uint8 on disk).
template <typename Change>
void rewrite_label(const fs::path& path, Change change) {
  mlseg::Image label = mlseg::read_label_image(path);
  change(label);
  if (label.data.scalar_type() == torch::kInt64) label.data = label.data.to(torch::kUInt8);
  mlseg::write_image(label, path);
}

// ---------------------------------------------------------------------------------------------
// Controls: the copy, and a label rewritten unchanged, are clean.

TEST(VerifyCorrupted, UntouchedCopyIsClean) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  const VerifyReport report = copy.verify();
  EXPECT_TRUE(report.problems.empty()) << describe(report);
  EXPECT_EQ(report.num_training_cases, 6);
  ASSERT_EQ(report.channels.size(), 2u);
  EXPECT_EQ(report.channels[0].cases_present, 6);
  EXPECT_EQ(report.channels[1].cases_present, 6);
}

TEST(VerifyCorrupted, LabelRewrittenUnchangedStaysClean) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  rewrite_label(copy.label("hippocampus_004"), [](mlseg::Image&) {});
  rewrite_label(copy.label("hippocampus_003"), [](mlseg::Image&) {});  // stored as float32 originally
  const VerifyReport report = copy.verify();
  EXPECT_TRUE(report.problems.empty()) << describe(report);
}

// ---------------------------------------------------------------------------------------------
// Unreadable files.

// ITK's nifti1_io zero-fills whatever a truncated .nii.gz lacks; mlseg's own NIfTI pixel reader
// (io/nifti_pixels.cpp) counts the bytes and reports the truncation.
TEST(VerifyCorrupted, TruncatedCompressedImage) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  truncate_to_half(copy.image("hippocampus_006"));
  const VerifyReport report = copy.verify();
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  const VerifyProblem& problem = report.problems[0];
  EXPECT_EQ(problem.code, "file_truncated");
  EXPECT_NE(problem.message.find("pixel bytes its header promises"), std::string::npos) << problem.message;
  EXPECT_EQ(problem.severity, Severity::error);
  EXPECT_EQ(problem.case_id, "hippocampus_006");
  EXPECT_EQ(problem.file, "imagesTr/hippocampus_006_0000.nii.gz");
  EXPECT_FALSE(problem.fix.empty());
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyCorrupted, TruncatedCompressedLabel) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  truncate_to_half(copy.label("hippocampus_001"));
  const VerifyReport report = copy.verify();
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  EXPECT_EQ(report.problems[0].code, "file_truncated");
  EXPECT_EQ(report.problems[0].case_id, "hippocampus_001");
  EXPECT_EQ(report.problems[0].file, "labelsTr/hippocampus_001.nii.gz");
  // An unreadable label does not count towards channel presence.
  EXPECT_EQ(report.channels[0].cases_present, 5);
}

TEST(VerifyCorrupted, EmptyImageFile) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  std::ofstream(copy.image("hippocampus_007"), std::ios::trunc).close();
  ASSERT_EQ(fs::file_size(copy.image("hippocampus_007")), 0u);
  const VerifyReport report = copy.verify();
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  EXPECT_EQ(report.problems[0].code, "file_empty");
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "hippocampus_007");
  EXPECT_EQ(report.problems[0].file, "imagesTr/hippocampus_007_0000.nii.gz");
  EXPECT_EQ(report.exit_code(false), 2);
}

// A hand-made uncompressed NIfTI-1 header claiming 30000^3 uint8 voxels, followed by a few bytes.
void write_hostile_nifti(const fs::path& path) {
  char header[352] = {};
  auto put_int = [&](int offset, std::int32_t value) { std::memcpy(header + offset, &value, 4); };
  auto put_short = [&](int offset, std::int16_t value) { std::memcpy(header + offset, &value, 2); };
  auto put_float = [&](int offset, float value) { std::memcpy(header + offset, &value, 4); };
  put_int(0, 348);  // sizeof_hdr
  const std::int16_t dim[8] = {3, 30000, 30000, 30000, 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put_short(40 + 2 * i, dim[i]);
  put_short(70, 2);  // datatype: DT_UNSIGNED_CHAR
  put_short(72, 8);  // bitpix
  for (int i = 0; i < 8; ++i) put_float(76 + 4 * i, 1.0f);  // pixdim
  put_float(108, 352.0f);                                     // vox_offset
  put_float(112, 1.0f);                                       // scl_slope
  std::memcpy(header + 344, "n+1\0", 4);                      // magic
  std::ofstream stream(path, std::ios::binary);
  stream.write(header, sizeof header);
  const char pixels[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  stream.write(pixels, sizeof pixels);
}

TEST(VerifyCorrupted, HostileNiftiHeaderIsRejectedWithoutAllocating) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  // A .nii dataset: two real cases converted, plus the hostile image (labels stay .nii.gz).
  TempDir dir;
  const fs::path root = dir / "Dataset005_Hostile";
  fs::create_directories(root / "imagesTr");
  fs::create_directories(root / "labelsTr");
  for (const std::string id : {"hippocampus_001", "hippocampus_003"}) {
    mlseg::write_image(mlseg::read_image(copy.image(id)), root / "imagesTr" / (id + "_0000.nii"));
    HippocampusCopy::copy(copy.label(id), root / "labelsTr" / (id + ".nii.gz"));
  }
  write_hostile_nifti(root / "imagesTr" / "hippocampus_999_0000.nii");
  HippocampusCopy::copy(bad_inputs() / "label_hippocampus_010.nii.gz", root / "labelsTr" / "hippocampus_999.nii.gz");
  auto json = copy.json();
  json["file_ending"] = ".nii";
  json["label_file_ending"] = ".nii.gz";
  json["numTraining"] = 3;
  std::ofstream(root / "dataset.json") << json.dump(2);

  const std::int64_t rss_before = peak_rss_kib();
  const auto start = std::chrono::steady_clock::now();
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::int64_t rss_growth_mib = (peak_rss_kib() - rss_before) / 1024;

  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  const VerifyProblem& problem = report.problems[0];
  EXPECT_TRUE(problem.code == "implausible_header" || problem.code == "file_truncated") << problem.code;
  EXPECT_EQ(problem.severity, Severity::error);
  EXPECT_EQ(problem.case_id, "hippocampus_999");
  EXPECT_EQ(problem.file, "imagesTr/hippocampus_999_0000.nii");
  EXPECT_TRUE(contains(problem.message, "30000")) << problem.message;
  EXPECT_EQ(report.exit_code(false), 2);
  EXPECT_LT(seconds, 10.0);
  EXPECT_LT(rss_growth_mib, 512) << "verify allocated for the hostile header";
  // The other two cases were checked normally.
  ASSERT_EQ(report.channels.size(), 2u);
  EXPECT_EQ(report.channels[0].cases_present, 3);
}

// ---------------------------------------------------------------------------------------------
// Geometry.

TEST(VerifyCorrupted, LabelWithWrongShape) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  HippocampusCopy::copy(bad_inputs() / "label_hippocampus_281.nii.gz", copy.label("hippocampus_004"));
  const VerifyReport report = copy.verify();
  const VerifyProblem* problem = find_problem(report, "label_shape_mismatch");
  ASSERT_NE(problem, nullptr) << describe(report);
  EXPECT_EQ(problem->severity, Severity::error);
  EXPECT_EQ(problem->case_id, "hippocampus_004");
  EXPECT_EQ(problem->file, "labelsTr/hippocampus_004.nii.gz");
  EXPECT_TRUE(contains(problem->message, "94 x 512 x 512")) << problem->message;
  EXPECT_TRUE(contains(problem->message, "imagesTr/hippocampus_004_0000.nii.gz")) << problem->message;
  // Nothing about the other cases.
  for (const auto& p : report.problems) EXPECT_EQ(p.case_id, "hippocampus_004") << describe(report);
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyCorrupted, LabelWithDifferentSpacing) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  rewrite_label(copy.label("hippocampus_006"), [](mlseg::Image& label) { label.geometry.spacing_zyx_mm[2] *= 1.5; });
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"spacing_mismatch"}) << describe(report);
  const VerifyProblem& problem = report.problems[0];
  EXPECT_EQ(problem.severity, Severity::error);
  EXPECT_EQ(problem.case_id, "hippocampus_006");
  EXPECT_EQ(problem.file, "labelsTr/hippocampus_006.nii.gz");
  EXPECT_TRUE(contains(problem.message, "imagesTr/hippocampus_006_0000.nii.gz")) << problem.message;
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyCorrupted, LabelWithShiftedOriginIsAWarning) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  rewrite_label(copy.label("hippocampus_007"), [](mlseg::Image& label) { label.geometry.origin_zyx_mm[0] += 10.0; });
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"origin_mismatch"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::warning);
  EXPECT_EQ(report.problems[0].case_id, "hippocampus_007");
  EXPECT_EQ(report.problems[0].file, "labelsTr/hippocampus_007.nii.gz");
  EXPECT_EQ(report.num_errors(), 0);
  EXPECT_EQ(report.exit_code(false), 0);
  EXPECT_EQ(report.exit_code(true), 1);
}

// ---------------------------------------------------------------------------------------------
// Values.

TEST(VerifyCorrupted, UndeclaredLabelValue) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  rewrite_label(copy.label("hippocampus_003"), [](mlseg::Image& label) {
    for (int x = 0; x < 5; ++x) label.data[0][0][0][x] = 7;
  });
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"label_value_not_declared"}) << describe(report);
  const VerifyProblem& problem = report.problems[0];
  EXPECT_EQ(problem.severity, Severity::error);
  EXPECT_EQ(problem.case_id, "hippocampus_003");
  EXPECT_EQ(problem.file, "labelsTr/hippocampus_003.nii.gz");
  EXPECT_TRUE(contains(problem.message, "7 (5 voxels)")) << problem.message;
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyCorrupted, NonIntegerFloatLabel) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  mlseg::Image label = mlseg::read_label_image(copy.label("hippocampus_007"));
  label.data = label.data.to(torch::kFloat32);
  label.data[0][1][2][3] = 0.5f;
  mlseg::write_image(label, copy.label("hippocampus_007"));
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"label_not_integer"}) << describe(report);
  const VerifyProblem& problem = report.problems[0];
  EXPECT_EQ(problem.severity, Severity::error);
  EXPECT_EQ(problem.case_id, "hippocampus_007");
  EXPECT_EQ(problem.file, "labelsTr/hippocampus_007.nii.gz");
  EXPECT_TRUE(contains(problem.message, "0.5")) << problem.message;
  EXPECT_TRUE(contains(problem.message, "z=1, y=2, x=3")) << problem.message;
}

// ITK's nifti1_io replaces NaN/Inf float voxels by 0; mlseg reads NIfTI pixels itself so that
// they reach verify (the same check on MetaImage: VerifyCorruptedPhantom.NanInMetaImage).
TEST(VerifyCorrupted, NanAndInfInImage) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  mlseg::Image image = mlseg::read_image(copy.image("hippocampus_001"));
  image.data[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  image.data[0][1][1][1] = std::numeric_limits<float>::quiet_NaN();
  image.data[0][2][2][2] = std::numeric_limits<float>::infinity();
  mlseg::write_image(image, copy.image("hippocampus_001"));
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"image_not_finite"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "hippocampus_001");
  EXPECT_EQ(report.problems[0].file, "imagesTr/hippocampus_001_0000.nii.gz");
  EXPECT_TRUE(contains(report.problems[0].message, "3 voxels")) << report.problems[0].message;
}

// ---------------------------------------------------------------------------------------------
// dataset.json.

TEST(VerifyCorrupted, JsonSyntaxErrorIsOneLocatedError) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  std::ofstream(copy.root() / "dataset.json", std::ios::trunc)
      << "{\n  \"channel_names\": {\"0\": \"MRI\"},\n  \"labels\": {\"background\": 0 \"anterior\": 1},\n"
         "  \"numTraining\": 6,\n  \"file_ending\": \".nii.gz\"\n}\n";
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"invalid_dataset"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].file, "dataset.json");
  EXPECT_TRUE(contains(report.problems[0].message, "line 3")) << report.problems[0].message;
  EXPECT_FALSE(report.problems[0].fix.empty());
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyCorrupted, RegionsWithoutRegionsClassOrder) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  copy.json()["labels"] = {{"background", 0}, {"whole", {1, 2}}, {"posterior", {2}}};
  copy.write_json();
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"invalid_dataset"}) << describe(report);
  EXPECT_EQ(report.problems[0].file, "dataset.json");
  EXPECT_TRUE(contains(report.problems[0].message, "regions_class_order")) << report.problems[0].message;
  EXPECT_EQ(report.exit_code(false), 2);

  // With the order the same regions are clean, and whole ⊇ posterior.
  copy.json()["regions_class_order"] = {1, 2};
  copy.write_json();
  const VerifyReport fixed = copy.verify();
  EXPECT_TRUE(fixed.problems.empty()) << describe(fixed);
  ASSERT_EQ(fixed.channels.size(), 2u);
  EXPECT_GT(fixed.channels[0].voxels, fixed.channels[1].voxels);
}

TEST(VerifyCorrupted, NumTrainingMismatch) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  copy.set_num_training(9);
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"num_training_mismatch"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].file, "dataset.json");
  EXPECT_TRUE(contains(report.problems[0].message, "9")) << report.problems[0].message;
  EXPECT_TRUE(contains(report.problems[0].message, "6 training cases")) << report.problems[0].message;
  EXPECT_TRUE(contains(report.problems[0].fix, "6")) << report.problems[0].fix;
}

// ---------------------------------------------------------------------------------------------
// Layout.

TEST(VerifyCorrupted, LabelWithoutImage) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  HippocampusCopy::copy(bad_inputs() / "label_hippocampus_010.nii.gz", copy.label("hippocampus_999"));
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"orphan_label"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "hippocampus_999");
  EXPECT_EQ(report.problems[0].file, "labelsTr/hippocampus_999.nii.gz");
  EXPECT_EQ(report.num_training_cases, 6);
}

TEST(VerifyCorrupted, ImageWithoutLabel) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  HippocampusCopy::copy(bad_inputs() / "image_hippocampus_118.nii.gz", copy.image("hippocampus_118"));
  copy.set_num_training(7);
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"missing_label"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "hippocampus_118");
  EXPECT_EQ(report.problems[0].file, "labelsTr/hippocampus_118.nii.gz");
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyCorrupted, DeletedImageOfSingleChannelDatasetLeavesAnOrphanLabel) {
  MLSEG_REQUIRE_SHARED_DATA();
  // With one image channel the case disappears from imagesTr: its label is an orphan and
  // numTraining no longer matches.
  HippocampusCopy copy;
  fs::remove(copy.image("hippocampus_004"));
  const VerifyReport report = copy.verify();
  EXPECT_EQ(report.num_training_cases, 5);
  std::vector<std::string> found = codes(report);
  std::sort(found.begin(), found.end());
  ASSERT_EQ(found, (std::vector<std::string>{"num_training_mismatch", "orphan_label"})) << describe(report);
  const VerifyProblem* orphan = find_problem(report, "orphan_label");
  EXPECT_EQ(orphan->case_id, "hippocampus_004");
  EXPECT_EQ(orphan->file, "labelsTr/hippocampus_004.nii.gz");
}

TEST(VerifyCorrupted, DuplicateLabelNamesBothCases) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  // bad_inputs' label_hippocampus_010 is byte-identical to hippocampus_011's label; give it an
  // image of its own (011's, slightly changed, so only the labels are duplicates).
  HippocampusCopy::copy(bad_inputs() / "label_hippocampus_010.nii.gz", copy.label("hippocampus_010"));
  mlseg::Image image = mlseg::read_image(copy.image("hippocampus_011"));
  image.data[0][0][0][0] += 1.0f;
  mlseg::write_image(image, copy.image("hippocampus_010"));
  copy.set_num_training(7);
  const VerifyReport report = copy.verify();
  ASSERT_EQ(codes(report), std::vector<std::string>{"duplicate_label"}) << describe(report);
  const VerifyProblem& problem = report.problems[0];
  EXPECT_EQ(problem.severity, Severity::warning);
  EXPECT_EQ(problem.case_id, "hippocampus_010");
  EXPECT_TRUE(contains(problem.message, "hippocampus_010")) << problem.message;
  EXPECT_TRUE(contains(problem.message, "hippocampus_011")) << problem.message;
  EXPECT_EQ(report.exit_code(false), 0);
  EXPECT_EQ(report.exit_code(true), 1);

  VerifyOptions no_duplicates = quiet_options();
  no_duplicates.check_duplicates = false;
  EXPECT_TRUE(mlseg::verify_dataset(copy.root(), no_duplicates).problems.empty());
}

TEST(VerifyCorrupted, DuplicateCaseReportsImageAndLabel) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  HippocampusCopy::copy(copy.image("hippocampus_003"), copy.image("hippocampus_203"));
  HippocampusCopy::copy(copy.label("hippocampus_003"), copy.label("hippocampus_203"));
  copy.set_num_training(7);
  const VerifyReport report = copy.verify();
  std::vector<std::string> found = codes(report);
  std::sort(found.begin(), found.end());
  ASSERT_EQ(found, (std::vector<std::string>{"duplicate_image", "duplicate_label"})) << describe(report);
  for (const auto& problem : report.problems) {
    EXPECT_EQ(problem.case_id, "hippocampus_003");
    EXPECT_TRUE(contains(problem.message, "hippocampus_003, hippocampus_203")) << problem.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Several problems at once are all collected.

TEST(VerifyCorrupted, AllProblemsAreCollected) {
  MLSEG_REQUIRE_SHARED_DATA();
  HippocampusCopy copy;
  copy.set_num_training(8);
  rewrite_label(copy.label("hippocampus_003"), [](mlseg::Image& label) { label.data[0][0][0][0] = 7; });
  rewrite_label(copy.label("hippocampus_006"), [](mlseg::Image& label) { label.geometry.spacing_zyx_mm[0] *= 2; });
  std::ofstream(copy.image("hippocampus_011"), std::ios::trunc).close();
  const VerifyReport report = copy.verify();
  // Errors sorted by case; the dataset-wide one (no case) first.
  ASSERT_EQ(codes(report), (std::vector<std::string>{"num_training_mismatch", "label_value_not_declared",
                                                     "spacing_mismatch", "file_empty"}))
      << describe(report);
  EXPECT_EQ(report.problems[1].case_id, "hippocampus_003");
  EXPECT_EQ(report.problems[2].case_id, "hippocampus_006");
  EXPECT_EQ(report.problems[3].case_id, "hippocampus_011");
  EXPECT_EQ(report.num_errors(), 4);
  const std::string text = mlseg::format_verify_report(report);
  EXPECT_TRUE(contains(text, "4 errors, 0 warnings")) << text;
  EXPECT_TRUE(contains(text, "fix the errors before training")) << text;
}

// ---------------------------------------------------------------------------------------------
// Format-specific problems, on phantoms.

fs::path write_phantom(const TempDir& dir, mlseg::PhantomLabelFormat format, int image_channels = 1) {
  mlseg::PhantomOptions options;
  options.num_cases = 3;
  options.shape_zyx = {6, 16, 16};
  options.num_channels = 3;
  options.num_image_channels = image_channels;
  options.label_format = format;
  options.threads = 2;
  options.show_progress = false;
  const fs::path root = dir / "Dataset900_Phantom";
  mlseg::write_phantom_dataset(root, options);
  return root;
}

TEST(VerifyCorruptedPhantom, BitmaskStrayBit) {
  TempDir dir;
  const fs::path root = write_phantom(dir, mlseg::PhantomLabelFormat::bitmask);
  ASSERT_TRUE(mlseg::verify_dataset(root, quiet_options()).problems.empty());
  rewrite_label(root / "labelsTr" / "phantom_0001.nii.gz", [](mlseg::Image& label) {
    label.data[0][0][0][0] = 8;  // bits 1, 2, 4 are declared
  });
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  ASSERT_EQ(codes(report), std::vector<std::string>{"bitmask_value_outside_declared_bits"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "phantom_0001");
  EXPECT_EQ(report.problems[0].file, "labelsTr/phantom_0001.nii.gz");
  EXPECT_TRUE(contains(report.problems[0].message, "8 (1 voxels)")) << report.problems[0].message;
}

TEST(VerifyCorruptedPhantom, ChannelMasksMissingFile) {
  TempDir dir;
  const fs::path root = write_phantom(dir, mlseg::PhantomLabelFormat::channel_masks);
  ASSERT_TRUE(fs::remove(root / "labelsTr" / "phantom_0002" / "organ.nii.gz"));
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  ASSERT_EQ(codes(report), std::vector<std::string>{"missing_mask_file"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "phantom_0002");
  EXPECT_EQ(report.problems[0].file, "labelsTr/phantom_0002/organ.nii.gz");
  EXPECT_TRUE(contains(report.problems[0].message, "\"organ\"")) << report.problems[0].message;
}

TEST(VerifyCorruptedPhantom, ChannelMasksUnexpectedFile) {
  TempDir dir;
  const fs::path root = write_phantom(dir, mlseg::PhantomLabelFormat::channel_masks);
  fs::copy_file(root / "labelsTr" / "phantom_0000" / "body.nii.gz", root / "labelsTr" / "phantom_0000" / "tumour.nii.gz");
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  ASSERT_EQ(codes(report), std::vector<std::string>{"unexpected_mask_file"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::warning);
  EXPECT_EQ(report.problems[0].case_id, "phantom_0000");
  EXPECT_EQ(report.problems[0].file, "labelsTr/phantom_0000/tumour.nii.gz");
  EXPECT_EQ(report.exit_code(false), 0);
  EXPECT_EQ(report.exit_code(true), 1);
}

TEST(VerifyCorruptedPhantom, MultihotTooFewAndTooManyVolumes) {
  TempDir dir;
  const fs::path root = write_phantom(dir, mlseg::PhantomLabelFormat::multihot4d);
  rewrite_label(root / "labelsTr" / "phantom_0001.nii.gz",
                [](mlseg::Image& label) { label.data = label.data.slice(0, 0, 2).contiguous(); });
  rewrite_label(root / "labelsTr" / "phantom_0002.nii.gz", [](mlseg::Image& label) {
    label.data = torch::cat({label.data, torch::zeros_like(label.data.slice(0, 0, 1))}, 0);
  });
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  ASSERT_EQ(codes(report), (std::vector<std::string>{"multihot_volume_count", "multihot_volume_count"}))
      << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "phantom_0001");
  EXPECT_TRUE(contains(report.problems[0].message, "2 volumes")) << report.problems[0].message;
  EXPECT_EQ(report.problems[1].severity, Severity::warning);
  EXPECT_EQ(report.problems[1].case_id, "phantom_0002");
  EXPECT_TRUE(contains(report.problems[1].message, "4 volumes")) << report.problems[1].message;
}

TEST(VerifyCorruptedPhantom, MissingSecondImageChannel) {
  TempDir dir;
  const fs::path root = write_phantom(dir, mlseg::PhantomLabelFormat::label_map, 2);
  ASSERT_TRUE(fs::remove(root / "imagesTr" / "phantom_0001_0001.nii.gz"));
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  ASSERT_EQ(codes(report), std::vector<std::string>{"missing_image"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "phantom_0001");
  EXPECT_EQ(report.problems[0].file, "imagesTr/phantom_0001_0001.nii.gz");
  EXPECT_TRUE(contains(report.problems[0].message, "MR_B")) << report.problems[0].message;
}

TEST(VerifyCorruptedPhantom, NanInMetaImage) {
  TempDir dir;
  mlseg::PhantomOptions options;
  options.num_cases = 2;
  options.shape_zyx = {4, 8, 8};
  options.num_channels = 2;
  options.file_ending = ".mha";
  options.threads = 2;
  options.show_progress = false;
  const fs::path root = dir / "Dataset904_Phantom";
  mlseg::write_phantom_dataset(root, options);
  const fs::path file = root / "imagesTr" / "phantom_0001_0000.mha";
  mlseg::Image image = mlseg::read_image(file);
  image.data[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  image.data[0][1][1][1] = std::numeric_limits<float>::infinity();
  image.data[0][2][2][2] = std::numeric_limits<float>::quiet_NaN();
  mlseg::write_image(image, file);
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  ASSERT_EQ(codes(report), std::vector<std::string>{"image_not_finite"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::error);
  EXPECT_EQ(report.problems[0].case_id, "phantom_0001");
  EXPECT_EQ(report.problems[0].file, "imagesTr/phantom_0001_0000.mha");
  EXPECT_TRUE(contains(report.problems[0].message, "3 voxels")) << report.problems[0].message;
  EXPECT_EQ(report.exit_code(false), 2);
}

TEST(VerifyCorruptedPhantom, MaskNotBinary) {
  TempDir dir;
  const fs::path root = write_phantom(dir, mlseg::PhantomLabelFormat::channel_masks);
  rewrite_label(root / "labelsTr" / "phantom_0000" / "body.nii.gz",
                [](mlseg::Image& label) { label.data[0][0][0][0] = 3; });
  const VerifyReport report = mlseg::verify_dataset(root, quiet_options());
  ASSERT_EQ(codes(report), std::vector<std::string>{"mask_not_binary"}) << describe(report);
  EXPECT_EQ(report.problems[0].severity, Severity::warning);
  EXPECT_EQ(report.problems[0].file, "labelsTr/phantom_0000/body.nii.gz");
  EXPECT_TRUE(contains(report.problems[0].message, "0, 1, 3")) << report.problems[0].message;
}

}  // namespace
