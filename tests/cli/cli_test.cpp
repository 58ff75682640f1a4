// The mlseg executable: `verify` and `synth` as a user runs them (exit codes, JSON, messages).
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "mlseg/io/image_io.h"
#include "test_support.h"

namespace {
namespace fs = std::filesystem;
using mlseg::testing::CommandResult;
using mlseg::testing::run_mlseg;
using mlseg::testing::shared_data_dir;
using mlseg::testing::TempDir;

std::string quote(const fs::path& path) { return "'" + path.string() + "'"; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// "nan" as a whole word, any case, after removing the phrases verify uses on purpose for NaN
// images ("NaN or infinite", "NaN input makes every loss NaN").
bool mentions_nan(std::string text) {
  for (const std::string allowed : {"NaN or infinite", "NaN input", "every loss NaN"}) {
    for (auto at = text.find(allowed); at != std::string::npos; at = text.find(allowed)) text.erase(at, allowed.size());
  }
  static const std::regex nan_word("\\bnan\\b", std::regex::icase);
  return std::regex_search(text, nan_word);
}

// Runs mlseg and checks what every run must satisfy: no "nan" printed, no crash.
CommandResult run(const std::string& arguments) {
  CommandResult result = run_mlseg(arguments);
  EXPECT_FALSE(mentions_nan(result.output)) << "mlseg " << arguments << " printed nan:\n" << result.output;
  EXPECT_TRUE(result.exit_code >= 0 && result.exit_code <= 2) << "mlseg " << arguments << " exited "
                                                              << result.exit_code << ":\n" << result.output;
  return result;
}

// A 4-case copy of Dataset004_Hippocampus.
fs::path copy_hippocampus(const TempDir& dir) {
  const fs::path source = shared_data_dir() / "Dataset004_Hippocampus";
  const fs::path root = dir / "Dataset004_Hippocampus";
  fs::create_directories(root / "imagesTr");
  fs::create_directories(root / "labelsTr");
  auto copy = [](const fs::path& from, const fs::path& to) {
    fs::copy_file(from, to);
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
  };
  for (const std::string id : {"hippocampus_001", "hippocampus_003", "hippocampus_004", "hippocampus_006"}) {
    copy(source / "imagesTr" / (id + "_0000.nii.gz"), root / "imagesTr" / (id + "_0000.nii.gz"));
    copy(source / "labelsTr" / (id + ".nii.gz"), root / "labelsTr" / (id + ".nii.gz"));
  }
  std::ifstream stream(source / "dataset.json");
  auto json = nlohmann::ordered_json::parse(stream);
  json["numTraining"] = 4;
  std::ofstream(root / "dataset.json") << json.dump(2);
  return root;
}

TEST(CliVerify, HippocampusJsonIsClean) {
  MLSEG_REQUIRE_SHARED_DATA();
  const CommandResult result = run("verify --json --threads 2 " + quote(shared_data_dir() / "Dataset004_Hippocampus"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  nlohmann::json json;
  ASSERT_NO_THROW(json = nlohmann::json::parse(result.stdout_text)) << result.stdout_text;
  EXPECT_EQ(json["errors"], 0);
  EXPECT_EQ(json["warnings"], 0);
  EXPECT_EQ(json["num_training_cases"], 200);
  EXPECT_EQ(json["label_format"], "label_map");
  EXPECT_TRUE(json["problems"].empty());
  ASSERT_EQ(json["channels"].size(), 2u);
  EXPECT_EQ(json["channels"][0]["name"], "anterior");
  EXPECT_EQ(json["channels"][0]["cases_present"], 200);
  EXPECT_EQ(json["channels"][1]["name"], "posterior");
  EXPECT_EQ(json["channels"][1]["cases_present"], 200);
  EXPECT_TRUE(json["seconds"].is_number());
}

TEST(CliVerify, CorruptedCopyExitsTwoNamingFileAndFix) {
  MLSEG_REQUIRE_SHARED_DATA();
  TempDir dir;
  const fs::path root = copy_hippocampus(dir);
  std::ofstream(root / "imagesTr" / "hippocampus_004_0000.nii.gz", std::ios::trunc).close();

  const CommandResult text = run("verify -q --threads 2 " + quote(root));
  EXPECT_EQ(text.exit_code, 2) << text.output;
  EXPECT_TRUE(contains(text.output, "imagesTr/hippocampus_004_0000.nii.gz")) << text.output;
  EXPECT_TRUE(contains(text.output, "hippocampus_004")) << text.output;
  EXPECT_TRUE(contains(text.output, "ERROR")) << text.output;
  EXPECT_TRUE(contains(text.output, "fix")) << text.output;
  EXPECT_TRUE(contains(text.output, "re-export")) << text.output;  // the fix text itself
  EXPECT_TRUE(contains(text.output, "1 error, 0 warnings")) << text.output;

  const CommandResult json_run = run("verify --json --threads 2 " + quote(root));
  EXPECT_EQ(json_run.exit_code, 2);
  const auto json = nlohmann::json::parse(json_run.stdout_text);
  EXPECT_EQ(json["errors"], 1);
  ASSERT_EQ(json["problems"].size(), 1u);
  EXPECT_EQ(json["problems"][0]["code"], "file_empty");
  EXPECT_EQ(json["problems"][0]["severity"], "error");
  EXPECT_EQ(json["problems"][0]["case"], "hippocampus_004");
  EXPECT_EQ(json["problems"][0]["file"], "imagesTr/hippocampus_004_0000.nii.gz");
  EXPECT_FALSE(json["problems"][0]["fix"].get<std::string>().empty());
}

TEST(CliVerify, WarningsExitZeroUnlessStrict) {
  MLSEG_REQUIRE_SHARED_DATA();
  TempDir dir;
  const fs::path root = copy_hippocampus(dir);
  // A duplicate case: duplicate image and duplicate label warnings, no error.
  fs::copy_file(root / "imagesTr" / "hippocampus_003_0000.nii.gz", root / "imagesTr" / "hippocampus_203_0000.nii.gz");
  fs::copy_file(root / "labelsTr" / "hippocampus_003.nii.gz", root / "labelsTr" / "hippocampus_203.nii.gz");
  auto json = nlohmann::ordered_json::parse(std::ifstream(root / "dataset.json"));
  json["numTraining"] = 5;
  std::ofstream(root / "dataset.json", std::ios::trunc) << json.dump(2);

  const CommandResult lenient = run("verify -q --threads 2 " + quote(root));
  EXPECT_EQ(lenient.exit_code, 0) << lenient.output;
  EXPECT_TRUE(contains(lenient.output, "0 errors, 2 warnings")) << lenient.output;
  EXPECT_TRUE(contains(lenient.output, "identical image content in cases hippocampus_003")) << lenient.output;
  EXPECT_TRUE(contains(lenient.output, "hippocampus_203")) << lenient.output;
  EXPECT_TRUE(contains(lenient.output, "usable; read the warnings")) << lenient.output;
  const CommandResult strict = run("verify -q --strict --threads 2 " + quote(root));
  EXPECT_EQ(strict.exit_code, 1) << strict.output;
}

TEST(CliVerify, MissingFolderExitsTwoWithClearMessage) {
  TempDir dir;
  const fs::path missing = dir / "no_such_dataset";
  const CommandResult result = run("verify --threads 2 " + quote(missing));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "not a dataset folder")) << result.output;
  EXPECT_TRUE(contains(result.output, "no_such_dataset")) << result.output;
  EXPECT_TRUE(contains(result.output, "1 error")) << result.output;
}

TEST(CliVerify, MissingArgumentIsAUsageError) {
  const CommandResult result = run_mlseg("verify");
  EXPECT_EQ(result.exit_code, 2);  // usage errors are bad input
  EXPECT_TRUE(contains(result.output, "dataset")) << result.output;
}

// ---------------------------------------------------------------------------------------------
// synth.

TEST(CliSynth, RefusesNonEmptyFolder) {
  TempDir dir;
  fs::create_directories(dir / "ds");
  std::ofstream(dir / "ds" / "keep.txt") << "mine";
  const CommandResult result = run("synth -q --cases 2 --shape 4,8,8 " + quote(dir / "ds"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "not empty")) << result.output;
  // Nothing was touched.
  EXPECT_TRUE(fs::exists(dir / "ds" / "keep.txt"));
  EXPECT_FALSE(fs::exists(dir / "ds" / "dataset.json"));
}

TEST(CliSynth, RejectsUnknownFormat) {
  TempDir dir;
  const CommandResult result = run("synth -q --format rainbow " + quote(dir / "ds"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "rainbow")) << result.output;
  EXPECT_FALSE(fs::exists(dir / "ds"));
}

class CliSynthThenVerify : public ::testing::TestWithParam<std::string> {};

TEST_P(CliSynthThenVerify, OutputVerifiesClean) {
  TempDir dir;
  const fs::path root = dir / "Dataset901_Phantom";
  const CommandResult synth =
      run("synth --threads 2 --cases 3 --test-cases 1 --channels 4 --shape 8,20,20 --format " + GetParam() + " " +
          quote(root));
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  EXPECT_TRUE(contains(synth.output, "wrote 3 training + 1 test cases")) << synth.output;
  const CommandResult verify = run("verify --json --threads 2 " + quote(root));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  const auto json = nlohmann::json::parse(verify.stdout_text);
  EXPECT_EQ(json["errors"], 0) << verify.stdout_text;
  EXPECT_EQ(json["warnings"], 0) << verify.stdout_text;
  EXPECT_EQ(json["num_training_cases"], 3);
  EXPECT_EQ(json["num_test_cases"], 1);
  EXPECT_EQ(json["channels"].size(), 4u);
  const std::string expected_format = GetParam() == "regions" ? "label_map" : GetParam();
  EXPECT_EQ(json["label_format"], expected_format);
}

// (The instantiation name starts with Cli so that --gtest_filter='Cli*' selects these too.)
INSTANTIATE_TEST_SUITE_P(CliFormats, CliSynthThenVerify,
                         ::testing::Values("label_map", "regions", "bitmask", "multihot4d", "channel_masks"),
                         [](const auto& info) { return info.param; });

TEST(CliSynth, TwoDimensionalPngPhantomVerifiesClean) {
  TempDir dir;
  const fs::path root = dir / "Dataset902_Phantom2D";
  const CommandResult synth = run("synth -q --threads 2 --cases 3 --channels 3 --shape 1,48,48 --file-ending .png "
                                  "--format channel_masks " + quote(root));
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  EXPECT_TRUE(fs::exists(root / "imagesTr" / "phantom_0000_0000.png"));
  EXPECT_TRUE(fs::exists(root / "labelsTr" / "phantom_0000" / "body.png"));
  // --strict: exit 0 means no error and no warning.
  const CommandResult verify = run("verify --strict --threads 2 " + quote(root));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_TRUE(contains(verify.output, "the dataset is clean")) << verify.output;
  EXPECT_TRUE(contains(verify.output, "channel_masks, 3 channels")) << verify.output;
  EXPECT_TRUE(contains(verify.output, "3/3")) << verify.output;
}

TEST(CliVerify, NanImageIsReportedWithoutPrintingNan) {
  TempDir dir;
  const fs::path root = dir / "Dataset903_Phantom";
  // MetaImage keeps NaN as stored (the NIfTI reader zeroes it; see VerifyCorrupted.NanAndInfInImage).
  ASSERT_EQ(run("synth -q --threads 2 --cases 2 --channels 2 --shape 4,8,8 --file-ending .mha " + quote(root)).exit_code,
            0);
  const fs::path image_file = root / "imagesTr" / "phantom_0000_0000.mha";
  mlseg::Image image = mlseg::read_image(image_file);
  image.data[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  image.data[0][1][1][1] = -std::numeric_limits<float>::infinity();
  mlseg::write_image(image, image_file);
  const CommandResult result = run("verify --threads 2 " + quote(root));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "imagesTr/phantom_0000_0000.mha")) << result.output;
  EXPECT_TRUE(contains(result.output, "2 voxels are NaN or infinite")) << result.output;
}

}  // namespace
