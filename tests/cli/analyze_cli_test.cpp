#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "test_support.h"

namespace mlseg {
namespace {
namespace fs = std::filesystem;

TEST(CliAnalyze, PhantomWritesAnalysisFilesAndPrintsNoNan) {
  testing::TempDir dir;
  const fs::path dataset = dir / "Dataset960_Cli";
  ASSERT_EQ(testing::run_mlseg("synth -q --cases 6 --channels 6 --shape 6,16,16 --format bitmask '" + dataset.string() + "'").exit_code, 0);
  const auto result = testing::run_mlseg("analyze --threads 2 --foreground-samples 10000 --work-dir '" + (dir / "work").string() +
                                         "' '" + dataset.string() + "'");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_FALSE(std::regex_search(result.output, std::regex("\\bnan\\b", std::regex::icase))) << result.output;
  EXPECT_NE(result.output.find("lesion lies inside organ in every case"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("Recommended encoding"), std::string::npos);
  for (const char* file : {"analysis/fingerprint.json", "analysis/labels.json", "splits_final.json"}) {
    EXPECT_TRUE(fs::exists(dir / "work/Dataset960_Cli" / file)) << file;
  }
  const auto json = testing::run_mlseg("analyze --json -q --splits random --overwrite-splits --foreground-samples 1000 --work-dir '" +
                                       (dir / "work").string() + "' '" + dataset.string() + "'");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const auto parsed = nlohmann::json::parse(json.stdout_text);
  EXPECT_EQ(parsed["splits"]["method"], "random");
  EXPECT_EQ(parsed["channels"].size(), 6u);
}

TEST(CliAnalyze, BrokenDatasetExitsTwoAndPointsToVerify) {
  testing::TempDir dir;
  const fs::path dataset = dir / "Dataset961_Broken";
  ASSERT_EQ(testing::run_mlseg("synth -q --cases 3 --shape 4,8,8 '" + dataset.string() + "'").exit_code, 0);
  fs::remove(dataset / "labelsTr/phantom_0001.nii.gz");
  const auto result = testing::run_mlseg("analyze -q --work-dir '" + (dir / "work").string() + "' '" + dataset.string() + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("mlseg verify"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("phantom_0001"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace mlseg
